"""Score a video or image: sample frames, detect faces, track people, classify, aggregate.

Aggregation rule (see docs/detection.md):

* face score: calibrated ensemble probability that the crop is manipulated;
* track score: mean of the ``top_k`` highest face scores of the track (all of
  them when the track is shorter).  Face swaps are often imperfect on only
  part of a video (pose, occlusion, motion blur), so a plain mean over the
  whole track dilutes the evidence, while a single maximum is at the mercy of
  one noisy crop; the top-k mean sits in between;
* small faces: a face whose crop square measures fewer source pixels than the
  model's input (``min_face_px``: the bundle's input size unless its manifest
  sets it, see ``ModelBundle.min_face_px``) reaches the model enlarged, and the
  enlargement's blur is what the detectors read as a seam (docs/detection.md, "Faces too small to be
  evidence").  Such faces never decide on their own: a track's score is the
  top-k mean of its faces at least that large, and a track with none is
  ``small``: shown and scored, never counted;
* video score: maximum over the *live* tracks that are not small, because one
  manipulated person is enough to flag the video, whoever else is on screen.
  A static track (a
  picture in the scene: a photo on the wall, a poster; see ``model.liveness``)
  never outranks a live one: it stays in the evidence, marked ``static``, but
  the verdict ignores it while any live face is there.  A video whose only
  faces are static is scored on them like an image and says so
  (``static_only``).  The track that gives the score is ``decisive_track``;
* verdict: ``fake`` when the video score >= threshold, else ``real``;
  ``no_face`` when no face passed the detector's filters; when every face that
  could decide is too small (``small_only``) the video keeps the score of its
  strongest track (so low-resolution uploads still rank) but its verdict is
  ``real``: such faces are never enough to flag it; ``error`` when the file
  could not be decoded;
* partial: when the file is truncated (its container promises more than it
  holds, ``model.frames``), however many frames still decoded, or fewer than
  ``MIN_DECODED_FRACTION`` of the frames the sampler tried to read decoded, the
  verdict is kept but marked ``partial``: it was reached on a fraction of the video.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from model.bundle import ModelBundle
from model.evidence import EvidenceView, build_views
from model.faces import Face, FaceDetector, crop_box, crop_face
from model.frames import FrameSample, VideoDecodeError, is_image_path, read_image, sample_frames
from model.liveness import Motion, is_static, track_motion
from model.tracks import Track, build_tracks, merge_split_tracks

#: Faces per track averaged into the track score.
TOP_K = 5
#: Evidence crops kept per track (its highest-scoring faces).
EVIDENCE_PER_TRACK = 3

VERDICTS = ("fake", "real", "no_face", "error")
#: Below this fraction of the sampled frames decoded, a result is ``partial``.
MIN_DECODED_FRACTION = 0.5


@dataclass
class VideoResult:
    """The verdict on one file, with the evidence a reviewer needs."""

    path: str
    verdict: str  # one of VERDICTS
    score: float | None  # video score in [0, 1]; None for no_face / error
    threshold: float | None
    kind: str = "video"  # "video" | "image"
    frames_requested: int = 0
    frames_decoded: int = 0
    frames_failed: int = 0  # frames the sampler tried to read but could not decode
    #: The file ends before its container says (a cut download): partial, whatever decoded.
    truncated: bool = False
    fps: float = 0.0
    total_frames: int = 0
    faces: int = 0
    tracks: list[dict] = field(default_factory=list)
    #: Every face found is static (a still picture): scored like an image.
    static_only: bool = False
    #: Faces were found, but every one that could decide was smaller than ``min_face_px``:
    #: the score is the strongest track's, the verdict ``real`` (too small to be evidence).
    small_only: bool = False
    #: Crop-square side (source px) a face needs to count toward the verdict.
    min_face_px: int = 0
    #: The track whose score is the video's (None: no track decided).
    decisive_track: int | None = None
    #: What each ensemble member learnt, in the order of every track's ``members`` scores.
    members: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    bundle_id: str | None = None
    bundle_version: str | None = None
    #: (track_id, frame_index, uint8 RGB crop) of the faces that drove each track's score.
    evidence_crops: list[tuple[int, int, np.ndarray]] = field(default_factory=list, repr=False)
    #: The same faces for reviewers (sharp crop, frame, heatmap): with ``reviewer_evidence``.
    evidence_views: list[EvidenceView] = field(default_factory=list, repr=False)

    @property
    def partial(self) -> bool:
        """True when the verdict rests on part of the video only: the file is truncated
        (22 of 32 frames decoded from a cut file still miss its end), or too few of the
        frames that should have decoded did."""
        tried = self.frames_decoded + self.frames_failed
        return self.truncated or (tried > 0 and self.frames_decoded < MIN_DECODED_FRACTION * tried)

    @property
    def ok(self) -> bool:
        """True when the file was scored (any verdict but ``error``)."""
        return self.verdict != "error"

    def to_dict(self) -> dict:
        """JSON-safe summary (everything but the crop pixels)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "verdict": self.verdict,
            "score": None if self.score is None else round(float(self.score), 6),
            "threshold": None if self.threshold is None else float(self.threshold),
            "frames_requested": int(self.frames_requested),
            "frames_decoded": int(self.frames_decoded),
            "frames_failed": int(self.frames_failed),
            "partial": self.partial,
            "truncated": bool(self.truncated),
            "fps": round(float(self.fps), 3),
            "total_frames": int(self.total_frames),
            "faces": int(self.faces),
            "tracks": self.tracks,
            "static_only": self.static_only,
            "small_only": self.small_only,
            "min_face_px": int(self.min_face_px),
            "decisive_track": self.decisive_track,
            "members": list(self.members),
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "error": self.error,
            "bundle_id": self.bundle_id,
            "bundle_version": self.bundle_version,
            "evidence": [
                {"track_id": int(t), "frame_index": int(f)} for t, f, _ in self.evidence_crops
            ],
        }


