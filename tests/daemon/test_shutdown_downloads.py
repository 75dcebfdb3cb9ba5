"""SIGTERM during a download's retry wait starts no new attempt (issue 30 item 5).

A real ``find-bot run --role worker`` process downloads from the local media
server, which answers 429 to every request: the download stage waits before
its next attempt (``download.retry``).  The grace period is there to let
running work finish, not to start more: once SIGTERM arrives, the wait ends at
once, no request reaches the server again, the video is given back unchanged
(attempt not counted) and the process exits 0 long before the grace period ends.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.store import Video, VideoState
from tests.conftest import make_settings
from tests.daemon.helpers import FIND_BOT, clean_env, spawn, stop, wait_log


def test_sigterm_during_a_retry_wait_starts_no_new_download_attempt(
    sqlite_ingestion, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ing = sqlite_ingestion
    name = "stopwait001"
    ing.media.state.add(f"{name}.mp4", ing.samples["short"])
    ing.media.state.fail(f"{name}.mp4", 429, times=1000)
    values = ing.env(
        FIND_DATA_DIR=str(ing.base.data_dir),
        FIND_DOWNLOAD_WORKERS="1",
        FIND_ANALYSE_WORKERS="0",
        FIND_WORKER_ID="stop-worker",
        FIND_DOWNLOAD_RETRIES="5",
        FIND_SHUTDOWN_GRACE="60",
    )
    settings = make_settings(tmp_path, **values)
    with session_scope(settings) as session:
        session.add(Video(youtube_id=name, title="t", discovered_via="test"))
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, "run", "--role", "worker"], clean_env(**values), out)
    try:
        wait_log(out, "download.retry", 120)  # attempt 1 failed; waiting 2.5-5 s for attempt 2
        requests = ing.media.state.count(f"{name}.mp4")
        assert requests >= 1
        started = time.monotonic()
        assert stop(proc, timeout=60) == 0, out.read_text()[-3000:]
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = out.read_text()
    assert ing.media.state.count(f"{name}.mp4") == requests, "a new attempt started after SIGTERM"
    assert log.count("download.retry") == 1, log
    assert took < 15, f"shutdown took {took:.1f}s: it waited instead of stopping"
    with session_factory(settings)() as session:
        video = session.scalars(select(Video).where(Video.youtube_id == name)).one()
    assert video.state == VideoState.NEW.value and video.lease_owner is None
    assert video.attempts == 0  # given back: a shutdown is not the video's fault
    assert "queue.released" in log and "worker.error" not in log and "Traceback" not in log
