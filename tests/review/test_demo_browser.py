"""`find-bot demo` end to end, as a newcomer meets it, in a real headless Chromium.

The demo runs as its own process (the command `make demo` runs) with a small
synthetic sample set, so it needs no shared data, no key and no network; the
browser logs in with the printed one-time password, opens the top flagged
video, sees its face crops and confirms it; Ctrl-C then stops the demo and
its temporary directory is gone.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.review.test_browser import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: `apt-get install chromium` (Playwright drives Debian's)",
    ),
]

#: Model load plus two short clips: about a minute on 2 free cores, far more beside a training run.
STARTUP_S = 1200


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line.rstrip("\n"))
    lines.put(None)


@pytest.mark.timeout(STARTUP_S + 300)  # the suite's 600 s is too short beside a training run
def test_demo_from_start_to_a_confirmed_fake(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("FIND_")}  # nothing of ours leaks in
    command = [sys.executable, "-m", "bot.cli", "demo", "--synthetic", "2", "--port", "0"]
    command += ["--threshold", "0.01", "--frames", "8"]
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,  # no .env to read
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    url = password = root = None
    try:
        deadline = time.monotonic() + STARTUP_S
        while url is None:
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            assert line is not None, "demo exited early:\n" + "\n".join(seen)
            seen.append(line)
            if m := re.match(r"FIND demo in (\S+)", line):
                root = Path(m.group(1))
            if m := re.search(r"one-time password: (\S+)", line):
                password = m.group(1)
            if m := re.search(r"review page: (http://127\.0\.0\.1:\d+)/login", line):
                url = m.group(1)
        assert root is not None and root.is_dir() and password
        output = "\n".join(seen)
        assert output.count("added as sub-") == 2, output
        assert "flagged" in output, output
        _review_in_browser(url, password)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, "\n".join(seen)
    assert root is not None and not root.exists()  # Ctrl-C removed its temp dir, and only it


def _review_in_browser(base: str, password: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{base}/queue")
            page.fill("input[name=name]", "demo")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/queue")
            rows = page.locator("#queue tbody tr")
            assert rows.count() >= 1
            top = rows.first.get_attribute("data-video")
            assert top and top.startswith("sub-")
            assert "submitted file" in rows.first.inner_text()
            rows.first.locator("a.video-link").click()
            page.wait_for_url(f"{base}/videos/{top}")
            assert "submitted file" in page.inner_text("#video-source")
            assert "FIND demo sample" in page.inner_text("#video-source")
            page.wait_for_load_state("networkidle")
            widths = page.eval_on_selector_all("#crops img", "els => els.map(e => e.naturalWidth)")
            assert widths and all(w > 0 for w in widths), widths  # the crops really render
            page.select_option("select[name=reason]", index=1)
            page.click("#confirm-button")
            # The next flagged sample opens (the demo flags both at --threshold 0.01).
            page.wait_for_url(re.compile(rf"{re.escape(base)}/videos/sub-(?!{top[4:]})"))
            assert f"{top} confirmed by demo" in page.inner_text(".flash")
            page.goto(f"{base}/videos/{top}")
            assert page.inner_text("#video-state") == "confirmed"
        finally:
            browser.close()
