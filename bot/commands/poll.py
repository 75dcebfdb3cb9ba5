"""``find-bot poll``: discover new uploads and download them, once or on the poll interval.

``--once`` is the whole ingestion pipeline in one go, for cron jobs, first
runs and tests: sync the watchlist from settings, run one discover pass, then
download every video that is due, and print a summary.  Without ``--once`` it
repeats that every ``FIND_POLL_INTERVAL`` (sleeping until the quota resets when
it ran out); ``find-bot run`` is the full service with analysis and review.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.queue import StageHandler
    from bot.settings import Settings
    from bot.stages.discover import DiscoverReport

log = logging.getLogger("find.poll")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "poll",
        help="discover new YouTube uploads and download them",
        description=(
            "Discover new videos on the watched channels (FIND_CHANNELS) and searches "
            "(FIND_SEARCH_QUERIES) within the daily quota, then download them into the media "
            "directory. With --once: one pass, then exit (0 = discovery ran, even if some "
            "videos were skipped; 1 = discovery had errors). Without: repeat every "
            "FIND_POLL_INTERVAL until interrupted."
        ),
    )
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    parser.add_argument(
        "--no-download", action="store_true", help="only discover; leave downloads to the daemon"
    )
    parser.set_defaults(handler=_poll)


@dataclass
class DownloadSummary:
    downloaded: int = 0
    skipped: int = 0
    failed: int = 0
    retry_later: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"download: {self.downloaded} downloaded, {self.skipped} skipped, "
            f"{self.failed} failed, {self.retry_later} to retry later"
        )


def download_due(
    settings: Settings, *, handler: StageHandler | None = None, limit: int | None = None
) -> DownloadSummary:
    """Run the download stage until no video is due (or ``limit`` jobs), and count outcomes."""
    from bot.db import session_factory
    from bot.hostfault import HostFault
    from bot.queue import WorkQueue, run_one
    from bot.stages.download import make_download_handler
    from bot.store import Video, VideoState

    sessions = session_factory(settings)
    queue = WorkQueue(sessions, lease_s=settings.lease_s, max_attempts=settings.max_attempts)
    handler = handler or make_download_handler(settings)
    summary = DownloadSummary()
    done = 0
    while limit is None or done < limit:
        try:
            job = run_one(queue, "download", settings.worker_id, handler)
        except HostFault as fault:  # the next video would meet the same disk: stop here
            summary.retry_later += 1
            summary.errors.append(str(fault))
            break
        if job is None:
            break
        done += 1
        with sessions() as session:
            video = session.get(Video, job.video_id)
            state = video.state if video else None
            error = video.last_error if video else None
        if state == VideoState.DOWNLOADED.value:
            summary.downloaded += 1
        elif state == VideoState.SKIPPED.value:
            summary.skipped += 1
        elif state == VideoState.FAILED.value:
            summary.failed += 1
        else:
            summary.retry_later += 1
        if error and state != VideoState.DOWNLOADED.value:
            summary.errors.append(error)
    return summary


def poll_once(
    settings: Settings, *, download: bool = True, hold: bool = True
) -> tuple[DiscoverReport, DownloadSummary | None]:
    """Sync the watchlist, discover once, download what is due.

    Every channel feed is read, due or not (this runs once per FIND_POLL_INTERVAL at
    most, not on the daemon's per-channel schedule).  ``hold=False`` (``--once``)
    looks up every new upload now rather than waiting up to FIND_ENRICH_WAIT for a
    fuller batch: a one-shot run has no later pass.
    """
    from bot.db import session_scope
    from bot.stages.discover import discover_once
    from bot.stages.discover.watchlist import sync_watchlist
    from bot.terminal import printable

    with session_scope(settings) as session:
        change = sync_watchlist(settings, session)
    if change.changed:
        print(change)
    report = discover_once(settings, hold=hold, force_feeds=True)
    print(report.summary())
    print(_quota_line(settings))
    for error in report.errors:  # they quote channel ids, queries and servers' replies
        print(f"  ! {printable(error)}")
    downloads = download_due(settings) if download else None
    if downloads is not None:
        print(downloads)
        for error in downloads.errors:
            print(f"  - {printable(error)}")
    return report, downloads


def _quota_line(settings: Settings) -> str:
    from bot.db import session_factory
    from bot.store import utcnow
    from bot.youtube.quota import QuotaLedger, quota_day

    ledger = QuotaLedger(session_factory(settings), settings.quota_daily_budget)
    return (
        f"quota: {ledger.used_today()}/{settings.quota_daily_budget} units used today "
        f"({quota_day(utcnow())} Pacific)"
    )


def _poll(args: argparse.Namespace) -> int:
    from bot import db
    from bot.commands.common import settings_from_args
    from bot.store import utcnow

    settings = settings_from_args(args)
    settings.require("youtube_api_key", "poll")
    db.check_schema(settings)
    if not settings.channels and not settings.search_queries:
        from bot.errors import SettingsError

        raise SettingsError(
            "nothing to watch: set FIND_CHANNELS and/or FIND_SEARCH_QUERIES "
            "(see config.example.env)"
        )
    while True:
        report, _downloads = poll_once(settings, download=not args.no_download, hold=not args.once)
        if args.once:
            return 1 if report.errors and not report.quota_exhausted else 0
        resume_at: datetime | None = report.resume_at
        wait = settings.poll_interval_s
        if resume_at is not None:
            wait = max(wait, int((resume_at - utcnow()).total_seconds()))
        print(f"next poll in {wait}s")
        time.sleep(wait)
