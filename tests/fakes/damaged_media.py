"""Damaged media for the partial-decode tests: a face video cut off like a broken download.

An MJPEG AVI keeps its header (frame count, frame rate) at the start, so a
file cut to its first tenth still opens and claims all its frames, but only
the frames before the cut decode: what a transfer that stopped early leaves.
"""

from __future__ import annotations

from pathlib import Path


def truncated_face_video(path: Path, *, n_frames: int = 96, keep: float = 0.1) -> Path:
    """A one-face video whose file is cut to its first ``keep`` fraction of bytes."""
    import cv2

    from tests.model import synth

    patch = synth.head_patch()
    ph, pw = patch.shape[:2]
    full = path.with_suffix(".full.avi")
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, (640, 360))
    assert writer.isOpened(), f"OpenCV cannot write {full}"
    for i in range(n_frames):
        frame = synth.background(640, 360)
        frame[60 : 60 + ph, 30 + i : 30 + i + pw] = patch
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return path


def truncated_faststart_video(path: Path, *, n_frames: int = 96, keep: float = 0.7) -> Path:
    """A one-face H.264 MP4 with its moov atom first (a YouTube download's layout), cut to
    its first ``keep`` fraction of bytes: the header still promises every frame, and the
    frames before the cut decode, more than half of them at the default 0.7."""
    import numpy as np

    from bench.media import encode
    from tests.model import synth

    patch = synth.head_patch()
    ph, pw = patch.shape[:2]
    noise = np.random.default_rng(0)
    frames = []
    for i in range(n_frames):
        frame = synth.background(640, 360)
        frame[60 : 60 + ph, 30 + i : 30 + i + pw] = patch
        frame[300:] = noise.integers(0, 256, frame[300:].shape, dtype=np.uint8)  # even sizes
        frames.append(frame)
    full = encode(path.with_suffix(".full.mp4"), frames, fps=24.0, gop=250, faststart=True)
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return path
