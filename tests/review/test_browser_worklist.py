"""The queue as a work list in a real Chromium (issue 31 item 3): the shortcut keys decide and
move on, and the queue fits a phone and a desktop window."""

from __future__ import annotations

import pytest

from tests.review.conftest import seed_video
from tests.review.test_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    PASSWORD,
    _shot,
    browser,
    server,
)

# Like every browser test: without Chromium this skips with the reason (it used to error).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: `make system-deps`"),
]

FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.mark.parametrize("width", [390, 1280])
def test_shortcut_keys_decide_and_open_the_next_video(server, browser, width):  # noqa: F811
    base, s = server  # vidTOPFAKE1 (0.97) and vidOTHER002 (0.66), flagged
    seed_video(s, "vidMIDDLE03", score=0.8, title="Middle clip")
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue")

    # The queue: one decisive face per row, really loaded; the threshold once; no overflow.
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all("#queue td.thumb img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == 3 and all(w > 0 for w in widths), widths
    assert page.locator("#queue-threshold").inner_text() == "Threshold 0.500"
    assert page.locator("#queue .threshold").count() == 0
    assert page.evaluate(FITS), f"the queue is wider than {width} px"
    _shot(page, f"worklist-queue-{width}.png")

    # The first j selects the first row, each further j the next; k goes back; Enter opens.
    for key in "jjjk":
        page.keyboard.press(key)
    assert page.get_attribute("#queue tr.selected", "data-video") == "vidMIDDLE03"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/videos/vidMIDDLE03")
    page.go_back()
    page.wait_for_url(f"{base}/queue")

    # n opens the first video; c without a policy reason is refused by the browser.
    page.keyboard.press("n")
    page.wait_for_url(f"{base}/videos/vidTOPFAKE1")
    page.keyboard.press("c")
    page.wait_for_timeout(300)
    assert page.url == f"{base}/videos/vidTOPFAKE1"
    # 1 picks the first policy reason, c confirms: the next video of the queue opens.
    page.keyboard.press("1")
    page.keyboard.press("c")
    page.wait_for_url(f"{base}/videos/vidMIDDLE03")
    assert "vidTOPFAKE1 confirmed by alice" in page.inner_text(".flash")
    assert page.evaluate(FITS), f"the video page is wider than {width} px"
    # Keys typed into the note are text, not shortcuts.
    page.fill("textarea[name=note]", "")
    page.type("textarea[name=note]", "dcn")
    assert page.url == f"{base}/videos/vidMIDDLE03"
    assert page.input_value("textarea[name=note]") == "dcn"
    page.locator("textarea[name=note]").blur()
    # n skips without deciding; d dismisses the last one and the queue says it is done.
    page.keyboard.press("n")
    page.wait_for_url(f"{base}/videos/vidOTHER002")
    page.keyboard.press("2")
    page.keyboard.press("d")
    page.wait_for_url(f"{base}/queue")
    flash = page.inner_text(".flash")
    assert "vidOTHER002 dismissed by alice" in flash and "No more videos" in flash
    assert page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.video)") == [
        "vidMIDDLE03"
    ]
    assert not errors, errors  # no CSP violation, no script error
    context.close()