def top_k_mean(scores: list[float] | np.ndarray, k: int = TOP_K) -> float:
    """Mean of the ``k`` largest values (all of them if fewer)."""
    values = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if values.size == 0:
        raise ValueError("no scores to aggregate")
    return float(values[: max(1, k)].mean())


def counted_faces(sides: np.ndarray, min_face_px: int) -> tuple[np.ndarray, bool]:
    """The positions of a track's faces that make its score, and whether the track is small.

    Faces whose crop square (``sides``, source pixels) is under ``min_face_px`` reach
    the model enlarged and never count while the track has larger ones; a track with
    none counts all of them and is ``small`` (it decides only when every track is).
    The scanner and ``find-bot evaluate`` both score tracks through this one rule.
    """
    large = np.asarray(sides) >= min_face_px
    if large.any():
        return np.flatnonzero(large), False
    return np.arange(len(large)), True


@dataclass(frozen=True)
class _TrackScoring:
    """How a track is scored: its top-k faces, the crop margin, the smallest face that counts."""

    top_k: int
    margin: float
    min_face_px: int


def _track_summary(
    track: Track,
    scores: np.ndarray,
    member_scores: np.ndarray,
    sample: FrameSample,
    rule: _TrackScoring,
    motion: Motion | None,
) -> tuple[dict, list[int], float]:
    """The track's dict for ``VideoResult.tracks``, the positions of its top faces and its
    unrounded score.

    The score is the top-k mean over the faces at least ``min_face_px`` large (over all
    of them, the track marked ``small``, when none is); ``members`` are each member's
    probabilities (``member_scores``: members x faces) averaged over those same faces.
    """
    sides = np.array([crop_box(face, rule.margin)[2] for face in track.faces])
    pool, small = counted_faces(sides, rule.min_face_px)
    order = pool[np.argsort(-scores[pool], kind="stable")]
    top = [int(i) for i in order[: max(1, rule.top_k)]]
    score = top_k_mean(scores[pool], rule.top_k)

    def face_entry(i: int) -> dict:
        position = track.frame_positions[i]
        face: Face = track.faces[i]
        return {
            "frame_index": int(sample.indices[position]),
            "timestamp_s": float(sample.timestamps_s[position]),
            "box": [int(v) for v in face.box],
            "confidence": round(float(face.confidence), 4),
            "score": round(float(scores[i]), 6),
        }

    # Every face in time order (the reviewer's score-over-time plot) and the
    # strongest ones (what the score is made of).
    frames = [face_entry(i) for i in range(len(track))]
    top_frames = [frames[i] for i in top]
    summary = {
        "track_id": int(track.track_id),
        "score": round(score, 6),
        "faces": len(track),
        # the median crop-square side in the source frame; "small": no face large enough
        # to count (see the module docstring)
        "face_px": int(np.median(sides)),
        "small": small,
        "small_faces": int((sides < rule.min_face_px).sum()),
        "members": [round(float(member[top].mean()), 6) for member in member_scores],
        "mean_score": round(float(scores.mean()), 6),
        "motion": None if motion is None else round(motion.face, 4),
        "mouth_motion": None if motion is None else round(motion.mouth, 4),
        "static": is_static(motion),
        "first_frame": int(sample.indices[track.frame_positions[0]]),
        "last_frame": int(sample.indices[track.frame_positions[-1]]),
        "top_frames": top_frames,
        "frames": frames,
    }
    return summary, top, score


