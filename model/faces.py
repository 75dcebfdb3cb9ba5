"""Face detection (MTCNN) and the one face-crop function shared by training and inference.

Detection runs on a downscaled copy of each frame: the longest side is at
most ``max_side``, and the image is shrunk further until a face of
``min_size`` pixels (the smallest we keep) measures ``DETECT_FACE_PX`` (24 px),
just above the 20 px MTCNN can find.  MTCNN's pyramid cost grows with the
pixel count, and anything it could find only in a larger image is a face we
would drop as too small to judge.  For 720p and the default ``min_size`` of
40 px that is a 768x432 detection image.  Boxes and
keypoints are mapped back to full-resolution pixels, so crops are cut from
the full-resolution frame and keep every pixel of detail the classifier
needs.

Note: mtcnn 1.0's ``min_face_size`` argument shrinks the pyramid without
adjusting its depth and then misses large faces, so we leave it at its
default and filter small faces ourselves after detection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: Size (px) the smallest kept face (``min_size``) may shrink to in the detection image.
#: MTCNN's pyramid finds faces down to 20 px; a larger detection image only adds
#: pyramid levels for faces smaller than ``min_size``, which are dropped anyway.
DETECT_FACE_PX = 24
#: Frames per MTCNN call: batching is ~30% faster than one call per frame, and
#: the cap bounds the memory of the image pyramid.
DETECT_BATCH = 8
#: ``detect_video`` detects every this-many-th sampled frame (and the last) on the whole
#: frame at the full detection scale: the probes...
PROBE_EVERY = 8
#: ...and, in the frames between, looks only in a window around each face a neighbouring
#: probe found: a square this many face sizes across...
FOLLOW_WINDOW = 3.0
#: ...resized to this many pixels: the probed face measures 64 px, one of half its size
#: 32 (at 48 px, low-quality DFDC faces were found a third less often than whole).
WINDOW_PX = 192
#: A frame detected whole between probes is shrunk until a face of this fraction of the
#: smallest probed one measures ``DETECT_FACE_PX``.
FOLLOW_FRACTION = 0.5
#: A frame whose thumbnail differs from a probe's by more than this (mean absolute grey
#: difference, 0-255) is another shot: the probe's faces say nothing about it.
SHOT_CHANGE = 30.0


@dataclass(frozen=True)
class Face:
    """One detected face, in full-frame pixel coordinates (plain Python numbers)."""

    box: tuple[int, int, int, int]  # x, y, w, h
    confidence: float
    keypoints: dict[str, tuple[int, int]]

    def to_dict(self) -> dict:
        return {
            "box": list(self.box),
            "confidence": round(self.confidence, 4),
            "keypoints": {k: list(v) for k, v in self.keypoints.items()},
        }


class FaceDetector:
    """MTCNN wrapper: batched, downscaled detection with confidence and size filters.

    The MTCNN networks are loaded on first use (they import TensorFlow), and
    one detector can be shared between threads: calls are serialised.
    """

    def __init__(self, min_confidence: float = 0.9, min_size: int = 40, max_side: int = 960):
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.min_confidence = float(min_confidence)
        self.min_size = int(min_size)
        self.max_side = int(max_side)
        self._mtcnn = None
        self._lock = threading.Lock()

    def _model(self):
        if self._mtcnn is None:
            from mtcnn import MTCNN

            self._mtcnn = MTCNN(device="CPU:0")
        return self._mtcnn

    def detection_scale(self, height: int, width: int) -> float:
        """Factor applied to a frame before MTCNN: caps the long side at ``max_side``
        and shrinks the smallest face worth keeping to ``DETECT_FACE_PX`` pixels."""
        return min(1.0, self.max_side / max(height, width), DETECT_FACE_PX / max(1, self.min_size))

    def detect_video(self, frames_rgb: list[np.ndarray]) -> list[list[Face]]:
        """Detect faces in a video's sampled frames, most of them in small windows.

        The probes (every ``PROBE_EVERY``-th frame and the last) are detected
        whole, at the full detection scale.  A frame between two probes of the
        same shot is searched only around the faces those probes found: a
        window ``FOLLOW_WINDOW`` face sizes across, shrunk so a face half the
        probed size is still found -- a few thousand pixels instead of a
        whole frame, since a person filmed in one shot stays near where the
        probes saw them.  A frame is detected whole instead (at the smaller
        scale its probes' faces allow) when no probe of its shot found a face,
        when its windows come back empty (the person moved away), or when it
        belongs to another shot than both its probes (``SHOT_CHANGE``): a cut,
        where new faces can appear anywhere.  docs/detection.md measures what
        this costs and finds.

        It runs exactly what the scanner runs while a video decodes
        (``follow_video``, one probe at a time), not a faster batch of every
        probe: MTCNN's arithmetic on a batch differs from one frame's by a
        pixel, the windows follow that pixel, and a training cache or an
        evaluation would then score other crops than a scan does.
        """
        follower = self.follow_video()
        for frame in frames_rgb:
            follower.add(frame)
        return follower.finish()

    def follow_video(self) -> VideoFaces:
        """A ``VideoFaces`` that detects a video's frames as they are added (see
        ``detect_video``): each stretch between two probes is done once its
        closing probe arrives, so detection keeps pace with decoding."""
        return VideoFaces(self)

    def _detect_in_windows(
        self, frames_rgb: list[np.ndarray], windows: dict[int, list[Face]]
    ) -> dict[int, list[Face]]:
        """Faces found in the windows around ``windows[i]``'s faces in frame i, mapped back
        to frame pixels; a face seen by two overlapping windows is kept once."""
        from model.tracks import iou

        margin = FOLLOW_WINDOW - 1.0
        jobs = [(i, face) for i, faces in windows.items() for face in faces]
        crops = [crop_face(frames_rgb[i], face, WINDOW_PX, margin=margin) for i, face in jobs]
        found: dict[int, list[Face]] = {i: [] for i in windows}
        with self._lock:
            for start in range(0, len(crops), 4 * DETECT_BATCH):
                part = crops[start : start + 4 * DETECT_BATCH]
                rows = self._model().detect_faces(part, output_type="numpy", box_format="xyxy")
                for row in np.asarray(rows).reshape(-1, 16):
                    i, face = jobs[start + int(row[0])]
                    left, top, side = crop_box(face, margin)
                    shape = frames_rgb[i].shape
                    mapped = self._to_face(row, WINDOW_PX / side, shape, offset=(left, top))
                    if mapped is not None and all(iou(mapped.box, f.box) < 0.5 for f in found[i]):
                        found[i].append(mapped)
        for faces in found.values():
            faces.sort(key=lambda f: -f.confidence)
        return found

    def detect(
        self, frames_rgb: list[np.ndarray], batch: int = DETECT_BATCH, scale: float | None = None
    ) -> list[list[Face]]:
        """Detect faces in each RGB frame; one list of ``Face`` per frame, in input order.

        ``batch`` frames go to MTCNN per call: larger batches pay off for many
        small images (face crops), the default bounds a 720p pyramid's memory.
        ``scale`` overrides ``detection_scale`` (``detect_video`` passes a smaller one).
        """
        results: list[list[Face]] = [[] for _ in frames_rgb]
        # Group frames by shape: MTCNN pads a batch to its largest image, so
        # mixing sizes wastes work (a video's frames all share one size anyway).
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames_rgb):
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frame {i} must be H x W x 3 RGB, got shape {frame.shape}")
            groups.setdefault(frame.shape, []).append(i)
        with self._lock:
            for shape, members in groups.items():
                factor = self.detection_scale(shape[0], shape[1]) if scale is None else scale
                for start in range(0, len(members), batch):
                    batch_ids = members[start : start + batch]
                    small = [_downscale(frames_rgb[i], factor) for i in batch_ids]
                    rows = self._model().detect_faces(small, output_type="numpy", box_format="xyxy")
                    for row in np.asarray(rows).reshape(-1, 16):
                        face = self._to_face(row, factor, shape)
                        if face is not None:
                            results[batch_ids[int(row[0])]].append(face)
        for faces in results:
            faces.sort(key=lambda f: -f.confidence)
        return results

    def _to_face(
        self,
        row: np.ndarray,
        scale: float,
        shape: tuple[int, ...],
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> Face | None:
        """Turn one MTCNN output row into a full-resolution ``Face``, or None if filtered.

        ``scale`` is the detection image's size over the frame's; ``offset`` the frame
        position of the detection image's top-left corner (a window's)."""
        confidence = float(row[5])
        if confidence < self.min_confidence:
            return None
        height, width = shape[0], shape[1]
        dx, dy = offset
        x1, x2 = (float(v) / scale + dx for v in (row[1], row[3]))
        y1, y2 = (float(v) / scale + dy for v in (row[2], row[4]))
        x1, y1 = max(0.0, x1), max(0.0, y1)
        x2, y2 = min(float(width), x2), min(float(height), y2)
        w, h = round(x2 - x1), round(y2 - y1)
        if min(w, h) < self.min_size:
            return None
        # Columns 6-10 hold the x of the five keypoints, 11-15 their y.
        keypoints = {
            name: (round(float(row[6 + k]) / scale + dx), round(float(row[11 + k]) / scale + dy))
            for k, name in enumerate(KEYPOINT_NAMES)
        }
        return Face(box=(round(x1), round(y1), w, h), confidence=confidence, keypoints=keypoints)


class VideoFaces:
    """Detect faces frame by frame as a video decodes: ``add`` each frame, then ``finish``.

    Positions that are multiples of ``PROBE_EVERY`` are probes, detected whole
    when added; the frames since the previous probe are then searched in
    windows around the two probes' faces (``FaceDetector.detect_video``).
    ``finish`` makes the last frame a probe too and returns one list of faces
    per frame.
    """

    def __init__(self, detector: FaceDetector):
        self.detector = detector
        self.frames: list[np.ndarray] = []
        self.results: list[list[Face] | None] = []
        self._thumbs: list[np.ndarray] = []
        self._probe: int | None = None  # position of the latest probe

    def add(self, frame: np.ndarray) -> None:
        """Add the next frame."""
        position = len(self.frames)
        self.frames.append(frame)
        self._thumbs.append(_thumbnail(frame))
        self.results.append(None)
        if position % PROBE_EVERY == 0:
            self._close_stretch(position)

    def finish(self) -> list[list[Face]]:
        """The faces of every frame added (the last one detected whole)."""
        last = len(self.frames) - 1
        if last >= 0 and self._probe != last:
            self._close_stretch(last)
        return [faces or [] for faces in self.results]

    def _close_stretch(self, probe: int) -> None:
        """Detect ``probe`` whole, then the frames between the previous probe and it."""
        self.results[probe] = self.detector.detect([self.frames[probe]])[0]
        previous, self._probe = self._probe, probe
        if previous is None:
            return
        ends = (previous, probe)
        sizes = [min(f.box[2], f.box[3]) for p in ends for f in self.results[p] or []]
        windows: dict[int, list[Face]] = {}  # frame -> the probed faces to look around
        whole: list[int] = []  # frames detected whole
        for i in range(previous + 1, probe):
            same_shot = [
                p
                for p in sorted(ends, key=lambda p: abs(p - i))
                if self.frames[p].shape == self.frames[i].shape
                and np.abs(self._thumbs[i] - self._thumbs[p]).mean() <= SHOT_CHANGE
            ]
            around = _window_faces(i, [(p, self.results[p] or []) for p in same_shot])
            height, width = self.frames[i].shape[:2]
            whole_px = height * width * self._whole_scale(self.frames[i].shape, sizes) ** 2
            if around and len(around) * WINDOW_PX**2 < whole_px:
                windows[i] = around
            else:  # no face to look around, or a frame so small that whole costs less
                whole.append(i)
        for i, faces in self.detector._detect_in_windows(self.frames, windows).items():
            if faces:
                self.results[i] = faces
            else:
                whole.append(i)
        for shape in {self.frames[i].shape for i in whole}:
            same = sorted(i for i in whole if self.frames[i].shape == shape)
            scale = self._whole_scale(shape, sizes)
            detected = self.detector.detect([self.frames[i] for i in same], scale=scale)
            for i, faces in zip(same, detected, strict=True):
                self.results[i] = faces

    def _whole_scale(self, shape: tuple[int, ...], sizes: list[int]) -> float:
        """The scale a frame between probes is detected whole at: a face of
        ``FOLLOW_FRACTION`` of the smallest probed one (``sizes``) measures
        ``DETECT_FACE_PX``; the full detection scale when the probes saw none."""
        scale = self.detector.detection_scale(*shape[:2])
        if sizes:
            smallest = max(self.detector.min_size, FOLLOW_FRACTION * min(sizes))
            scale = min(scale, DETECT_FACE_PX / smallest)
        return scale


def _window_faces(position: int, probes: list[tuple[int, list[Face]]]) -> list[Face]:
    """Where to look for faces in the frame at ``position``: one box per person seen by
    its probes (position, faces), nearer probe first.

    A face of the nearer probe that the other probe also saw -- about as large
    (within 1.5x) and within 3 face sizes -- is looked for where the two
    sightings interpolate to: a person walking across the picture stays in
    one window.  Any other face gets a window where its probe saw it, unless
    it overlaps one already chosen.
    """
    from model.tracks import centre_gap, iou

    if not probes:
        return []
    (near, near_faces), *rest = probes
    far, far_faces = rest[0] if rest else (near, [])
    chosen: list[Face] = []
    paired: set[int] = set()
    for face in near_faces:
        size = max(face.box[2:])
        matches = [
            (centre_gap(face.box, other.box), j)
            for j, other in enumerate(far_faces)
            if j not in paired
            and 1 / 1.5 <= max(other.box[2:]) / size <= 1.5
            and centre_gap(face.box, other.box) <= 3 * size
        ]
        if matches:
            _gap, j = min(matches)
            paired.add(j)
            t = (position - near) / (far - near)
            box = tuple(
                round(a + t * (b - a)) for a, b in zip(face.box, far_faces[j].box, strict=True)
            )
            face = Face(box=box, confidence=face.confidence, keypoints={})
        chosen.append(face)
    for j, face in enumerate(far_faces):
        if j not in paired and all(iou(face.box, g.box) < 0.5 for g in chosen):
            chosen.append(face)
    return chosen


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """A 32x18 grey copy of a frame, to tell shots apart."""
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


def _downscale(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return frame
    import cv2

    h, w = frame.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def crop_box(face: Face, margin: float = 0.3) -> tuple[int, int, int]:
    """The square crop region of a face: (left, top, side) in frame pixels, may leave the frame.

    The side is the longer box side enlarged by ``margin`` (0.3 -> 1.3x, i.e.
    15% each side), centred on the box centre: MTCNN boxes stop at the
    eyebrows and chin, and the blending boundary of a swapped face lies just
    outside them, so the margin keeps the evidence in the crop.
    """
    x, y, w, h = face.box
    side = max(1, round(max(w, h) * (1.0 + margin)))
    cx, cy = x + w / 2.0, y + h / 2.0
    return round(cx - side / 2.0), round(cy - side / 2.0), side


def crop_face(frame_rgb: np.ndarray, face: Face, size: int, margin: float = 0.3) -> np.ndarray:
    """THE single crop function used by inference AND training.

    Square crop around the face with a ``margin`` (see ``crop_box``), resized
    to ``size`` x ``size``, uint8 RGB.  The only masking: where the square
    reaches past the frame edge, the missing pixels are black (zero) rather
    than replicated or reflected, because mirrored borders invent face-like
    texture the classifier could mistake for blending artefacts; the face
    stays centred and at the same scale as in every other crop.  The face
    itself and its surroundings are never masked: the boundary between the
    face and its context is where face swaps leave their traces.
    """
    import cv2

    left, top, side = crop_box(face, margin)
    height, width = frame_rgb.shape[:2]
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + side), min(height, top + side)
    if x1 > x0 and y1 > y0:
        canvas[y0 - top : y1 - top, x0 - left : x1 - left] = frame_rgb[y0:y1, x0:x1, :3]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interpolation)
