"""The face-crop cache: decode and detect once, train and evaluate many times.

MTCNN on 32 frames of a 720p video costs seconds; a training run reads each
video every epoch of every candidate.  So frames are sampled, faces detected
and cropped once — a video's faces found by the scanner's own detection
(:meth:`model.faces.FaceDetector.detect_video`: probe frames whole, the rest in
windows around the faces the probes found) and cut with :func:`model.faces.crop_face`,
the very function the scanner uses — and stored under::

    <root>/<config-hash>/config.json          what produced this cache
    <root>/<config-hash>/items/<id>.npy       uint8 crops [n, S, S, 3] (memory-mapped later)
    <root>/<config-hash>/items/<id>.json      per-crop frame index, box, confidence, keypoints

``config-hash`` covers everything that changes a crop (size, margin, frames
per video, detector thresholds), and ``<id>`` covers the sample's key, path,
size and mtime, so a re-run reuses every item whose source did not change and
an interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.training.datasets import Sample

log = logging.getLogger(__name__)

CACHE_VERSION = 1
#: How a video entry's faces were found, recorded in its metadata.  Entries without it were
#: detected on whole frames, whose boxes differ from the scanner's windowed ones by a few
#: pixels and move video scores by up to 0.04 (xval AUC 0.793 against the scanner's 0.772
#: for the 2026-12-07.2 default): they are cut again on first use.  "scanner" entries
#: detected the probe frames in one MTCNN batch where the scanner streams them one at a
#: time, a pixel apart on 2 of 79 xval videos; "scanner-streamed" runs the scanner's loop.
VIDEO_DETECTION = "scanner-streamed"
#: Black border added around a tight face crop before detection, as a fraction
#: of its side: MTCNN needs to see the face's outline to find it.
TIGHT_PAD = 0.25
#: Tight crops detected per MTCNN call when a cache is built: 32 small canvases
#: per call cost ~17 ms each on 2 cores, one per call ~400 ms.
TIGHT_BATCH = 32

#: Five-point template (ArcFace's, for a 112 px face box) placed in a crop made
#: by ``crop_face`` with margin m: the face box is the central 1/(1+m) of the
#: crop.  Used as keypoints for review-queue crops, which carry none.
_TEMPLATE_112 = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class CacheConfig:
    """Everything that changes the crops; hashed into the cache directory name."""

    crop_size: int
    margin: float = 0.3
    frames_per_video: int = 32
    min_confidence: float = 0.95
    min_face_size: int = 64
    max_side: int = 960

    def digest(self) -> str:
        payload = json.dumps({"v": CACHE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedFace:
    """One cached crop's metadata (the pixels stay in the item's ``.npy``)."""

    frame_index: int
    box: tuple[int, int, int, int] | None
    confidence: float | None
    keypoints: np.ndarray  # (5, 2) in crop pixels
    largest: bool  # the largest face of its frame
    #: Where the source image lies in the crop (x0, y0, x1, y1), when the crop
    #: reaches past it (re-framed tight crops); the rest is black padding.
    valid: tuple[int, int, int, int] | None = None
    #: The face's track is a still picture in the scene (``model.liveness``), judged on
    #: the frames when the entry was made: the crops alone cannot tell.
    static: bool = False


@dataclass
class CacheItem:
    """A sample's cache entry: status, crops file and per-crop metadata."""

    sample: Sample
    status: str  # "ok" | "no_face" | "decode_error"
    crops_path: Path
    faces: list[CachedFace]
    error: str | None = None
    sampled_frames: list[int] | None = None  # decoded frame indices, faces or not

    def crops(self) -> np.ndarray:
        """The crops, memory-mapped read-only (cheap random access for training)."""
        return np.load(self.crops_path, mmap_mode="r")


def template_keypoints(size: int, margin: float) -> np.ndarray:
    """Approximate keypoints of a face centred in a ``crop_face`` crop of ``size`` px."""
    box = size / (1.0 + margin)
    offset = (size - box) / 2
    return (_TEMPLATE_112 / 112.0 * box + offset).astype(np.float32)


