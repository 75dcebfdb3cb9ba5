"""Noise removal: largest face per frame, too-few-faces videos, unaltered fakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.training.cache import CachedFace, CacheItem
from model.training.curation import CurationConfig, pair_difference, select_crops
from model.training.datasets import Sample


def make_item(
    tmp: Path,
    key: str,
    label: int,
    crops: list[np.ndarray],
    frames: list[int],
    largest: list[bool] | None = None,
    original: str | None = None,
    status: str = "ok",
) -> CacheItem:
    sample = Sample(
        key=key,
        path=tmp / f"{key}.mp4",
        label=label,
        media="video",
        video_id=key,
        identities=(key,),
        dataset="test",
        original=original,
    )
    path = tmp / f"{key}.npy"
    np.save(path, np.stack(crops) if crops else np.zeros((0, 32, 32, 3), np.uint8))
    largest = largest or [True] * len(crops)
    faces = [
        CachedFace(
            frame_index=f,
            box=(0, 0, 10, 10),
            confidence=0.99,
            keypoints=np.zeros((5, 2), np.float32),
            largest=big,
        )
        for f, big in zip(frames, largest, strict=True)
    ]
    return CacheItem(sample=sample, status=status, crops_path=path, faces=faces)


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_pair_difference_ignores_mild_recompression_noise():
    a = noise(0)
    jitter = np.clip(a.astype(int) + np.random.default_rng(1).integers(-3, 4, a.shape), 0, 255)
    assert pair_difference(a, jitter.astype(np.uint8)) < 4.0
    assert pair_difference(a, noise(2)) > 20.0


def test_fake_crops_identical_to_their_original_are_dropped(tmp_path):
    real_frames = [noise(i) for i in range(3)]
    altered = noise(99)
    original = make_item(tmp_path, "orig", 0, real_frames, [10, 20, 30])
    # frame 10 untouched, frame 20 manipulated, frame 40 has no original counterpart
    fake = make_item(
        tmp_path, "fake", 1, [real_frames[0], altered, noise(50)], [10, 20, 40], original="orig"
    )
    kept, stats = select_crops([original, fake])
    fake_frames = sorted(c.frame_index for c in kept if c.label == 1)
    assert fake_frames == [20, 40]
    assert stats["dropped_label_noise"] == 1
    assert stats["kept_crops"] == 5
    off, _ = select_crops([original, fake], CurationConfig(pair_diff_threshold=0))
    assert len(off) == 6  # rule disabled


def test_only_the_largest_face_and_videos_with_enough_faces(tmp_path):
    two_faces = make_item(
        tmp_path, "multi", 0, [noise(1), noise(2), noise(3)], [0, 0, 5], largest=[True, False, True]
    )
    short = make_item(tmp_path, "short", 1, [noise(4)], [0])
    broken = make_item(tmp_path, "broken", 1, [], [], status="decode_error")
    kept, stats = select_crops([two_faces, short, broken])
    assert [(c.video_id, c.row) for c in kept] == [("multi", 0), ("multi", 2)]
    assert stats["dropped_not_largest"] == 1
    assert stats["dropped_too_few_faces"] == 1
    assert stats["dropped_decode_error"] == 1
    everything, _ = select_crops(
        [two_faces, short], CurationConfig(largest_only=False, min_crops_per_video=1)
    )
    assert len(everything) == 4
