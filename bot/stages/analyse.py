"""The analyse stage: score a downloaded video and record the evidence for reviewers.

The handler runs the detection engine *outside* any database transaction
(minutes of CPU must not hold a lock), then returns an ``apply`` that the
queue runs inside the completing transaction: it adds an :class:`Analysis`
row (never overwriting an older one, so analyses by different model bundles
never mix), writes the JPEG face crops under ``media_dir/crops/<youtube_id>/``
and moves the video to ``flagged`` (score >= threshold) or ``analysed``.
Before the model runs, the video is hashed (vPDQ, :mod:`bot.banks.vpdq`) and looked
up in the banks (:mod:`bot.banks`): a video found in the bank of confirmed
fakes is flagged at once, with the matched video as evidence, and never costs
a model run; one found in the bank of dismissed false alarms is analysed, and
a new flag is suppressed unless it scores higher than the dismissed video did.  The
hashes are stored with the result, so a reviewer's decision can bank them.
The webhook fires only after that transaction has committed (the worker loop
calls :meth:`Analyser.send_notifications`), so an alert is never sent for a
result that was rolled back or thrown away.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bot import banks
from bot.atomicfile import write_atomically
from bot.banks import vpdq
from bot.db import session_factory, session_scope
from bot.errors import FindError
from bot.hostfault import HOST_FAULT
from bot.logs import log_event, quiet_native_logging
from bot.queue import Apply, Job, StageFailure
from bot.settings import Settings
from bot.store import (
    KNOWN_FAKE_VERDICT,
    Analysis,
    BankEntry,
    BankMatch,
    Video,
    VideoFingerprint,
    VideoState,
)
from bot.youtube.ids import require_media_key

log = logging.getLogger("find.analyse")

#: Frames listed in ``Analysis.scores["top_frames"]``, best first.
TOP_FRAMES = 10


class AnalyserUnavailable(FindError):
    """The model bundle cannot be loaded: the analyse worker must not start."""


class Analyser:
    """The analyse stage handler: ``Analyser(settings)(job) -> apply``.

    The bundle is loaded and its models built once, in the constructor, so a
    missing or corrupt bundle stops the worker at start-up with one line
    instead of failing every video.  Each worker thread gets its own scorer
    (face detector state is not shared between threads); the models are shared.
    """

    def __init__(self, settings: Settings, *, scorer_factory: Any = None) -> None:
        quiet_native_logging()  # before the bundle imports TensorFlow
        from model.versions import bundles_root, pointer_stamp

        self.settings = settings
        self._bundles_root = bundles_root(settings.data_dir)
        self._pointer_stamp = pointer_stamp(self._bundles_root)
        self._swap_lock = threading.Lock()
        self.bundle = self._load_bundle()
        self._scorer_factory = scorer_factory
        self.matcher = banks.Matcher(
            session_factory(settings),
            distance=settings.match_distance,
            share=settings.match_share,
            quality=settings.match_quality,
        )
        self._local = threading.local()

    def _load_bundle(self) -> Any:
        """The active bundle (an adaptation of FIND_MODEL_BUNDLE, or itself), weights loaded."""
        from model.bundle import BundleError, load_bundle
        from model.versions import active_bundle

        configured = self.settings.model_bundle
        if configured is None or not Path(configured).expanduser().exists():
            raise AnalyserUnavailable(
                f"no model bundle at {configured}: set FIND_MODEL_BUNDLE to a bundle directory "
                "(see `find-bot model info`), or run with FIND_ANALYSE_WORKERS=0"
            )
        try:
            path = active_bundle(self.settings.data_dir, configured)
            bundle = load_bundle(path)
            bundle.ensemble()  # build and load weights now: fail fast, not per video
        except BundleError as exc:
            raise AnalyserUnavailable(f"model bundle {configured} is not usable: {exc}") from None
        return bundle

    @property
    def threshold(self) -> float:
        """FIND_SCORE_THRESHOLD when set, else the active bundle's threshold."""
        if self.settings.score_threshold is not None:
            return float(self.settings.score_threshold)
        return self.bundle.threshold

    def _threshold_of(self, bundle: Any) -> float:
        if self.settings.score_threshold is not None:
            return float(self.settings.score_threshold)
        return bundle.threshold

    def refresh_bundle(self) -> bool:
        """Between videos: load the newly active bundle after `model adapt`/`rollback`.

        Polls the pointer file's mtime (one stat per video).  A bundle that fails to
        load is logged and the current one kept: a bad promotion never stops analysis.
        """
        from model.versions import pointer_stamp

        stamp = pointer_stamp(self._bundles_root)
        if stamp == self._pointer_stamp:
            return False
        with self._swap_lock:
            if stamp == self._pointer_stamp:
                return False
            self._pointer_stamp = stamp
            old = f"{self.bundle.id} {self.bundle.version}"
            try:
                bundle = self._load_bundle()
            except AnalyserUnavailable as exc:
                log_event(
                    log, "analyse.bundle_reload_failed", logging.ERROR, error=str(exc), keeping=old
                )
                return False
            if (bundle.id, bundle.version) == (self.bundle.id, self.bundle.version):
                return False
            self.bundle = bundle
        log_event(
            log,
            "analyse.bundle_reloaded",
            previous=old,
            bundle=bundle.id,
            bundle_version=bundle.version,
        )
        return True

    @property
    def bundle_id(self) -> str:
        return self.bundle.id

    @property
    def bundle_version(self) -> str:
        return self.bundle.version

    def scorer(self, bundle: Any = None) -> Any:
        """This thread's scorer for ``bundle`` (default: the active one), rebuilt on a swap."""
        bundle = bundle or self.bundle
        scorer = getattr(self._local, "scorer", None)
        if scorer is None or getattr(self._local, "bundle", None) is not bundle:
            self._local.bundle = bundle
            if self._scorer_factory is not None:
                scorer = self._scorer_factory(bundle)
            else:
                from model.scoring import VideoScorer

                scorer = VideoScorer(
                    bundle,
                    frames=self.settings.frames_per_video,
                    threshold=self._threshold_of(bundle),
                    reviewer_evidence=True,
                )
            self._local.scorer = scorer
        return scorer

    def warn_if_bundle_changed(self) -> None:
        """Log when earlier analyses came from another bundle: kept apart, never mixed."""
        try:
            with session_scope(self.settings) as session:
                rows = session.execute(
                    select(Analysis.bundle_id, Analysis.bundle_version, func.count()).group_by(
                        Analysis.bundle_id, Analysis.bundle_version
                    )
                ).all()
        except Exception:  # informative only
            return
        others = [
            f"{bid} {ver} ({n})"
            for bid, ver, n in rows
            if (bid, ver) != (self.bundle_id, self.bundle_version)
        ]
        if others:
            log_event(
                log,
                "analyse.bundle_changed",
                logging.WARNING,
                bundle=self.bundle_id,
                bundle_version=self.bundle_version,
                earlier=", ".join(others),
                note="earlier analyses keep their bundle id; re-queue videos to re-score them",
            )

    # ----------------------------------------------------------- alerts
    def _pending(self) -> list[tuple[SimpleNamespace, SimpleNamespace | None, Any]]:
        if not hasattr(self._local, "pending"):
            self._local.pending = []
        return self._local.pending

    def _alert_after_commit(
        self,
        session: Session,
        video: Video,
        *,
        analysis: Analysis | None = None,
        match: BankMatch | None = None,
    ) -> None:
        """Queue the webhook alert for a flag, to be sent only once its transaction commits.

        Snapshots, not rows: the alert is sent after the session is gone. Never for a
        result that is rolled back; nothing at all when no webhook is configured.
        """
        if not self.settings.webhook_url:
            return
        pending = (
            _snapshot(video, _VIDEO_FIELDS),
            None if analysis is None else _snapshot(analysis, _ANALYSIS_FIELDS),
            None if match is None else _snapshot(match, _MATCH_FIELDS),
        )
        event.listen(session, "after_commit", lambda _s: self._pending().append(pending), once=True)

    def send_notifications(self) -> int:
        """Send this thread's webhook alerts for committed flags (the worker loop calls it).

        Kept out of the transaction on purpose: the webhook retries for up to a
        minute and must not hold a database connection or lease meanwhile.
        """
        pending, self._local.pending = self._pending(), []
        for video, analysis, match in pending:
            from bot.review.webhook import notify_flagged

            notify_flagged(self.settings, video, analysis, match=match)  # never raises
        return len(pending)

    # ---------------------------------------------------------- handler
    def __call__(self, job: Job) -> Apply:
        if not self.settings.media_dir.is_dir():  # unmounted: the host's fault, not the video's
            raise StageFailure(
                f"analyse of {job.youtube_id} postponed ({HOST_FAULT}): FIND_MEDIA_DIR="
                f"{self.settings.media_dir} is missing (unmounted?): mount it, the analysis is "
                "retried later",
                permanent=False,
                kind=HOST_FAULT,
                counts_as_attempt=False,
            )
        path = self.settings.media_file(job.media_path)
        if path is None or not path.is_file():
            raise StageFailure(
                f"{job.youtube_id}: downloaded file {path} is missing",
                permanent=False,
                kind="media_missing",
            )
        with open(path, "rb"):  # unreadable (EACCES) is a host fault, not an undecodable video
            pass
        self.refresh_bundle()  # a promoted or rolled-back bundle takes over between videos
        bundle = self.bundle  # this video is scored, and recorded, by one bundle
        # Re-upload matching first: a known fake needs no model run.
        video_hash = vpdq.hash_video(path)
        matches = self.matcher.lookup(video_hash.features, exclude_youtube_id=job.youtube_id)
        known_fake = next((m for m in matches if m.bank == banks.FAKE), None)
        if known_fake is not None:
            return self._flag_known_fake(job, video_hash, known_fake)
        result = self.scorer(bundle).score_path(path)
        if result.verdict == "error":
            raise StageFailure(
                result.error or f"{path}: cannot decode", permanent=True, kind="decode"
            )
        crops = encode_crops(result)
        faces = [
            {
                "track": c["track"],
                "frame": c["frame"],
                "t": c["t"],
                "hash": c["pdq"],
                "quality": c["pdq_quality"],
            }
            for c in crops
        ]
        scores = scores_record(result)
        timings = {
            "hash": round(video_hash.seconds, 4),
            "decode": round(float(result.timings.get("decode_s", 0.0)), 4),
            "detect": round(float(result.timings.get("detect_s", 0.0)), 4),
            "classify": round(float(result.timings.get("classify_s", 0.0)), 4),
            "evidence": round(float(result.timings.get("evidence_s", 0.0)), 4),
            "total": round(float(result.timings.get("total_s", 0.0)) + video_hash.seconds, 4),
        }
        threshold = float(
            result.threshold if result.threshold is not None else self._threshold_of(bundle)
        )
        # Faces too small to be evidence are scored (ranked) but never flag a video.
        by_score = (
            result.score is not None
            and result.score >= threshold
            and not getattr(result, "small_only", False)
        )
        benign = next((m for m in matches if m.bank == banks.BENIGN), None)
        face_check = None
        suppressed = False
        if benign is not None:
            face_check = self.matcher.faces_match(benign.entry_id, banks.face_features(faces))
            # A face swap made from a dismissed real video shares its frames but not its
            # score: only a score no higher than the dismissed one's (plus a margin) is the
            # same false alarm again.  Imported entries have no score: frames decide.
            before = self.matcher.entry_score(benign.entry_id)
            same_alarm = (
                before is None
                or result.score is None
                or result.score <= before + banks.SUPPRESS_SCORE_MARGIN
            )
            suppressed = by_score and same_alarm
            log_event(
                log,
                "analyse.bank_match",
                video=job.youtube_id,
                bank=benign.bank,
                matched=benign.content_id,
                share=round(benign.query_share, 3),
                faces=None if face_check is None else f"{face_check[0]}/{face_check[1]}",
                score_before=before,
                suppressed=suppressed,
            )
        # A flag may be confirmed or dismissed and banked: keep (nearly) every frame's hash,
        # so that a clip of it cut at any frame is found later (see bot.banks.vpdq.hash_video).
        bank_hash = vpdq.hash_video(path, dense=True) if by_score and not suppressed else None
        if bank_hash is not None:
            timings["bank_hash"] = round(bank_hash.seconds, 4)
        log_event(
            log,
            "analyse.scored",
            video=job.youtube_id,
            verdict=result.verdict,
            score=None if result.score is None else round(float(result.score), 4),
            threshold=threshold,
            faces=result.faces,
            tracks=len(result.tracks),
            partial=result.partial,
            frames=f"{result.frames_decoded}/{result.frames_decoded + result.frames_failed}",
            seconds=timings["total"],
            bundle=bundle.id,
            bundle_version=bundle.version,
        )
        settings = self.settings
        fingerprint = banks.fingerprint_record(video_hash)

        def apply(session: Session, video: Video) -> None:
            flagged = (by_score and not suppressed) or (
                settings.declared_synthetic == "review" and bool(video.declared_synthetic)
            )
            session.add(
                VideoFingerprint(
                    video_id=video.id,
                    frames=fingerprint,
                    bank_frames=banks.fingerprint_record(bank_hash) if bank_hash else None,
                    faces=faces,
                    duration_s=round(video_hash.duration_s, 3),
                    seconds=round(video_hash.seconds, 4),
                )
            )
            if benign is not None:
                session.add(
                    _match_row(
                        session,
                        video,
                        benign,
                        "suppressed" if suppressed else "recorded",
                        face_check,
                    )
                )
            analysis = Analysis(
                video=video,
                bundle_id=str(result.bundle_id or bundle.id),
                bundle_version=str(result.bundle_version or bundle.version),
                frames_requested=int(result.frames_requested),
                frames_decoded=int(result.frames_decoded),
                partial=bool(result.partial),
                faces=int(result.faces),
                tracks=len(result.tracks),
                scores=scores,
                video_score=None if result.score is None else float(result.score),
                threshold=threshold,
                verdict=result.verdict,
                timings=timings,
                crops=[],
                error=result.error,
                worker=job.worker,
            )
            session.add(analysis)
            session.flush()  # the crop file names carry the analysis id
            analysis.crops = write_crops(settings, video.youtube_id, analysis.id, crops)
            video.score = analysis.video_score
            video.verdict = result.verdict
            video.state = (VideoState.FLAGGED if flagged else VideoState.ANALYSED).value
            if flagged:
                self._alert_after_commit(session, video, analysis=analysis)

        return apply

    def _flag_known_fake(self, job: Job, video_hash: vpdq.VideoHash, match: banks.Match) -> Apply:
        """Flag a re-upload of a confirmed fake without running the model."""
        log_event(
            log,
            "analyse.bank_match",
            video=job.youtube_id,
            bank=match.bank,
            matched=match.content_id,
            share=round(match.query_share, 3),
            bank_share=round(match.bank_share, 3),
            flagged=True,
            seconds=round(video_hash.seconds, 3),
        )
        fingerprint = banks.fingerprint_record(video_hash)

        def apply(session: Session, video: Video) -> None:
            session.add(
                VideoFingerprint(
                    video_id=video.id,
                    frames=fingerprint,
                    faces=[],
                    duration_s=round(video_hash.duration_s, 3),
                    seconds=round(video_hash.seconds, 4),
                )
            )
            row = _match_row(session, video, match, "flagged", None)
            session.add(row)
            video.state = VideoState.FLAGGED.value
            video.verdict = KNOWN_FAKE_VERDICT
            video.score = None
            self._alert_after_commit(session, video, match=row)

        return apply


