"""What reviewers see: the queue page by page and each video's full record.

The queries return plain frozen dataclasses, detached from any session, so a template
or a JSON encoder can use them freely; nothing here writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.errors import FindError
from bot.store import (
    KNOWN_FAKE_VERDICT,
    MAX_ROW_ID,
    REVIEW_STATES,
    SUBMISSION_KEY_PREFIX,
    Analysis,
    BankMatch,
    ReviewDecision,
    Video,
    VideoSource,
    VideoState,
    utcnow,
)

#: The sources a reviewer can filter on (``review list --source``, the web form).
SOURCES = tuple(source.value for source in VideoSource)

MAX_PAGE_SIZE = 500

#: How the queue can be ordered (``review list --order``, the web page's ``?order=``):
#: highest score first; by reach, ``score × ln(1 + views gained per day)``
#: (:func:`bot.youtube.views.reach`: what is spreading first); or newest first.
QUEUE_ORDERS = ("score", "reach", "newest")

#: Rows that belong to a video, newest by id (analyses and decisions).
_PerVideo = TypeVar("_PerVideo", Analysis, ReviewDecision)


def demo_label_text(label: str | None) -> str | None:
    """How a demo sample's known label is shown, on the page and in ``review list``: a
    newcomer sees a flagged ``known real`` sample is a false alarm (None: no label)."""
    return f"known {label} \u2014 demo label" if label else None


def views_text(views: int | None, per_day: float | None) -> str | None:
    """A view count and its growth for people: ``12,345 views, +1,200 a day``."""
    if views is None:
        return None
    growth = "" if per_day is None else f", +{per_day:,.0f} a day"
    return f"{views:,} views{growth}"


class ReviewError(FindError):
    """A review request that cannot be carried out (unknown video, bad input)."""


class VideoNotFound(ReviewError):
    """No video with that YouTube id is in the database."""


@dataclass(frozen=True)
class QueueFilter:
    """What a reviewer asked to see; the same object backs the CLI flags and the web form."""

    state: str = VideoState.FLAGGED.value
    channel: str | None = None
    #: Only videos from this :class:`~bot.store.VideoSource` (None: all).
    source: str | None = None
    since: datetime | None = None
    min_score: float | None = None
    limit: int = 50
    offset: int = 0
    #: One of :data:`QUEUE_ORDERS`.
    order: str = "score"

    def __post_init__(self) -> None:
        if self.state not in REVIEW_STATES:
            raise ReviewError(
                f"state {self.state!r} is not reviewable: use one of {', '.join(REVIEW_STATES)}"
            )
        if self.source is not None and self.source not in SOURCES:
            raise ReviewError(f"source {self.source!r} is unknown: use one of {', '.join(SOURCES)}")
        if self.since is not None and self.since.tzinfo is None:
            raise ReviewError("--since needs a time zone (dates are read as UTC)")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise ReviewError(f"page size {self.limit} is outside 1..{MAX_PAGE_SIZE}")
        if self.offset < 0:
            raise ReviewError("offset cannot be negative")
        if self.order not in QUEUE_ORDERS:
            raise ReviewError(
                f"order {self.order!r} is unknown: use one of {', '.join(QUEUE_ORDERS)}"
            )


@dataclass(frozen=True)
class QueueItem:
    """One row of the queue."""

    youtube_id: str
    url: str | None
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
    #: The threshold of the newest analysis (the score means little without it).
    threshold: float | None = None
    #: The latest decision: who, when, and the policy reason.
    decided_by: str | None = None
    decided_at: datetime | None = None
    policy_reason: str | None = None
    #: Where it came from (:class:`~bot.store.VideoSource`) and, for submissions, who sent it.
    source: str = VideoSource.YOUTUBE_UPLOAD.value
    submitted_by: str | None = None
    #: The queue's thumbnail: the decisive crop of the newest analysis (:func:`decisive_crop`),
    #: served by the crop route as ``/crops/<analysis_id>/<index>``; None when there is none.
    thumbnail: CropInfo | None = None
    #: YouTube's view count at its last measurement, when, and the views gained per day
    #: (:mod:`bot.youtube.views`); None: never measured (local files, no lookup yet).
    views: int | None = None
    views_at: datetime | None = None
    views_per_day: float | None = None
    #: Demo samples: their data set's label, ``real`` or ``fake`` (:func:`demo_label_text`).
    demo_label: str | None = None

    @property
    def views_text(self) -> str | None:
        """``12,345 views, +1,200 a day`` (None: never measured)."""
        return views_text(self.views, self.views_per_day)

    @property
    def known_label(self) -> str | None:
        """``known real — demo label`` on a demo sample, else None."""
        return demo_label_text(self.demo_label)

    @property
    def local_file(self) -> bool:
        """A file handed to ``find-bot submit``: no URL, no channel, its title is the file name."""
        return self.source == VideoSource.SUBMITTED_FILE.value or (
            self.url is None and self.youtube_id.startswith(SUBMISSION_KEY_PREFIX)
        )

    @property
    def age_since(self) -> datetime:
        """The video's age counts from publication (discovery when YouTube gave no date)."""
        return self.published_at or self.discovered_at

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        data = asdict(self)
        for key in ("published_at", "discovered_at", "decided_at", "views_at"):
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
    #: Grad-CAM overlay (older analyses only; not shown) and the whole frame with the face
    #: box (relative paths), if saved.
    heatmap: str | None = None
    context: str | None = None
    #: The face's side in the source frame when the stored crop is an upscale of it (blurry).
    upscaled_from: int | None = None


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
    def top_frames(self) -> list[dict[str, Any]]:
        return list(self.scores.get("top_frames", []) or [])

    @property
    def decisive_crop(self) -> CropInfo | None:
        """The crop that best shows why the video scored as it did (:func:`decisive_crop`)."""
        return decisive_crop(self.scores, self.crops)


