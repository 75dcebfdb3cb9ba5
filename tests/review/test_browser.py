"""The review page in a real headless Chromium (Playwright + Debian's /usr/bin/chromium).

Logs in, opens the queue, opens a flagged video, checks its crops and plot
actually rendered, confirms it and sees it leave the queue; then checks that
a forged cross-form POST without the CSRF token is refused.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.db import session_factory
from bot.review import reviewers
from bot.review.web import create_app
from tests.conftest import make_settings
from tests.review.conftest import seed_video

CHROMIUM = Path(os.environ.get("FIND_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
SCREENSHOT_DIR = os.environ.get("FIND_TEST_SCREENSHOTS")  # set to keep screenshots

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: `apt-get install chromium` (Playwright drives Debian's)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(sqlite_settings) -> Iterator[tuple[str, object]]:
    """The real app under uvicorn on a free port, in a background thread."""
    import uvicorn

    s = make_settings(
        sqlite_settings.data_dir.parent,
        FIND_WEB_SECRET_KEY="k" * 48,
        FIND_WEB_SECURE_COOKIES="false",
    )
    seed_video(s, "vidTOPFAKE1", score=0.97, title="Suspicious speech", tracks=2, crops=4)
    seed_video(s, "vidOTHER002", score=0.66, title="Other clip")
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    port = _free_port()
    config = uvicorn.Config(
        create_app(s), host="127.0.0.1", port=port, log_level="warning", log_config=None
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", s
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _shot(page, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / name), full_page=True)


def test_review_flow_in_a_real_browser(server, browser):
    base, _s = server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # Not logged in: the queue sends us to the login page.
    page.goto(f"{base}/queue")
    assert page.url.startswith(f"{base}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "wrong password!")
    page.click("button[type=submit]")
    assert "Wrong name or password" in page.inner_text("[role=alert]")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue")
    assert page.inner_text("#reviewer-name") == "alice"
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 2
    assert rows.first.get_attribute("data-video") == "vidTOPFAKE1"  # highest score first

    page.click("a.video-link >> text=Suspicious speech")
    page.wait_for_url(f"{base}/videos/vidTOPFAKE1")
    assert (
        page.get_attribute("#youtube-link", "href") == "https://www.youtube.com/watch?v=vidTOPFAKE1"
    )
    crops = page.locator("#crops img")
    assert crops.count() == 4
    plot = page.locator("#score-plot")
    plot.scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    # Images really loaded and decoded (naturalWidth is 0 for a broken image).
    widths = page.eval_on_selector_all("#crops img", "els => els.map(e => e.naturalWidth)")
    assert widths == [112, 112, 112, 112]
    # The plot is inline SVG: it fills its card (one line per track), it is no fixed PNG.
    assert plot.bounding_box()["width"] >= 600 and page.locator("#score-plot polyline").count() == 2
    _shot(page, "video.png")

    page.fill("textarea[name=note]", "lip sync is off; face swap")
    page.click("#confirm-button")  # refused by the browser: no policy reason chosen yet
    assert page.url == f"{base}/videos/vidTOPFAKE1"
    page.select_option("select[name=reason]", "impersonation")
    page.click("#confirm-button")
    page.wait_for_url(f"{base}/videos/vidOTHER002")  # the next flagged video opens
    assert "vidTOPFAKE1 confirmed by alice" in page.inner_text(".flash")
    page.goto(f"{base}/queue")
    remaining = page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.video)")
    assert remaining == ["vidOTHER002"]
    _shot(page, "queue.png")

    page.goto(f"{base}/videos/vidTOPFAKE1")
    assert page.inner_text("#video-state") == "confirmed"
    assert "lip sync is off" in page.inner_text("#history")
    _shot(page, "video-confirmed.png")

    # A forged POST without the CSRF token, from an attacker page on another
    # port of the same host (same site, so even SameSite=Strict sends the
    # cookie): only the token stops it.
    evil = f"http://127.0.0.1:{_free_port()}/evil"
    form = (
        f'<form id="f" method="post" action="{base}/videos/vidOTHER002/decision">'
        '<input name="decision" value="dismissed"><input name="expected_state" value="flagged">'
        "</form>"
    )
    page.route(evil, lambda route: route.fulfill(status=200, content_type="text/html", body=form))
    page.goto(evil)
    with page.expect_navigation() as nav:
        page.evaluate("document.getElementById('f').submit()")
    assert nav.value is not None and nav.value.status == 403
    # The page's own script cannot forge one either: the CSP forbids fetch/XHR.
    page.goto(f"{base}/videos/vidOTHER002")
    assert page.inner_text("#video-state") == "flagged"
    # No CSP violation or script error on our pages (expected 401/403 answers aside).
    assert not [e for e in errors if "Failed to load resource" not in e], errors
    assert not [e for e in errors if "404" in e], errors

    # A fresh browser with no session cannot see the queue or the crops.
    anon = browser.new_context().new_page()
    response = anon.goto(f"{base}/crops/1/0")
    assert response is not None and "/login" in anon.url  # sent to log in, no image
    assert response.headers["content-type"].startswith("text/html")
    assert anon.request.get(f"{base}/crops/1/0").status == 401
    anon.goto(f"{base}/videos/vidOTHER002")
    assert "/login" in anon.url
    context.close()


LONG_TITLE = "Deepfake" + "X" * 290  # one unbroken word: no space to wrap at


@pytest.mark.parametrize("width", [360, 1280])
def test_long_titles_never_break_the_layout(server, browser, width):
    """Queue and video pages fit the window, phone or desktop, whatever the title."""
    base, s = server
    seed_video(s, "vidLONGTTL1", score=0.99, title=LONG_TITLE, channel="UC" + "L" * 22)
    from bot import review

    review.decide(session_factory(s), "vidOTHER002", "confirmed", "alice", reason="impersonation")
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue")
    fits = "() => document.documentElement.scrollWidth <= window.innerWidth"
    inside = "e => e.getBoundingClientRect().right <= window.innerWidth + 0.5"
    for url, title in (
        ("/queue", "a.video-link >> nth=0"),
        ("/videos/vidLONGTTL1", "h1.title"),
        ("/queue?state=confirmed", "td.decided >> nth=0"),
    ):
        page.goto(base + url)
        _shot(page, f"layout-{width}-{url.strip('/').replace('/', '-').replace('?', '-')}.png")
        assert page.evaluate(fits), f"{url} is wider than {width} px"
        assert page.locator(title).evaluate(inside), f"{title} leaves the window on {url}"
    decided = page.inner_text("td.decided >> nth=0")
    assert "alice" in decided and "UTC" in decided and "impersonation" in decided
    context.close()
