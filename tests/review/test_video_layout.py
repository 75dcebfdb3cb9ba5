"""The video page on any screen (issue 31 item 2), in a real headless Chromium.

A video with five face tracks, each with three crops and their frames, and the kept
video: at 390 px (a phone) nothing is wider than the screen and the score plot's
labels stay readable; at 1280x800 the page uses the width (two columns: the
evidence beside the decision) and fits in about three screens.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from bot.db import session_factory
from bot.review import reviewers
from bot.review.web import create_app
from tests.conftest import make_settings
from tests.review.test_browser import ARGS, CHROMIUM, PASSWORD, _free_port, _shot
from tests.review.why_records import seed_why_video

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: `make system-deps`"),
]

#: Page height at 1280x800 may be at most this many screens (the issue: "about three").
SCREENS_AT_1280 = 3.0
#: On a phone everything is one column; five tracks may take this many screens.
SCREENS_AT_390 = 7.0
NO_OVERFLOW = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def page_url(sqlite_settings, tmp_path) -> Iterator[tuple[str, object]]:
    """The real app under uvicorn, a five-track video with its kept copy, and a browser."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from tests.model import synth

    s = make_settings(
        sqlite_settings.data_dir.parent,
        FIND_WEB_SECRET_KEY="k" * 48,
        FIND_WEB_SECURE_COOKIES="false",
    )
    seed_why_video(s, "vidFIVETRK1")
    media = s.media_dir / "videos" / "vidFIVETRK1.mp4"
    media.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(synth.face_video(tmp_path / "v.mp4", n_frames=24), media)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(s), host="127.0.0.1", port=port, log_level="warning",
                       log_config=None)
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield f"http://127.0.0.1:{port}", browser
        finally:
            browser.close()
            server.should_exit = True
            thread.join(10)


def _open(browser, base: str, width: int, height: int):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue")
    page.goto(f"{base}/videos/vidFIVETRK1")
    page.wait_for_load_state("networkidle")
    return page


def _height(page) -> float:
    return page.evaluate("() => document.documentElement.scrollHeight")


def test_five_tracks_at_1280_use_two_columns_and_fit_three_screens(page_url):
    base, browser = page_url
    page = _open(browser, base, 1280, 800)
    _shot(page, "video-5-tracks-1280.png")
    assert page.evaluate(NO_OVERFLOW), "the page is wider than 1280 px"
    height = _height(page)
    assert height <= SCREENS_AT_1280 * 800, f"{height} px tall: more than three screens"
    # Two columns: the decision sits beside the evidence, not below it.
    why = page.locator("#evidence-card").bounding_box()
    decide = page.locator("#decide").bounding_box()
    assert decide["x"] >= why["x"] + why["width"], (why, decide)
    assert decide["y"] < why["y"] + why["height"]
    # The decisive track's crops render (decoded images), all five tracks are listed.
    widths = page.eval_on_selector_all("#crops img", "els => els.map(e => e.naturalWidth)")
    assert widths == [112, 112, 112]
    assert page.locator("#tracks li.track").count() == 5
    plot = page.locator("#score-plot").bounding_box()
    assert plot["width"] >= 500


def test_five_tracks_at_390_do_not_overflow_and_the_plot_stays_readable(page_url):
    base, browser = page_url
    page = _open(browser, base, 390, 844)
    _shot(page, "video-5-tracks-390.png")
    assert page.evaluate(NO_OVERFLOW), "the page is wider than 390 px"
    outside = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
              .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
              .map(e => e.tagName + '#' + e.id + '.' + e.className)"""
    )
    assert not outside, f"elements leave the 390 px screen: {outside[:5]}"
    height = _height(page)
    assert height <= SCREENS_AT_390 * 844, f"{height} px tall at 390 px"
    # The plot fills the card's width and its labels are at least 11 px on screen.
    plot = page.locator("#score-plot").bounding_box()
    assert plot["width"] >= 320, plot
    sizes = page.eval_on_selector_all(
        "#score-plot text", "els => els.map(e => e.getBoundingClientRect().height)"
    )
    assert sizes and min(sizes) >= 11, sizes
    # One column in reading order: why, then the decision, then the plot.
    ys = [page.locator(s).bounding_box()["y"] for s in ("#evidence-card", "#decide", "#plot-card")]
    assert ys == sorted(ys), ys