def evidence_rank(summary: dict) -> tuple[bool, bool, float]:
    """Evidence order: live before static, large enough before small, strongest first."""
    return (bool(summary["static"]), bool(summary["small"]), -float(summary["score"]))


def decisive_index(summaries: list[dict]) -> int | None:
    """The index of the track whose score is the video's, or None when none may decide.

    The strongest live track that is not small; when every face is static (pictures
    only), the strongest picture that is not small, scored like an image; else none:
    faces too small to be evidence never decide the verdict on their own.
    """
    live = any(not s["static"] for s in summaries)
    eligible = [
        n for n, s in enumerate(summaries) if not s["small"] and (not live or not s["static"])
    ]
    return min(eligible, key=lambda n: evidence_rank(summaries[n])) if eligible else None


def _total_seconds(timings: dict[str, float]) -> float:
    """A file's wall time: every stage, with only the part of the decoding it waited for
    (decoding overlaps the detection of the frames already decoded)."""
    decode = timings.get("decode_wait_s", timings.get("decode_s", 0.0))
    stages = ("detect_s", "classify_s", "evidence_s")
    return decode + sum(timings.get(stage, 0.0) for stage in stages)


@dataclass(frozen=True)
class _Loaded:
    """One file decoded (or the one-line reason it could not be), and how long that took."""

    path: Path
    kind: str
    sample: FrameSample | None
    error: str | None
    seconds: float  # the decoding's own wall time
    waited: float | None = None  # how long scoring waited for it (detection overlapped)
    faces: list[list[Face]] | None = None  # detected while it decoded, one list per frame
    detect_s: float = 0.0  # the detection time that took


