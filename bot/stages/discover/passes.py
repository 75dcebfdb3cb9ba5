"""Discover stage: find new uploads on watched channels and searches, within the quota.

One pass (:func:`discover_once`) reads like the pipeline:

0. **sync** the watched channels and queries from the settings (:mod:`.watchlist`);
1. **resolve** channels configured as ids or @handles (``channels.list``, 1 unit
   per 50 ids or per handle), once, cached in the row;
2. **read channel feeds** that are due (:mod:`bot.stages.discover.feeds`): public Atom feeds,
   no quota, conditional GETs on a jittered per-channel schedule;
3. **read uploads playlists** (``playlistItems.list``, 1 unit per 50 items) newest
   first down to the channel's cursor: for channels whose feed failed repeatedly or
   showed 15 new uploads at once (more may be hidden), or for every channel when
   ``FIND_CHANNEL_FEEDS=false``;
4. **keep push subscriptions** (:mod:`bot.stages.discover.websub`) when WebSub is configured;
5. **search** each due query with ``search.list`` (100 units) for videos published
   after its last good poll, paced to spend at most ``FIND_SEARCH_SHARE`` of the
   budget over the day (the rest is the channels', so neither starves the other);
   why a query waits, and until when, is written to its row for ``find-bot status``;
6. every find becomes a ``new`` video row at once, and new ids are **looked up**
   with ``videos.list`` in shared batches of 50 (:mod:`bot.stages.discover.lookup`).

:func:`tick_once` is the light pass the daemon runs every minute between full
passes: due feeds, owed playlist reads and due lookups only.

A channel's cursor and a query's ``last_success_at`` move only after what they
found is stored, so a crash, an error or an exhausted quota mid-pass loses
nothing: the next pass finds the same videos again and the insert ignores the
ones already there.  No database transaction is held open across a network call.
An exhausted quota stops the calls that cost units, never the feeds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import session_factory
from bot.logs import log_event
from bot.settings import Settings
from bot.stages.discover.lookup import (
    BATCH,
    Candidate,
    LookupResult,
    lookup_due,
    lookup_waiting,
    record_finds,
    waiting_count,
)
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import Channel, PollRun, SearchQuery, Video, utcnow
from bot.youtube.client import (
    ApiKeyError,
    YouTubeClient,
    YouTubeError,
    parse_rfc3339,
)
from bot.youtube.quota import (
    DAY,
    QuotaExhausted,
    QuotaLedger,
    cost_of,
    next_reset,
    search_budget,
    search_interval_s,
)

if TYPE_CHECKING:
    from bot.stages.discover.feeds import FeedReader

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


@dataclass
class DiscoverReport:
    """What one pass did; also written to the ``poll_runs`` row."""

    poll_id: int | None = None
    started_at: datetime | None = None
    new_videos: int = 0
    skipped_videos: int = 0
    #: Stored videos still waiting for a shared videos.list lookup (FIND_ENRICH_WAIT).
    awaiting_lookup: int = 0
    units: int = 0
    #: Channels read (feed or playlist) and searches run.
    channels_polled: int = 0
    queries_polled: int = 0
    queries_deferred: int = 0
    #: Feed reads: changed (200), unchanged (304), failed; channels owed a playlist read.
    feeds_read: int = 0
    feeds_unchanged: int = 0
    feeds_failed: int = 0
    playlist_reads: int = 0
    fallbacks: list[str] = field(default_factory=list)
    push_subscribed: int = 0
    errors: list[str] = field(default_factory=list)
    quota_exhausted: bool = False
    #: The channels' share of the budget is used up (searches may go on).
    channel_share_exhausted: bool = False
    #: When to try again after the quota ran out (next Pacific midnight plus jitter).
    resume_at: datetime | None = None
    #: Set when discovery stopped on a key/permission error; nothing will work until fixed.
    fatal: str | None = None
    #: Ids this pass inserted (new rows), to tell new from skipped after the lookups.
    found: set[str] = field(default_factory=set)

    def summary(self) -> str:
        text = (
            f"discover: {self.new_videos} new video(s), {self.skipped_videos} skipped, "
            f"{self.channels_polled} channel(s) and {self.queries_polled} query(ies) polled, "
            f"{self.units} unit(s) spent"
        )
        feeds = self.feeds_read + self.feeds_unchanged + self.feeds_failed
        if feeds:
            text += (
                f", feeds: {feeds} read ({self.feeds_unchanged} unchanged, "
                f"{self.feeds_failed} failed)"
            )
        if self.playlist_reads and feeds:
            text += f", {self.playlist_reads} playlist(s) read"
        if self.awaiting_lookup:
            text += f", {self.awaiting_lookup} waiting for a shared lookup"
        if self.queries_deferred:
            text += f", {self.queries_deferred} search(es) deferred to save quota"
        if self.errors:
            text += f", {len(self.errors)} error(s)"
        if self.quota_exhausted:
            text += "; quota exhausted"
        elif self.channel_share_exhausted:
            text += "; the channels' quota share is used up"
        return text

    @property
    def did_something(self) -> bool:
        return bool(self.found or self.units or self.errors or self.fallbacks)


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


# =================================================================== entry
def discover_once(
    settings: Settings,
    client: YouTubeClient | None = None,
    *,
    now: datetime | None = None,
    hold: bool = True,
    reader: FeedReader | None = None,
    force_feeds: bool = False,
) -> DiscoverReport:
    """Run one full discover pass and record it; return what it found.

    ``hold=False`` looks up every new upload now instead of letting a small
    batch wait for company (``FIND_ENRICH_WAIT``), and ``force_feeds`` reads
    every feed whether due or not: for one-shot runs and ``find-bot poll``.

    Raises :class:`bot.youtube.client.ApiKeyError` (after recording the pass) when the
    API refuses the key: every further call would fail the same way.
    """
    return _run_pass(settings, client, reader, now, full=True, hold=hold, force_feeds=force_feeds)


def tick_once(
    settings: Settings,
    client: YouTubeClient | None = None,
    *,
    now: datetime | None = None,
    reader: FeedReader | None = None,
) -> DiscoverReport:
    """The daemon's light pass between full ones: due feeds, owed playlist reads, due lookups.

    Costs quota only for the playlist reads the feeds asked for and lookups
    whose batch is full or whose wait is over.  Recorded as a poll run only when
    it found, spent or failed something.
    """
    return _run_pass(settings, client, reader, now, full=False, hold=True, force_feeds=False)


def _run_pass(
    settings: Settings,
    client: YouTubeClient | None,
    reader: FeedReader | None,
    now: datetime | None,
    *,
    full: bool,
    hold: bool,
    force_feeds: bool,
) -> DiscoverReport:
    wall_start = time.monotonic()
    now = now or utcnow()
    sessions = session_factory(settings)
    if client is None:
        client = make_client(settings)
    own_reader = reader is None and settings.channel_feeds
    if reader is None and settings.channel_feeds:
        from bot.stages.discover.feeds import FeedReader

        reader = FeedReader(settings)
    report = DiscoverReport(started_at=now)
    if full:
        with sessions.begin() as session:  # the configuration is the truth: mirror it first
            sync_watchlist(settings, session)
        report.poll_id = _start_poll_run(sessions, now, settings.worker_id)
        log_event(log, "discover.started", poll=report.poll_id)
    units_before = client.units_spent
    passing = _Pass(settings, sessions, client, now, report)
    try:
        if full:
            passing.api(lambda: _resolve_channels(sessions, client, report))
        if reader is not None:
            _read_feeds(settings, sessions, reader, now, report, force=force_feeds, hold=hold)
        if settings.channel_feeds or full:
            passing.channels(
                lambda: _read_playlists(
                    settings,
                    sessions,
                    client,
                    now,
                    report,
                    owed_only=settings.channel_feeds,
                    hold=hold,
                )
            )
        if full and settings.websub_callback_url:
            _keep_push_subscriptions(settings, sessions, now, report)
        passing.channels(lambda: _lookups(settings, sessions, client, now, report, force=not hold))
        if full:
            passing.api(lambda: _discover_queries(settings, sessions, client, now, report))
            passing.channels(
                lambda: _lookups(settings, sessions, client, now, report, force=not hold)
            )
    finally:
        if own_reader and reader is not None:
            reader.close()
        report.new_videos = len(report.found) - report.skipped_videos
        report.awaiting_lookup = waiting_count(sessions)
        report.units = client.units_spent - units_before
        finished = now + timedelta(seconds=time.monotonic() - wall_start)
        if full:
            _finish_poll_run(sessions, report, finished)
        elif report.did_something:
            report.poll_id = _start_poll_run(sessions, now, settings.worker_id)
            _finish_poll_run(sessions, report, finished)
    if full or report.did_something:
        log_event(
            log,
            "discover.finished" if full else "discover.tick",
            poll=report.poll_id,
            new=report.new_videos,
            skipped=report.skipped_videos,
            units=report.units,
            errors=len(report.errors),
        )
    if passing.fatal is not None:
        log_event(log, "discover.stopped", logging.ERROR, error=report.fatal)
        raise passing.fatal
    return report


class _Pass:
    """Runs the steps of a pass that cost quota, and stops them when the quota says so.

    The whole day's budget gone (or YouTube's ``quotaExceeded``) stops every
    paid step; the channels' share gone stops channel steps only (searches have
    their own share); a refused key stops everything paid and is raised at the
    end.  Feeds cost nothing and always run.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: YouTubeClient,
        now: datetime,
        report: DiscoverReport,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.now = now
        self.report = report
        self.fatal: ApiKeyError | None = None

    def api(self, step: Callable[[], None]) -> None:
        if self.fatal is not None or self.report.quota_exhausted:
            return
        try:
            step()
        except QuotaExhausted as exc:
            self._quota(exc)
        except ApiKeyError as exc:
            self.fatal = exc
            self.report.fatal = str(exc)
            self.report.errors.append(str(exc))

    def channels(self, step: Callable[[], None]) -> None:
        if self.report.channel_share_exhausted:
            return
        self.api(step)

    def _quota(self, exc: QuotaExhausted) -> None:
        report = self.report
        if exc.scope != DAY:
            if not report.channel_share_exhausted:
                report.channel_share_exhausted = True
                report.errors.append(str(exc))
                log_event(log, "discover.channel_share_used", logging.WARNING, error=str(exc))
            return
        report.errors.append(str(exc))
        report.quota_exhausted = True
        report.resume_at = exc.resets_at + timedelta(seconds=random.uniform(0, 300))
        _queries_wait_for_quota(self.sessions, report.resume_at)
        log_event(
            log,
            "discover.quota_exhausted",
            logging.WARNING,
            error=str(exc),
            resume_at=report.resume_at.isoformat(),
        )