def keypoints_in_crop(face, size: int, margin: float) -> np.ndarray:
    """Map a ``Face``'s full-frame keypoints into the pixels of its crop."""
    from model.faces import KEYPOINT_NAMES, crop_box

    left, top, side = crop_box(face, margin)
    scale = size / side
    return np.array(
        [
            ((face.keypoints[n][0] - left) * scale, (face.keypoints[n][1] - top) * scale)
            for n in KEYPOINT_NAMES
        ],
        dtype=np.float32,
    )


class CropCache:
    """Extract (once) and read face crops of samples under ``root``."""

    def __init__(self, root: str | Path, config: CacheConfig):
        self.config = config
        self.dir = Path(root) / config.digest()
        self.items_dir = self.dir / "items"
        self.items_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.dir / "config.json"
        if not config_file.exists():
            config_file.write_text(
                json.dumps({"version": CACHE_VERSION, **asdict(config)}, indent=2) + "\n"
            )
        self._detector = None
        # Tight crops detected in a batch ahead of extraction: key -> (canvas info, faces).
        self._tight_detections: dict[str, tuple] = {}

    # ------------------------------------------------------------------ identity

    def item_id(self, sample: Sample) -> str:
        try:
            stat = sample.path.stat()
            stamp = f"{stat.st_size}:{int(stat.st_mtime)}"
        except OSError:
            stamp = "missing"
        raw = f"{sample.key}|{sample.path.resolve()}|{stamp}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def _paths(self, sample: Sample) -> tuple[Path, Path]:
        ident = self.item_id(sample)
        return self.items_dir / f"{ident}.npy", self.items_dir / f"{ident}.json"

    # ------------------------------------------------------------------ extraction

    @property
    def detector(self):
        if self._detector is None:
            from model.faces import FaceDetector

            self._detector = FaceDetector(
                min_confidence=self.config.min_confidence,
                min_size=self.config.min_face_size,
                max_side=self.config.max_side,
            )
        return self._detector

    def get(self, sample: Sample) -> CacheItem:
        """The sample's cache item, extracting it first if absent or cut another way than
        the scanner's (``_outdated``)."""
        crops_path, meta_path = self._paths(sample)
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        if meta is None or _outdated(sample, meta):
            meta = self._extract(sample, crops_path, meta_path)
        return self._read(sample, crops_path, meta)

    def build(
        self,
        samples: Sequence[Sample],
        progress: Callable[[Sequence[Sample]], Sequence[Sample]] | None = None,
    ) -> list[CacheItem]:
        """Cache items for ``samples`` in order; ``progress`` wraps the loop (e.g. tqdm)."""
        iterable = progress(samples) if progress else samples
        return [self.get(sample) for sample in self._prefetch_tight_faces(iterable)]

    def _prefetch_tight_faces(self, samples):
        """Yield ``samples`` in order, detecting tight face crops in batches ahead of use.

        One MTCNN call per 224 px crop is dominated by per-call overhead
        (~0.4 s); a batch of ``TIGHT_BATCH`` canvases costs little more than one.
        """
        pending: list[Sample] = []
        for sample in samples:
            pending.append(sample)
            if len(pending) >= TIGHT_BATCH:
                self._detect_tight_faces(pending)
                yield from pending
                pending = []
        self._detect_tight_faces(pending)
        yield from pending

    def _detect_tight_faces(self, samples: Sequence[Sample]) -> None:
        todo = [s for s in samples if s.media == "face" and not self._paths(s)[1].exists()]
        canvases = []
        for sample in todo:
            try:
                canvases.append(_tight_canvas(sample.path))
            except Exception:  # unreadable: _extract records it as a decode error
                canvases.append(None)
        ok = [c for c in canvases if c is not None]
        found = iter(self.detector.detect([c[0] for c in ok], batch=TIGHT_BATCH) if ok else [])
        for sample, canvas in zip(todo, canvases, strict=True):
            if canvas is not None:
                self._tight_detections[sample.key] = (canvas, next(found))

    def _extract(self, sample: Sample, crops_path: Path, meta_path: Path) -> dict:
        """Cut the sample's crops, write them and their metadata; returns the metadata."""
        from model.frames import VideoDecodeError

        size, margin = self.config.crop_size, self.config.margin
        crops: list[np.ndarray] = []
        faces: list[dict] = []
        sampled: list[int] = []
        status, error = "ok", None
        try:
            if sample.media == "crop":
                crops, faces = self._extract_crop(sample)
                sampled = [0]
            elif sample.media == "face":
                crops, faces = self._extract_tight_face(sample)
                sampled = [0]
            else:
                crops, faces, sampled = self._extract_frames(sample, size, margin)
            if not crops:
                status = "no_face"
        except VideoDecodeError as exc:
            status, error = "decode_error", str(exc)
        except Exception as exc:  # OpenCV on exotic input: record, never abort a long run
            status, error = "decode_error", f"{sample.path}: {type(exc).__name__}: {exc}"
        array = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
        _atomic_save_npy(crops_path, array)
        meta = {
            "key": sample.key,
            "status": status,
            "error": error,
            "sampled_frames": sampled,
            "faces": faces,
        }
        if sample.media == "video":
            meta["detection"] = VIDEO_DETECTION
        _atomic_write(meta_path, json.dumps(meta))
        return meta

    def _extract_crop(self, sample: Sample) -> tuple[list[np.ndarray], list[dict]]:
        import cv2

        from model.frames import read_image

        size, margin = self.config.crop_size, self.config.margin
        image = read_image(sample.path)
        if image.shape[:2] != (size, size):
            interp = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR
            image = cv2.resize(image, (size, size), interpolation=interp)
        keypoints = template_keypoints(size, margin).tolist()
        face = {"frame": 0, "box": None, "confidence": None, "keypoints": keypoints}
        return [image], [{**face, "largest": True}]

    def _extract_tight_face(self, sample: Sample) -> tuple[list[np.ndarray], list[dict]]:
        """Re-frame a tight face crop the way the scanner frames a face in a full frame.

        Tight crops (DFDC's are ~0.9x an MTCNN box) leave no room for the
        scanner's margin, and MTCNN misses faces that touch the image border.
        So the crop is placed on a black canvas ``TIGHT_PAD`` wider on each
        side, the face is detected there with the cache's detector, and
        :func:`model.faces.crop_face` cuts it with the scanner's margin: the
        face has the same position and scale as in ``find-bot scan``, and
        only the margin the source image never had is black (its rectangle
        is kept as ``valid`` so augmentation can vary that fill).  A crop
        whose face the detector rejects is taken whole as the face box — the
        dataset says it is a face — rather than silently dropped.
        """
        from model.faces import Face, crop_box, crop_face

        size, margin = self.config.crop_size, self.config.margin
        prefetched = self._tight_detections.pop(sample.key, None)
        if prefetched is None:
            canvas_info = _tight_canvas(sample.path)
            prefetched = (canvas_info, self.detector.detect([canvas_info[0]])[0])
        (canvas, pad, height, width), found = prefetched
        detected = [
            f
            for f in found
            if pad <= f.box[0] + f.box[2] / 2 <= pad + width
            and pad <= f.box[1] + f.box[3] / 2 <= pad + height
        ]
        if detected:
            face = max(detected, key=lambda f: f.box[2] * f.box[3])
            confidence: float | None = float(face.confidence)
        else:
            face = Face(box=(pad, pad, width, height), confidence=0.0, keypoints={})
            confidence = None
        left, top, side = crop_box(face, margin)
        scale = size / side
        valid = [
            max(0, round((pad - left) * scale)),
            max(0, round((pad - top) * scale)),
            min(size, round((pad + width - left) * scale)),
            min(size, round((pad + height - top) * scale)),
        ]
        keypoints = (
            keypoints_in_crop(face, size, margin)
            if face.keypoints
            else template_keypoints(size, margin)
        )
        record = {
            "frame": 0,
            "box": [int(v) for v in face.box],
            "confidence": confidence,
            "keypoints": keypoints.tolist(),
            "largest": True,
            "valid": valid,
        }
        return [crop_face(canvas, face, size, margin)], [record]

    def _extract_frames(
        self, sample: Sample, size: int, margin: float
    ) -> tuple[list[np.ndarray], list[dict], list[int]]:
        from model.faces import crop_face
        from model.frames import read_image, sample_frames

        if sample.media == "image":
            frames, indices = [read_image(sample.path)], [0]
        else:
            sampled = sample_frames(sample.path, self.config.frames_per_video)
            frames, indices = sampled.frames, sampled.indices
        crops: list[np.ndarray] = []
        faces: list[dict] = []
        video = sample.media == "video"
        # A video's faces as the scanner finds them, so an evaluation scores the crops a
        # scan would; a still image is detected whole, as the scanner does.
        detections = self.detector.detect_video(frames) if video else self.detector.detect(frames)
        static = _static_faces(frames, detections) if video else set()
        for frame, index, detected in zip(frames, indices, detections, strict=True):
            if not detected:
                continue
            largest = max(detected, key=lambda f: f.box[2] * f.box[3])
            for face in detected:
                crops.append(crop_face(frame, face, size, margin))
                record = {
                    "frame": int(index),
                    "box": [int(v) for v in face.box],
                    "confidence": float(face.confidence),
                    "keypoints": keypoints_in_crop(face, size, margin).tolist(),
                    "largest": face is largest,
                }
                if sample.media == "video":
                    record["static"] = id(face) in static
                faces.append(record)
        return crops, faces, [int(i) for i in indices]

    # ------------------------------------------------------------------ reading

    def _read(self, sample: Sample, crops_path: Path, meta: dict) -> CacheItem:
        faces = [
            CachedFace(
                frame_index=int(f["frame"]),
                box=tuple(f["box"]) if f["box"] is not None else None,
                confidence=f["confidence"],
                keypoints=np.asarray(f["keypoints"], dtype=np.float32),
                largest=bool(f["largest"]),
                valid=tuple(f["valid"]) if f.get("valid") else None,
                static=bool(f.get("static", False)),
            )
            for f in meta["faces"]
        ]
        return CacheItem(
            sample=sample,
            status=meta["status"],
            crops_path=crops_path,
            faces=faces,
            error=meta.get("error"),
            sampled_frames=meta.get("sampled_frames"),
        )