def decisive_crop(scores: dict[str, Any], crops: list[CropInfo]) -> CropInfo | None:
    """The strongest crop of the track that decided the video's score, else the first crop.

    The video's score is its decisive track's (recorded since issue 31; before, the
    strongest live one: a static picture in the scene or a face too small to be evidence
    does not decide), so that track's best crop is what a reviewer should see first: the
    queue shows it as the row's thumbnail (:mod:`bot.review.why` explains the same
    track on the video page).  Crops are stored in
    evidence order (live tracks first, strongest first), so the first crop is the
    fallback when the scores name no track that has a crop.
    """
    if not crops:
        return None
    tracks = [
        t
        for t in scores.get("tracks", []) or []
        if isinstance(t, dict) and isinstance(t.get("score"), int | float)
    ]
    # Analyses since issue 31 name the deciding track (``decisive``; None: every face was
    # too small to count); before, the strongest live one decided.
    decisive = scores.get("decisive")
    tracks.sort(
        key=lambda t: (
            decisive is not None and t.get("track") != decisive,
            bool(t.get("static", False)),
            bool(t.get("small", False)),
            -float(t["score"]),
        )
    )
    for track in tracks:
        own = [c for c in crops if c.track == track.get("track")]
        if own:
            return max(own, key=lambda c: c.score if c.score is not None else -1.0)
    return crops[0]


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
    url: str | None
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
    source: str = VideoSource.YOUTUBE_UPLOAD.value
    submitted_by: str | None = None
    submission_note: str | None = None
    source_url: str | None = None
    #: The last two view counts and the growth between them (:mod:`bot.youtube.views`).
    views: int | None = None
    views_at: datetime | None = None
    views_before: int | None = None
    views_before_at: datetime | None = None
    views_per_day: float | None = None
    #: Demo samples: their data set's label, ``real`` or ``fake`` (:func:`demo_label_text`).
    demo_label: str | None = None

    @property
    def views_text(self) -> str | None:
        """``12,345 views, +1,200 a day`` (None: never measured)."""
        return views_text(self.views, self.views_per_day)

    @property
    def known_label(self) -> str | None:
        """``known real — demo label`` on a demo sample, else None."""
        return demo_label_text(self.demo_label)

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
            "source": self.source,
            "submitted_by": self.submitted_by,
            "submission_note": self.submission_note,
            "source_url": self.source_url,
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
            "views": self.views,
            "views_at": self.views_at.isoformat() if self.views_at else None,
            "views_before": self.views_before,
            "views_before_at": self.views_before_at.isoformat() if self.views_before_at else None,
            "views_per_day": self.views_per_day,
            "demo_label": self.demo_label,
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
                upscaled_from=_positive_int(crop.get("upscaled_from")),
            )
        )
    return out


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def analysis_info(a: Analysis) -> AnalysisInfo:
    """A detached copy of an analysis row, safe to use after its session closes."""
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


def decision_info(d: ReviewDecision) -> DecisionInfo:
    """A detached copy of a decision row, safe to use after its session closes."""
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


def queue_conditions(flt: QueueFilter) -> list[Any]:
    """The WHERE clauses of ``flt`` (state, channel, source, since, min score): one home for
    what a filter selects, shared by the queue page, "next item" and the web export."""
    age_col = func.coalesce(Video.published_at, Video.discovered_at)
    where = [Video.state == flt.state]
    if flt.channel:
        where.append(Video.channel_youtube_id == flt.channel.strip())
    if flt.source:
        where.append(Video.source == flt.source)
    if flt.since is not None:
        where.append(age_col >= flt.since)
    if flt.min_score is not None:
        where.append(Video.score >= flt.min_score)
    return where


def queue_order(flt: QueueFilter) -> list[Any]:
    """The ORDER BY of the queue (``flt.order``), ending in ``Video.id`` so the order is total
    (paging and "next item" never skip or repeat a video)."""
    if flt.order == "newest":
        return [func.coalesce(Video.published_at, Video.discovered_at).desc(), Video.id.desc()]
    # Re-uploads of confirmed fakes first: certain, quick decisions with no model score.
    first = [case((Video.verdict == KNOWN_FAKE_VERDICT, 0), else_=1)]
    if flt.order == "reach":  # unmeasured videos (local files, no count yet) after the rest
        first.append(reach_column().desc().nulls_last())
    return [*first, Video.score.desc().nulls_last(), Video.id]