# ================================================================ channels
def _read_feeds(
    settings: Settings,
    sessions: sessionmaker[Session],
    reader: FeedReader,
    now: datetime,
    report: DiscoverReport,
    *,
    force: bool,
    hold: bool,
) -> None:
    from bot.stages.discover.feeds import read_feeds

    result = read_feeds(settings, sessions, reader, now, force=force, hold=hold)
    report.feeds_read += result.read
    report.feeds_unchanged += result.unchanged
    report.feeds_failed += result.failed
    report.channels_polled += result.read + result.unchanged
    report.found |= result.found
    report.fallbacks += result.fallbacks
    report.errors += result.errors


def _read_playlists(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    report: DiscoverReport,
    *,
    owed_only: bool,
    hold: bool,
) -> None:
    """Page uploads playlists down to each channel's cursor; store finds, then move it.

    ``owed_only``: only channels whose feed asked for it (``playlist_due``).
    """
    due = lookup_due(settings, now, at_once=not hold)
    for task in _channels_to_poll(sessions, owed_only=owed_only):
        try:
            candidates, newest = _page_uploads(client, task, settings.min_published_at)
        except (ApiKeyError, QuotaExhausted):
            raise
        except YouTubeError as exc:
            _channel_failed(sessions, task, str(exc), report, forget_playlist=exc.status == 404)
            continue
        report.found |= record_finds(settings, sessions, candidates, now, lookup_due=due)
        _advance_cursor(sessions, task.id, newest, now)
        report.channels_polled += 1
        report.playlist_reads += 1


