"""Synthetic media for the detection tests, written with OpenCV's VideoWriter.

The face clips live in :mod:`model.synthetic` (``find-bot demo`` makes them too);
this adds the videos only tests need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.synthetic import (  # noqa: F401 - re-exported: the tests' one home for them
    HEAD,
    astronaut,
    background,
    face_video,
    head_patch,
    write_video,
)

BITS = 8
BIT_WIDTH = 40


def index_video(path: Path, n_frames: int = 120, fps: float = 30.0) -> Path:
    """Video whose frame i shows i in binary (8 black/white blocks, top half) and is red below.

    Decoding the blocks of a returned frame tells which frame it really is,
    so tests can check that seeking lands on the requested index.
    """
    frames = []
    for i in range(n_frames):
        frame = np.zeros((240, BITS * BIT_WIDTH, 3), dtype=np.uint8)
        for bit in range(BITS):
            if (i >> bit) & 1:
                frame[:120, bit * BIT_WIDTH : (bit + 1) * BIT_WIDTH] = 255
        frame[120:] = (255, 0, 0)  # pure red in RGB
        frames.append(frame)
    return write_video(path, frames, fps)


def decode_index(frame_rgb: np.ndarray) -> int:
    """Read back the frame number drawn by ``index_video``."""
    value = 0
    for bit in range(BITS):
        block = frame_rgb[10:110, bit * BIT_WIDTH + 5 : (bit + 1) * BIT_WIDTH - 5]
        if block.mean() > 128:
            value |= 1 << bit
    return value
