"""Logging: FIND's structured lines stay, libraries' per-request chatter goes (issue 22)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from bot.logs import QUIET_LIBRARIES, configure_logging, log_event


@pytest.fixture
def _library_levels() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("_library_levels")
def test_httpx_request_lines_are_quiet_and_find_events_stay(capsys):
    configure_logging("INFO", "text")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<feed/>"))
    with httpx.Client(transport=transport) as client:
        response = client.get("https://www.youtube.com/feeds/videos.xml?channel_id=UCx")
    assert response.status_code == 200
    log_event(logging.getLogger("bot.stages.discover"), "feed.read", channel="UCx", status=200)
    err = capsys.readouterr().err
    assert "HTTP Request" not in err
    assert "INFO bot.stages.discover feed.read channel=UCx status=200" in err


@pytest.mark.usefixtures("_library_levels")
def test_httpx_warnings_still_show(capsys):
    configure_logging("INFO", "text")
    logging.getLogger("httpx").warning("connection pool full")
    assert "WARNING httpx connection pool full" in capsys.readouterr().err