def _match_row(
    session: Session,
    video: Video,
    match: banks.Match,
    outcome: str,
    face_check: tuple[int, int] | None,
) -> BankMatch:
    # The entry may have been removed since the lookup: keep the evidence, drop the link.
    entry_id = match.entry_id if session.get(BankEntry, match.entry_id) is not None else None
    return BankMatch(
        video_id=video.id,
        entry_id=entry_id,
        bank=match.bank,
        content_id=match.content_id,
        matched_youtube_id=match.youtube_id,
        matched_title=(match.title or "")[:500] or None,
        query_share=round(match.query_share, 4),
        bank_share=round(match.bank_share, 4),
        frames_matched=match.comparison.query_matched,
        frames_compared=match.comparison.query_total,
        faces_matched=None if face_check is None else face_check[0],
        faces_compared=None if face_check is None else face_check[1],
        outcome=outcome,
    )


def encode_crops(result: Any) -> list[dict[str, Any]]:
    """JPEG-encode the evidence (outside the transaction): the reviewer crop (at least
    256 px, or the model's crop when no reviewer views were built), its frame and the face's
    source size when the crop is an upscale, plus the crop's PDQ hash for the bank."""
    frames: dict[tuple[int, int], dict[str, Any]] = {}
    for track in result.tracks:
        for frame in track.get("top_frames", []):
            frames.setdefault((int(track["track_id"]), int(frame["frame_index"])), frame)
    views = {(v.track_id, v.frame_index): v for v in getattr(result, "evidence_views", [])}
    out = []
    for track_id, frame_index, crop in result.evidence_crops:
        view = views.get((int(track_id), int(frame_index)))
        image = view.crop if view is not None else crop
        data = _jpeg(image)
        if data is None:
            continue
        meta = frames.get((int(track_id), int(frame_index)), {})
        digest, quality = vpdq.pdq(image)
        out.append(
            {
                "track": int(track_id),
                "frame": int(frame_index),
                "t": round(float(meta.get("timestamp_s", 0.0)), 3),
                "score": round(float(meta.get("score", 0.0)), 6),
                "jpeg": data,
                "upscaled_from": view.upscaled_from if view is not None else None,
                "context_jpeg": _jpeg(view.context) if view is not None else None,
                "pdq": digest,
                "pdq_quality": quality,
            }
        )
    return out


