"""Synthetic datasets for the training tests: plumbing, not faces.

"Real" crops are smooth colour gradients, "fake" crops carry a high-frequency
checkerboard patch in the centre — trivially separable, so a tiny network
learns them in one epoch and the tests can check the whole path.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def synthetic_crop(rng: np.random.Generator, fake: bool, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(60, 200, size=3)
    slope = rng.uniform(-60, 60, size=(2, 3))
    image = base + xx[..., None] * slope[0] + yy[..., None] * slope[1]
    if fake:
        lo, hi = size // 4, 3 * size // 4
        checker = ((np.indices((hi - lo, hi - lo)).sum(axis=0) % 2) * 2 - 1) * 40.0
        image[lo:hi, lo:hi] += checker[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def write_review_export(
    root: Path, videos_per_class: int = 6, crops_per_video: int = 3, seed: int = 0
) -> Path:
    """A review-queue export with ``videos_per_class`` real and fake videos."""
    rng = np.random.default_rng(seed)
    lines = []
    for label in ("real", "fake"):
        for v in range(videos_per_class):
            video_id = f"{label}{v:02d}"
            crops = []
            for c in range(crops_per_video):
                rel = f"crops/{video_id}/{c}.png"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                crop = synthetic_crop(rng, label == "fake")
                cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                crops.append(rel)
            lines.append(
                json.dumps(
                    {
                        "video_id": video_id,
                        "label": label,
                        "crops": crops,
                        "reviewer": "tester",
                        "decided_at": "2026-01-01T00:00:00Z",
                    }
                )
            )
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return root
