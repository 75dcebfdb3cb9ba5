"""Quota recovery without editing the ledger: a raised budget reopens the day, and
searches wait at most a day past their turn however small the budget.

Real discover passes against the fake Data API; the clock is fixed where the
quota pacing depends on the time of day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.discover import SEARCH_STARVATION_LIMIT, discover_once
from bot.quota import QuotaLedger
from bot.status import collect_status, render_status
from bot.store import SearchQuery, Video
from bot.watchlist import sync_watchlist

NOON_PACIFIC = datetime(2026, 6, 10, 19, 0, tzinfo=UTC)


def _sync(settings) -> None:  # type: ignore[no-untyped-def]
    with session_scope(settings) as session:
        sync_watchlist(settings, session)


def _video_ids(settings) -> set[str]:  # type: ignore[no-untyped-def]
    with session_factory(settings)() as session:
        return set(session.scalars(select(Video.youtube_id)))


def _query(settings) -> SearchQuery:  # type: ignore[no-untyped-def]
    with session_factory(settings)() as session:
        return session.scalars(select(SearchQuery)).one()


def test_a_larger_budget_reopens_a_day_closed_by_quota_exceeded(ingestion) -> None:  # type: ignore[no-untyped-def]
    channels = [ingestion.channel(f"C{i}") for i in range(4)]
    uploads = [ingestion.upload(channel, serve=False) for channel in channels]
    ingestion.youtube.quota_limit = 3  # the Google project's real quota is tiny
    ids = ",".join(c.id for c in channels)
    settings = ingestion.settings(CHANNELS=ids, QUOTA_DAILY_BUDGET="1000")
    _sync(settings)
    report = discover_once(settings, ingestion.client(settings))
    assert report.quota_exhausted and len(_video_ids(settings)) < 4

    # A restart with the same budget: the day stays closed, nothing is sent.
    calls = len(ingestion.youtube.requests)
    report = discover_once(settings, ingestion.client(settings))
    assert report.quota_exhausted and len(ingestion.youtube.requests) == calls
    text = render_status(collect_status(settings))
    assert "quotaExceeded" in text and "budget then 1000" in text and "paused until" in text

    # The project got more quota; the operator raises the budget and restarts.
    ingestion.youtube.quota_limit = None
    raised = ingestion.settings(CHANNELS=ids, QUOTA_DAILY_BUDGET="2000")
    assert QuotaLedger(session_factory(raised), 2000).remaining() > 0
    report = discover_once(raised, ingestion.client(raised))
    assert not report.quota_exhausted, report.errors
    assert _video_ids(raised) == {v.id for v in uploads}
    assert "paused until" not in render_status(collect_status(raised))


def test_a_search_waits_at_most_a_day_past_its_turn(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    """150 units a day: the channel reserve never leaves room for a 100-unit search."""
    ing = sqlite_ingestion
    channel = ing.channel()
    ing.upload(channel, serve=False, published_at=NOON_PACIFIC - timedelta(hours=1))
    settings = ing.settings(
        CHANNELS=channel.id,
        SEARCH_QUERIES="deepfake",
        QUOTA_DAILY_BUDGET="150",
        POLL_INTERVAL="15m",
    )
    _sync(settings)
    with session_scope(settings) as session:  # the query was configured at noon
        session.scalars(select(SearchQuery)).one().created_at = NOON_PACIFIC

    clock = [NOON_PACIFIC]
    client = ing.client(settings, clock=lambda: clock[0])
    for minutes in (0, 15, 30):  # the same day: deferred each pass, and says why
        clock[0] = NOON_PACIFIC + timedelta(minutes=minutes)
        report = discover_once(settings, client, now=clock[0])
        assert report.queries_deferred == 1 and not ing.youtube.calls("search")
    row = _query(settings)
    assert (
        row.waiting_reason.startswith("deferred:")
        and "kept for the 1 channel(s)" in row.waiting_reason
    )
    assert row.next_search_at == NOON_PACIFIC + SEARCH_STARVATION_LIMIT
    status = collect_status(settings, now=clock[0])
    [search] = status["searches"]
    assert search["waiting"] == row.waiting_reason
    assert search["next_search_at"] == (NOON_PACIFIC + SEARCH_STARVATION_LIMIT).isoformat()
    text = render_status(status)
    assert (
        "search:   'deepfake' last searched never; deferred:" in text and "next search by" in text
    )

    # A day past its turn it goes ahead of the channel reserve (the budget is fresh).
    clock[0] = NOON_PACIFIC + SEARCH_STARVATION_LIMIT + timedelta(minutes=1)
    report = discover_once(settings, client, now=clock[0])
    assert report.queries_polled == 1 and len(ing.youtube.calls("search")) == 1
    row = _query(settings)
    assert row.last_polled_at == clock[0] and row.waiting_reason is None
    assert row.next_search_at is None


def test_a_budget_below_one_search_says_so(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    ing = sqlite_ingestion
    settings = ing.settings(SEARCH_QUERIES="deepfake", QUOTA_DAILY_BUDGET="50")
    _sync(settings)
    report = discover_once(settings, ing.client(settings))
    assert report.queries_deferred == 1 and not ing.youtube.calls("search")
    row = _query(settings)
    assert row.waiting_reason.startswith("never: FIND_QUOTA_DAILY_BUDGET=50 is below the 100")
    assert row.next_search_at is None
