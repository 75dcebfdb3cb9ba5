"""The queue's Order menu and the views line in a real headless Chromium (issue 31 item 4):
ordering by reach puts the spreading video first at 1280 and 390 px without overflow, and
the video page it opens shows its views and growth."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.db import session_scope
from bot.store import Video, utcnow
from tests.review.test_browser import (  # noqa: F401 - fixtures are found by name
    PASSWORD,
    browser,
    pytestmark,
    server,
)


def _spreading(settings, youtube_id: str) -> None:
    now = utcnow()
    with session_scope(settings) as session:
        video = session.query(Video).filter_by(youtube_id=youtube_id).one()
        video.views, video.views_at = 2_500_000, now
        video.views_before, video.views_before_at = 2_400_000, now - timedelta(days=1)
        video.views_per_day = 100_000.0


@pytest.mark.parametrize("width", [1280, 390])
def test_order_by_reach_in_a_real_browser(server, browser, width):  # noqa: F811
    base, settings = server
    _spreading(settings, "vidOTHER002")  # scores 0.66, below vidTOPFAKE1's 0.97
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue")
    rows = page.locator("#queue tbody tr")
    assert rows.first.get_attribute("data-video") == "vidTOPFAKE1"  # by score

    page.select_option("#order", "reach")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"{base}/queue?*order=reach*")
    assert rows.first.get_attribute("data-video") == "vidOTHER002"
    assert "2,500,000 views, +100,000 a day" in rows.first.inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px of horizontal overflow at {width} px"

    rows.first.locator("a.video-link").click()
    page.wait_for_url(f"{base}/videos/vidOTHER002?order=reach")
    assert "2,500,000 views, +100,000 a day" in page.inner_text("#views")
    assert "order=reach" in (page.get_attribute("#next-link", "href") or "")
    assert not errors, errors
