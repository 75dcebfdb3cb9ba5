"""The web page's last low findings (issue 30, item 8): malformed numbers answered before
the login check, parallel guesses counted before the slow hash, stored links checked,
security headers on 500s."""

from __future__ import annotations

import re
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import text

with warnings.catch_warnings():  # starlette warns about httpx vs httpx2 on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bot.db import session_factory, session_scope
from bot.httpserver import uvicorn_config
from bot.review import reviewers
from bot.review.web import create_app
from bot.review.web.app import LOGIN_MAX_FAILURES, SECURITY_HEADERS
from bot.review.web.links import link_kind
from bot.store import VideoSource
from tests.review.conftest import seed_video
from tests.review.test_web import HTML, PASSWORD, _csrf, _login, _web_settings

MALFORMED = ("/crops/x/0", "/crops/1/x/context", "/plots/x.png", "/queue?page=x")


def test_a_malformed_number_meets_the_login_check_first_then_an_html_page(web) -> None:  # type: ignore[no-untyped-def]
    """(a) FastAPI's 422 JSON came before the login check; now a stranger gets the login
    redirect (a page) or 401 (anything else), a reviewer a 404/400 page."""
    client, _s = web
    for path in MALFORMED:
        page = client.get(path, headers=HTML, follow_redirects=False)
        assert page.status_code == 303, (path, page.status_code, page.text)
        assert page.headers["location"].startswith("/login?next="), path
        other = client.get(path, follow_redirects=False)
        assert other.status_code == 401 and "json" not in other.headers["content-type"], path
    assert _login(client).status_code == 303
    for path, status in zip(MALFORMED, (404, 404, 404, 400), strict=True):
        page = client.get(path, headers=HTML, follow_redirects=False)
        assert page.status_code == status, (path, page.text)
        assert page.headers["content-type"].startswith("text/html"), path
        assert "int_parsing" not in page.text and '"detail"' not in page.text
    assert "page" in client.get("/queue?page=x", headers=HTML).text
    assert client.get("/queue?page=2", headers=HTML).status_code == 200


@contextmanager
def _serving(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app under uvicorn (our configuration) on a free 127.0.0.1 port, in a thread."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_parallel_wrong_passwords_get_no_more_password_checks_than_the_limit(
    sqlite_settings,
) -> None:  # type: ignore[no-untyped-def]
    """(b) 40 wrong passwords sent at once: each attempt is counted before the slow hash, so
    exactly LOGIN_MAX_FAILURES are checked (401) and the rest refused (429).  Counted after
    the hash, 29 of 40 were checked."""
    s = _web_settings(sqlite_settings)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with _serving(create_app(s)) as url, httpx.Client(base_url=url, timeout=120) as client:
        token = _csrf(client.get("/login", headers=HTML).text)
        form = {"name": "alice", "password": "not the password", "csrf_token": token}
        start = threading.Barrier(40)

        def guess(_: int) -> int:
            start.wait()
            return client.post("/login", data=form, headers=HTML).status_code

        with ThreadPoolExecutor(40) as pool:
            codes = Counter(pool.map(guess, range(40)))
        assert codes == {401: LOGIN_MAX_FAILURES, 429: 40 - LOGIN_MAX_FAILURES}, codes
        # The right password is refused too now (the limit holds), as one at a time.
        right = {**form, "password": PASSWORD}
        assert client.post("/login", data=right, headers=HTML).status_code == 429


def test_a_successful_login_is_not_counted_as_a_failure(sqlite_settings) -> None:  # type: ignore[no-untyped-def]
    """(b) Counting before the check must not lock out someone who logs in often."""
    s = _web_settings(sqlite_settings)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    app = create_app(s)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for _ in range(LOGIN_MAX_FAILURES + 5):
            assert _login(client).status_code == 303
    assert not any(app.state.throttle._failures["account"].values())


HOSTILE_URLS = {
    # stored URL -> what the page may show ("youtube", "web" or no link at all)
    "javascript:alert(document.cookie)": None,
    "JaVaScRiPt:alert(1)": None,
    "data:text/html,<script>alert(1)</script>": None,
    "https://evil.example/youtube.com/x": "web",
    "https://youtube.com.evil.example/watch?v=x": "web",
    "https://youtube.com@evil.example/watch": "web",
    "https://evil.example\\@www.youtube.com/": None,
    "https://www.youtube.com/watch?v=AAAAAAAAAAA": "youtube",
    "https://m.youtube.com/watch?v=AAAAAAAAAAA": "youtube",
    "https://youtu.be/AAAAAAAAAAA": "youtube",
    "http://youtube.com/shorts/AAAAAAAAAAA": "youtube",
    "https://vimeo.com/123": "web",
}


def test_stored_urls_become_links_only_when_http_and_youtube_only_by_host(web) -> None:  # type: ignore[no-untyped-def]
    """(c) A stored javascript: URL was written into href; "Watch on YouTube" was decided by
    the text youtube.com/ anywhere in the URL."""
    client, s = web
    assert _login(client).status_code == 303
    for i, (url, kind) in enumerate(HOSTILE_URLS.items()):
        assert link_kind(url) == kind, url
        key = f"sub-{i:012d}"
        seed_video(s, key)
        with session_scope(s) as session:
            session.execute(
                text("UPDATE videos SET source = :source, source_url = :url WHERE youtube_id = :k"),
                {"source": VideoSource.SUBMITTED_URL.value, "url": url, "k": key},
            )
        page = client.get(f"/videos/{key}", headers=HTML)
        assert page.status_code == 200, page.text
        hrefs = re.findall(r'<a id="(youtube-link|source-link)" href="([^"]*)"', page.text)
        expected = {"youtube": "youtube-link", "web": "source-link"}.get(kind or "")
        assert [h[0] for h in hrefs] == ([expected] if expected else []), (url, hrefs)
        assert "javascript:" not in page.text.lower(), url
    queue = client.get("/queue", headers=HTML).text
    assert "javascript:" not in queue.lower() and "data:text" not in queue
    for cell in re.findall(r'<a href="(https?://[^"]*)"[^>]*>(YouTube|Source) ↗', queue):
        shown = cell[0].replace("&amp;", "&").replace("&#39;", "'")
        assert link_kind(shown) == ("youtube" if cell[1] == "YouTube" else "web"), cell


def test_a_500_carries_the_security_headers(sqlite_settings) -> None:  # type: ignore[no-untyped-def]
    """(d) Starlette sends a 500 from outside every middleware: it lacked the headers.  A
    corrupt row (a date SQLite stores as text that is no date) makes a real one."""
    s = _web_settings(sqlite_settings)
    seed_video(s, "vidAAAAAAA1")
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with session_scope(s) as session:
        session.execute(
            text("UPDATE videos SET published_at = 'not a date' WHERE youtube_id = 'vidAAAAAAA1'")
        )
    app = create_app(s)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        assert _login(client).status_code == 303
        for headers in (HTML, {}):
            page = client.get("/videos/vidAAAAAAA1", headers=headers)
            assert page.status_code == 500, page.text
            for name, value in SECURITY_HEADERS.items():
                assert page.headers.get(name) == value, (name, headers)
            assert "Traceback" not in page.text and "not a date" not in page.text
        # and the ordinary pages still carry them (one definition for both)
        ok = client.get("/queue", headers=HTML)
        assert ok.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


@pytest.fixture
def web(settings):  # type: ignore[no-untyped-def]
    """The app over SQLite and PostgreSQL with one reviewer, not logged in."""
    s = _web_settings(settings)
    seed_video(s, "vidAAAAAAA1", score=0.95)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        yield client, s
