"""Signals and systemd integration, on real daemon processes.

* sd_notify: READY=1 after start-up, STATUS= lines, WATCHDOG=1 pings when
  WATCHDOG_USEC is set, RELOADING=1/READY=1 around a SIGHUP, STOPPING=1.
* SIGTERM: in-flight work finishes within the grace period; work that
  outlives it is released (lease cleared, attempt not counted); exit code 0.
* SIGHUP: channel/query changes are applied and logged; an invalid settings
  file is rejected with one log line and the old settings stay in force.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_scope
from bot.settings import Settings
from bot.store import Channel, SearchQuery, Video, VideoState, Worker
from tests.daemon.helpers import (
    FIND_BOT,
    STUB_WORKER,
    clean_env,
    spawn,
    stop,
    wait_for,
    wait_log,
)
from tests.fakes.youtube_api import VALID_KEY, FakeYouTubeServer

CHANNEL_A = "UC" + "a" * 22
CHANNEL_B = "UC" + "b" * 22


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    """A datagram socket playing systemd's NOTIFY_SOCKET (short path: sun_path is 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="find-notify-", dir="/tmp")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield sock
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def _receive_until(sock: socket.socket, wanted: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            continue
        if wanted in seen:
            return
    raise AssertionError(f"{wanted} not received within {timeout}s; got {seen}")


def _worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return clean_env(
        FIND_DATA_DIR=str(settings.data_dir),
        FIND_DATABASE_URL=settings.database_url,
        FIND_DOWNLOAD_WORKERS="0",
        FIND_ANALYSE_WORKERS="1",
        FIND_WORKER_ID="sig-worker",
        **extra,
    )


def test_sd_notify_ready_status_watchdog_reload_stopping(
    sqlite_settings: Settings, tmp_path: Path, notify_socket: socket.socket
) -> None:
    env = _worker_env(
        sqlite_settings,
        NOTIFY_SOCKET=notify_socket.getsockname(),
        WATCHDOG_USEC="400000",  # ping every 0.2 s
    )
    proc = spawn(STUB_WORKER, env, tmp_path / "out.log")
    seen: list[str] = []
    try:
        _receive_until(notify_socket, "READY=1", 30, seen)
        assert any(line.startswith("STATUS=role worker") for line in seen), seen
        assert f"MAINPID={proc.pid}" in seen
        seen.clear()
        # The waits are upper bounds for a loaded CI machine, not timings: each message
        # normally arrives within a second.
        _receive_until(notify_socket, "WATCHDOG=1", 30, seen)
        seen.clear()
        proc.send_signal(signal.SIGHUP)
        _receive_until(notify_socket, "RELOADING=1", 30, seen)
        assert any(line.startswith("MONOTONIC_USEC=") for line in seen)
        _receive_until(notify_socket, "READY=1", 30, seen)
        seen.clear()
        proc.send_signal(signal.SIGTERM)
        _receive_until(notify_socket, "STOPPING=1", 30, seen)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with session_scope(sqlite_settings) as session:
        worker = session.get(Worker, "sig-worker")
        assert worker is not None and worker.status == "stopped" and worker.pid == proc.pid


def test_watchdog_pings_stop_when_a_job_is_wedged(
    sqlite_settings: Settings, tmp_path: Path, notify_socket: socket.socket
) -> None:
    """A hung handler keeps its lease fresh forever; the watchdog must let systemd restart us."""
    _one_video(sqlite_settings)
    stub_log = tmp_path / "stub.log"
    env = _worker_env(
        sqlite_settings,
        NOTIFY_SOCKET=notify_socket.getsockname(),
        WATCHDOG_USEC="400000",
        STUB_WORK_S="600",
        STUB_LOG=str(stub_log),
    )
    proc = spawn([*STUB_WORKER, "--max-job", "1"], env, tmp_path / "out.log")
    seen: list[str] = []
    try:
        _receive_until(notify_socket, "READY=1", 30, seen)
        wait_log(stub_log, "start sigvid00001", 30)
        wait_log(tmp_path / "out.log", "worker.stuck", 10)
        time.sleep(0.5)
        while True:  # drain what was sent before the job counted as wedged
            try:
                notify_socket.recv(4096)
            except TimeoutError:
                break
        seen.clear()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                seen.extend(notify_socket.recv(4096).decode().splitlines())
        assert "WATCHDOG=1" not in seen
    finally:
        proc.kill()
        proc.wait()


def _one_video(settings: Settings) -> None:
    with session_scope(settings) as session:
        session.add(Video(youtube_id="sigvid00001", state="downloaded", media_path="x"))


def _video(settings: Settings) -> Video:
    with session_scope(settings) as session:
        return session.scalars(select(Video)).one()


def test_sigterm_releases_work_that_outlives_the_grace_period(
    settings: Settings, tmp_path: Path
) -> None:
    _one_video(settings)
    stub_log = tmp_path / "stub.log"
    env = _worker_env(settings, FIND_SHUTDOWN_GRACE="1", STUB_WORK_S="600", STUB_LOG=str(stub_log))
    proc = spawn(STUB_WORKER, env, tmp_path / "out.log")
    try:
        wait_log(stub_log, "start sigvid00001", 30)
        assert _video(settings).lease_owner == "sig-worker/analyse-0"
        started = time.monotonic()
        assert stop(proc, timeout=15) == 0
        assert time.monotonic() - started < 10, "shutdown is not bounded by the grace period"
    finally:
        if proc.poll() is None:
            proc.kill()
    video = _video(settings)
    assert video.state == VideoState.DOWNLOADED.value
    assert video.lease_owner is None and video.lease_expires_at is None
    assert video.attempts == 0  # a shutdown is not the video's fault
    out = (tmp_path / "out.log").read_text()
    assert "daemon.stopped" in out and "released=1" in out


def test_second_signal_cuts_the_grace_period_short(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """Ctrl-C twice: the operator does not want to wait; work is released, exit is still 0."""
    _one_video(sqlite_settings)
    stub_log = tmp_path / "stub.log"
    env = _worker_env(
        sqlite_settings, FIND_SHUTDOWN_GRACE="600", STUB_WORK_S="600", STUB_LOG=str(stub_log)
    )
    proc = spawn(STUB_WORKER, env, tmp_path / "out.log")
    try:
        wait_log(stub_log, "start sigvid00001", 30)
        proc.send_signal(signal.SIGINT)
        wait_log(tmp_path / "out.log", "daemon.stopping", 10)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    video = _video(sqlite_settings)
    assert video.state == VideoState.DOWNLOADED.value and video.lease_owner is None


def test_sigterm_lets_short_work_finish(sqlite_settings: Settings, tmp_path: Path) -> None:
    _one_video(sqlite_settings)
    stub_log = tmp_path / "stub.log"
    env = _worker_env(
        sqlite_settings, FIND_SHUTDOWN_GRACE="30", STUB_WORK_S="1.5", STUB_LOG=str(stub_log)
    )
    proc = spawn(STUB_WORKER, env, tmp_path / "out.log")
    try:
        wait_log(stub_log, "start sigvid00001", 30)
        assert stop(proc, timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    video = _video(sqlite_settings)
    assert video.state == VideoState.ANALYSED.value and video.lease_owner is None
    assert "end sigvid00001" in stub_log.read_text()


def _write_env(path: Path, settings: Settings, api: str, **values: str) -> None:
    lines = [
        f"FIND_DATA_DIR={settings.data_dir}",
        f"FIND_DATABASE_URL={settings.database_url}",
        "FIND_DOWNLOAD_WORKERS=0",
        "FIND_ANALYSE_WORKERS=0",
        f"FIND_YOUTUBE_API_KEY={VALID_KEY}",
        f"FIND_YOUTUBE_API_ENDPOINT={api}",  # the fake API (knows none of these channels)
        "FIND_POLL_INTERVAL=1h",
    ]
    lines += [f"{k}={v}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")


def test_sighup_reloads_channels_and_rejects_an_invalid_file(
    sqlite_settings: Settings, tmp_path: Path, fake_youtube: FakeYouTubeServer
) -> None:
    """Real ``find-bot --env-file F run``: edit F, SIGHUP, watch the log and the watchlist rows."""
    env_file = tmp_path / "find.env"
    _write_env(
        env_file,
        sqlite_settings,
        fake_youtube.url,
        FIND_CHANNELS=CHANNEL_A,
        FIND_SEARCH_QUERIES="q one",
    )
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, "--env-file", str(env_file), "run"], clean_env(), out)
    try:
        wait_log(out, "daemon.started", 60)
        wait_log(out, "config.watchlist", 10)

        def active() -> tuple[set[str], set[str]]:
            with session_scope(sqlite_settings) as session:
                channels = set(session.scalars(select(Channel.configured_as).where(Channel.active)))
                queries = set(session.scalars(select(SearchQuery.query).where(SearchQuery.active)))
            return channels, queries

        assert active() == ({CHANNEL_A}, {"q one"})

        mark = len(out.read_bytes())
        _write_env(
            env_file,
            sqlite_settings,
            fake_youtube.url,
            FIND_CHANNELS=CHANNEL_B,
            FIND_SEARCH_QUERIES="q one|q two",
        )
        proc.send_signal(signal.SIGHUP)
        log = wait_log(out, "config.reloaded", 10, start=mark)[mark:]
        assert f"config.channel_added channel={CHANNEL_B}" in log
        assert f"config.channel_removed channel={CHANNEL_A}" in log
        assert 'config.query_added query="q two"' in log
        wait_for(lambda: active() == ({CHANNEL_B}, {"q one", "q two"}), 30, "the new watchlist")

        mark = len(out.read_bytes())
        _write_env(env_file, sqlite_settings, fake_youtube.url, FIND_CHANNELS="not a channel!")
        proc.send_signal(signal.SIGHUP)
        log = wait_log(out, "config.reload_rejected", 10, start=mark)[mark:]
        rejected = [line for line in log.splitlines() if "config.reload_rejected" in line]
        assert len(rejected) == 1 and "FIND_CHANNELS" in rejected[0], rejected
        assert "keeping" in rejected[0]
        time.sleep(0.5)
        assert proc.poll() is None, "an invalid reload must not stop the daemon"
        # (a discover pass that started before a reload may sync the old list for a moment;
        # the daemon re-syncs when it ends, hence wait_for rather than a single look)
        wait_for(lambda: active() == ({CHANNEL_B}, {"q one", "q two"}), 30, "the old settings")

        mark = len(out.read_bytes())
        _write_env(
            env_file, sqlite_settings, fake_youtube.url, FIND_CHANNELS=CHANNEL_B, FIND_LEASE="1h"
        )
        proc.send_signal(signal.SIGHUP)
        log = wait_log(out, "config.reloaded", 10, start=mark)[mark:]
        assert "config.needs_restart" in log and "setting=lease_s" in log
        # The diff is against the settings in force (B, q one|q two): the bad file changed nothing.
        assert 'config.query_removed query="q one"' in log
        assert 'config.query_removed query="q two"' in log
        assert "config.channel_" not in log
        wait_for(lambda: active() == ({CHANNEL_B}, set()), 30, "queries removed")
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_find_bot_run_without_bundle_fails_with_one_line(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = clean_env(
        FIND_DATA_DIR=str(sqlite_settings.data_dir),
        FIND_DATABASE_URL=sqlite_settings.database_url,
        FIND_MODEL_BUNDLE=str(tmp_path / "no-such-bundle"),
        FIND_DOWNLOAD_WORKERS="0",
    )
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, "run", "--role", "worker"], env, out)
    assert proc.wait(60) != 0
    text = out.read_text()
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, text
    assert "no model bundle" in errors[0] and "FIND_MODEL_BUNDLE" in errors[0]
    assert "Traceback" not in text
    with session_scope(sqlite_settings) as session:  # `find-bot status` shows why
        [worker] = session.scalars(select(Worker)).all()
        assert worker.status.startswith("failed to start: no model bundle")


