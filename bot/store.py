"""The database schema: the pipeline's queue and its record.

Data flows one way, discover -> download -> analyse -> flag -> review, and
every stage reads its input from these tables and writes its result back.  A
video's ``state`` says which stage wants it next (see :class:`VideoState`);
``lease_owner``/``lease_expires_at`` say who is working on it right now, so a
crashed worker's video is simply taken again once the lease runs out.

Alembic migrations in ``migrations/`` create exactly this schema; a test
checks that autogenerate finds no difference.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can drop/alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no time zones and hands back naive values; this keeps
    comparisons such as ``lease_expires_at < now`` correct everywhere.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use bot.store.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}  # noqa: RUF012


class VideoState(enum.StrEnum):
    """Where a video is in the pipeline.

    ``new`` and ``downloaded`` are work queues (download and analyse claim
    them); ``flagged`` is the review queue; the rest are final.
    """

    NEW = "new"  # discovered, waiting for download
    DOWNLOADED = "downloaded"  # media on disk, waiting for analysis
    ANALYSED = "analysed"  # scored below the threshold (real or no face)
    FLAGGED = "flagged"  # scored at/above the threshold: waits for a reviewer
    CONFIRMED = "confirmed"  # a reviewer confirmed the deepfake
    DISMISSED = "dismissed"  # a reviewer judged it not a deepfake
    SKIPPED = "skipped"  # permanently not analysable (removed, private, too long...)
    FAILED = "failed"  # kept failing; attempts exhausted


#: States after a video was flagged: the review queue and its decisions. Their
#: media is evidence, which retention keeps longer than the rest.
REVIEW_STATES = (VideoState.FLAGGED.value, VideoState.CONFIRMED.value, VideoState.DISMISSED.value)

#: ``Video.verdict`` of a video flagged, without a model run, as a re-upload of a confirmed fake.
KNOWN_FAKE_VERDICT = "known_fake"
#: The largest id an ``Integer`` primary key can hold on every backend (int4 on PostgreSQL):
#: an id from a request outside 1..MAX_ROW_ID names no row, and is not sent to the database
#: (SQLite and PostgreSQL raise on integers they cannot store instead of finding nothing).
MAX_ROW_ID = 2**31 - 1


class VideoSource(enum.StrEnum):
    """How a video came to FIND: found on YouTube, or handed in by a person (``find-bot submit``).

    Only YouTube sources are looked up with the Data API (quota); a submitted
    video is never, even when it is a YouTube URL (yt-dlp reads its page instead).
    """

    YOUTUBE_UPLOAD = "youtube_upload"  # a watched channel's upload (feed, playlist, push)
    YOUTUBE_SEARCH = "youtube_search"  # a watched search query's result
    SUBMITTED_URL = "submitted_url"  # a URL given to `find-bot submit` (any yt-dlp site)
    SUBMITTED_FILE = "submitted_file"  # a local file given to `find-bot submit`


#: Prefix of the key (``Video.youtube_id``) of a submitted video that is not on YouTube:
#: ``sub-`` and 12 hex digits of a SHA-256 (of the URL, or of the file's bytes).  It
#: cannot collide with a YouTube id (11 characters, no room for it).
SUBMISSION_KEY_PREFIX = "sub-"


#: The state each work stage consumes.
STAGE_INPUT = {"download": VideoState.NEW, "analyse": VideoState.DOWNLOADED}


class Channel(Base):
    """A watched channel: read through its Atom feed (no quota), its uploads playlist
    (1 unit a page) when the feed cannot be trusted, and optionally pushed by WebSub.
    """

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    youtube_id: Mapped[str | None] = mapped_column(String(24), unique=True)
    #: What the operator wrote in the config (an id, @handle or URL), resolved once to youtube_id.
    configured_as: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str | None] = mapped_column(String(300))
    uploads_playlist_id: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Newest video id seen in the uploads playlist; paging stops when it is reached.
    last_seen_video_id: Mapped[str | None] = mapped_column(String(16))
    last_polled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # --- the Atom feed (bot.stages.discover.feeds): conditional GETs, jittered per channel
    #: Validators from the last 200 answer, sent back so an unchanged feed costs no body.
    feed_etag: Mapped[str | None] = mapped_column(String(200))
    feed_last_modified: Mapped[str | None] = mapped_column(String(64))
    #: When the channel is read next (None: at once).
    feed_next_at: Mapped[datetime | None]
    #: Last attempt, and last success, at reading the feed.
    feed_checked_at: Mapped[datetime | None]
    feed_read_at: Mapped[datetime | None]
    #: Consecutive failed reads; from ``feeds.FALLBACK_AFTER`` on, the playlist is read instead.
    feed_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Video ids of the last feed read: a new read that shares none of them while full
    #: (15 entries) may hide uploads, so the playlist is read too.
    feed_seen: Mapped[list[Any] | None]
    #: Why the uploads playlist must be read at the next chance (None: it need not be).
    playlist_due: Mapped[str | None] = mapped_column(String(300))

    # --- WebSub push (bot.stages.discover.websub): the subscription at the hub, as far as we know
    #: subscribing | active | unsubscribing | unsubscribed | denied | failed (None: never).
    push_state: Mapped[str | None] = mapped_column(String(16))
    push_requested_at: Mapped[datetime | None]
    push_expires_at: Mapped[datetime | None]
    #: Fingerprint of FIND_WEBSUB_SECRET the subscription was made with (never the key):
    #: a changed key renews the subscription at once.
    push_key_id: Mapped[str | None] = mapped_column(String(16))
    #: Random token in the subscription's callback URL (``<callback>/<channel>/<token>``):
    #: only a request carrying it can verify, deny or notify this subscription.  None for
    #: subscriptions made before tokens existed (renewed with one at the next pass).
    push_token: Mapped[str | None] = mapped_column(String(64))
    push_error: Mapped[str | None] = mapped_column(Text)
    push_notified_at: Mapped[datetime | None]


class SearchQuery(Base):
    """A watched search query: ``search.list`` with ``publishedAfter`` the last good poll."""

    __tablename__ = "search_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query: Mapped[str] = mapped_column(String(500), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_polled_at: Mapped[datetime | None]
    #: Start of the last poll that completed; the next poll asks only for newer videos.
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Why the query was not searched in the last pass (budget, pacing), for ``status``.
    waiting_reason: Mapped[str | None] = mapped_column(Text)
    #: When it will be searched at the latest (None: not waiting, or never as configured).
    next_search_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Video(Base):
    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_state_next_attempt", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The video's key: its YouTube id, or ``sub-<12 hex>`` for a submitted video that is
    #: not on YouTube (:data:`SUBMISSION_KEY_PREFIX`).  Media and crops are named after it.
    youtube_id: Mapped[str] = mapped_column(String(16), unique=True)
    channel_youtube_id: Mapped[str | None] = mapped_column(String(24), index=True)
    channel_title: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(500))
    published_at: Mapped[datetime | None]
    duration_s: Mapped[int | None] = mapped_column(Integer)
    live_status: Mapped[str | None] = mapped_column(String(20))
    privacy: Mapped[str | None] = mapped_column(String(20))
    #: How it was found first: ``channel:UC...`` or ``query:<text>``.
    discovered_via: Mapped[str | None] = mapped_column(String(520))
    discovered_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: How FIND learnt of it: a :class:`VideoSource` value.
    source: Mapped[str] = mapped_column(
        String(24),
        default=VideoSource.YOUTUBE_UPLOAD.value,
        server_default=VideoSource.YOUTUBE_UPLOAD.value,
        index=True,
    )
    #: Submissions only: who submitted it (the OS user or ``--submitter``), their note,
    #: the URL as given, and the SHA-256 of the media (the same bytes are never queued twice).
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    submission_note: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    content_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Claimed before every video of a lower priority (``submit --priority`` sets 1).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Set while the video waits for its videos.list lookup (duration, live status,
    #: privacy), shared with others until this time at the latest (FIND_ENRICH_WAIT).
    #: Downloads do not wait for it.  None: looked up (or found enriched).
    lookup_due_at: Mapped[datetime | None] = mapped_column(index=True)

    state: Mapped[str] = mapped_column(String(16), default=VideoState.NEW.value)
    #: Failed attempts at the current stage; reset when a stage succeeds.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: ``transient`` or ``permanent`` (or a finer kind such as ``quota``), for status and metrics.
    last_error_kind: Mapped[str | None] = mapped_column(String(32))
    #: Backoff: the video is not claimed again before this time.
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]

    media_path: Mapped[str | None] = mapped_column(String(1000))
    #: The media store holding the file (``bot.mediahost``): only workers on it analyse the
    #: video unless FIND_MEDIA_SHARED; NULL for files from before 0008 (any worker may).
    media_host: Mapped[str | None] = mapped_column(String(200))
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_deleted_at: Mapped[datetime | None]
    #: Copied from the newest analysis so the review queue sorts without a join.
    score: Mapped[float | None] = mapped_column(Float, index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))
    #: The uploader's own disclosure of altered or synthetic content
    #: (``status.containsSyntheticMedia`` in videos.list); None: not reported.
    declared_synthetic: Mapped[bool | None] = mapped_column(Boolean)
    #: YouTube videos: the view count (``statistics.viewCount``) at its last measurement
    #: (the lookup, then the flagged videos' refresh: bot.youtube.views) and the one before,
    #: so the queue can put what is spreading first.  None: never measured (local files).
    views: Mapped[int | None] = mapped_column(BigInteger)
    views_at: Mapped[datetime | None]
    views_before: Mapped[int | None] = mapped_column(BigInteger)
    views_before_at: Mapped[datetime | None]
    #: Views gained per day between the last two measurements (after the first one: since
    #: publication), the growth the queue's ``reach`` order weighs the score with.
    views_per_day: Mapped[float | None] = mapped_column(Float)
    #: Demo samples only: the label their data set gives them (``real`` or ``fake``), shown
    #: as "known real — demo label" so a newcomer can tell a false alarm (``find-bot demo``).
    demo_label: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    analyses: Mapped[list[Analysis]] = relationship(
        back_populates="video",
        order_by="Analysis.id",
        cascade="all, delete-orphan",
    )
    decisions: Mapped[list[ReviewDecision]] = relationship(
        back_populates="video", order_by="ReviewDecision.id", cascade="all, delete-orphan"
    )

    @property
    def latest_analysis(self) -> Analysis | None:
        return self.analyses[-1] if self.analyses else None

    @property
    def url(self) -> str | None:
        """Where a reviewer can watch it: YouTube, the submitted URL, or None (a local file)."""
        return video_url(self.youtube_id, self.source, self.source_url)


def video_url(key: str, source: str | None, source_url: str | None) -> str | None:
    """The page of a video: YouTube's for YouTube ids, else the URL it was submitted as."""
    if not key.startswith(SUBMISSION_KEY_PREFIX):
        return f"https://www.youtube.com/watch?v={key}"
    return source_url if source == VideoSource.SUBMITTED_URL.value else None


