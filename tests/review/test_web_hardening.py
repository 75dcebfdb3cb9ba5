"""The review web app under attack and outage (issue 21): login throttling per account,
forwarded headers, proxy-auth on a public bind, out-of-range ids, database outages."""

from __future__ import annotations

import logging
import shutil
import socket
import warnings
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

with warnings.catch_warnings():  # starlette warns about httpx vs httpx2 on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bot.db import dispose_engines, session_factory
from bot.errors import SettingsError
from bot.httpserver import uvicorn_config
from bot.review import reviewers
from bot.review.web import create_app
from bot.review.web.app import LoginThrottle
from tests.daemon.helpers import FIND_BOT, clean_env, spawn
from tests.review.conftest import seed_video
from tests.review.test_web import HTML, PASSWORD, _csrf, _login, _web_settings

WRONG = "not the password"


def _client(app, address: str) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, base_url="http://127.0.0.1", client=(address, 40000))


@pytest.fixture
def two_reviewers(sqlite_settings):  # type: ignore[no-untyped-def]
    s = _web_settings(sqlite_settings)
    for name in ("alice", "bob"):
        reviewers.add_reviewer(session_factory(s), name, PASSWORD)
    return s


def test_wrong_passwords_for_one_account_do_not_lock_out_the_others(two_reviewers) -> None:  # type: ignore[no-untyped-def]
    """Item 2: ten wrong passwords for alice from an office's one address lock alice out
    there, not bob, and not alice at home."""
    app = create_app(two_reviewers)
    office = _client(app, "198.51.100.7")
    for _ in range(10):
        assert _login(office, "alice", WRONG).status_code == 401
    assert _login(office, "alice", PASSWORD).status_code == 429
    assert _login(office, "bob", PASSWORD).status_code == 303
    assert _login(_client(app, "203.0.113.9"), "alice", PASSWORD).status_code == 303


def test_guesses_spread_over_addresses_or_accounts_are_throttled_too(two_reviewers) -> None:  # type: ignore[no-untyped-def]
    app = create_app(two_reviewers)
    app.state.throttle = LoginThrottle(3, max_account_failures=5, max_address_failures=8)
    for i in range(5):  # one guess each from five addresses, all at alice
        assert _login(_client(app, f"192.0.2.{i}"), "alice", WRONG).status_code == 401
    assert _login(_client(app, "192.0.2.99"), "alice", PASSWORD).status_code == 429
    sprayer = _client(app, "198.51.100.1")  # one password tried on many names
    for i in range(8):
        assert _login(sprayer, f"user{i}", WRONG).status_code == 401
    assert _login(sprayer, "bob", PASSWORD).status_code == 429
    assert _login(_client(app, "198.51.100.2"), "bob", PASSWORD).status_code == 303


