"""The review queue: the one place the CLI and the web page query, decide and export.

Both front ends call these functions and nothing else touches review state, so
the rules live in one spot:

* **queries** (:func:`list_queue`, :func:`get_video`) return plain dataclasses,
  detached from any session, so a template or a JSON encoder can use them freely.
* **decisions** (:func:`decide`) are compare-and-set: the video's state only
  changes if it is still the state the reviewer saw.  Two reviewers deciding at
  once therefore cannot silently overwrite each other; the loser gets a
  :class:`DecisionConflict` naming who decided first.  Every accepted decision
  appends a :class:`~bot.store.ReviewDecision` row (never updated or deleted),
  so the history is complete even when a decision is superseded.
* **exports** (:func:`export_report`, :func:`export_dataset`) write reports
  (CSV/JSONL) and the labelled crop dataset the training command reads (see
  ``docs/contracts.md``, "Review export").
* **evidence** (:func:`crop_path`, :func:`media_path`, :func:`render_score_plot`)
  resolves face crops, heatmaps, frames and the kept video file strictly inside
  the media directory and draws the score-over-time plot.
* **policy**: every decision names a policy reason from ``FIND_POLICY_REASONS``;
  overturning a confirmed or dismissed video is a *reversal* (an appeal) and
  needs a written reason; each decision moves the video's hashes into the bank
  its new state calls for (:func:`bot.banks.record_decision`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import FindError
from bot.logs import log_event
from bot.settings import DEFAULT_POLICY_REASONS, Settings
from bot.store import (
    KNOWN_FAKE_VERDICT,
    REVIEW_STATES,
    Analysis,
    BankMatch,
    ReviewDecision,
    Video,
    VideoState,
    utcnow,
)

log = logging.getLogger("find.review")

#: Decisions a reviewer can make, each named after the state it moves the video to.
DECISIONS = (VideoState.CONFIRMED.value, VideoState.DISMISSED.value)
#: States a decision may start from (a video needs an analysis to be judged).
DECIDABLE_STATES = (
    VideoState.FLAGGED.value,
    VideoState.ANALYSED.value,
    VideoState.CONFIRMED.value,
    VideoState.DISMISSED.value,
)
#: Export label of each final decision
#: (contract with ``model.training.datasets.load_review_export``).
LABELS = {VideoState.CONFIRMED.value: "fake", VideoState.DISMISSED.value: "real"}
MAX_NOTE_CHARS = 4000
MAX_PAGE_SIZE = 500
#: The other final decision: what a reversal (appeal) turns a decision into.
OPPOSITE = {
    VideoState.CONFIRMED.value: VideoState.DISMISSED.value,
    VideoState.DISMISSED.value: VideoState.CONFIRMED.value,
}
#: Video files the page may play, by suffix.
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
}


class ReviewError(FindError):
    """A review request that cannot be carried out (unknown video, bad input)."""


class VideoNotFound(ReviewError):
    """No video with that YouTube id is in the database."""


class DecisionConflict(ReviewError):
    """The video changed state since the reviewer looked at it (someone decided first)."""

    exit_code = 3

    def __init__(
        self, message: str, *, current_state: str, by: str | None = None, summary: str = ""
    ) -> None:
        super().__init__(message)
        self.current_state = current_state
        #: Who made the decision that won, when one did.
        self.by = by
        #: The conflict in a few words ("already confirmed by alice at ..."), for the web page.
        self.summary = summary or message


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class QueueFilter:
    """What a reviewer asked to see; the same object backs the CLI flags and the web form."""

    state: str = VideoState.FLAGGED.value
    channel: str | None = None
    since: datetime | None = None
    min_score: float | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.state not in REVIEW_STATES:
            raise ReviewError(
                f"state {self.state!r} is not reviewable: use one of {', '.join(REVIEW_STATES)}"
            )
        if self.since is not None and self.since.tzinfo is None:
            raise ReviewError("--since needs a time zone (dates are read as UTC)")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise ReviewError(f"page size {self.limit} is outside 1..{MAX_PAGE_SIZE}")
        if self.offset < 0:
            raise ReviewError("offset cannot be negative")


@dataclass(frozen=True)
class QueueItem:
    """One row of the queue."""

    youtube_id: str
    url: str
    state: str
    title: str | None
    channel_id: str | None
    channel_title: str | None
    score: float | None
    faces: int | None
    published_at: datetime | None
    discovered_at: datetime
    analysis_id: int | None
    #: The newest analysis decoded too few frames to be a full verdict.
    partial: bool = False
    #: The uploader declared synthetic media (None: YouTube did not say).
    declared_synthetic: bool | None = None
    #: Flagged as a re-upload of a confirmed fake (no model score).
    known_fake: bool = False
    #: The latest decision: who, when, and the policy reason.
    decided_by: str | None = None
    decided_at: datetime | None = None
    policy_reason: str | None = None

    @property
    def age_since(self) -> datetime:
        """The video's age counts from publication (discovery when YouTube gave no date)."""
        return self.published_at or self.discovered_at

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        data = asdict(self)
        for key in ("published_at", "discovered_at", "decided_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["age_s"] = int(((now or utcnow()) - self.age_since).total_seconds())
        return data


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int
    filter: QueueFilter

    @property
    def has_next(self) -> bool:
        return self.filter.offset + len(self.items) < self.total


@dataclass(frozen=True)
class CropInfo:
    index: int
    path: str
    track: int | None
    frame: int | None
    t: float | None
    score: float | None
    #: Grad-CAM overlay and the whole frame with the face box (relative paths), if saved.
    heatmap: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class AnalysisInfo:
    id: int
    bundle_id: str
    bundle_version: str
    frames_requested: int
    frames_decoded: int
    #: The verdict rests on too few decoded frames (a truncated file): show it as partial.
    partial: bool
    faces: int
    tracks: int
    video_score: float | None
    threshold: float
    verdict: str
    error: str | None
    worker: str | None
    created_at: datetime
    scores: dict[str, Any]
    timings: dict[str, Any]
    crops: list[CropInfo]

    @property
    def track_rows(self) -> list[dict[str, Any]]:
        """Per-track summary, strongest first."""
        rows = []
        for track in self.scores.get("tracks", []) or []:
            frames = track.get("frames") or []
            times = [f.get("t") for f in frames if f.get("t") is not None]
            rows.append(
                {
                    "track": track.get("track"),
                    "score": track.get("score"),
                    "faces": track.get("faces", len(frames)),
                    "first_t": min(times) if times else None,
                    "last_t": max(times) if times else None,
                }
            )
        return sorted(rows, key=lambda r: -(r["score"] or 0.0))

    @property
    def top_frames(self) -> list[dict[str, Any]]:
        return list(self.scores.get("top_frames", []) or [])


@dataclass(frozen=True)
class DecisionInfo:
    id: int
    reviewer: str
    decision: str
    note: str | None
    previous_state: str
    analysis_id: int | None
    decided_at: datetime
    policy_reason: str | None = None
    #: Set on a reversal (appeal): the decision it overturned, and why.
    reverses_id: int | None = None
    reversal_reason: str | None = None

    @property
    def is_reversal(self) -> bool:
        return self.reverses_id is not None or self.reversal_reason is not None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["decided_at"] = self.decided_at.isoformat()
        return data


@dataclass(frozen=True)
class MatchInfo:
    """The video was found in a bank (bot.banks): which entry, how much, and what it did."""

    bank: str
    content_id: str
    matched_youtube_id: str | None
    matched_title: str | None
    query_share: float
    bank_share: float
    frames_matched: int
    frames_compared: int
    faces_matched: int | None
    faces_compared: int | None
    outcome: str
    created_at: datetime

    @property
    def matched_url(self) -> str | None:
        if not self.matched_youtube_id:
            return None
        return f"https://www.youtube.com/watch?v={self.matched_youtube_id}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class VideoDetail:
    """Everything the ``show`` command and the video page display."""

    id: int
    youtube_id: str
    url: str
    state: str
    title: str | None
    channel_id: str | None
    channel_title: str | None
    published_at: datetime | None
    discovered_at: datetime
    duration_s: int | None
    score: float | None
    verdict: str | None
    media_path: str | None
    analyses: list[AnalysisInfo]
    decisions: list[DecisionInfo] = field(default_factory=list)
    declared_synthetic: bool | None = None
    matches: list[MatchInfo] = field(default_factory=list)
    media_deleted: bool = False

    @property
    def known_fake(self) -> MatchInfo | None:
        """The fake-bank match that flagged this video without a model run, if any."""
        return next((m for m in reversed(self.matches) if m.outcome == "flagged"), None)

    @property
    def analysis(self) -> AnalysisInfo | None:
        """The newest analysis: the one that put the video in the queue."""
        return self.analyses[-1] if self.analyses else None

    @property
    def last_decision(self) -> DecisionInfo | None:
        return self.decisions[-1] if self.decisions else None

    def to_json(self) -> dict[str, Any]:
        def analysis_json(a: AnalysisInfo) -> dict[str, Any]:
            data = asdict(a)
            data["created_at"] = a.created_at.isoformat()
            return data

        return {
            "youtube_id": self.youtube_id,
            "url": self.url,
            "state": self.state,
            "title": self.title,
            "channel_id": self.channel_id,
            "channel_title": self.channel_title,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "discovered_at": self.discovered_at.isoformat(),
            "duration_s": self.duration_s,
            "score": self.score,
            "verdict": self.verdict,
            "declared_synthetic": self.declared_synthetic,
            "bank_matches": [m.to_json() for m in self.matches],
            "analysis": analysis_json(self.analysis) if self.analysis else None,
            "previous_analyses": [analysis_json(a) for a in self.analyses[:-1]],
            "decisions": [d.to_json() for d in self.decisions],
        }


def _crops(analysis: Analysis) -> list[CropInfo]:
    out = []
    for index, crop in enumerate(analysis.crops or []):
        if not isinstance(crop, dict) or not isinstance(crop.get("path"), str):
            continue  # a malformed entry is skipped, never served
        out.append(
            CropInfo(
                index=index,
                path=crop["path"],
                track=crop.get("track"),
                frame=crop.get("frame"),
                t=crop.get("t"),
                score=crop.get("score"),
                heatmap=crop.get("heatmap") if isinstance(crop.get("heatmap"), str) else None,
                context=crop.get("context") if isinstance(crop.get("context"), str) else None,
            )
        )
    return out


def _analysis_info(a: Analysis) -> AnalysisInfo:
    return AnalysisInfo(
        id=a.id,
        bundle_id=a.bundle_id,
        bundle_version=a.bundle_version,
        frames_requested=a.frames_requested,
        frames_decoded=a.frames_decoded,
        partial=bool(a.partial),
        faces=a.faces,
        tracks=a.tracks,
        video_score=a.video_score,
        threshold=a.threshold,
        verdict=a.verdict,
        error=a.error,
        worker=a.worker,
        created_at=a.created_at,
        scores=dict(a.scores or {}),
        timings=dict(a.timings or {}),
        crops=_crops(a),
    )


def _decision_info(d: ReviewDecision) -> DecisionInfo:
    return DecisionInfo(
        id=d.id,
        reviewer=d.reviewer,
        decision=d.decision,
        note=d.note,
        previous_state=d.previous_state,
        analysis_id=d.analysis_id,
        decided_at=d.decided_at,
        policy_reason=d.policy_reason,
        reverses_id=d.reverses_id,
        reversal_reason=d.reversal_reason,
    )


def _match_info(m: BankMatch) -> MatchInfo:
    return MatchInfo(
        bank=m.bank,
        content_id=m.content_id,
        matched_youtube_id=m.matched_youtube_id,
        matched_title=m.matched_title,
        query_share=m.query_share,
        bank_share=m.bank_share,
        frames_matched=m.frames_matched,
        frames_compared=m.frames_compared,
        faces_matched=m.faces_matched,
        faces_compared=m.faces_compared,
        outcome=m.outcome,
        created_at=m.created_at,
    )


# --------------------------------------------------------------------------- queries


def list_queue(session: Session, flt: QueueFilter) -> QueuePage:
    """One page of videos in ``flt.state``, highest score first."""
    age_col = func.coalesce(Video.published_at, Video.discovered_at)
    where = [Video.state == flt.state]
    if flt.channel:
        where.append(Video.channel_youtube_id == flt.channel.strip())
    if flt.since is not None:
        where.append(age_col >= flt.since)
    if flt.min_score is not None:
        where.append(Video.score >= flt.min_score)

    total = session.scalar(select(func.count()).select_from(Video).where(*where)) or 0
    # Re-uploads of confirmed fakes first: certain, quick decisions with no model score.
    videos = session.scalars(
        select(Video)
        .where(*where)
        .order_by(
            case((Video.verdict == KNOWN_FAKE_VERDICT, 0), else_=1),
            Video.score.desc().nulls_last(),
            Video.id,
        )
        .limit(flt.limit)
        .offset(flt.offset)
    ).all()
    latest = _latest_analyses(session, [v.id for v in videos])
    decided = _latest_decisions(session, [v.id for v in videos])
    items = [
        QueueItem(
            youtube_id=v.youtube_id,
            url=v.url,
            state=v.state,
            title=v.title,
            channel_id=v.channel_youtube_id,
            channel_title=v.channel_title,
            score=v.score,
            faces=latest[v.id].faces if v.id in latest else None,
            published_at=v.published_at,
            discovered_at=v.discovered_at,
            analysis_id=latest[v.id].id if v.id in latest else None,
            partial=bool(latest[v.id].partial) if v.id in latest else False,
            declared_synthetic=v.declared_synthetic,
            known_fake=v.verdict == KNOWN_FAKE_VERDICT,
            decided_by=decided[v.id].reviewer if v.id in decided else None,
            decided_at=decided[v.id].decided_at if v.id in decided else None,
            policy_reason=decided[v.id].policy_reason if v.id in decided else None,
        )
        for v in videos
    ]
    return QueuePage(items=items, total=total, filter=flt)


def _latest_decisions(session: Session, video_ids: list[int]) -> dict[int, ReviewDecision]:
    """The newest decision of each video, in one query."""
    if not video_ids:
        return {}
    newest = (
        select(func.max(ReviewDecision.id))
        .where(ReviewDecision.video_id.in_(video_ids))
        .group_by(ReviewDecision.video_id)
    )
    rows = session.scalars(select(ReviewDecision).where(ReviewDecision.id.in_(newest))).all()
    return {d.video_id: d for d in rows}


def _latest_analyses(session: Session, video_ids: list[int]) -> dict[int, Analysis]:
    """The newest analysis of each video, in one query (the queue page must not do N+1)."""
    if not video_ids:
        return {}
    newest = (
        select(func.max(Analysis.id))
        .where(Analysis.video_id.in_(video_ids))
        .group_by(Analysis.video_id)
    )
    rows = session.scalars(select(Analysis).where(Analysis.id.in_(newest))).all()
    return {a.video_id: a for a in rows}


def _video(session: Session, youtube_id: str, *, lock: bool = False) -> Video:
    query = select(Video).where(Video.youtube_id == youtube_id.strip())
    if lock:
        query = query.with_for_update()
    video = session.scalars(query).first()
    if video is None:
        raise VideoNotFound(
            f"no video {youtube_id!r} in the database: check the id "
            "(`find-bot review list` shows the queue)"
        )
    return video


def get_video(session: Session, youtube_id: str) -> VideoDetail:
    """The full record of one video: its analyses and decision history."""
    v = _video(session, youtube_id)
    return VideoDetail(
        id=v.id,
        youtube_id=v.youtube_id,
        url=v.url,
        state=v.state,
        title=v.title,
        channel_id=v.channel_youtube_id,
        channel_title=v.channel_title,
        published_at=v.published_at,
        discovered_at=v.discovered_at,
        duration_s=v.duration_s,
        score=v.score,
        verdict=v.verdict,
        media_path=v.media_path,
        analyses=[_analysis_info(a) for a in v.analyses],
        decisions=[_decision_info(d) for d in v.decisions],
        declared_synthetic=v.declared_synthetic,
        matches=[
            _match_info(m)
            for m in session.scalars(
                select(BankMatch).where(BankMatch.video_id == v.id).order_by(BankMatch.id)
            )
        ],
        media_deleted=v.media_deleted_at is not None,
    )


def get_analysis(session: Session, analysis_id: int) -> AnalysisInfo | None:
    a = session.get(Analysis, analysis_id)
    return _analysis_info(a) if a is not None else None


# --------------------------------------------------------------------------- decisions


def decide(
    sessions: sessionmaker[Session],
    youtube_id: str,
    decision: str,
    reviewer: str,
    *,
    note: str | None = None,
    expected_state: str | None = VideoState.FLAGGED.value,
    force: bool = False,
    reason: str | None = None,
    reasons: Sequence[str] = DEFAULT_POLICY_REASONS,
    reversal_reason: str | None = None,
) -> DecisionInfo:
    """Record ``reviewer``'s decision on a video, atomically and without losing history.

    ``expected_state`` is the state the reviewer saw (the web page sends the
    state it rendered; the CLI assumes ``flagged``).  The state changes with a
    compare-and-set ``UPDATE ... WHERE state = expected``: when another
    decision got there first the update matches no row and
    :class:`DecisionConflict` names who made it.  PostgreSQL re-checks the
    condition after waiting for a concurrent writer's row lock, and SQLite
    serialises writers with ``BEGIN IMMEDIATE``, so on both only one of two
    simultaneous deciders wins.

    ``force`` supersedes a decision on purpose: the expected state is then the
    current one (still compared-and-set, so a third concurrent writer is
    still detected), and a new history row is appended.

    ``reason`` is the policy reason, one of ``reasons`` (``FIND_POLICY_REASONS``).
    A decision that turns a confirmed video into a dismissed one or back is a
    **reversal** (an appeal): it needs ``reversal_reason`` and records which
    decision it overturns.  The video's hashes follow its new state into the
    fake or benign bank, in the same transaction.
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ReviewError("a decision needs a reviewer name (--reviewer NAME)")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise ReviewError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    reason = (reason or "").strip() or None
    if reason is None or reason not in reasons:
        raise ReviewError(
            (
                "a decision needs a policy reason"
                if reason is None
                else f"{reason!r} is not a policy reason"
            )
            + " (--reason): one of "
            + "; ".join(reasons)
            + " (FIND_POLICY_REASONS)"
        )
    reversal_reason = (reversal_reason or "").strip() or None
    if reversal_reason is not None and len(reversal_reason) > MAX_NOTE_CHARS:
        raise ReviewError(f"the reversal reason is longer than {MAX_NOTE_CHARS} characters")

    with sessions.begin() as session:
        video = _video(session, youtube_id)
        if force or expected_state is None:
            expected_state = video.state
        if expected_state not in DECIDABLE_STATES:
            raise ReviewError(
                f"video {video.youtube_id} is {video.state}, not analysed yet or out of the "
                "pipeline; only flagged, analysed, confirmed or dismissed videos can be decided"
            )
        reverses = None
        if expected_state in OPPOSITE and decision == OPPOSITE[expected_state]:
            if reversal_reason is None:
                raise ReviewError(
                    f"video {video.youtube_id} is {expected_state}: making it {decision} reverses "
                    "that decision (an appeal) and needs a reason: pass --appeal-reason TEXT"
                )
            reverses = session.scalar(
                select(func.max(ReviewDecision.id)).where(
                    ReviewDecision.video_id == video.id, ReviewDecision.decision == expected_state
                )
            )
        else:
            reversal_reason = None  # only reversals carry one
        analysis_id = session.scalar(
            select(func.max(Analysis.id)).where(Analysis.video_id == video.id)
        )
        result = session.execute(
            update(Video)
            .where(Video.id == video.id, Video.state == expected_state)
            .values(state=decision, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            # Lost the compare-and-set: nothing was written; the winner's
            # decision is read after this (empty) transaction ends.
            lost_to = expected_state
        else:
            lost_to = None
            row = ReviewDecision(
                video_id=video.id,
                reviewer=reviewer,
                decision=decision,
                note=note,
                previous_state=expected_state,
                analysis_id=analysis_id,
                decided_at=utcnow(),
                policy_reason=reason,
                reverses_id=reverses,
                reversal_reason=reversal_reason,
            )
            session.add(row)
            session.flush()
            info = _decision_info(row)
            from bot.banks import record_decision

            bank = record_decision(session, video, decision, row.id, reviewer)
    if lost_to is not None:
        raise _conflict(sessions, youtube_id.strip(), lost_to)
    log_event(
        log,
        "review.decided",
        video=youtube_id,
        decision=decision,
        reviewer=reviewer,
        previous_state=expected_state,
        reason=reason,
        reversal=info.is_reversal,
        bank=bank,
    )
    return info


def _conflict(sessions: sessionmaker[Session], youtube_id: str, expected: str) -> DecisionConflict:
    """Explain a lost compare-and-set, reading the state committed by the winner."""
    with sessions() as session:
        video = _video(session, youtube_id)
        last = session.scalars(
            select(ReviewDecision)
            .where(ReviewDecision.video_id == video.id)
            .order_by(ReviewDecision.id.desc())
            .limit(1)
        ).first()
        state = video.state
        if last is not None and last.decision == state:
            by = last.reviewer
            summary = f"already {state} by {by} at {last.decided_at:%Y-%m-%d %H:%M:%S} UTC"
            if last.note:
                summary += f" (note: {last.note[:80]})"
            message = (
                f"video {youtube_id} was {expected} when you looked but is {summary}; "
                f"check it with `find-bot review show {youtube_id}` and pass --force to add "
                "a superseding decision"
            )
        else:
            by = None
            summary = f"now {state}, not {expected}"
            message = (
                f"video {youtube_id} is {state}, not {expected}; check it with "
                f"`find-bot review show {youtube_id}` and pass --force to decide anyway"
            )
    return DecisionConflict(message, current_state=state, by=by, summary=summary)


# --------------------------------------------------------------------------- evidence


#: What can be shown of an evidence face: the crop, its Grad-CAM overlay, its frame.
CROP_VIEWS = ("crop", "heatmap", "context")


def crop_path(
    settings: Settings, analysis: AnalysisInfo, index: int, view: str = "crop"
) -> Path | None:
    """The file of crop ``index`` of ``analysis`` (or its heatmap or frame), or ``None`` if it
    must not be served.

    Crops are addressed by (analysis id, index, view), never by a path from the
    request; the stored relative path is still resolved and checked to lie
    inside the media directory, so a corrupt or hostile row cannot make the
    server read other files.
    """
    if not 0 <= index < len(analysis.crops) or view not in CROP_VIEWS:
        return None
    crop = analysis.crops[index]
    relative = {"crop": crop.path, "heatmap": crop.heatmap, "context": crop.context}[view]
    target = _inside_media(settings, relative)
    if target is None or target.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        return None
    return target if target.is_file() else None


def _inside_media(settings: Settings, relative: str | None) -> Path | None:
    """``relative`` resolved under the media directory, or ``None`` if it would leave it."""
    if not relative:
        return None
    root = settings.media_dir.resolve()
    path = Path(relative)
    target = (path if path.is_absolute() else root / path).resolve()
    return target if root in target.parents else None


def media_path(settings: Settings, video: VideoDetail) -> Path | None:
    """The kept video file of ``video`` for local playback, or ``None``.

    Looked up by the video's own row, never a path from the request: the file
    must still exist (retention has not deleted it), lie inside the media
    directory and be a format browsers play.
    """
    if video.media_deleted:
        return None
    target = _inside_media(settings, video.media_path)
    if target is None or target.suffix.lower() not in MEDIA_TYPES:
        return None
    return target if target.is_file() else None


def score_series(analysis: AnalysisInfo) -> list[tuple[int, list[float], list[float]]]:
    """(track, times, scores) per face track, time-ordered, for the plot."""
    series = []
    for track in analysis.scores.get("tracks", []) or []:
        points = sorted(
            (float(f["t"]), float(f["score"]))
            for f in track.get("frames") or []
            if f.get("t") is not None and f.get("score") is not None
        )
        if points:
            series.append(
                (
                    int(track.get("track", len(series))),
                    [p[0] for p in points],
                    [p[1] for p in points],
                )
            )
    return series


def render_score_plot(analysis: AnalysisInfo, *, width_in: float = 10.0) -> bytes:
    """PNG of the fake score over time, one line per face track, with the threshold.

    Drawn with matplotlib's object API on the Agg canvas (no pyplot global
    state), so concurrent web requests can render at once.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    series = score_series(analysis)
    for track, times, scores in series:
        ax.plot(times, scores, marker="o", markersize=3, linewidth=1.5, label=f"track {track}")
    ax.axhline(
        analysis.threshold,
        color="#c0392b",
        linestyle="--",
        linewidth=1,
        label=f"threshold {analysis.threshold:.2f}",
    )
    for top in analysis.top_frames:
        if top.get("t") is not None and top.get("score") is not None:
            ax.plot(
                [top["t"]],
                [top["score"]],
                marker="*",
                markersize=11,
                color="#c0392b",
                linestyle="none",
            )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time in video (s)")
    ax.set_ylabel("fake score")
    ax.grid(True, alpha=0.3)
    if not series:
        ax.text(0.5, 0.5, "no face tracks", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# --------------------------------------------------------------------------- export

REPORT_FIELDS = (
    "youtube_id",
    "url",
    "state",
    "title",
    "channel_id",
    "channel_title",
    "published_at",
    "discovered_at",
    "score",
    "faces",
    "bundle",
    "analysed_at",
    "decision",
    "reviewer",
    "decided_at",
    "policy_reason",
    "reversal_reason",
    "note",
    "declared_synthetic",
    "bank_match",
    "decisions",
)


def _export_videos(
    session: Session, states: Iterable[str], since: datetime | None
) -> Iterator[Video]:
    query = select(Video).where(Video.state.in_(list(states))).order_by(Video.id)
    if since is not None:
        query = query.where(func.coalesce(Video.published_at, Video.discovered_at) >= since)
    # Stream in id order so a large export never loads everything at once.
    yield from session.scalars(query.execution_options(yield_per=200))


def report_rows(
    session: Session, states: Iterable[str] = REVIEW_STATES, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """One reporting row per video: its latest analysis and latest decision."""
    for video in _export_videos(session, states, since):
        analysis = video.latest_analysis
        last = video.decisions[-1] if video.decisions else None
        yield {
            "youtube_id": video.youtube_id,
            "url": video.url,
            "state": video.state,
            "title": video.title,
            "channel_id": video.channel_youtube_id,
            "channel_title": video.channel_title,
            "published_at": video.published_at.isoformat() if video.published_at else None,
            "discovered_at": video.discovered_at.isoformat(),
            "score": video.score,
            "faces": analysis.faces if analysis else None,
            "bundle": f"{analysis.bundle_id} {analysis.bundle_version}" if analysis else None,
            "analysed_at": analysis.created_at.isoformat() if analysis else None,
            "decision": last.decision if last else None,
            "reviewer": last.reviewer if last else None,
            "decided_at": last.decided_at.isoformat() if last else None,
            "policy_reason": last.policy_reason if last else None,
            "reversal_reason": last.reversal_reason if last else None,
            "note": last.note if last else None,
            "declared_synthetic": video.declared_synthetic,
            "bank_match": _flagging_match(session, video),
            "decisions": [_decision_info(d).to_json() for d in video.decisions],
        }


def _flagging_match(session: Session, video: Video) -> str | None:
    """Content id of the fake-bank entry that flagged ``video`` without a model run."""
    if video.verdict != KNOWN_FAKE_VERDICT:
        return None
    return session.scalar(
        select(BankMatch.content_id)
        .where(BankMatch.video_id == video.id, BankMatch.outcome == "flagged")
        .order_by(BankMatch.id.desc())
        .limit(1)
    )


def export_report(
    session: Session,
    out: IO[str],
    fmt: str,
    states: Iterable[str] = REVIEW_STATES,
    since: datetime | None = None,
) -> int:
    """Write a CSV or JSONL report to ``out``; returns the number of videos written.

    JSONL rows carry the full decision history; CSV rows the latest decision
    and the number of decisions (spreadsheets do not do nested lists).
    """
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in report_rows(session, states, since):
            writer.writerow({**row, "decisions": len(row["decisions"])})
            count += 1
    elif fmt == "jsonl":
        for row in report_rows(session, states, since):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ReviewError(f"export format {fmt!r} is not one of csv, jsonl, dataset")
    return count


@dataclass(frozen=True)
class DatasetSummary:
    directory: Path
    videos: int
    crops: int
    fake: int
    real: int
    missing_crops: int


def export_dataset(
    session: Session, settings: Settings, directory: Path, since: datetime | None = None
) -> DatasetSummary:
    """Write the labelled dataset for re-training: ``labels.jsonl`` + ``crops/``.

    Every confirmed (fake) or dismissed (real) video contributes the face
    crops of the analysis its final decision was made on, copied under
    ``crops/<video_id>/``.  The label is the video's current state, which is
    the latest decision, so a superseded decision never leaks into training.
    Crops whose file is gone (media retention) are counted and left out; a
    video with none left is not listed.  ``labels.jsonl`` is written to a
    temporary name and renamed, so a reader never sees half a file.
    """
    directory = Path(directory)
    labels_path = directory / "labels.jsonl"
    if labels_path.exists():
        raise ReviewError(
            f"{directory} already holds an export (labels.jsonl): choose a new --output directory"
        )
    (directory / "crops").mkdir(parents=True, exist_ok=True)
    counts = {"videos": 0, "crops": 0, "fake": 0, "real": 0, "missing": 0}
    tmp = directory / "labels.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as labels:
        for video in _export_videos(session, tuple(LABELS), since):
            last = next((d for d in reversed(video.decisions) if d.decision == video.state), None)
            analysis = _decided_analysis(video, last)
            if last is None or analysis is None:
                continue
            info = _analysis_info(analysis)
            copied: list[str] = []
            for crop in info.crops:
                source = crop_path(settings, info, crop.index)
                if source is None:
                    counts["missing"] += 1
                    continue
                relative = f"crops/{video.youtube_id}/{info.id}-{crop.index}-{source.name}"
                target = directory / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                copied.append(relative)
            if not copied:
                continue
            label = LABELS[video.state]
            row = {
                "video_id": video.youtube_id,
                "label": label,
                "crops": copied,
                "reviewer": last.reviewer,
                "decided_at": last.decided_at.isoformat(),
                "policy_reason": last.policy_reason,
                "analysis_id": info.id,
                "bundle": f"{info.bundle_id} {info.bundle_version}",
                "score": info.video_score,
            }
            labels.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts["videos"] += 1
            counts["crops"] += len(copied)
            counts[label] += 1
    tmp.replace(labels_path)
    log_event(log, "review.exported", directory=str(directory), **counts)
    return DatasetSummary(
        directory=directory,
        videos=counts["videos"],
        crops=counts["crops"],
        fake=counts["fake"],
        real=counts["real"],
        missing_crops=counts["missing"],
    )


def _decided_analysis(video: Video, decision: ReviewDecision | None) -> Analysis | None:
    if decision is not None and decision.analysis_id is not None:
        for analysis in video.analyses:
            if analysis.id == decision.analysis_id:
                return analysis
    return video.latest_analysis