class Analysis(Base):
    """One run of the detection engine on one video, by one model bundle.

    Analyses are never overwritten: re-analysing with a new bundle adds a row,
    so scores from different model versions are never silently mixed.
    """

    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    bundle_id: Mapped[str] = mapped_column(String(200))
    bundle_version: Mapped[str] = mapped_column(String(100))
    frames_requested: Mapped[int] = mapped_column(Integer)
    frames_decoded: Mapped[int] = mapped_column(Integer)
    #: Too few of the sampled frames decoded (a truncated file): the verdict rests on a
    #: fraction of the video (model.scoring.MIN_DECODED_FRACTION) and says so everywhere.
    partial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    faces: Mapped[int] = mapped_column(Integer)
    tracks: Mapped[int] = mapped_column(Integer)
    #: Per-track and per-frame scores and boxes: the evidence behind ``video_score``.
    scores: Mapped[dict[str, Any]]
    video_score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(16))
    #: Seconds spent decoding, detecting, classifying.
    timings: Mapped[dict[str, Any]]
    #: Relative paths (under the media dir) of the face crops shown to reviewers.
    crops: Mapped[list[Any]]
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    video: Mapped[Video] = relationship(back_populates="analyses")


class ReviewDecision(Base):
    """A reviewer's decision.  Append-only: history is never overwritten."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))  # confirmed | dismissed
    note: Mapped[str | None] = mapped_column(Text)
    #: The video state the reviewer saw when deciding, to detect concurrent decisions.
    previous_state: Mapped[str] = mapped_column(String(16))
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("analyses.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Why, in policy terms: one of FIND_POLICY_REASONS (None on decisions made before them).
    policy_reason: Mapped[str | None] = mapped_column(String(200))
    #: A reversal (appeal) names the decision it overturns and must say why.
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_decisions.id", ondelete="SET NULL")
    )
    reversal_reason: Mapped[str | None] = mapped_column(Text)

    video: Mapped[Video] = relationship(back_populates="decisions")


class QuotaEntry(Base):
    """One YouTube Data API call and its unit cost.

    ``day`` is the quota day in Pacific time, because that is when YouTube
    resets the daily quota.
    """

    __tablename__ = "quota_ledger"
    __table_args__ = (Index("ix_quota_ledger_day", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    day: Mapped[str] = mapped_column(String(10))
    method: Mapped[str] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(Integer)
    #: ``ok`` or the API's error reason (``quotaExceeded``, ``backendError``...).
    outcome: Mapped[str] = mapped_column(String(64), default="ok")
    #: FIND_QUOTA_DAILY_BUDGET when the call was made: a ``quotaExceeded`` closes the day
    #: only for budgets up to this one (raising the budget reopens it).
    budget: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(200))


class Reviewer(Base):
    """A person allowed into the review web page; the password is stored hashed (argon2)."""

    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A reviewer's login on the web page: the cookie holds a random token, this row its hash.

    Kept on the server so that logging out, ``find-bot reviewers revoke``, a new
    password or deactivation end a session for real: a copied cookie is refused
    once its row is gone.  Only the SHA-256 of the token is stored, so a copy
    of the database does not yield usable cookies.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reviewer_id: Mapped[int] = mapped_column(
        ForeignKey("reviewers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Absolute end of the session (login + 12 h), however active the reviewer is.
    expires_at: Mapped[datetime]


class Worker(Base):
    """A running daemon process, refreshed by its heartbeat; shown by ``find-bot status``."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    bundle_id: Mapped[str | None] = mapped_column(String(200))
    bundle_version: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(300), default="starting")
    #: The media store this process downloads to and analyses from (``bot.mediahost``).
    media_host: Mapped[str | None] = mapped_column(String(200))