def _lookups(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    report: DiscoverReport,
    *,
    force: bool,
) -> None:
    result: LookupResult = lookup_waiting(settings, sessions, client, now, force=force)
    report.errors += result.errors
    report.skipped_videos += len(result.skipped & report.found)


def _keep_push_subscriptions(
    settings: Settings, sessions: sessionmaker[Session], now: datetime, report: DiscoverReport
) -> None:
    from bot.stages.discover.websub import maintain_subscriptions

    result = maintain_subscriptions(settings, sessions, now)
    report.push_subscribed += result.requested
    report.errors += result.errors


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


def _channels_to_poll(sessions: sessionmaker[Session], *, owed_only: bool) -> list[_ChannelTask]:
    """Active resolved channels, the longest-unpolled first (they go first if quota is short).

    ``owed_only``: only those whose feed asked for a playlist read.
    """
    with sessions() as session:
        query = select(Channel).where(
            Channel.active.is_(True), Channel.uploads_playlist_id.is_not(None)
        )
        if owed_only:
            query = query.where(Channel.playlist_due.is_not(None))
        rows = session.scalars(
            query.order_by(Channel.last_polled_at.is_not(None), Channel.last_polled_at, Channel.id)
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


def _advance_cursor(
    sessions: sessionmaker[Session], channel_id: int, newest: str | None, now: datetime
) -> None:
    """Move the channel's cursor once everything its read found is stored."""
    with sessions.begin() as session:
        row = session.get(Channel, channel_id)
        if row is None:
            return
        row.last_polled_at = now
        row.last_seen_video_id = newest or row.last_seen_video_id
        row.playlist_due = None
        if not (row.last_error or "").startswith("feed"):  # a failing feed stays visible
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
    share = client.ledger.search_units
    cost = cost_of("search.list")
    for task in _queries_to_search(settings, sessions, now, share):
        reason: str | None = None
        next_at: datetime | None = None
        if share < cost:
            reason = (
                f"never: FIND_SEARCH_SHARE={settings.search_share}% of "
                f"FIND_QUOTA_DAILY_BUDGET={settings.quota_daily_budget} is {share} units a "
                f"day, below the {cost} one search costs; raise either"
            )
        else:
            try:
                client.ledger.ensure("search.list")
            except QuotaExhausted as exc:
                if exc.scope == DAY:
                    raise
                left = client.ledger.remaining("search.list")
                reason = (
                    f"deferred: the searches' share of today's quota is used up "
                    f"({share - left}/{share} units); waits for the quota reset"
                )
                next_at = next_reset(now)
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
        except QuotaExhausted as exc:
            if exc.scope == DAY:
                raise
            report.queries_deferred += 1
            _query_waits(sessions, task.id, f"deferred: {exc}", next_reset(now))
            continue
        except YouTubeError as exc:
            _query_failed(sessions, task, str(exc), report)
            continue
        report.queries_polled += 1
        report.found |= record_finds(settings, sessions, candidates, now, lookup_due=now)
        with sessions.begin() as session:
            row = session.get(SearchQuery, task.id)
            if row is not None:
                row.last_success_at = now
                row.last_error = None


def _queries_to_search(
    settings: Settings, sessions: sessionmaker[Session], now: datetime, share: int
) -> list[_QueryTask]:
    """Active queries whose turn has come, given how often the searches' share lets each run.

    The others are marked as waiting for their turn (reason and time, for status).
    """
    with sessions() as session:
        rows = session.scalars(
            select(SearchQuery)
            .where(SearchQuery.active.is_(True))
            .order_by(
                SearchQuery.last_polled_at.is_not(None), SearchQuery.last_polled_at, SearchQuery.id
            )
        ).all()
        interval = timedelta(seconds=search_interval_s(share, len(rows), settings.poll_interval_s))
        # A little slack so a poll that starts a few seconds early still counts.
        slack = timedelta(seconds=min(60, settings.poll_interval_s // 10))
        due, waiting = [], []
        for r in rows:
            task = _QueryTask(r.id, r.query, r.last_success_at)
            if r.last_polled_at is None or now - r.last_polled_at >= interval - slack:
                due.append(task)
            else:
                waiting.append((task, r.last_polled_at + interval))
    hours = interval.total_seconds() / 3600
    for task, due_at in waiting:
        _query_waits(
            sessions,
            task.id,
            f"pacing: the searches' share ({share} units a day, FIND_SEARCH_SHARE="
            f"{settings.search_share}%) allows one search of each query every {hours:.1f} h",
            due_at,
        )
    return due


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


# ================================================================ plumbing
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
        search_units=search_budget(
            settings.quota_daily_budget, settings.search_share, bool(settings.search_queries)
        ),
        worker=settings.worker_id,
        clock=kwargs.pop("clock", utcnow),
    )
    return YouTubeClient(settings, ledger, clock=ledger.clock, **kwargs)
