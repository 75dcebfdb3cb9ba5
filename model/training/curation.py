"""Noise removal: which cached crops are fit to train on, and why the others are not.

The rules, in order (each drop is counted in the returned stats):

1. **Unreadable or faceless samples** — decode errors and videos where the
   detector found no face contribute nothing.
2. **Low detector confidence and tiny faces** — enforced when the cache is
   built: the training detector keeps faces with MTCNN confidence >= 0.95
   and a box side >= 64 px (stricter than the scanner's 0.9 / 40 px: a
   blurry 40 px face carries no manipulation evidence, only label noise).
3. **One face per frame** — only the largest face of each frame is kept.
   In a fake video usually one person is swapped; the bystanders would be
   "fake" examples of real faces.  The largest face is the one the
   manipulation targets in FF++, Celeb-DF and almost all of DFDC.
4. **Too few faces** — a video with fewer than ``min_crops_per_video``
   usable crops is dropped (the detector mostly saw something else).
5. **Label noise: fakes identical to their original** — when the dataset
   links a fake to the real video it was made from (FF++, DFDC, Celeb-DF),
   a fake crop whose frame also exists in the original is compared with the
   original's crop of that frame: both are converted to 64x64 grey and if
   their mean absolute difference is below ``pair_diff_threshold`` grey
   levels (default 4 of 255, above the noise of re-encoding) the crop was
   not manipulated — DFDC fakes often leave frames or faces untouched — and
   is dropped.  The rule only ever removes fakes that are provably
   unaltered; it errs towards keeping (misaligned boxes differ a lot).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from model.training.cache import CacheItem


@dataclass(frozen=True)
class CurationConfig:
    largest_only: bool = True
    min_crops_per_video: int = 2
    pair_diff_threshold: float = 4.0  # 0 disables the label-noise rule

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CropRef:
    """One usable crop: which cache item, which row, its label and keypoints."""

    item: int
    row: int
    label: int
    video_id: str
    frame_index: int
    keypoints: np.ndarray
    #: The source image's rectangle in the crop when the rest is padding (tight crops).
    valid: tuple[int, int, int, int] | None = None


def _grey64(crop: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(np.asarray(crop), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


def pair_difference(fake_crop: np.ndarray, original_crop: np.ndarray) -> float:
    """Mean absolute grey-level difference of two crops at 64x64 (rule 5)."""
    return float(np.mean(np.abs(_grey64(fake_crop) - _grey64(original_crop))))


def select_crops(
    items: Sequence[CacheItem], config: CurationConfig | None = None
) -> tuple[list[CropRef], dict[str, int]]:
    """Apply the rules in the module docstring; returns (kept crops, drop counts)."""
    config = config or CurationConfig()
    stats: Counter[str] = Counter()
    by_key = {item.sample.key: item for item in items if item.status == "ok"}
    kept: list[CropRef] = []
    for i, item in enumerate(items):
        if item.status != "ok":
            stats[f"dropped_{item.status}"] += 1
            continue
        rows = [r for r, face in enumerate(item.faces) if face.largest or not config.largest_only]
        stats["dropped_not_largest"] += len(item.faces) - len(rows)
        if item.sample.is_fake and config.pair_diff_threshold > 0:
            rows = _drop_unaltered(
                item, by_key.get(item.sample.original or ""), rows, config, stats
            )
        if item.sample.media == "video" and len(rows) < config.min_crops_per_video:
            stats["dropped_too_few_faces"] += 1
            stats["dropped_crops_of_short_videos"] += len(rows)
            continue
        for r in rows:
            face = item.faces[r]
            kept.append(
                CropRef(
                    item=i,
                    row=r,
                    label=item.sample.label,
                    video_id=item.sample.video_id,
                    frame_index=face.frame_index,
                    keypoints=face.keypoints,
                    valid=face.valid,
                )
            )
    stats["kept_crops"] = len(kept)
    stats["kept_videos"] = len({(c.video_id, c.label) for c in kept})
    return kept, dict(stats)


def _drop_unaltered(
    item: CacheItem,
    original: CacheItem | None,
    rows: list[int],
    config: CurationConfig,
    stats: Counter[str],
) -> list[int]:
    if original is None:
        return rows
    original_rows = {f.frame_index: r for r, f in enumerate(original.faces) if f.largest}
    if not original_rows:
        return rows
    crops, original_crops = item.crops(), original.crops()
    kept = []
    for r in rows:
        o = original_rows.get(item.faces[r].frame_index)
        if (
            o is not None
            and pair_difference(crops[r], original_crops[o]) < config.pair_diff_threshold
        ):
            stats["dropped_label_noise"] += 1
            continue
        kept.append(r)
    return kept


def label_counts(crops: Sequence[CropRef]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for c in crops:
        counts[c.label] += 1
    return dict(counts)