class PollRun(Base):
    """One discover pass: when it ran, what it found, how many units it spent."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    new_videos: Mapped[int] = mapped_column(Integer, default=0)
    units: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))


# ------------------------------------------------------------- re-upload matching
# (bot.banks.vpdq hashes, bot.banks keeps the banks and matches; docs/review.md#re-upload-matching)


class VideoFingerprint(Base):
    """A video's perceptual hashes, taken by the analyse stage before the model runs.

    ``frames``: vPDQ, one ``[t, pdq hex, quality]`` per second of video (what is
    looked up); ``bank_frames``: every frame, pruned (``bot.banks.vpdq.hash_video(dense=True)``),
    taken only for flagged videos, the ones a decision may bank; ``faces``: PDQ of
    the evidence face crops, ``{"track", "frame", "t", "hash", "quality"}``.  A
    reviewer's decision copies ``bank_frames`` (else ``frames``) and ``faces`` into a bank.
    """

    __tablename__ = "video_fingerprints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    frames: Mapped[list[Any]]
    bank_frames: Mapped[list[Any] | None]
    faces: Mapped[list[Any]]
    duration_s: Mapped[float | None] = mapped_column(Float)
    #: Seconds spent hashing (decode + PDQ), for the bench and status.
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BankEntry(Base):
    """One known video in a bank: ``fake`` (confirmed deepfakes) or ``benign`` (false alarms).

    ``content_id`` names the content across installations (``youtube:<id>`` for
    videos decided here, the exporter's id for imported ones); it is in at most
    one bank, so a reversed decision moves it instead of leaving it in both.
    """

    __tablename__ = "bank_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank: Mapped[str] = mapped_column(String(16), index=True)
    content_id: Mapped[str] = mapped_column(String(200), unique=True)
    youtube_id: Mapped[str | None] = mapped_column(String(16))
    video_id: Mapped[int | None] = mapped_column(
        ForeignKey("videos.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str | None] = mapped_column(String(500))
    #: ``review`` (a decision), ``cli`` (bank add) or ``import:<file name>``.
    source: Mapped[str] = mapped_column(String(200))
    added_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_decisions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    hashes: Mapped[list[BankHash]] = relationship(
        back_populates="entry", order_by="BankHash.id", cascade="all, delete-orphan"
    )


class BankHash(Base):
    """One PDQ hash of a bank entry: a video frame (``frame``) or a face crop (``face``)."""

    __tablename__ = "bank_hashes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entries.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    hash: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int] = mapped_column(Integer)
    t: Mapped[float | None] = mapped_column(Float)

    entry: Mapped[BankEntry] = relationship(back_populates="hashes")


class BankMatch(Base):
    """A new video found in a bank, and what it did (``flagged``, ``suppressed``, ``recorded``).

    The matched entry's content id, video and title are copied, so the evidence
    survives the entry being removed from its bank.
    """

    __tablename__ = "bank_matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("bank_entries.id", ondelete="SET NULL"))
    bank: Mapped[str] = mapped_column(String(16))
    content_id: Mapped[str] = mapped_column(String(200))
    matched_youtube_id: Mapped[str | None] = mapped_column(String(16))
    matched_title: Mapped[str | None] = mapped_column(String(500))
    #: Share of this video's distinct frames found in the entry, and of the entry's in this one.
    query_share: Mapped[float] = mapped_column(Float)
    bank_share: Mapped[float] = mapped_column(Float)
    frames_matched: Mapped[int] = mapped_column(Integer)
    frames_compared: Mapped[int] = mapped_column(Integer)
    #: Face crops compared with the entry's (benign matches only; None when not compared).
    faces_matched: Mapped[int | None] = mapped_column(Integer)
    faces_compared: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
