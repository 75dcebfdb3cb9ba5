"""Live or static: does a tracked face move like a person, or sit still like a picture?

A photo on the wall, a poster or a magazine cover in the scene is a face to
MTCNN, and a printed face scores like anything else to the classifier: in
DFDC clip ``yhffcuhhjy`` a framed photo behind the speaker outscored the
swapped speaker.  A living face changes between sampled frames (mouth, eyes,
pose); a picture does not, except through the camera's global motion, which
moves and scales the whole box but not the face inside it.

The measure: for each pair of consecutive detections of a track, the inner
face box of each is cut from its frame, made grey, ``CROP_PX`` square and
normalised to zero mean and unit variance (exposure changes cancel); the
difference is the mean absolute difference of the two, in standard
deviations.  It is taken twice, with both crops cut at the *same* box (a
still camera: box jitter of MTCNN does not count) and at each detection's
*own* box (a moving camera: the picture moved with the box), and the smaller
is kept.  The track's motion is the median over its pairs, so one blink or
one bad box decides nothing.  Numbers measured on real footage are in
docs/detection.md ("Live and static faces").
"""

from __future__ import annotations

import numpy as np

from model.faces import Face

#: Side (px) of the grey, normalised face crops compared between frames.
CROP_PX = 32
#: A track whose median motion is below this is static (a picture in the scene).
#: Conservative on purpose: measured (docs/detection.md), GRID and MEAD speakers
#: move only 0.056-0.074, the DFDC wall photo 0.069, so this pixel measure cannot
#: tell them apart; only truly still pictures (a still image as video: 0.0) fall
#: below 0.03.  Never mark a real speaker static: a wrong "static" hides a fake.
STATIC_MOTION = 0.03


def _patch(frame_rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    import cv2

    x, y, w, h = box
    height, width = frame_rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(frame_rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    patch = cv2.resize(grey, (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA).astype(np.float32)
    patch -= patch.mean()
    return patch / max(float(patch.std()), 1.0)


def _difference(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return float("inf")
    return float(np.abs(a - b).mean())


def pair_motion(frame_a: np.ndarray, face_a: Face, frame_b: np.ndarray, face_b: Face) -> float:
    """How much a face changed between two frames (0 = identical pixels), camera motion aside."""
    fixed = _difference(_patch(frame_a, face_a.box), _patch(frame_b, face_a.box))
    moved = _difference(_patch(frame_a, face_a.box), _patch(frame_b, face_b.box))
    return min(fixed, moved)


def track_motion(frames: list[np.ndarray], positions: list[int], faces: list[Face]) -> float | None:
    """Median change between consecutive detections of a track; None with fewer than two."""
    values = [
        pair_motion(frames[positions[i]], faces[i], frames[positions[i + 1]], faces[i + 1])
        for i in range(len(faces) - 1)
    ]
    values = [v for v in values if np.isfinite(v)]
    return float(np.median(values)) if values else None


def is_static(motion: float | None, threshold: float = STATIC_MOTION) -> bool:
    """A track is static when its faces barely changed; one seen once cannot be judged: live."""
    return motion is not None and motion < threshold