def reach_column() -> Any:
    """:func:`bot.youtube.views.reach` in SQL: ``score × ln(1 + views gained per day)``."""
    return Video.score * func.ln(1 + Video.views_per_day)


def queue_after(session: Session, flt: QueueFilter, youtube_id: str, count: int = 20) -> list[str]:
    """Up to ``count`` ids that follow ``youtube_id`` in the queue ``flt`` (its order, any page).

    When ``youtube_id`` is not (or no longer) in the filter, the queue's first ids.  The
    ids are streamed in order until the current one is passed: one indexed scan of the
    state, fine for queues of many thousands of videos.
    """
    ids = session.scalars(
        select(Video.youtube_id)
        .where(*queue_conditions(flt))
        .order_by(*queue_order(flt))
        .execution_options(yield_per=500)
    )
    head: list[str] = []
    after: list[str] | None = None
    for key in ids:
        if after is not None:
            after.append(key)
            if len(after) >= count:
                break
        elif key == youtube_id:
            after = []
        elif len(head) < count:
            head.append(key)
    return head if after is None else after


def still_queued(session: Session, flt: QueueFilter, youtube_ids: list[str]) -> list[str]:
    """``youtube_ids`` that are still in the queue ``flt``, in the given order (after a
    decision: the ones no other reviewer decided meanwhile)."""
    if not youtube_ids:
        return []
    present = set(
        session.scalars(
            select(Video.youtube_id).where(
                Video.youtube_id.in_(youtube_ids), *queue_conditions(flt)
            )
        )
    )
    return [key for key in youtube_ids if key in present]


def list_queue(session: Session, flt: QueueFilter) -> QueuePage:
    """One page of videos in ``flt.state``, highest score first."""
    where = queue_conditions(flt)
    total = session.scalar(select(func.count()).select_from(Video).where(*where)) or 0
    videos = session.scalars(
        select(Video).where(*where).order_by(*queue_order(flt)).limit(flt.limit).offset(flt.offset)
    ).all()
    latest = _newest_per_video(session, Analysis, [v.id for v in videos])
    decided = _newest_per_video(session, ReviewDecision, [v.id for v in videos])
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
            source=v.source,
            submitted_by=v.submitted_by,
            views=v.views,
            views_at=v.views_at,
            views_per_day=v.views_per_day,
            demo_label=v.demo_label,
            published_at=v.published_at,
            discovered_at=v.discovered_at,
            analysis_id=latest[v.id].id if v.id in latest else None,
            partial=bool(latest[v.id].partial) if v.id in latest else False,
            threshold=latest[v.id].threshold if v.id in latest else None,
            declared_synthetic=v.declared_synthetic,
            known_fake=v.verdict == KNOWN_FAKE_VERDICT,
            decided_by=decided[v.id].reviewer if v.id in decided else None,
            decided_at=decided[v.id].decided_at if v.id in decided else None,
            policy_reason=decided[v.id].policy_reason if v.id in decided else None,
            thumbnail=_thumbnail(latest.get(v.id)),
        )
        for v in videos
    ]
    return QueuePage(items=items, total=total, filter=flt)


def _thumbnail(analysis: Analysis | None) -> CropInfo | None:
    if analysis is None:
        return None
    return decisive_crop(dict(analysis.scores or {}), _crops(analysis))


def _newest_per_video(
    session: Session, row_type: type[_PerVideo], video_ids: list[int]
) -> dict[int, _PerVideo]:
    """The newest analysis or decision of each video, in one query (the page must not do N+1)."""
    if not video_ids:
        return {}
    newest = (
        select(func.max(row_type.id))
        .where(row_type.video_id.in_(video_ids))
        .group_by(row_type.video_id)
    )
    rows = session.scalars(select(row_type).where(row_type.id.in_(newest))).all()
    return {row.video_id: row for row in rows}


def load_video(session: Session, youtube_id: str, *, lock: bool = False) -> Video:
    """The video row, or :class:`VideoNotFound` with the hint reviewers need."""
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
    v = load_video(session, youtube_id)
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
        analyses=[analysis_info(a) for a in v.analyses],
        decisions=[decision_info(d) for d in v.decisions],
        declared_synthetic=v.declared_synthetic,
        matches=[
            _match_info(m)
            for m in session.scalars(
                select(BankMatch).where(BankMatch.video_id == v.id).order_by(BankMatch.id)
            )
        ],
        media_deleted=v.media_deleted_at is not None,
        source=v.source,
        submitted_by=v.submitted_by,
        submission_note=v.submission_note,
        source_url=v.source_url,
        views=v.views,
        views_at=v.views_at,
        views_before=v.views_before,
        views_before_at=v.views_before_at,
        views_per_day=v.views_per_day,
        demo_label=v.demo_label,
    )


def get_analysis(session: Session, analysis_id: int) -> AnalysisInfo | None:
    if not 0 < analysis_id <= MAX_ROW_ID:  # an id from a URL: out of range is simply no row
        return None
    a = session.get(Analysis, analysis_id)
    return analysis_info(a) if a is not None else None
