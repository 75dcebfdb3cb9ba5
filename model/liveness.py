"""Live or static: does a tracked face move like a person, or sit still like a picture?

A photo on the wall, a poster or a magazine cover in the scene is a face to
MTCNN, and a printed face scores like anything else to the classifier: in
DFDC clip ``yhffcuhhjy`` a framed photo behind the speaker outscored the
swapped speaker (0.961 against 0.579).  A living face changes between
sampled frames, and above all its mouth does (GRID speakers barely move
their heads, but they talk); a picture does not change at all, except
through the camera, which moves the whole picture without changing it.

The measure, per pair of consecutive detections of a track: the track's
median face box is cut from both frames (grey, ``REGION_PX`` across the box,
with a context margin), the second cut is shifted onto the first by phase
correlation (camera shake and MTCNN's box jitter cancel: a picture lines up
exactly, a face that changed does not), and the residual is the mean absolute
difference of the two face boxes after removing their means, in units of the
face's grey standard deviation.  It is taken over the whole box (``motion``)
and over the mouth, the lower third of the box (``mouth``); a track's values
are the medians over its pairs, so one blink or one bad box decides nothing.

A track is **static** when its face is still (``motion`` under
``STILL_MOTION``: a picture shown by a still camera), or when its mouth barely
changes (``mouth`` under ``STATIC_MOUTH``) *and* changes less than the rest of
the face (``mouth / motion`` under ``STATIC_MOUTH_RATIO``): what is left of a
picture's residual is noise spread evenly over it, while a speaker's change
gathers at the mouth.  Measured on real footage (docs/detection.md, "Live and
static faces", ``bench/liveness.py``): the DFDC wall photo has mouth 0.059 and
ratio 0.71; the stillest real speakers (GRID) have mouth >= 0.071 and ratio
>= 1.01.  The margins are small, so the rule stays conservative: a wrong
"static" would hide a fake, a wrong "live" only lets a picture be judged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.faces import Face

#: Side (px) the face box is resampled to before comparing.
REGION_PX = 48
#: Context around the box (fraction of its side, each side) used to align the pair.
ALIGN_MARGIN = 0.25
#: A face whose aligned residual is below this is still (a photo under a still camera).
STILL_MOTION = 0.03
#: ...or static when its mouth residual is below this...
STATIC_MOUTH = 0.065
#: ...and its mouth changes less than this fraction of the whole face's change.
STATIC_MOUTH_RATIO = 0.85


@dataclass(frozen=True)
class Motion:
    """How much a track's face changed between sampled frames, camera motion removed."""

    face: float  # median aligned residual over the whole face box
    mouth: float  # the same over the lower third (mouth and chin)

    @property
    def static(self) -> bool:
        return is_static(self)


def _region(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box and its margin, resampled so that the box is ``REGION_PX`` across (float32)."""
    import cv2

    x, y, w, h = box
    side = max(w, h, 1) * (1 + 2 * ALIGN_MARGIN)
    out = round(REGION_PX * (1 + 2 * ALIGN_MARGIN))
    scale = out / side
    cx, cy = x + w / 2.0, y + h / 2.0
    matrix = np.float32([[scale, 0, out / 2 - cx * scale], [0, scale, out / 2 - cy * scale]])
    return cv2.warpAffine(
        grey, matrix, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)


def pair_motion(
    grey_a: np.ndarray, grey_b: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[float, float]:
    """(face, mouth) residual between two grey frames at ``box``, after aligning b onto a."""
    import cv2

    a, b = _region(grey_a, box), _region(grey_b, box)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _response = cv2.phaseCorrelate(a, b, window)
    shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
    b = cv2.warpAffine(
        b, shift, (a.shape[1], a.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    m = round(REGION_PX * ALIGN_MARGIN)
    fa, fb = a[m : m + REGION_PX, m : m + REGION_PX], b[m : m + REGION_PX, m : m + REGION_PX]
    spread = max(float(fa.std()), 1.0)
    residual = np.abs((fa - fa.mean()) - (fb - fb.mean())) / spread
    mouth = residual[REGION_PX * 2 // 3 :, REGION_PX // 4 : REGION_PX * 3 // 4]
    return float(residual.mean()), float(mouth.mean())


def median_box(faces: list[Face]) -> tuple[int, int, int, int]:
    """Per-coordinate median of the faces' boxes: where the face typically is."""
    boxes = np.array([face.box for face in faces], dtype=np.float64)
    return tuple(round(float(v)) for v in np.median(boxes, axis=0))  # type: ignore[return-value]


def track_motion(
    frames: list[np.ndarray], positions: list[int], faces: list[Face]
) -> Motion | None:
    """Median aligned change of a track between consecutive detections; None with fewer than two.

    A face that moves across the frame (more than half its size between two
    detections) is compared at each detection's own box; otherwise at the
    track's median box, so that MTCNN's jitter does not count as change.
    """
    import cv2

    if len(faces) < 2:
        return None
    grey: dict[int, np.ndarray] = {}

    def grey_at(position: int) -> np.ndarray:
        if position not in grey:
            grey[position] = cv2.cvtColor(frames[position], cv2.COLOR_RGB2GRAY)
        return grey[position]

    typical = median_box(faces)
    values = []
    for i in range(len(faces) - 1):
        a, b = faces[i].box, faces[i + 1].box
        travel = np.hypot(a[0] - b[0], a[1] - b[1]) / max(a[2], a[3], 1)
        away = np.hypot(a[0] - typical[0], a[1] - typical[1]) > typical[2]
        box = a if travel > 0.5 or away else typical
        values.append(pair_motion(grey_at(positions[i]), grey_at(positions[i + 1]), box))
    face, mouth = np.median(np.array(values), axis=0)
    return Motion(face=float(face), mouth=float(mouth))


def is_static(
    motion: Motion | None,
    still: float = STILL_MOTION,
    mouth: float = STATIC_MOUTH,
    ratio: float = STATIC_MOUTH_RATIO,
) -> bool:
    """A picture, not a person; a face seen once cannot be judged: live."""
    if motion is None:
        return False
    if motion.face < still:
        return True
    return motion.mouth < mouth and motion.mouth < ratio * motion.face
