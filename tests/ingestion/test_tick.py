"""The daemon's light pass: due feeds read every minute between full passes, in-process."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from bot.db import session_factory, session_scope
from bot.service.daemon import Daemon
from bot.service.periodic import TICK_S
from bot.store import Channel, Video, utcnow


def _video_ids(settings) -> set[str]:
    with session_factory(settings)() as session:
        return set(session.scalars(select(Video.youtube_id)))


def test_the_scheduler_reads_due_feeds_between_full_passes(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    first = ing.upload(channel, serve=False)
    settings = ing.settings(
        CHANNELS=channel.id,
        CHANNEL_FEEDS="true",
        POLL_INTERVAL="1h",
        DOWNLOAD_WORKERS="0",
        ANALYSE_WORKERS="0",
    )
    daemon = Daemon(settings, "scheduler", idle_s=0.1)
    daemon.start()
    try:
        assert daemon.periodic.scheduler.get_job("tick").trigger.interval.total_seconds() == TICK_S
        deadline = time.monotonic() + 30
        while first.id not in _video_ids(settings):  # the full pass at start
            assert time.monotonic() < deadline, "the first pass found nothing"
            time.sleep(0.1)
        while daemon.periodic.discover_lock.locked():
            time.sleep(0.05)
        api_calls = len(ing.youtube.requests)

        fresh = ing.upload(channel, serve=False)
        daemon.periodic.run_tick()  # not due yet: nothing read
        assert fresh.id not in _video_ids(settings)
        with session_scope(settings) as session:  # its turn comes
            session.execute(update(Channel).values(feed_next_at=utcnow()))
        daemon.periodic.run_tick()
        assert fresh.id in _video_ids(settings)
        # ENRICH_WAIT=0 in the fixture: the tick looked it up too, and called nothing else.
        assert [r.resource for r in ing.youtube.requests[api_calls:]] == ["videos"]

        with daemon.periodic.discover_lock:  # a full pass is running: the tick stands aside
            reads = len(ing.youtube.feed_calls())
            with session_scope(settings) as session:
                session.execute(update(Channel).values(feed_next_at=utcnow()))
            daemon.periodic.run_tick()
            assert len(ing.youtube.feed_calls()) == reads
    finally:
        daemon.request_stop()
        assert daemon.shutdown() == 0
