"""Synthetic talking-head clips: a real face (scikit-image's ``astronaut``) on a plain background.

Used where real footage is not at hand: ``find-bot demo`` without the shared data,
and the test suite (``tests/model/synth.py`` builds its special-purpose videos on this).
MTCNN finds a genuine face in them and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The astronaut's head (rows, cols) in skimage.data.astronaut(); MTCNN finds
#: the face at about x=182, y=64, w=83, h=107 in the full photo.
HEAD = (slice(0, 240), slice(120, 330))


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # RGB uint8, 512 x 512


def head_patch(flip: bool = False) -> np.ndarray:
    patch = astronaut()[HEAD].copy()
    return patch[:, ::-1].copy() if flip else patch


def background(width: int, height: int) -> np.ndarray:
    """A smooth colour gradient (RGB): no edges that could look like a face."""
    xs = np.linspace(60, 180, width, dtype=np.float32)
    ys = np.linspace(40, 120, height, dtype=np.float32)
    frame = np.empty((height, width, 3), dtype=np.float32)
    frame[..., 0] = xs[None, :]
    frame[..., 1] = ys[:, None]
    frame[..., 2] = 150
    return frame.astype(np.uint8)


def write_video(path: Path, frames_rgb: list[np.ndarray], fps: float = 24.0) -> Path:
    import cv2

    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def face_video(
    path: Path,
    n_frames: int = 48,
    faces: int = 1,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
) -> Path:
    """Video with ``faces`` astronaut heads (0, 1 or 2) drifting slowly to the right.

    ``seed`` shifts the heads and tints the background, so clips made with
    different seeds have different bytes (and different perceptual hashes).
    """
    width, height = size
    patches = [head_patch(), head_patch(flip=True)][:faces]
    positions = [(30 + 7 * seed, 60 + 3 * seed), (360, 80)][:faces]
    base = background(width, height)
    if seed:
        base = np.roll(base, 37 * seed, axis=1)
    frames = []
    for i in range(n_frames):
        frame = base.copy()
        for patch, (x, y) in zip(patches, positions, strict=True):
            x += i  # one pixel per frame: a person moving across the sampled frames
            ph, pw = patch.shape[:2]
            frame[y : y + ph, x : x + pw] = patch
        frames.append(frame)
    return write_video(path, frames)