def _jpeg(image_rgb: Any) -> bytes | None:
    import cv2

    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    return data.tobytes() if ok else None


def write_crops(
    settings: Settings, youtube_id: str, analysis_id: int, crops: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Write ``crops/<youtube_id>/<analysis_id>-t<track>-f<frame>.jpg`` (and ``-frame``
    beside it); return the records of docs/contracts.md."""
    folder = settings.media_dir / "crops" / require_media_key(youtube_id)
    folder.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes | None) -> str | None:
        if data is None:
            return None
        # Readers never see a half-written image; a full disk leaves no partial file.
        write_atomically(folder / name, data)
        return f"crops/{youtube_id}/{name}"

    records = []
    for crop in crops:
        stem = f"{analysis_id}-t{crop['track']}-f{crop['frame']}"
        records.append(
            {
                "path": put(f"{stem}.jpg", crop["jpeg"]),
                "track": crop["track"],
                "frame": crop["frame"],
                "t": crop["t"],
                "score": crop["score"],
                "heatmap": None,  # no longer made (issue 22); older analyses may have one
                "upscaled_from": crop.get("upscaled_from"),
                "context": put(f"{stem}-frame.jpg", crop.get("context_jpeg")),
            }
        )
    return records


def scores_record(result: Any) -> dict[str, Any]:
    """``Analysis.scores`` in the shape of docs/contracts.md, from the scorer's track summaries.

    Each track keeps every face in time order (the reviewer's score-over-time
    plot), each member's score (named in ``members``: what it learnt), its median face
    size and whether it is too small to count; ``decisive`` names the track that gave
    the video's score; ``top_frames`` lists the strongest faces of the video, best first.
    Analyses recorded before issue 31 lack those keys: readers treat them as unknown.
    """
    tracks = []
    every_frame = []
    for track in result.tracks:
        track_id = int(track["track_id"])
        frames = [
            {
                "frame": int(f["frame_index"]),
                "t": round(float(f["timestamp_s"]), 3),
                "score": round(float(f["score"]), 6),
                "box": [int(v) for v in f["box"]],
            }
            for f in track["frames"]
        ]
        frames.sort(key=lambda f: f["t"])
        tracks.append(
            {
                "track": track_id,
                "score": round(float(track["score"]), 6),
                "faces": int(track["faces"]),
                # a picture in the scene (model.liveness): shown, not counted in the verdict
                "static": bool(track.get("static", False)),
                # no face at least min_face_px large: shown, never counted (model.scoring)
                "small": bool(track.get("small", False)),
                "face_px": track.get("face_px"),
                "members": [round(float(m), 6) for m in track.get("members") or []],
                "frames": frames,
            }
        )
        every_frame += [
            {
                "track": track_id,
                "frame": int(f["frame_index"]),
                "t": round(float(f["timestamp_s"]), 3),
                "score": round(float(f["score"]), 6),
                "static": bool(track.get("static", False)),
                "small": bool(track.get("small", False)),
            }
            for f in track.get("top_frames") or []
        ]
    # faces that may decide first: live before static, large enough before small
    every_frame.sort(key=lambda f: (f["static"], f["small"], -f["score"]))
    return {
        "tracks": tracks,
        "top_frames": every_frame[:TOP_FRAMES],
        "members": [str(name) for name in getattr(result, "members", None) or []],
        "min_face_px": getattr(result, "min_face_px", None),
        "decisive": getattr(result, "decisive_track", None),
        "small_only": bool(getattr(result, "small_only", False)),
    }


def _snapshot(obj: Any, names: tuple[str, ...]) -> SimpleNamespace:
    """Plain copy of a row's columns, safe to read after its session has closed."""
    return SimpleNamespace(**{name: getattr(obj, name, None) for name in names})


_VIDEO_FIELDS = (
    "id",
    "declared_synthetic",
    "youtube_id",
    "title",
    "channel_youtube_id",
    "channel_title",
    "score",
    "verdict",
    "state",
)
_ANALYSIS_FIELDS = (
    "id",
    "bundle_id",
    "bundle_version",
    "video_score",
    "threshold",
    "faces",
    "verdict",
    "crops",
)
_MATCH_FIELDS = (
    "bank",
    "content_id",
    "matched_youtube_id",
    "matched_title",
    "query_share",
    "bank_share",
    "outcome",
)
