"""The scheduler role in-process: discover on start, and no polling before the quota resets."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from bot.service.daemon import Daemon
from bot.store import utcnow
from bot.youtube.quota import next_reset
from tests.daemon.helpers import FIND_BOT, STUB_WORKER, clean_env, spawn, stop, wait_for, wait_log


def test_quota_exhausted_pauses_discover_until_the_reset(sqlite_ingestion, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ing = sqlite_ingestion
    channel = ing.channel("Busy channel")
    ing.upload(channel)
    ing.youtube.quota_limit = 0  # YouTube answers every call 403 quotaExceeded
    settings = ing.settings(
        FIND_DATA_DIR=str(ing.base.data_dir),
        FIND_CHANNELS=channel.id,
        FIND_POLL_INTERVAL="60",
        FIND_DOWNLOAD_WORKERS="0",
        FIND_ANALYSE_WORKERS="0",
    )
    reset = next_reset(utcnow())
    daemon = Daemon(settings, "scheduler", idle_s=0.1)
    daemon.start()
    try:

        def postponed() -> bool:
            when = daemon.periodic.scheduler.get_job("discover").next_run_time
            return when is not None and when >= reset

        wait_for(postponed, 60, "discover to be postponed to the quota reset", step=0.1)
        assert daemon.periodic.last_poll is not None
    finally:
        daemon.request_stop()
        assert daemon.shutdown() == 0


def test_one_active_scheduler_per_database_and_the_standby_takes_over(
    ingestion, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Two ``--role scheduler`` processes: one polls, one waits; after kill -9 the other polls."""
    channel = ingestion.channel("Watched")
    ingestion.upload(channel)
    values = ingestion.env(
        FIND_DATA_DIR=str(ingestion.base.data_dir),
        FIND_CHANNELS=channel.id,
        FIND_POLL_INTERVAL="1h",
    )
    env_file = tmp_path / "find.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    command = [
        *STUB_WORKER,
        "--role",
        "scheduler",
        "--env-file",
        str(env_file),
        "--heartbeat",
        "0.5",
    ]
    first = spawn(command, clean_env(), tmp_path / "first.log")
    second = None
    try:
        wait_log(tmp_path / "first.log", "discover.finished", 60)
        assert "scheduler=active" in (tmp_path / "first.log").read_text()
        second = spawn(command, clean_env(), tmp_path / "second.log")
        wait_log(tmp_path / "second.log", "scheduler.standby", 60)
        time.sleep(1.5)  # several leadership checks: the standby must stay idle
        assert "discover.started" not in (tmp_path / "second.log").read_text()

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        wait_log(tmp_path / "second.log", "scheduler.active", 20)
        wait_log(tmp_path / "second.log", "discover.finished", 30)
        assert stop(second) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_raising_the_budget_by_sighup_resumes_a_paused_discover(
    sqlite_ingestion, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """YouTube said quotaExceeded; the project gets more quota and the operator raises
    FIND_QUOTA_DAILY_BUDGET with a reload: discovery goes on now, not after midnight."""
    from sqlalchemy import select

    from bot.db import session_factory
    from bot.store import Video

    ing = sqlite_ingestion
    channels = [ing.channel(f"C{i}") for i in range(4)]
    uploads = {ing.upload(channel, serve=False).id for channel in channels}
    ing.youtube.quota_limit = 3
    env_file = tmp_path / "find.env"

    def write(budget: str) -> None:
        values = ing.env(
            FIND_DATA_DIR=str(ing.base.data_dir),
            FIND_CHANNELS=",".join(c.id for c in channels),
            # The pause is only logged when the next poll would come before the quota
            # resets (midnight Pacific): with 1h this test failed in the hour before it.
            FIND_POLL_INTERVAL="10s",
            FIND_QUOTA_DAILY_BUDGET=budget,
            FIND_DOWNLOAD_WORKERS="0",
            FIND_ANALYSE_WORKERS="0",
        )
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def found() -> set[str]:
        with session_factory(ing.base)() as session:
            return set(session.scalars(select(Video.youtube_id)))

    write("1000")
    out = tmp_path / "out.log"
    proc = spawn(
        [*FIND_BOT, "--env-file", str(env_file), "run", "--role", "scheduler"], clean_env(), out
    )
    try:
        wait_log(out, "discover.paused_until_quota_reset", 60)
        assert found() != uploads
        ing.youtube.quota_limit = None  # the Google project got more quota
        write("2000")
        proc.send_signal(signal.SIGHUP)
        wait_log(out, "discover.resumed", 10)
        wait_for(lambda: found() == uploads, 30, "the rest of the uploads", step=0.2)
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
