"""Synthetic media for the detection tests, written with OpenCV's VideoWriter.

The face clips live in :mod:`model.synthetic` (``find-bot demo`` makes them too);
this adds the videos only tests need.
"""

from __future__ import annotations

from pathlib import Path

import cv2
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


def index_frames(n_frames: int) -> list[np.ndarray]:
    """The frames ``index_video`` writes, for other encoders."""
    frames = []
    for i in range(n_frames):
        frame = np.zeros((240, BITS * BIT_WIDTH, 3), dtype=np.uint8)
        for bit in range(BITS):
            if (i >> bit) & 1:
                frame[:120, bit * BIT_WIDTH : (bit + 1) * BIT_WIDTH] = 255
        frame[120:] = (255, 0, 0)
        frames.append(frame)
    return frames


def live_and_still_video(path: Path, n_frames: int = 32, size=(640, 360)) -> Path:
    """A talking face on the left and a photo pinned on the right.

    The left head turns a little (a few degrees back and forth) and opens and
    closes its mouth from frame to frame, as a person speaking does; the right
    head, the same photo mirrored, never changes: a picture on the wall.
    """
    width, height = size
    live = head_patch()
    still = head_patch(flip=True)
    frames = []
    for i in range(n_frames):
        frame = background(width, height)
        angle = 6.0 * np.sin(i * 1.3)
        centre = (live.shape[1] / 2, live.shape[0] / 2)
        turned = cv2.warpAffine(
            live,
            cv2.getRotationMatrix2D(centre, angle, 1.0),
            (live.shape[1], live.shape[0]),
            borderMode=cv2.BORDER_REPLICATE,
        )
        opening = 3 + 9 * (i % 3)  # mouth shut, half open, open
        cv2.ellipse(turned, (103, 152), (17, opening), 0, 0, 360, (60, 20, 30), -1)
        frame[60 : 60 + live.shape[0], 30 : 30 + live.shape[1]] = turned
        frame[80 : 80 + still.shape[0], 380 : 380 + still.shape[1]] = still
        frames.append(frame)
    return write_video(path, frames, fps=2.0)