def test_forwarded_for_is_believed_only_from_a_named_proxy(two_reviewers) -> None:  # type: ignore[no-untyped-def]
    """Item 2: behind FIND_WEB_TRUSTED_PROXIES the client is the forwarded address (so the
    throttle counts real clients); the in-process twin of the real-server test below."""
    config = uvicorn_config(
        create_app(two_reviewers), host="127.0.0.1", port=1, trusted_proxies=("127.0.0.1",)
    )
    config.load()
    proxy = _client(config.loaded_app, "127.0.0.1")
    token = _csrf(proxy.get("/login", headers=HTML).text)
    for i in range(12):  # twelve clients behind the proxy, one wrong password each
        answer = proxy.post(
            "/login",
            data={"name": "alice", "password": WRONG, "csrf_token": token},
            headers={**HTML, "X-Forwarded-For": f"203.0.113.{i}"},
        )
        assert answer.status_code == 401


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_real_server_ignores_forwarded_for_without_a_trusted_proxy(
    two_reviewers, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Item 2: rotating X-Forwarded-For from 127.0.0.1 used to give unlimited guesses."""
    import httpx

    from tests.daemon.helpers import stop, wait_for

    port = _free_port()
    env = clean_env(
        FIND_DATA_DIR=str(two_reviewers.data_dir),
        FIND_DATABASE_URL=two_reviewers.database_url,
        FIND_WEB_SECRET_KEY="s" * 40,
        FIND_WEB_SECURE_COOKIES="false",
        FIND_WEB_PORT=str(port),
    )
    out = tmp_path / "web.log"
    proc = spawn([*FIND_BOT, "web"], env, out, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, out.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 300, "find-bot web to answer", step=0.5)
        with httpx.Client(base_url=url, timeout=30) as client:
            token = _csrf(client.get("/login", headers=HTML).text)
            codes = [
                client.post(
                    "/login",
                    data={"name": "alice", "password": WRONG, "csrf_token": token},
                    headers={**HTML, "X-Forwarded-For": f"203.0.113.{i}"},
                ).status_code
                for i in range(11)
            ]
        assert codes == [401] * 10 + [429]
    finally:
        code = stop(proc, timeout=120)
    log = out.read_text()
    assert "client=127.0.0.1" in log and "client=203.0.113" not in log
    assert code == 0 and "web.stopped" in log, log[-2000:]  # item 18: exit 0 on SIGTERM


def test_proxy_auth_header_on_a_public_bind_refuses_to_start(sqlite_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Item 3: anyone reaching 0.0.0.0 could send the header; refuse, one line, unless the
    proxy is named."""
    from bot.commands.web import check_web_settings

    s = _web_settings(
        sqlite_settings, FIND_WEB_AUTH_HEADER="X-Forwarded-User", FIND_WEB_SECRET_KEY=""
    )
    env = clean_env(
        FIND_DATA_DIR=str(s.data_dir),
        FIND_DATABASE_URL=s.database_url,
        FIND_WEB_AUTH_HEADER="X-Forwarded-User",
        FIND_WEB_PORT=str(_free_port()),
    )
    out = tmp_path / "web.log"
    proc = spawn([*FIND_BOT, "web", "--host", "0.0.0.0"], env, out, cwd=tmp_path)
    try:
        code = proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = out.read_text().strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "FIND_WEB_AUTH_HEADER" in lines[0] and "0.0.0.0" in lines[0]
    assert "FIND_WEB_TRUSTED_PROXIES" in lines[0]
    for host in ("0.0.0.0", "::", "192.0.2.1", "find.example.org"):
        with pytest.raises(SettingsError):
            check_web_settings(s, host)
    for host in ("127.0.0.1", "::1", "localhost"):
        check_web_settings(s, host)
    trusted = _web_settings(
        sqlite_settings,
        FIND_WEB_AUTH_HEADER="X-Forwarded-User",
        FIND_WEB_SECRET_KEY="",
        FIND_WEB_TRUSTED_PROXIES="10.0.0.5",
    )
    check_web_settings(trusted, "0.0.0.0")


def test_trusted_proxies_setting_is_validated(sqlite_settings) -> None:  # type: ignore[no-untyped-def]
    s = _web_settings(sqlite_settings, FIND_WEB_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8,::1")
    assert s.web_trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    with pytest.raises(SettingsError, match=r"FIND_WEB_TRUSTED_PROXIES: 'proxy\.local' is not"):
        _web_settings(sqlite_settings, FIND_WEB_TRUSTED_PROXIES="proxy.local")


def test_out_of_range_ids_are_404_not_500(settings, caplog) -> None:  # type: ignore[no-untyped-def]
    """Item 16: ids the database cannot store (SQLite: 64-bit, PostgreSQL: 32-bit) are no row."""
    s = _web_settings(settings)
    seeded = seed_video(s, "vidAAAAAAA1", crops=1)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        assert _login(client).status_code == 303
        caplog.set_level(logging.INFO)
        for path in (
            "/plots/99999999999999999999999.png",
            "/crops/99999999999999999999999/0",
            "/crops/99999999999999999999999/0/heatmap",
            "/plots/2147483648.png",
            "/crops/2147483648/0",
            "/plots/-1.png",
            "/plots/0.png",
            f"/crops/{seeded.analysis_id}/99999999999999999999999",
        ):
            assert client.get(path).status_code == 404, path
        assert client.get(f"/crops/{seeded.analysis_id}/0").status_code == 200
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


def test_a_database_outage_is_a_503_page_and_healthz_says_so(two_reviewers, caplog) -> None:  # type: ignore[no-untyped-def]
    """Item 16: with the database gone, pages answer 503 (one log line, no traceback) and
    /healthz fails; when it is back, both recover."""
    s = two_reviewers
    seed_video(s, "vidAAAAAAA1")
    database = Path(make_url(s.database_url).database)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        assert _login(client).status_code == 303
        assert client.get("/healthz").text == "ok\n"
        dispose_engines()  # the outage: the file can no longer be opened
        moved = database.parent / "elsewhere"
        moved.mkdir()
        for suffix in ("", "-wal", "-shm"):
            source = database.with_name(database.name + suffix)
            if source.exists():
                shutil.move(source, moved / source.name)
        database.mkdir()
        caplog.set_level(logging.INFO)
        try:
            page = client.get("/queue", headers=HTML)
            assert page.status_code == 503 and "database is unreachable" in page.text
            assert page.headers["retry-after"] == "30"
            assert client.get("/queue").status_code == 503
            assert client.get("/videos/vidAAAAAAA1", headers=HTML).status_code == 503
            health = client.get("/healthz")
            assert health.status_code == 503 and "database" in health.text
        finally:
            dispose_engines()
            database.rmdir()
            for moved_file in moved.iterdir():
                shutil.move(moved_file, database.parent / moved_file.name)
        lines = [r for r in caplog.records if r.getMessage() == "web.database_unavailable"]
        assert len(lines) == 1 and "OperationalError" in lines[0].error
        assert not any(r.exc_info for r in caplog.records)
        assert client.get("/healthz").text == "ok\n"
        assert client.get("/queue", headers=HTML).status_code == 200


def test_a_bad_query_is_a_500_not_an_outage(two_reviewers, caplog) -> None:  # type: ignore[no-untyped-def]
    """The page tells "the database is unreachable" (503, come back later) from a database
    that answers but refuses the query (here a table the code expects is gone): a bug, a 500
    page with the traceback in the log, never "try again in a minute"."""
    from sqlalchemy import text

    s = two_reviewers
    seed_video(s, "vidAAAAAAA1")
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        assert _login(client).status_code == 303
        with session_factory(s)() as session:
            session.execute(text("ALTER TABLE videos RENAME TO videos_elsewhere"))
            session.commit()
        caplog.set_level(logging.INFO)
        page = client.get("/queue", headers=HTML)
        assert page.status_code == 500 and "unreachable" not in page.text
        assert "went wrong on the server" in page.text
        assert client.get("/queue").status_code == 500
        assert not [r for r in caplog.records if r.getMessage() == "web.database_unavailable"]
        errors = [r for r in caplog.records if r.getMessage().startswith("web.database_error")]
        assert errors and "no such table" in str(errors[0].exc_info[1])