class VideoScorer:
    """Turns a file path into a ``VideoResult`` with one bundle and one face detector.

    Reuse one scorer for many files: the detector and the ensemble are built
    once (the first call pays for TensorFlow graph tracing).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        detector: FaceDetector | None = None,
        frames: int = 32,
        threshold: float | None = None,
        top_k: int = TOP_K,
        reviewer_evidence: bool = False,
        min_face_px: int | None = None,
    ):
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.bundle = bundle
        self.detector = detector or FaceDetector()
        self.frames = int(frames)
        self.threshold = float(bundle.threshold if threshold is None else threshold)
        self.top_k = int(top_k)
        #: Faces whose crop square is smaller (source px) never decide a verdict on their
        #: own; default: the bundle's (its input size unless its manifest says otherwise).
        self.min_face_px = int(bundle.min_face_px if min_face_px is None else min_face_px)
        #: Also build reviewer views of the evidence faces (the analyse stage does;
        #: ``scan`` does not need them).
        self.reviewer_evidence = reviewer_evidence

    def _result(self, path: Path, **kwargs) -> VideoResult:
        return VideoResult(
            path=str(path),
            threshold=self.threshold,
            bundle_id=self.bundle.id,
            bundle_version=self.bundle.version,
            min_face_px=self.min_face_px,
            members=self.bundle.member_names,
            **kwargs,
        )

    def _load(
        self, path: Path, on_frame: Callable[[np.ndarray], None] | None = None
    ) -> tuple[str, FrameSample]:
        if is_image_path(path):
            image = read_image(path)
            return "image", FrameSample([image], [0], [0.0], 1, 1, 0.0, 1)
        return "video", sample_frames(path, self.frames, on_frame=on_frame)

    def score_path(self, path: str | Path) -> VideoResult:
        """Score one file.  Bad input never raises: it yields verdict ``error``.

        The video decodes in a thread while the frames already decoded go
        through face detection, so the wait for decoding is mostly hidden
        (docs/detection.md, "Performance").  Bundle problems (``BundleError``
        while building the ensemble) do raise: they concern every file, not
        this one.
        """
        return self._score_loaded(self._load_following(Path(path)))

    def _load_timed(
        self, path: Path, on_frame: Callable[[np.ndarray], None] | None = None
    ) -> _Loaded:
        """Decode one file (never raises for bad input: the error is kept for its result)."""
        start = time.perf_counter()
        kind = "image" if is_image_path(path) else "video"
        try:
            kind, sample = self._load(path, on_frame)
            return _Loaded(path, kind, sample, None, time.perf_counter() - start)
        except VideoDecodeError as exc:
            error = str(exc)
        except Exception as exc:  # OpenCV raising on exotic input is still bad input
            error = f"{path}: cannot decode ({type(exc).__name__}: {exc})".splitlines()[0]
        return _Loaded(path, kind, None, error, time.perf_counter() - start)

    def _load_following(self, path: Path) -> _Loaded:
        """Decode a video in a thread while this one detects its faces, frame by frame.

        The decoder announces each frame (``sample_frames(on_frame=)``) and
        ``FaceDetector.follow_video`` detects each stretch between two probes
        as soon as its closing probe has decoded, so detection keeps pace with
        decoding instead of waiting for it.  The detections are used only if
        the finished sample holds exactly the frames followed (a reader that
        gave up half-way announced frames it then dropped).
        """
        import queue
        from concurrent.futures import ThreadPoolExecutor

        if is_image_path(path):
            return self._load_timed(path)
        arrived: queue.SimpleQueue = queue.SimpleQueue()
        finished = object()

        def decode() -> _Loaded:
            try:
                return self._load_timed(path, on_frame=arrived.put)
            finally:
                arrived.put(finished)

        follower = self.detector.follow_video()
        waited = detecting = 0.0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="find-decode") as pool:
            future = pool.submit(decode)
            while True:
                start = time.perf_counter()
                frame = arrived.get()
                waited += time.perf_counter() - start
                if frame is finished:
                    break
                if follower is None:
                    continue
                start = time.perf_counter()
                try:
                    follower.add(frame)
                except Exception:  # odd frames (2 px high) can make MTCNN raise:
                    follower = None  # score_sample detects again and reports it
                detecting += time.perf_counter() - start
            loaded = future.result()
        frames = loaded.sample.frames if loaded.sample is not None else None
        if (
            frames is None
            or follower is None
            or len(frames) != len(follower.frames)
            or any(a is not b for a, b in zip(frames, follower.frames, strict=True))
        ):
            return replace(loaded, waited=waited)
        start = time.perf_counter()
        try:
            faces = follower.finish()
        except Exception:
            return replace(loaded, waited=waited)
        detecting += time.perf_counter() - start
        return replace(loaded, waited=waited, faces=faces, detect_s=detecting)

    def _score_loaded(self, loaded: _Loaded) -> VideoResult:
        timings = {"decode_s": loaded.seconds}
        if loaded.waited is not None:
            timings["decode_wait_s"] = loaded.waited
        if loaded.sample is None:
            timings["total_s"] = _total_seconds(timings)
            requested = 1 if loaded.kind == "image" else self.frames
            return self._result(
                loaded.path,
                verdict="error",
                score=None,
                error=loaded.error,
                timings=timings,
                kind=loaded.kind,
                frames_requested=requested,
            )
        return self.score_sample(
            loaded.path, loaded.kind, loaded.sample, timings, loaded.faces, loaded.detect_s
        )

    def score_sample(
        self,
        path: str | Path,
        kind: str,
        sample: FrameSample,
        timings: dict[str, float] | None = None,
        faces: list[list[Face]] | None = None,
        detect_s: float = 0.0,
    ) -> VideoResult:
        """Score already decoded frames (used by ``score_path`` and by the benchmark);
        ``faces``: the frames' detections when already made, in ``detect_s`` seconds."""
        timings = dict(timings or {})
        base = {
            "kind": kind,
            "frames_requested": sample.requested,
            "frames_decoded": sample.decoded,
            "frames_failed": len(sample.failed_indices),
            "truncated": sample.truncated,
            "fps": sample.fps,
            "total_frames": sample.total_frames,
        }
        t0 = time.perf_counter() - detect_s
        try:
            if faces is not None:
                detections = faces
            elif kind == "video":
                detections = self.detector.detect_video(sample.frames)
            else:
                detections = self.detector.detect(sample.frames)
        except Exception as exc:  # odd frames (a 2-pixel-high video) can make MTCNN raise
            timings["detect_s"] = time.perf_counter() - t0
            timings["total_s"] = _total_seconds(timings)
            error = f"{path}: face detection failed ({type(exc).__name__}: {exc})"
            return self._result(
                Path(path),
                verdict="error",
                score=None,
                error=error.splitlines()[0],
                timings=timings,
                **base,
            )
        timings["detect_s"] = time.perf_counter() - t0
        n_faces = sum(len(faces) for faces in detections)
        if n_faces == 0:
            timings["classify_s"] = 0.0
            timings["total_s"] = _total_seconds(timings)
            return self._result(
                Path(path), verdict="no_face", score=None, faces=0, timings=timings, **base
            )

        t0 = time.perf_counter()
        tracks = merge_split_tracks(build_tracks(detections))
        motions = [
            track_motion(sample.frames, track.frame_positions, track.faces) for track in tracks
        ]
        size = self.bundle.input_size
        margin = self.bundle.crop_margin
        crops = np.stack(
            [
                crop_face(sample.frames[position], face, size, margin)
                for track in tracks
                for position, face in zip(track.frame_positions, track.faces, strict=True)
            ]
        )
        scores, member_scores = self.bundle.ensemble().predict_members(crops)
        timings["classify_s"] = time.perf_counter() - t0

        rule = _TrackScoring(self.top_k, margin, self.min_face_px)
        summaries, tops, track_scores = [], [], []
        evidence = []
        evidence_faces = []
        offsets = np.cumsum([0] + [len(t) for t in tracks])
        for n, track in enumerate(tracks):
            span = slice(offsets[n], offsets[n + 1])
            summary, top, score = _track_summary(
                track, scores[span], member_scores[:, span], sample, rule, motions[n]
            )
            summaries.append(summary)
            tops.append(top)
            track_scores.append(score)
        # Live faces large enough to count first, strongest first: the evidence a reviewer
        # sees first is the person who decided the score.
        ranked = sorted(range(len(tracks)), key=lambda n: evidence_rank(summaries[n]))
        for n in ranked:
            track, top = tracks[n], tops[n]
            for i in top[:EVIDENCE_PER_TRACK]:
                position = track.frame_positions[i]
                frame_index = int(sample.indices[position])
                # copy: a view would keep every crop of the video alive with the result
                evidence.append((track.track_id, frame_index, crops[offsets[n] + i].copy()))
                evidence_faces.append(
                    (track.track_id, frame_index, sample.frames[position], track.faces[i])
                )
        views: list[EvidenceView] = []
        if self.reviewer_evidence:
            t0 = time.perf_counter()
            views = build_views(evidence_faces, size, margin)
            timings["evidence_s"] = time.perf_counter() - t0
        static_only = all(s["static"] for s in summaries)
        decisive = decisive_index(summaries)
        timings["total_s"] = _total_seconds(timings)
        if decisive is None:  # every face that could decide is too small to be evidence
            # Scored, so videos can still be ranked (a low-resolution upload is not "no
            # face"), but never flagged on faces this small: verdict real, small_only.
            strongest = ranked[0]
            video_score = track_scores[strongest]
            verdict, decisive_track = "real", None
        else:
            video_score = track_scores[decisive]  # unrounded: the verdict matches the threshold
            if not math.isfinite(video_score):
                raise FloatingPointError(f"{path}: the model produced a non-finite score")
            verdict = "fake" if video_score >= self.threshold else "real"
            decisive_track = int(summaries[decisive]["track_id"])
        return self._result(
            Path(path),
            verdict=verdict,
            score=video_score,
            faces=n_faces,
            tracks=[summaries[n] for n in ranked],
            static_only=static_only and kind == "video",
            small_only=decisive is None,
            decisive_track=decisive_track,
            timings=timings,
            evidence_crops=evidence,
            evidence_views=views,
            **base,
        )
