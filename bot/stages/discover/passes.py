"""One discover pass: the steps in order, each stopped in time by the quota.

One pass (:func:`discover_once`) reads like the pipeline:

0. **sync** the watched channels and queries from the settings (:mod:`.watchlist`);
1. **resolve** channels configured as ids or @handles, once (:mod:`.channels`);
2. **read channel feeds** that are due (:mod:`.feeds`): public Atom feeds, no quota,
   conditional GETs on a jittered per-channel schedule;
3. **read uploads playlists** down to each channel's cursor (:mod:`.channels`): for
   channels whose feed asked for it, or for every channel when ``FIND_CHANNEL_FEEDS=false``;
4. **keep push subscriptions** (:mod:`.websub`) when WebSub is configured;
5. **search** each due query (:mod:`.searches`), paced to its share of the budget;
6. every find becomes a ``new`` video row at once, and new ids are **looked up**
   with ``videos.list`` in shared batches of 50 (:mod:`.lookup`).

:func:`tick_once` is the light pass the daemon runs every minute between full
passes: due feeds, owed playlist reads and due lookups only.

A channel's cursor and a query's ``last_success_at`` move only after what they
found is stored, so a crash, an error or an exhausted quota mid-pass loses
nothing: the next pass finds the same videos again and the insert ignores the
ones already there.  No database transaction is held open across a network call.
An exhausted quota stops the calls that cost units (:class:`_Pass`), never the feeds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from bot.db import session_factory
from bot.logs import log_event
from bot.settings import Settings
from bot.stages.discover.channels import read_playlists, resolve_channels
from bot.stages.discover.lookup import (
    LookupResult,
    lookup_waiting,
    waiting_count,
)
from bot.stages.discover.report import DiscoverReport
from bot.stages.discover.searches import queries_wait_for_quota, run_searches
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import PollRun, utcnow
from bot.youtube.client import (
    ApiKeyError,
    YouTubeClient,
)
from bot.youtube.quota import (
    DAY,
    QuotaExhausted,
    QuotaLedger,
    search_budget,
)

if TYPE_CHECKING:
    from bot.stages.discover.feeds import FeedReader


log = logging.getLogger("find.discover")


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
            passing.api(lambda: resolve_channels(sessions, client, report))
        if reader is not None:
            _read_feeds(settings, sessions, reader, now, report, force=force_feeds, hold=hold)
        if settings.channel_feeds or full:
            passing.channels(
                lambda: read_playlists(
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
            passing.api(lambda: run_searches(settings, sessions, client, now, report))
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
        queries_wait_for_quota(self.sessions, report.resume_at)
        log_event(
            log,
            "discover.quota_exhausted",
            logging.WARNING,
            error=str(exc),
            resume_at=report.resume_at.isoformat(),
        )


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
