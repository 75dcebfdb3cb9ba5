"""Slow clients against every HTTP server we run, as real processes on 127.0.0.1 (issue 30,
item 4): ``find-bot web``, ``find-bot websub`` and the daemon's metrics endpoint.

A client that sends headers and part of a body used to keep ``web`` and ``websub`` alive
50-90 s after SIGTERM (uvicorn waited for the request without limit), past the units'
``TimeoutStopSec=30``, so systemd would SIGKILL them.  Now the body must arrive within
``BODY_TIMEOUT_S`` (408, connection closed) and a stop waits at most
``GRACEFUL_SHUTDOWN_S`` for requests in flight; the process exits 0 well inside the unit's
timeout.
"""

from __future__ import annotations

import configparser
import logging
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bot.httpserver import BODY_TIMEOUT_S, GRACEFUL_SHUTDOWN_S, uvicorn_config
from bot.settings import Settings
from tests.daemon.helpers import FIND_BOT, STUB_WORKER, clean_env, spawn, wait_log

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: What the test allows from SIGTERM to exit: half the units' TimeoutStopSec.
STOP_WITHIN_S = 15
CALLBACK = "https://find.example.org/websub"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _connect(port: int, data: bytes) -> socket.socket:
    """A client that sends ``data`` and then nothing more (it keeps the connection open)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(data)
    return sock


def _partial_post(path: str, content_type: str, partial: bytes) -> bytes:
    """Complete headers promising a 4 kB body, then only the first bytes of it."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Content-Length: 4096\r\n\r\n"
    ).encode() + partial


PARTIAL_HEADERS = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

SERVERS = {
    # command, extra environment, the slow request (headers + part of the body)
    "web": (
        ["web"],
        {"FIND_WEB_SECRET_KEY": "s" * 40, "FIND_WEB_SECURE_COOKIES": "false"},
        _partial_post("/login", "application/x-www-form-urlencoded", b"name=alice&pass"),
    ),
    "websub": (
        ["websub"],
        {"FIND_WEBSUB_CALLBACK_URL": CALLBACK, "FIND_WEBSUB_SECRET": "push-secret-0123456789"},
        _partial_post("/websub/UC" + "a" * 22, "application/atom+xml", b"<?xml version="),
    ),
}


def _stop_within(proc: subprocess.Popen[bytes], seconds: float, log: Path) -> float:
    """SIGTERM; the exit status must be 0 within ``seconds``. Returns the time it took."""
    started = time.monotonic()
    proc.terminate()
    try:
        code = proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"still running {seconds}s after SIGTERM; log tail:\n{log.read_text()[-2000:]}"
        ) from None
    assert code == 0, log.read_text()[-2000:]
    return time.monotonic() - started


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_slow_client_cannot_hold_the_server_past_the_units_stop_timeout(
    server: str, sqlite_settings: Settings, tmp_path: Path
) -> None:
    command, extra, slow_request = SERVERS[server]
    port = _free_port()
    port_var = "FIND_WEB_PORT" if server == "web" else "FIND_WEBSUB_PORT"
    env = clean_env(
        FIND_DATA_DIR=str(sqlite_settings.data_dir),
        FIND_DATABASE_URL=sqlite_settings.database_url,
        **{port_var: str(port)},
        **extra,
    )
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, *command], env, out, cwd=tmp_path)
    clients: list[socket.socket] = []
    try:
        wait_log(out, "Application startup complete", 300)
        # While it runs: a body that never completes is answered 408 and closed.
        slow = _connect(port, slow_request)
        clients.append(slow)
        started = time.monotonic()
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < BODY_TIMEOUT_S + 5
        # At a stop: one client mid-body, one mid-headers.
        clients += [_connect(port, slow_request), _connect(port, PARTIAL_HEADERS)]
        time.sleep(1)  # both requests are in the server's hands
        took = _stop_within(proc, STOP_WITHIN_S, out)
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = out.read_text()
    assert "signal=SIGTERM" in log and "Traceback" not in log, log[-2000:]
    assert "http.body_timeout" in log, log[-2000:]
    assert took < STOP_WITHIN_S


def test_a_slow_client_cannot_hold_the_daemon_through_its_metrics_endpoint(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """The daemon's /metrics (prometheus_client, a thread per connection) holds nothing at
    a stop either: its handler threads are daemon threads."""
    port = _free_port()
    env = clean_env(
        FIND_DATA_DIR=str(sqlite_settings.data_dir),
        FIND_DATABASE_URL=sqlite_settings.database_url,
        FIND_DOWNLOAD_WORKERS="0",
        FIND_ANALYSE_WORKERS="1",
        FIND_WORKER_ID="slow-metrics",
        FIND_METRICS_PORT=str(port),
    )
    out = tmp_path / "out.log"
    proc = spawn(STUB_WORKER, env, out)
    clients: list[socket.socket] = []
    try:
        wait_log(out, "daemon.started", 300)
        clients += [
            _connect(port, PARTIAL_HEADERS),
            _connect(port, _partial_post("/metrics", "text/plain", b"x")),
        ]
        time.sleep(1)
        _stop_within(proc, STOP_WITHIN_S, out)
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in out.read_text()


def test_requests_still_running_at_a_stop_are_cut_after_the_grace_period(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The stop's own bound, with the body deadline out of the way (any request that
    outlives the stop, a slow body or a slow download): cut after GRACEFUL_SHUTDOWN_S with
    a 503 and one log line, no traceback.  In-process: the server in a thread, stopped as
    its SIGTERM handler does."""
    import threading

    import uvicorn

    from bot.review.web import create_app
    from tests.review.test_web import _web_settings

    port = _free_port()
    config = uvicorn_config(create_app(_web_settings(sqlite_settings)), host="127.0.0.1", port=port)
    assert config.timeout_graceful_shutdown == GRACEFUL_SHUTDOWN_S
    config.app.seconds = 3600  # the body deadline: out of the way
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.INFO)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    slow = _connect(port, SERVERS["web"][2])
    try:
        time.sleep(0.5)
        started = time.monotonic()
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        thread.join(GRACEFUL_SHUTDOWN_S + 10)
        took = time.monotonic() - started
        assert not thread.is_alive(), "the stop waited for the slow client"
        assert slow.recv(4096).startswith(b"HTTP/1.1 503 ")
    finally:
        slow.close()
    assert GRACEFUL_SHUTDOWN_S <= took < GRACEFUL_SHUTDOWN_S + 5
    assert "http.cancelled_at_stop" in caplog.messages
    assert not [r for r in caplog.records if r.exc_info]  # uvicorn's one "Cancel" line only
    assert not [m for m in caplog.messages if "ASGI" in m]


def test_the_bounds_fit_inside_the_shipped_units_stop_timeout() -> None:
    """The numbers above against deploy/: a stop must finish well before systemd's SIGKILL."""
    for unit in ("find-bot-web.service", "find-bot-websub.service"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string((DEPLOY / unit).read_text())
        limit = int(parser["Service"]["TimeoutStopSec"])
        assert limit >= GRACEFUL_SHUTDOWN_S + 10, unit
        assert limit >= BODY_TIMEOUT_S + 10, unit
