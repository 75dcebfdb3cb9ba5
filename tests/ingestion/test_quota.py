"""Quota days follow Pacific time; network failures are retried, recorded and key-free."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.stages.discover import discover_once
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import Channel, QuotaEntry
from bot.youtube.client import redact_key
from bot.youtube.quota import (
    DAY,
    SHARE,
    QuotaExhausted,
    QuotaLedger,
    next_reset,
    quota_day,
    search_budget,
    search_interval_s,
)
from tests.fakes.youtube_api import api_key


def test_quota_day_turns_at_pacific_midnight() -> None:
    # Winter (PST, UTC-8) and summer (PDT, UTC-7)
    assert quota_day(datetime(2026, 1, 15, 7, 59, tzinfo=UTC)) == "2026-01-14"
    assert quota_day(datetime(2026, 1, 15, 8, 0, tzinfo=UTC)) == "2026-01-15"
    assert quota_day(datetime(2026, 7, 15, 6, 59, tzinfo=UTC)) == "2026-07-14"
    assert quota_day(datetime(2026, 7, 15, 7, 0, tzinfo=UTC)) == "2026-07-15"
    # The night the clocks go forward (8 March 2026) still resets at local midnight.
    assert next_reset(datetime(2026, 3, 8, 12, 0, tzinfo=UTC)) == datetime(
        2026, 3, 9, 7, 0, tzinfo=UTC
    )


def test_ledger_counts_only_the_current_pacific_day(sqlite_settings) -> None:
    clock = [datetime(2026, 1, 15, 7, 0, tzinfo=UTC)]
    ledger = QuotaLedger(session_factory(sqlite_settings), 150, clock=lambda: clock[0])
    ledger.record("search.list")
    ledger.record("videos.list")
    assert ledger.used_today() == 101 and ledger.remaining() == 49
    clock[0] = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # midnight Pacific
    assert ledger.used_today() == 0 and ledger.remaining() == 150
    assert ledger.usage_by_method("2026-01-14") == {"search.list": 100, "videos.list": 1}


def test_searches_are_spread_over_the_day_to_fit_their_share() -> None:
    # The searches' share (FIND_SEARCH_SHARE=50 of 10,000) pays for 50 searches a day.
    share = search_budget(10_000, 50, queries_configured=True)
    assert share == 5000 and search_budget(10_000, 50, queries_configured=False) == 0
    assert search_interval_s(share, 1, 900) == math.ceil(86400 / 50)
    assert search_interval_s(share, 5, 900) == math.ceil(86400 / 10)
    assert search_interval_s(100_000, 1, 900) == 900  # never more often than every poll
    assert search_interval_s(50, 1, 900) == 86400 * 2  # half a search a day


def test_each_side_is_refused_past_its_share(sqlite_settings) -> None:
    ledger = QuotaLedger(session_factory(sqlite_settings), 300, search_units=200)
    ledger.record("search.list")
    ledger.record("search.list")
    with pytest.raises(QuotaExhausted) as refused:
        ledger.ensure("search.list")
    assert refused.value.scope == SHARE and "searches' share" in str(refused.value)
    assert ledger.remaining("search.list") == 0 and ledger.remaining("videos.list") == 100
    for _ in range(100):
        ledger.record("videos.list")
    with pytest.raises(QuotaExhausted) as refused:
        ledger.ensure("videos.list")
    assert refused.value.scope == DAY  # both shares spent: the day's budget is


def test_network_errors_are_retried_recorded_and_never_show_the_key(
    sqlite_ingestion, monkeypatch
) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(
        CHANNELS="UC" + "a" * 22,
        YOUTUBE_API_ENDPOINT="http://127.0.0.1:9",  # nothing listens there
        YOUTUBE_API_KEY=api_key("VerySecretKey"),
    )
    with session_scope(settings) as session:
        sync_watchlist(settings, session)
    sleeps: list[float] = []
    report = discover_once(settings, ing.client(settings, sleep=sleeps.append, retries=2))
    assert len(sleeps) == 2 and len(report.errors) == 1
    assert "network error" in report.errors[0]
    assert api_key("VerySecretKey") not in report.errors[0]
    with session_factory(settings)() as session:
        entries = session.scalars(select(QuotaEntry)).all()
        assert [e.outcome for e in entries] == ["network"] * 3
        # Refused connections never reached YouTube: logged, but they cost no budget.
        assert [e.units for e in entries] == [0, 0, 0]
        channel = session.scalars(select(Channel)).one()
        assert "network error" in channel.last_error


def test_redact_key_scrubs_request_urls() -> None:
    text = "<HttpError 502 when requesting http://h/youtube/v3/videos?id=x&key=abc123&alt=json>"
    assert redact_key(text) == (
        "<HttpError 502 when requesting http://h/youtube/v3/videos?id=x&key=***&alt=json>"
    )
    assert "abc123" not in redact_key("the key abc123 leaked", "abc123")


def test_debug_logs_never_show_the_key(sqlite_ingestion, caplog) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    ing.upload(channel, serve=False)
    settings = ing.settings(CHANNELS=channel.id)
    with caplog.at_level("DEBUG", logger="googleapiclient.discovery"):
        report = discover_once(settings, ing.client(settings))
    assert report.new_videos == 1
    assert "URL being requested" in caplog.text  # the library does log each request URL...
    assert "test-api-key" not in caplog.text  # ...but without the key
