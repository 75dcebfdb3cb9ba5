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
