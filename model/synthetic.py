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


#: Head size of the demo's generated clips: their faces' crop squares are about 185 px, above
#: the default bundle's 160 px input, so they count toward a verdict (docs/detection.md).
DEMO_FACE_SCALE = 1.25


def face_video(
    path: Path,
    n_frames: int = 48,
    faces: int = 1,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
    face_scale: float = 1.0,
) -> Path:
    """Video with ``faces`` astronaut heads (0, 1 or 2) drifting slowly to the right.

    ``seed`` shifts the heads and tints the background, so clips made with
    different seeds have different bytes (and different perceptual hashes).
    ``face_scale`` enlarges the heads (kept inside the frame): at 1.0 the face's crop
    square is about 145 px, below the default bundle's 160 px input, so a scorer with
    that bundle would judge it too small to be evidence (``model.scoring``); the demo
    uses :data:`DEMO_FACE_SCALE`.
    """
    import cv2

    width, height = size
    patches = [head_patch(), head_patch(flip=True)][:faces]
    if face_scale != 1.0:
        patches = [
            cv2.resize(p, None, fx=face_scale, fy=face_scale, interpolation=cv2.INTER_CUBIC)
            for p in patches
        ]
    positions = [
        (x, min(y, max(0, height - p.shape[0])))
        for p, (x, y) in zip(patches, [(30 + 7 * seed, 60 + 3 * seed), (360, 80)], strict=False)
    ]
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
