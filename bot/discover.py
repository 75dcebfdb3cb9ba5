"""Discover stage: find new uploads on watched channels and searches, within the quota.

One pass (:func:`discover_once`) reads like the pipeline:

0. **sync** the watched channels and queries from the settings (:mod:`bot.watchlist`);
1. **resolve** channels configured as ids or @handles to their uploads playlist
   (``channels.list``, 1 unit per 50 ids or per handle), once, cached in the row;
2. **page channels**: ``playlistItems.list`` (1 unit per 50 items) newest first,
   stopping at the channel's last seen video: a quiet channel costs 1 unit a poll;
3. **search** each due query with ``search.list`` (100 units) for videos published
   after its last good poll, but only while the budget left keeps enough for
   every channel until the quota resets (channels are cheap, searches are not).
   A query that has waited ``SEARCH_STARVATION_LIMIT`` past its turn is searched
   anyway if the day still has the units, so a small budget delays searches but
   never starves them; why a query waits, and until when, is written to its row
   for ``find-bot status``;
4. **enrich** new ids in batches of 50 with ``videos.list`` (duration, live
   status, privacy) and **store** them idempotently: a video found by a channel
   and a query is one row.  Too long, live or private videos are stored as
   ``skipped`` with the reason, so they are never paid for twice.

A channel's cursor and a query's ``last_success_at`` move only after what they
found is stored, so a crash, an error or an exhausted quota mid-pass loses
nothing: the next pass finds the same videos again and the insert ignores the
ones already there.  No database transaction is held open across an API call.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import session_factory
from bot.logs import log_event
from bot.quota import (
    QuotaExhausted,
    QuotaLedger,
    channel_reserve,
    cost_of,
    next_reset,
    search_interval_s,
)
from bot.settings import Settings
from bot.store import Channel, PollRun, SearchQuery, Video, VideoState, utcnow
from bot.watchlist import sync_watchlist
from bot.youtube import (
    ApiKeyError,
    YouTubeClient,
    YouTubeError,
    parse_duration,
    parse_rfc3339,
)

log = logging.getLogger("find.discover")

#: A channel seen for the first time contributes only its newest page (50 uploads), not its
#: whole back catalogue; FIND_MIN_PUBLISHED narrows that further.
FIRST_POLL_PAGES = 1
#: Safety cap when the last seen video vanished from the playlist (deleted): stop paging here.
MAX_CHANNEL_PAGES = 10
#: Pages of 50 results per search (100 units each).
MAX_SEARCH_PAGES = 2
#: Searches look back this far past the last good poll: YouTube indexes new videos with a delay.
SEARCH_OVERLAP = timedelta(hours=1)
#: First search of a query, when FIND_MIN_PUBLISHED is not set, looks back this far.
FIRST_SEARCH_WINDOW = timedelta(days=1)
#: A due query that has waited this long for the channel reserve is searched anyway
#: (channels then wait a little instead: their cursors lose nothing).
SEARCH_STARVATION_LIMIT = timedelta(days=1)
BATCH = 50


@dataclass
class Candidate:
    """A video id seen in a playlist or search result, before enrichment."""

    video_id: str
    via: str
    published_at: datetime | None = None
    title: str | None = None
    channel_id: str | None = None
    channel_title: str | None = None


@dataclass
class DiscoverReport:
    """What one pass did; also written to the ``poll_runs`` row."""

    poll_id: int | None = None
    started_at: datetime | None = None
    new_videos: int = 0
    skipped_videos: int = 0
    #: New channel uploads left for a fuller videos.list batch (FIND_ENRICH_WAIT).
    held_videos: int = 0
    units: int = 0
    channels_polled: int = 0
    queries_polled: int = 0
    queries_deferred: int = 0
    errors: list[str] = field(default_factory=list)
    quota_exhausted: bool = False
    #: When to try again after the quota ran out (next Pacific midnight plus jitter).
    resume_at: datetime | None = None
    #: Set when discovery stopped on a key/permission error; nothing will work until fixed.
    fatal: str | None = None

    def summary(self) -> str:
        text = (
            f"discover: {self.new_videos} new video(s), {self.skipped_videos} skipped, "
            f"{self.channels_polled} channel(s) and {self.queries_polled} query(ies) polled, "
            f"{self.units} unit(s) spent"
        )
        if self.held_videos:
            text += f", {self.held_videos} held for a fuller lookup batch"
        if self.queries_deferred:
            text += f", {self.queries_deferred} search(es) deferred to save quota"
        if self.errors:
            text += f", {len(self.errors)} error(s)"
        if self.quota_exhausted:
            text += "; quota exhausted"
        return text


@dataclass
class _ChannelTask:
    """A detached snapshot of a channel row: safe to use while no session is open."""

    id: int
    configured_as: str
    youtube_id: str | None
    uploads_playlist_id: str | None
    last_seen_video_id: str | None
    #: Publication time of the last seen video: paging also stops at anything older, in case
    #: that video was deleted from the playlist.
    last_seen_published: datetime | None = None


@dataclass
class _QueryTask:
    id: int
    query: str
    last_success_at: datetime | None
    #: When the query's turn came (its last search plus its interval; creation if never).
    due_at: datetime | None = None


# =================================================================== entry
def discover_once(
    settings: Settings,
    client: YouTubeClient | None = None,
    *,
    now: datetime | None = None,
    hold: bool = True,
) -> DiscoverReport:
    """Run one discover pass and record it; return what it found.

    ``hold=False`` looks up every new channel upload now instead of letting a
    small batch wait for company (``FIND_ENRICH_WAIT``): for one-shot runs.

    Raises :class:`bot.youtube.ApiKeyError` (after recording the pass) when the
    API refuses the key: every further call would fail the same way.
    """
    wall_start = time.monotonic()
    now = now or utcnow()
    sessions = session_factory(settings)
    if client is None:
        client = make_client(settings)
    report = DiscoverReport(started_at=now)
    with sessions.begin() as session:  # the configuration is the truth: mirror it first
        sync_watchlist(settings, session)
    report.poll_id = _start_poll_run(sessions, now, settings.worker_id)
    units_before = client.units_spent
    fatal: ApiKeyError | None = None
    log_event(log, "discover.started", poll=report.poll_id)
    try:
        _discover_channels(settings, sessions, client, now, report, hold=hold)
        _discover_queries(settings, sessions, client, now, report)
    except QuotaExhausted as exc:
        if not report.quota_exhausted:  # (storing what was found may have noted it already)
            report.errors.append(str(exc))
        report.quota_exhausted = True
        report.resume_at = exc.resets_at + timedelta(seconds=random.uniform(0, 300))
        _queries_wait_for_quota(sessions, report.resume_at)
        log_event(
            log,
            "discover.quota_exhausted",
            logging.WARNING,
            error=str(exc),
            resume_at=report.resume_at.isoformat(),
        )
    except ApiKeyError as exc:
        fatal = exc
        report.fatal = str(exc)
        report.errors.append(str(exc))
    finally:
        report.units = client.units_spent - units_before
        finished = now + timedelta(seconds=time.monotonic() - wall_start)
        _finish_poll_run(sessions, report, finished)
    log_event(
        log,
        "discover.finished",
        poll=report.poll_id,
        new=report.new_videos,
        skipped=report.skipped_videos,
        units=report.units,
        errors=len(report.errors),
    )
    if fatal is not None:
        log_event(log, "discover.stopped", logging.ERROR, error=report.fatal)
        raise fatal
    return report


# ================================================================ channels
def _discover_channels(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    report: DiscoverReport,
    *,
    hold: bool,
) -> None:
    _resolve_channels(sessions, client, report)
    found: list[Candidate] = []
    cursors: dict[int, tuple[str | None, set[str]]] = {}
    try:
        for task in _channels_to_poll(sessions):
            _ensure_room_for(client, pages=1, candidates=len(found) + BATCH)
            try:
                candidates, newest = _page_uploads(client, task, settings.min_published_at)
            except ApiKeyError:
                raise
            except YouTubeError as exc:
                _channel_failed(sessions, task, str(exc), report, forget_playlist=exc.status == 404)
                continue
            found.extend(candidates)
            cursors[task.id] = (newest, {c.video_id for c in candidates})
            report.channels_polled += 1
    except QuotaExhausted:
        # Keep what was found before the budget ran out, if enriching it still fits.
        _store_channel_finds(
            settings, sessions, client, found, cursors, now, report, may_wait=False
        )
        raise
    _store_channel_finds(settings, sessions, client, found, cursors, now, report, may_wait=hold)


def _store_channel_finds(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    found: list[Candidate],
    cursors: dict[int, tuple[str | None, set[str]]],
    now: datetime,
    report: DiscoverReport,
    *,
    may_wait: bool,
) -> None:
    """Enrich and store channel finds now, or leave them for a fuller batch later.

    Holding costs nothing extra: a held channel's cursor stays put, so its next
    poll (1 unit, paid anyway) returns the same videos again; no state lives in
    memory and a restart loses nothing.
    """
    pending, handled = _pending(settings, sessions, found)
    if may_wait and _can_wait(pending, settings, now):
        report.held_videos += len(pending)
        log_event(log, "discover.enrich_held", videos=len(pending))
        _advance_channel_cursors(sessions, cursors, handled, now)
        return
    stored = _store(settings, sessions, client, found, now, report)
    _advance_channel_cursors(sessions, cursors, stored, now)


def _can_wait(pending: list[Candidate], settings: Settings, now: datetime) -> bool:
    """Hold new channel uploads while the batch is small and none has waited FIND_ENRICH_WAIT."""
    if not pending or settings.enrich_wait_s <= 0 or len(pending) >= BATCH:
        return False
    oldest_allowed = now - timedelta(seconds=settings.enrich_wait_s)
    return all(c.published_at is not None and c.published_at > oldest_allowed for c in pending)


def _resolve_channels(
    sessions: sessionmaker[Session], client: YouTubeClient, report: DiscoverReport
) -> None:
    """Find the id and uploads playlist of every channel that lacks them (once, then cached)."""
    with sessions() as session:
        pending = [
            (row.id, row.configured_as)
            for row in session.scalars(
                select(Channel).where(
                    Channel.active.is_(True), Channel.uploads_playlist_id.is_(None)
                )
            )
        ]
    ids = [(row_id, name) for row_id, name in pending if not name.startswith("@")]
    handles = [(row_id, name) for row_id, name in pending if name.startswith("@")]
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        try:
            items = client.channels_by_id([name for _, name in chunk])
        except ApiKeyError:
            raise
        except YouTubeError as exc:
            for row_id, name in chunk:
                _record_channel_error(sessions, row_id, name, str(exc), report)
            continue
        by_id = {item["id"]: item for item in items}
        for row_id, name in chunk:
            _save_resolution(sessions, row_id, name, by_id.get(name), report)
    for row_id, handle in handles:
        try:
            item = client.channel_by_handle(handle)
        except ApiKeyError:
            raise
        except YouTubeError as exc:
            _record_channel_error(sessions, row_id, handle, str(exc), report)
            continue
        _save_resolution(sessions, row_id, handle, item, report)


def _save_resolution(
    sessions: sessionmaker[Session],
    row_id: int,
    name: str,
    item: dict[str, Any] | None,
    report: DiscoverReport,
) -> None:
    if item is None:
        _record_channel_error(
            sessions,
            row_id,
            name,
            f"channel {name} not found on YouTube: check the id or handle in FIND_CHANNELS",
            report,
        )
        return
    playlist = (item.get("contentDetails") or {}).get("relatedPlaylists", {}).get("uploads")
    with sessions.begin() as session:
        row = session.get(Channel, row_id)
        twin = session.scalars(
            select(Channel).where(Channel.youtube_id == item["id"], Channel.id != row_id)
        ).first()
        if twin is not None:
            message = (
                f"channel {name} is the same channel as {twin.configured_as} ({item['id']}): "
                "remove one of them from FIND_CHANNELS"
            )
            row.last_error = message
            report.errors.append(message)
            return
        if not playlist:
            message = f"channel {name} has no uploads playlist: check FIND_CHANNELS"
            row.last_error = message
            report.errors.append(message)
            return
        row.youtube_id = item["id"]
        row.title = (item.get("snippet") or {}).get("title")
        row.uploads_playlist_id = playlist
        row.last_error = None
    log_event(log, "discover.channel_resolved", channel=name, channel_id=item["id"])


def _channels_to_poll(sessions: sessionmaker[Session]) -> list[_ChannelTask]:
    """Active resolved channels, the longest-unpolled first (they go first if quota is short)."""
    with sessions() as session:
        rows = session.scalars(
            select(Channel)
            .where(Channel.active.is_(True), Channel.uploads_playlist_id.is_not(None))
            .order_by(Channel.last_polled_at.is_not(None), Channel.last_polled_at, Channel.id)
        ).all()
        cursors = [r.last_seen_video_id for r in rows if r.last_seen_video_id]
        published = dict(
            session.execute(
                select(Video.youtube_id, Video.published_at).where(Video.youtube_id.in_(cursors))
            ).all()
        )
        return [
            _ChannelTask(
                r.id,
                r.configured_as,
                r.youtube_id,
                r.uploads_playlist_id,
                r.last_seen_video_id,
                published.get(r.last_seen_video_id),
            )
            for r in rows
        ]


def _page_uploads(
    client: YouTubeClient, task: _ChannelTask, min_published: datetime | None
) -> tuple[list[Candidate], str | None]:
    """Page the uploads playlist newest first until the last seen video.

    Returns the unseen candidates and the newest id (the channel's next cursor).
    """
    assert task.uploads_playlist_id is not None
    found: list[Candidate] = []
    newest: str | None = None
    token: str | None = None
    max_pages = FIRST_POLL_PAGES if task.last_seen_video_id is None else MAX_CHANNEL_PAGES
    for _page in range(max_pages):
        response = client.playlist_page(task.uploads_playlist_id, token)
        for item in response.get("items") or []:
            details = item.get("contentDetails") or {}
            snippet = item.get("snippet") or {}
            video_id = details.get("videoId") or (snippet.get("resourceId") or {}).get("videoId")
            if not video_id:
                continue
            newest = newest or video_id
            if video_id == task.last_seen_video_id:
                return found, newest
            published = parse_rfc3339(details.get("videoPublishedAt"))
            if min_published and published and published < min_published:
                return found, newest
            if task.last_seen_published and published and published < task.last_seen_published:
                return found, newest  # the last seen video was deleted: older ones are seen
            found.append(
                Candidate(
                    video_id=video_id,
                    via=f"channel:{task.youtube_id}",
                    published_at=published,
                    title=snippet.get("title"),
                    channel_id=task.youtube_id,
                    channel_title=snippet.get("channelTitle"),
                )
            )
        token = response.get("nextPageToken")
        if not token:
            break
    return found, newest


def _advance_channel_cursors(
    sessions: sessionmaker[Session],
    cursors: dict[int, tuple[str | None, set[str]]],
    stored: set[str],
    now: datetime,
) -> None:
    """Move each channel's cursor, but only if everything it found is stored."""
    with sessions.begin() as session:
        for channel_id, (newest, ids) in cursors.items():
            row = session.get(Channel, channel_id)
            if row is None:
                continue
            row.last_polled_at = now
            if ids <= stored:
                row.last_seen_video_id = newest or row.last_seen_video_id
                row.last_error = None


def _channel_failed(
    sessions: sessionmaker[Session],
    task: _ChannelTask,
    message: str,
    report: DiscoverReport,
    *,
    forget_playlist: bool,
) -> None:
    """One bad channel is recorded and skipped; the others go on."""
    text = f"channel {task.configured_as}: {message}"
    with sessions.begin() as session:
        row = session.get(Channel, task.id)
        if row is not None:
            row.last_error = text[:2000]
            if forget_playlist:  # re-resolve next time: the playlist or channel is gone
                row.uploads_playlist_id = None
    report.errors.append(text)
    log_event(
        log, "discover.channel_failed", logging.WARNING, channel=task.configured_as, error=message
    )


def _record_channel_error(
    sessions: sessionmaker[Session], row_id: int, name: str, message: str, report: DiscoverReport
) -> None:
    with sessions.begin() as session:
        row = session.get(Channel, row_id)
        if row is not None:
            row.last_error = message[:2000]
    report.errors.append(message)
    log_event(log, "discover.channel_failed", logging.WARNING, channel=name, error=message)


# ================================================================= queries
def _discover_queries(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    report: DiscoverReport,
) -> None:
    tasks, active_channels = _queries_to_search(settings, sessions, now)
    reserve = channel_reserve(active_channels, now, settings.poll_interval_s)
    cost = cost_of("search.list")
    for task in tasks:
        left = client.ledger.remaining()
        waited = now - task.due_at if task.due_at else timedelta(0)
        overdue = waited >= SEARCH_STARVATION_LIMIT
        reason: str | None = None
        next_at: datetime | None = None
        if settings.quota_daily_budget < cost:
            reason = (
                f"never: FIND_QUOTA_DAILY_BUDGET={settings.quota_daily_budget} is below the "
                f"{cost} units one search costs; raise it"
            )
        elif left - cost - 1 >= reserve:
            pass  # the channels keep their reserve: search
        elif overdue and left >= cost:
            log_event(
                log,
                "discover.search_overdue",
                query=task.query,
                waited_s=int(waited.total_seconds()),
            )
        elif overdue:
            reason = f"deferred: only {left} unit(s) left today; waits for the quota reset"
            next_at = next_reset(now)
        else:
            reason = (
                f"deferred: {left} unit(s) left today and {reserve} kept for the "
                f"{active_channels} channel(s) until the quota resets; a search that waits a "
                "day past its turn goes ahead of them"
            )
            next_at = (task.due_at or now) + SEARCH_STARVATION_LIMIT
        if reason is not None:
            report.queries_deferred += 1
            log_event(log, "discover.search_deferred", query=task.query, reason=reason)
            _query_waits(sessions, task.id, reason, next_at)
            continue
        _mark_query_polled(sessions, task, now)
        try:
            candidates = _search(client, task, settings.min_published_at, now)
        except ApiKeyError:
            raise
        except YouTubeError as exc:
            _query_failed(sessions, task, str(exc), report)
            continue
        report.queries_polled += 1
        stored = _store(settings, sessions, client, candidates, now, report)
        if {c.video_id for c in candidates} <= stored:
            with sessions.begin() as session:
                row = session.get(SearchQuery, task.id)
                if row is not None:
                    row.last_success_at = now
                    row.last_error = None


def _queries_to_search(
    settings: Settings, sessions: sessionmaker[Session], now: datetime
) -> tuple[list[_QueryTask], int]:
    """Active queries whose turn has come, given how often the budget lets each run.

    The others are marked as waiting for their turn (reason and time, for status).
    """
    with sessions() as session:
        active_channels = len(
            session.scalars(select(Channel.id).where(Channel.active.is_(True))).all()
        )
        rows = session.scalars(
            select(SearchQuery)
            .where(SearchQuery.active.is_(True))
            .order_by(
                SearchQuery.last_polled_at.is_not(None), SearchQuery.last_polled_at, SearchQuery.id
            )
        ).all()
        interval = timedelta(
            seconds=search_interval_s(
                settings.quota_daily_budget, active_channels, len(rows), settings.poll_interval_s
            )
        )
        # A little slack so a poll that starts a few seconds early still counts.
        slack = timedelta(seconds=min(60, settings.poll_interval_s // 10))
        due, waiting = [], []
        for r in rows:
            due_at = r.created_at if r.last_polled_at is None else r.last_polled_at + interval
            task = _QueryTask(r.id, r.query, r.last_success_at, due_at)
            if r.last_polled_at is None or now - r.last_polled_at >= interval - slack:
                due.append(task)
            else:
                waiting.append(task)
    hours = interval.total_seconds() / 3600
    for task in waiting:
        _query_waits(
            sessions,
            task.id,
            f"pacing: FIND_QUOTA_DAILY_BUDGET allows one search of each query every {hours:.1f} h",
            task.due_at,
        )
    return due, active_channels


def _search(
    client: YouTubeClient, task: _QueryTask, min_published: datetime | None, now: datetime
) -> list[Candidate]:
    """Videos newer than the query's last good poll (with overlap), newest first."""
    if task.last_success_at is not None:
        after = task.last_success_at - SEARCH_OVERLAP
    else:
        after = now - FIRST_SEARCH_WINDOW
    if min_published and min_published > after:
        after = min_published
    found: list[Candidate] = []
    token: str | None = None
    for _page in range(MAX_SEARCH_PAGES):
        response = client.search_page(task.query, after, token)
        for item in response.get("items") or []:
            video_id = (item.get("id") or {}).get("videoId")
            if not video_id:
                continue
            snippet = item.get("snippet") or {}
            found.append(
                Candidate(
                    video_id=video_id,
                    via=f"query:{task.query}"[:520],
                    published_at=parse_rfc3339(snippet.get("publishedAt")),
                    title=snippet.get("title"),
                    channel_id=snippet.get("channelId"),
                    channel_title=snippet.get("channelTitle"),
                )
            )
        token = response.get("nextPageToken")
        if not token:
            break
    return found


def _mark_query_polled(sessions: sessionmaker[Session], task: _QueryTask, now: datetime) -> None:
    with sessions.begin() as session:
        row = session.get(SearchQuery, task.id)
        if row is not None:
            row.last_polled_at = now
            row.waiting_reason = row.next_search_at = None


def _query_waits(
    sessions: sessionmaker[Session], query_id: int, reason: str, next_at: datetime | None
) -> None:
    """Write down why a query was not searched now and when it will be (for status)."""
    with sessions.begin() as session:
        row = session.get(SearchQuery, query_id)
        if row is not None:
            row.waiting_reason = reason[:1000]
            row.next_search_at = next_at


def _queries_wait_for_quota(sessions: sessionmaker[Session], resume_at: datetime) -> None:
    """The pass stopped on the quota: every active query waits for the reset."""
    with sessions.begin() as session:
        for row in session.scalars(select(SearchQuery).where(SearchQuery.active.is_(True))):
            row.waiting_reason = (
                "the day's quota is used up; searches resume after the reset "
                "(or when FIND_QUOTA_DAILY_BUDGET is raised)"
            )
            if row.next_search_at is None or row.next_search_at < resume_at:
                row.next_search_at = resume_at


def _query_failed(
    sessions: sessionmaker[Session], task: _QueryTask, message: str, report: DiscoverReport
) -> None:
    text = f"query {task.query!r}: {message}"
    with sessions.begin() as session:
        row = session.get(SearchQuery, task.id)
        if row is not None:
            row.last_error = text[:2000]
    report.errors.append(text)
    log_event(log, "discover.query_failed", logging.WARNING, query=task.query, error=message)


# ================================================================== store
def _store(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    candidates: list[Candidate],
    now: datetime,
    report: DiscoverReport,
) -> set[str]:
    """Enrich and insert candidates; return the ids now in the database (new or known).

    Stops quietly at the first batch the quota no longer allows: the callers
    keep their cursors where they were, so the rest is found again next pass.
    """
    todo, handled = _pending(settings, sessions, candidates)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        try:
            items = client.videos([c.video_id for c in batch])
        except QuotaExhausted as exc:
            if not report.quota_exhausted:
                report.quota_exhausted = True
                report.resume_at = exc.resets_at + timedelta(seconds=random.uniform(0, 300))
                report.errors.append(str(exc))
            break
        except ApiKeyError:
            raise
        except YouTubeError as exc:
            report.errors.append(f"videos.list for {len(batch)} new video(s): {exc}")
            continue
        rows = [_video_row(c, items, settings, now) for c in batch]
        inserted = _insert_videos(sessions, rows)
        for row in rows:
            if row["youtube_id"] in inserted:
                if row["state"] == VideoState.NEW.value:
                    report.new_videos += 1
                    log_event(
                        log,
                        "discover.new_video",
                        video=row["youtube_id"],
                        via=row["discovered_via"],
                    )
                else:
                    report.skipped_videos += 1
                    log_event(
                        log,
                        "discover.skipped_video",
                        video=row["youtube_id"],
                        reason=row["last_error"],
                    )
        handled.update(c.video_id for c in batch)
    return handled


def _pending(
    settings: Settings, sessions: sessionmaker[Session], candidates: list[Candidate]
) -> tuple[list[Candidate], set[str]]:
    """Split candidates into those still to enrich and the ids already handled.

    Handled: already in the database, or filtered out (older than FIND_MIN_PUBLISHED).
    """
    unique = _dedupe(candidates, settings.min_published_at)
    known = _known_ids(sessions, list(unique))
    handled = set(known) | {c.video_id for c in candidates if c.video_id not in unique}
    return [c for vid, c in unique.items() if vid not in known], handled


def _dedupe(
    candidates: Iterable[Candidate], min_published: datetime | None
) -> dict[str, Candidate]:
    """One candidate per id (the first source wins), minus those older than FIND_MIN_PUBLISHED."""
    unique: dict[str, Candidate] = {}
    for c in candidates:
        if min_published and c.published_at and c.published_at < min_published:
            continue
        unique.setdefault(c.video_id, c)
    return unique


def _known_ids(sessions: sessionmaker[Session], ids: list[str]) -> set[str]:
    known: set[str] = set()
    with sessions() as session:
        for start in range(0, len(ids), 500):
            known.update(
                session.scalars(
                    select(Video.youtube_id).where(Video.youtube_id.in_(ids[start : start + 500]))
                )
            )
    return known


def _video_row(
    candidate: Candidate, items: list[dict[str, Any]], settings: Settings, now: datetime
) -> dict[str, Any]:
    """The ``videos`` row for a candidate, with the filters from settings applied."""
    item = next((i for i in items if i.get("id") == candidate.video_id), None)
    row: dict[str, Any] = {
        "youtube_id": candidate.video_id,
        "channel_youtube_id": candidate.channel_id,
        "channel_title": (candidate.channel_title or "")[:300] or None,
        "title": (candidate.title or "")[:500] or None,
        "published_at": candidate.published_at,
        "duration_s": None,
        "live_status": None,
        "privacy": None,
        "discovered_via": candidate.via[:520],
        "discovered_at": now,
        "state": VideoState.NEW.value,
        "last_error": None,
        "last_error_kind": None,
    }
    if item is None:
        return _skip(
            row,
            "unavailable",
            f"video {candidate.video_id} is private, deleted or not public yet "
            "(videos.list did not return it): nothing to do",
        )
    snippet = item.get("snippet") or {}
    row.update(
        channel_youtube_id=snippet.get("channelId") or candidate.channel_id,
        channel_title=(snippet.get("channelTitle") or candidate.channel_title or "")[:300] or None,
        title=(snippet.get("title") or candidate.title or "")[:500] or None,
        published_at=parse_rfc3339(snippet.get("publishedAt")) or candidate.published_at,
        duration_s=parse_duration((item.get("contentDetails") or {}).get("duration")),
        live_status=snippet.get("liveBroadcastContent") or "none",
        privacy=(item.get("status") or {}).get("privacyStatus"),
    )
    return _apply_filters(row, settings)


def _apply_filters(row: dict[str, Any], settings: Settings) -> dict[str, Any]:
    vid = row["youtube_id"]
    if row["privacy"] == "private":
        return _skip(row, "private", f"video {vid} is private: nothing to do")
    if settings.skip_live and row["live_status"] in ("live", "upcoming"):
        return _skip(
            row, "live", f"video {vid} is {row['live_status']}: skipped because FIND_SKIP_LIVE=true"
        )
    if row["duration_s"] is not None and row["duration_s"] > settings.max_duration_s:
        return _skip(
            row,
            "too_long",
            f"video {vid} lasts {row['duration_s']}s, over FIND_MAX_DURATION="
            f"{settings.max_duration_s}s: raise it to analyse such videos",
        )
    return row


def _skip(row: dict[str, Any], kind: str, message: str) -> dict[str, Any]:
    row.update(state=VideoState.SKIPPED.value, last_error=message, last_error_kind=kind)
    return row


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


# ================================================================ plumbing
def _ensure_room_for(client: YouTubeClient, *, pages: int, candidates: int) -> None:
    """Stop paging while the budget still has room to enrich what was found."""
    needed = pages * cost_of("playlistItems.list") + math.ceil(candidates / BATCH) * cost_of(
        "videos.list"
    )
    left = client.ledger.remaining()
    if left < needed:
        now = client.clock()
        raise QuotaExhausted(
            f"daily YouTube quota budget nearly reached ({left} unit(s) left): the remaining "
            "channels are polled after midnight Pacific time; raise FIND_QUOTA_DAILY_BUDGET "
            "only if the Google project's quota is higher",
            resets_at=next_reset(now),
        )


def _start_poll_run(sessions: sessionmaker[Session], now: datetime, worker: str) -> int:
    with sessions.begin() as session:
        run = PollRun(started_at=now, worker=worker)
        session.add(run)
        session.flush()
        return run.id


def _finish_poll_run(
    sessions: sessionmaker[Session], report: DiscoverReport, finished: datetime
) -> None:
    with sessions.begin() as session:
        run = session.get(PollRun, report.poll_id)
        if run is None:
            return
        run.finished_at = finished
        run.new_videos = report.new_videos
        run.units = report.units
        run.errors = len(report.errors)
        note = report.summary()
        if report.errors:
            note += "\n" + "\n".join(report.errors[:20])
        run.note = note[:4000]


def make_client(settings: Settings, **kwargs: Any) -> YouTubeClient:
    """A client with a ledger on the settings' database (what the daemon should use)."""
    ledger = QuotaLedger(
        session_factory(settings),
        settings.quota_daily_budget,
        worker=settings.worker_id,
        clock=kwargs.pop("clock", utcnow),
    )
    return YouTubeClient(settings, ledger, clock=ledger.clock, **kwargs)
