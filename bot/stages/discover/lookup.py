"""Found videos become rows at once; their ``videos.list`` lookups are shared in batches of 50.

Every source (channel feeds, WebSub pushes, uploads playlists, searches)
hands its finds to :func:`record_finds`, which inserts each new id as a
``new`` video row, idempotently (a video found twice, or by two sources, is
one row on SQLite and PostgreSQL alike).  The row exists within the minute the
upload was seen, and the download stage may take it at once: yt-dlp reads the
duration, live status and availability from the watch page itself and skips
what should be skipped, so nothing waits for the Data API.

What feeds and notifications do not say (duration, live status, privacy, and the view
count: :mod:`bot.youtube.views`) comes from :func:`lookup_waiting`: ``videos.list`` at
1 unit per 50 ids.  A call is made when 50 rows are waiting, or when the oldest has waited its
``lookup_due_at`` (``FIND_ENRICH_WAIT`` after it was found; searches and
one-shot runs at once).  So a quiet day shares a few calls between all its
uploads instead of paying one per upload.  A row the lookup finds too long,
live, private or gone, and that no worker has taken yet, is ``skipped`` with
the reason, so it is never downloaded; one already taken keeps its course.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.settings import Settings
from bot.store import Video, VideoSource, VideoState
from bot.youtube.client import parse_duration, parse_rfc3339
from bot.youtube.ids import checked_video_id
from bot.youtube.quota import QuotaExhausted
from bot.youtube.views import record_views, view_count

if TYPE_CHECKING:
    from bot.youtube.client import YouTubeClient

log = logging.getLogger("find.discover")

#: Ids per videos.list call (the API's maximum, 1 unit whatever the count).
BATCH = 50


@dataclass
class Candidate:
    """A video id seen in a feed, a notification, a playlist or a search, before its lookup."""

    video_id: str
    via: str
    published_at: datetime | None = None
    title: str | None = None
    channel_id: str | None = None
    channel_title: str | None = None
    live_status: str | None = None


@dataclass
class LookupResult:
    """What one :func:`lookup_waiting` call did."""

    looked_up: int = 0
    skipped: set[str] = field(default_factory=set)
    calls: int = 0
    errors: list[str] = field(default_factory=list)


# ================================================================== record
def record_finds(
    settings: Settings,
    sessions: sessionmaker[Session],
    candidates: Iterable[Candidate],
    now: datetime,
    *,
    lookup_due: datetime,
) -> set[str]:
    """Insert the candidates not in the database yet; return the ids this call inserted.

    Candidates published before ``FIND_MIN_PUBLISHED`` are dropped.  Each new
    row waits for its lookup until ``lookup_due`` at the latest.
    """
    unique = dedupe(candidates, settings.min_published_at)
    rows = [_new_row(c, now, lookup_due) for c in unique.values()]
    inserted: set[str] = set()
    for start in range(0, len(rows), 500):
        inserted |= _insert_videos(sessions, rows[start : start + 500])
    for row in rows:
        if row["youtube_id"] in inserted:
            log_event(log, "discover.new_video", video=row["youtube_id"], via=row["discovered_via"])
    return inserted


def dedupe(candidates: Iterable[Candidate], min_published: datetime | None) -> dict[str, Candidate]:
    """One candidate per id (the first source wins), minus those older than FIND_MIN_PUBLISHED."""
    unique: dict[str, Candidate] = {}
    for c in candidates:
        # The one funnel of every source: no id reaches the database (or a file name) unchecked.
        if checked_video_id(c.video_id, source=c.via, logger=log) is None:
            continue
        if min_published and c.published_at and c.published_at < min_published:
            continue
        unique.setdefault(c.video_id, c)
    return unique


def _new_row(candidate: Candidate, now: datetime, lookup_due: datetime) -> dict[str, Any]:
    return {
        "youtube_id": candidate.video_id,
        "channel_youtube_id": candidate.channel_id,
        "channel_title": (candidate.channel_title or "")[:300] or None,
        "title": (candidate.title or "")[:500] or None,
        "published_at": candidate.published_at,
        "duration_s": None,
        "live_status": candidate.live_status,
        "privacy": None,
        "discovered_via": candidate.via[:520],
        "source": (
            VideoSource.YOUTUBE_SEARCH
            if candidate.via.startswith("query:")
            else VideoSource.YOUTUBE_UPLOAD
        ).value,
        "priority": 0,
        "discovered_at": now,
        "lookup_due_at": lookup_due,
        "state": VideoState.NEW.value,
        "last_error": None,
        "last_error_kind": None,
        "attempts": 0,
        "updated_at": now,
    }


def _insert_videos(sessions: sessionmaker[Session], rows: list[dict[str, Any]]) -> set[str]:
    """INSERT ... ON CONFLICT DO NOTHING; return the ids this call really inserted."""
    if not rows:
        return set()
    with sessions.begin() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = (
            insert(Video.__table__)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["youtube_id"])
            .returning(Video.__table__.c.youtube_id)
        )
        return set(session.scalars(statement))


# ================================================================== lookup
def waiting_count(sessions: sessionmaker[Session]) -> int:
    """Rows still waiting for their lookup (for reports and status)."""
    from sqlalchemy import func

    with sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Video).where(Video.lookup_due_at.is_not(None))
            )
            or 0
        )


def lookup_waiting(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    *,
    force: bool = False,
) -> LookupResult:
    """Look up waiting rows, 50 per ``videos.list`` call, while a call is worth making.

    A call is worth making when it is full (50 rows wait) or the oldest row's
    wait is over; ``force`` looks up everything now (one-shot runs).  Raises
    :class:`~bot.youtube.quota.QuotaExhausted` when the budget allows no call: the rows
    keep waiting (and meanwhile download without it).  Other API errors are
    returned in ``errors``; those rows are tried again at the next chance.
    """
    result = LookupResult()
    tried: set[int] = set()
    while True:
        batch = _next_batch(sessions, now, force=force, exclude=tried)
        if not batch:
            return result
        tried.update(row_id for row_id, _ in batch)
        ids = [youtube_id for _, youtube_id in batch]
        try:
            items = client.videos(ids)
        except QuotaExhausted:
            raise
        except Exception as exc:
            from bot.youtube.client import ApiKeyError, YouTubeError

            if isinstance(exc, ApiKeyError) or not isinstance(exc, YouTubeError):
                raise
            result.errors.append(f"videos.list for {len(ids)} new video(s): {exc}")
            _retry_later(sessions, [row_id for row_id, _ in batch], now, settings)
            continue
        result.calls += 1
        looked, skipped = _apply_lookup(settings, sessions, batch, items, now)
        result.looked_up += looked
        result.skipped |= skipped


def _next_batch(
    sessions: sessionmaker[Session], now: datetime, *, force: bool, exclude: set[int]
) -> list[tuple[int, str]]:
    """Up to 50 waiting rows, the most overdue first, if a call for them is worth it now."""
    query = (
        select(Video.id, Video.youtube_id, Video.lookup_due_at)
        .where(Video.lookup_due_at.is_not(None))
        .order_by(Video.lookup_due_at, Video.id)
        .limit(BATCH)
    )
    if exclude:
        query = query.where(Video.id.not_in(exclude))
    with sessions() as session:
        rows = session.execute(query).all()
    if not rows:
        return []
    if not force and len(rows) < BATCH and rows[0].lookup_due_at > now:
        return []  # a fuller batch is still worth waiting for
    return [(row.id, row.youtube_id) for row in rows]


def _retry_later(
    sessions: sessionmaker[Session], row_ids: list[int], now: datetime, settings: Settings
) -> None:
    """A failed lookup is tried again with the next batch, not hammered in a loop."""
    later = now + timedelta(seconds=min(3600, max(60, settings.poll_interval_s)))
    with sessions.begin() as session:
        for video in session.scalars(select(Video).where(Video.id.in_(row_ids))):
            if video.lookup_due_at is not None and video.lookup_due_at < later:
                video.lookup_due_at = later


def _apply_lookup(
    settings: Settings,
    sessions: sessionmaker[Session],
    batch: list[tuple[int, str]],
    items: list[dict[str, Any]],
    now: datetime,
) -> tuple[int, set[str]]:
    """Write what videos.list said; skip rows that should not be downloaded, if still free.

    The rows are locked for the update (``FOR UPDATE`` on PostgreSQL, the write
    transaction on SQLite), so a download worker cannot claim one between the
    check and the skip.
    """
    by_id = {item.get("id"): item for item in items}
    skipped: set[str] = set()
    with sessions.begin() as session:
        videos = session.scalars(
            select(Video).where(Video.id.in_([row_id for row_id, _ in batch])).with_for_update()
        ).all()
        for video in videos:
            item = by_id.get(video.youtube_id)
            video.lookup_due_at = None
            free = video.state == VideoState.NEW.value and (
                video.lease_expires_at is None or video.lease_expires_at < now
            )
            if item is None:
                reason = (
                    "unavailable",
                    f"video {video.youtube_id} is private, deleted or not public yet "
                    "(videos.list did not return it): nothing to do",
                )
            else:
                _fill(video, item)
                record_views(video, view_count(item), now)
                reason = skip_reason(video, settings)
            if reason is not None and free:
                video.state = VideoState.SKIPPED.value
                video.last_error_kind, video.last_error = reason
                video.next_attempt_at = None
                skipped.add(video.youtube_id)
                log_event(log, "discover.skipped_video", video=video.youtube_id, reason=reason[1])
    return len(videos), skipped


def _fill(video: Video, item: dict[str, Any]) -> None:
    snippet = item.get("snippet") or {}
    video.channel_youtube_id = snippet.get("channelId") or video.channel_youtube_id
    video.channel_title = (snippet.get("channelTitle") or video.channel_title or "")[:300] or None
    video.title = (snippet.get("title") or video.title or "")[:500] or None
    video.published_at = parse_rfc3339(snippet.get("publishedAt")) or video.published_at
    video.duration_s = parse_duration((item.get("contentDetails") or {}).get("duration"))
    video.live_status = snippet.get("liveBroadcastContent") or "none"
    video.privacy = (item.get("status") or {}).get("privacyStatus")
    # The uploader's own synthetic-media disclosure, from the same call (no extra quota).
    synthetic = (item.get("status") or {}).get("containsSyntheticMedia")
    video.declared_synthetic = synthetic if isinstance(synthetic, bool) else None


def skip_reason(video: Video, settings: Settings) -> tuple[str, str] | None:
    """(kind, message) when the settings say not to download this video, else None."""
    vid = video.youtube_id
    if video.privacy == "private":
        return "private", f"video {vid} is private: nothing to do"
    if settings.skip_live and video.live_status in ("live", "upcoming"):
        return "live", f"video {vid} is {video.live_status}: skipped because FIND_SKIP_LIVE=true"
    if video.duration_s is not None and video.duration_s > settings.max_duration_s:
        return (
            "too_long",
            f"video {vid} lasts {video.duration_s}s, over FIND_MAX_DURATION="
            f"{settings.max_duration_s}s: raise it to analyse such videos",
        )
    return None


def lookup_due(settings: Settings, now: datetime, *, at_once: bool = False) -> datetime:
    """When a row found now is looked up at the latest: FIND_ENRICH_WAIT later, or now."""
    if at_once:
        return now
    return now + timedelta(seconds=settings.enrich_wait_s)