def test_a_reload_never_empties_the_watchlist_by_accident(
    sqlite_settings: Settings, tmp_path: Path, fake_youtube: FakeYouTubeServer
) -> None:
    """The implicit ``.env`` replaced under a running daemon: gone, empty, or without a
    watchlist.  Each SIGHUP in between is refused with one line and the watchlist stays;
    only ``FIND_CHANNELS=none`` empties it."""
    workdir = tmp_path / "service"
    workdir.mkdir()
    env_file = workdir / ".env"  # found implicitly: no --env-file
    _write_env(
        env_file,
        sqlite_settings,
        fake_youtube.url,
        FIND_CHANNELS=CHANNEL_A,
        FIND_SEARCH_QUERIES="q",
    )
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, "run"], clean_env(), out, cwd=workdir)

    def active() -> tuple[set[str], set[str]]:
        with session_scope(sqlite_settings) as session:
            channels = set(session.scalars(select(Channel.configured_as).where(Channel.active)))
            queries = set(session.scalars(select(SearchQuery.query).where(SearchQuery.active)))
        return channels, queries

    def reload_rejected(reason: str) -> None:
        mark = len(out.read_bytes())
        proc.send_signal(signal.SIGHUP)
        log = wait_log(out, "config.reload_rejected", 10, start=mark)[mark:]
        time.sleep(0.3)
        log = out.read_text()[mark:]
        rejected = [line for line in log.splitlines() if "config.reload_rejected" in line]
        assert len(rejected) == 1 and reason in rejected[0], log
        assert "config.reloaded" not in log and "config.channel_removed" not in log
        assert proc.poll() is None
        assert active() == ({CHANNEL_A}, {"q"})

    try:
        wait_log(out, "config.watchlist", 60)
        assert active() == ({CHANNEL_A}, {"q"})

        env_file.unlink()  # a deploy replacing the file: gone for a moment
        reload_rejected(f"settings file {env_file} is missing")

        env_file.write_text("")  # an editor that truncates first
        reload_rejected(f"settings file {env_file} is empty")
        env_file.write_text("# only a comment so far\nFIND_CHANNELS=\n")
        reload_rejected("is empty")

        _write_env(env_file, sqlite_settings, fake_youtube.url)  # forgot the watchlist
        reload_rejected("FIND_CHANNELS=none")

        mark = len(out.read_bytes())
        _write_env(env_file, sqlite_settings, fake_youtube.url, FIND_CHANNELS="none")
        proc.send_signal(signal.SIGHUP)
        log = wait_log(out, "config.reloaded", 10, start=mark)[mark:]
        assert f"config.channel_removed channel={CHANNEL_A}" in log
        wait_for(lambda: active() == (set(), set()), 30, "the watchlist emptied on purpose")
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_find_bot_websub_exits_0_on_sigterm(sqlite_settings: Settings, tmp_path: Path) -> None:
    """Issue 21, item 18: like `run`, the push receiver ends a `systemctl stop` with status 0
    (uvicorn re-raises the signal after its graceful shutdown: the process used to die by
    it, status 143).  `find-bot web`: see tests/review/test_web_hardening.py."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = clean_env(
        FIND_DATA_DIR=str(sqlite_settings.data_dir),
        FIND_DATABASE_URL=sqlite_settings.database_url,
        FIND_WEBSUB_CALLBACK_URL="https://find.example.org/websub",
        FIND_WEBSUB_SECRET="push-master-secret-0123456789",
        FIND_WEBSUB_PORT=str(port),
    )
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, "websub"], env, out, cwd=tmp_path)
    try:
        wait_log(out, "Application startup complete", 300)
        assert stop(proc, timeout=120) == 0, out.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = out.read_text()
    assert "websub.stopped" in log and "signal=SIGTERM" in log and "Traceback" not in log
    # Issue 30 item 5: uvicorn's ANSI-coloured copy of each message stays out of the log.
    assert "Started server process" in log
    assert "color_message" not in log and "\x1b" not in log