def _static_faces(frames: list[np.ndarray], detections: list[list]) -> set[int]:
    """``id()`` of every face whose track is a still picture, as the scanner judges it.

    The tracks and their motion are the scanner's (``model.scoring``: tracks joined
    where the gap rule split them, ``model.liveness.track_motion`` on the frames), so an
    evaluation can rank live faces before pictures without the frames it no longer has.
    """
    from model.liveness import is_static, track_motion
    from model.tracks import build_tracks, merge_split_tracks

    static: set[int] = set()
    for track in merge_split_tracks(build_tracks(detections)):
        if is_static(track_motion(frames, track.frame_positions, track.faces)):
            static.update(id(face) for face in track.faces)
    return static


def _outdated(sample: Sample, meta: dict) -> bool:
    """A video's entry made before its faces were found the scanner's way
    (:data:`VIDEO_DETECTION`) or marked live or static: extracted again."""
    if sample.media != "video":
        return False
    return meta.get("detection") != VIDEO_DETECTION or any(
        "static" not in f for f in meta.get("faces", [])
    )


def _tight_canvas(path: Path) -> tuple[np.ndarray, int, int, int]:
    """A tight face crop on a black canvas (see ``_extract_tight_face``): canvas, pad, h, w."""
    import cv2

    from model.frames import read_image

    image = read_image(path)
    height, width = image.shape[:2]
    pad = round(TIGHT_PAD * max(height, width))
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    return canvas, pad, height, width


def _temporary(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process uses: several processes
    (the Makefile's parallel candidates, an evaluation beside a training) fill one cache,
    and a shared ``.tmp`` name let one rename the other's file away mid-write."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _atomic_write(path: Path, text: str) -> None:
    tmp = _temporary(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = _temporary(path)
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)
