"""bot.logs.LogLimiter: events anyone can cause are logged once an interval, with a count."""

from __future__ import annotations

import logging

import pytest

from bot.logs import LogLimiter


def test_one_line_per_key_per_interval_and_the_next_says_how_many_were_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limiter = LogLimiter(60, clock=lambda: now[0])
    log = logging.getLogger("find.test")
    caplog.set_level(logging.INFO, logger="find")
    for i in range(2000):  # 2,000 refused requests within 40 s
        now[0] = i * 0.02
        limiter.log(log, "x.refused", key=403, reason="unsigned")
    limiter.log(log, "x.refused", key=404, reason="other status: its own line")
    assert [(r.getMessage(), getattr(r, "suppressed", 0)) for r in caplog.records] == [
        ("x.refused", 0),
        ("x.refused", 0),
    ]
    now[0] = 61.0
    assert limiter.log(log, "x.refused", key=403, reason="unsigned")
    assert caplog.records[-1].suppressed == 1999


def test_keys_are_bounded() -> None:
    limiter = LogLimiter(60, clock=lambda: 0.0, max_keys=10)
    log = logging.getLogger("find.test")
    for i in range(1000):
        limiter.log(log, "x", logging.DEBUG, key=i)
    assert len(limiter._last) <= 10
