"""Reviewer views of evidence faces: a small face is marked as upscaled (issue 22)."""

from __future__ import annotations

import numpy as np

from model.evidence import REVIEW_CROP_PX, build_views
from model.faces import Face


def _face(side: int) -> Face:
    return Face(box=(100, 80, side, side), confidence=0.99, keypoints={})


def test_a_small_face_records_its_source_size_and_a_large_one_does_not() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    small, large = build_views(
        [(0, 3, frame, _face(40)), (1, 3, frame, _face(300))], input_size=96, margin=0.3
    )
    assert small.crop.shape[:2] == (REVIEW_CROP_PX, REVIEW_CROP_PX)
    assert small.source_px == 52  # 40 px box with a 30 % margin
    assert small.upscaled_from == 52
    assert large.source_px == 390 and large.upscaled_from is None
    assert not hasattr(small, "heatmap"), "no heatmaps for reviewers (issue 22)"
