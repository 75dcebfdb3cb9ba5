"""Quota recovery without editing the ledger: a raised budget reopens the day, and
searches and channels each keep their share of the budget.

Real discover passes against the fake Data API; the clock is fixed where the
quota pacing depends on the time of day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.service.status import collect_status, render_status
from bot.stages.discover import discover_once
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import QuotaEntry, SearchQuery, Video
from bot.youtube.quota import QuotaLedger, next_reset, quota_day

#: 1 AM Pacific (PDT): a whole quota day ahead.
EARLY_PACIFIC = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


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


def test_searches_and_channels_each_keep_their_share(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    """400 units a day, FIND_SEARCH_SHARE=50: two searches a day, spread 12 h apart, and
    the channels' 200 units are theirs.  The channels' share used up, they stop (searches go
    on, and discovery is not paused); the searches' share used up, searches wait for the
    quota reset."""
    ing = sqlite_ingestion
    channel = ing.channel()
    ing.upload(channel, serve=False, published_at=EARLY_PACIFIC - timedelta(hours=1))
    settings = ing.settings(
        CHANNELS=channel.id,
        SEARCH_QUERIES="deepfake",
        QUOTA_DAILY_BUDGET="400",
        SEARCH_SHARE="50",
        POLL_INTERVAL="15m",
    )
    _sync(settings)
    clock = [EARLY_PACIFIC]
    client = ing.client(settings, clock=lambda: clock[0])
    assert client.ledger.search_units == 200

    report = discover_once(settings, client, now=clock[0])
    assert report.queries_polled == 1 and len(ing.youtube.calls("search")) == 1

    # Two hours later: the share pays for two searches a day, so the query waits its turn.
    clock[0] = EARLY_PACIFIC + timedelta(hours=2)
    report = discover_once(settings, client, now=clock[0])
    assert report.queries_polled == 0 and len(ing.youtube.calls("search")) == 1
    row = _query(settings)
    assert row.waiting_reason == (
        "pacing: the searches' share (200 units a day, FIND_SEARCH_SHARE=50%) allows one "
        "search of each query every 12.0 h"
    )
    assert row.next_search_at == EARLY_PACIFIC + timedelta(hours=12)
    text = render_status(collect_status(settings, now=clock[0]))
    assert "search:   'deepfake' last searched" in text and "next search by" in text

    # A burst of playlist reads used the channels' whole share: they stop, searches do not.
    with session_scope(settings) as session:
        spent = sum(e.units for e in session.scalars(select(QuotaEntry)))
        for _ in range(200 - (spent - 100)):
            session.add(
                QuotaEntry(
                    at=clock[0],
                    day=quota_day(clock[0]),
                    method="playlistItems.list",
                    units=1,
                    budget=400,
                )
            )
    pages = len(ing.youtube.calls("playlistItems"))
    clock[0] = EARLY_PACIFIC + timedelta(hours=12, minutes=5)
    report = discover_once(settings, client, now=clock[0])
    assert len(ing.youtube.calls("playlistItems")) == pages  # the channels wait ...
    assert report.channel_share_exhausted and not report.quota_exhausted  # (no pause)
    assert "channels' share of today's YouTube quota is used up" in report.errors[0]
    assert report.queries_polled == 1 and len(ing.youtube.calls("search")) == 2  # ... not it

    # Both shares are spent: the day is over, for searches and channels alike.
    with session_scope(settings) as session:
        session.get(SearchQuery, _query(settings).id).last_polled_at = clock[0] - timedelta(
            hours=13
        )
    clock[0] += timedelta(minutes=15)
    report = discover_once(settings, client, now=clock[0])
    assert report.quota_exhausted and len(ing.youtube.calls("search")) == 2
    row = _query(settings)
    assert row.waiting_reason.startswith("the day's quota is used up")
    assert row.next_search_at >= next_reset(clock[0])


def test_a_used_up_search_share_defers_searches_not_channels(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    ing = sqlite_ingestion
    channel = ing.channel()
    settings = ing.settings(
        CHANNELS=channel.id,
        SEARCH_QUERIES="deepfake",
        QUOTA_DAILY_BUDGET="400",
        SEARCH_SHARE="25",
        POLL_INTERVAL="15m",
    )
    _sync(settings)
    clock = [EARLY_PACIFIC]
    client = ing.client(settings, clock=lambda: clock[0])
    assert discover_once(settings, client, now=clock[0]).queries_polled == 1
    with session_scope(settings) as session:  # its turn comes again today
        session.get(SearchQuery, _query(settings).id).last_polled_at = clock[0] - timedelta(days=1)
    pages = len(ing.youtube.calls("playlistItems"))
    clock[0] += timedelta(hours=1)
    report = discover_once(settings, client, now=clock[0])
    assert report.queries_deferred == 1 and len(ing.youtube.calls("search")) == 1
    assert len(ing.youtube.calls("playlistItems")) == pages + 1  # channels go on
    assert not report.quota_exhausted and not report.channel_share_exhausted
    row = _query(settings)
    assert row.waiting_reason == (
        "deferred: the searches' share of today's quota is used up (100/100 units); "
        "waits for the quota reset"
    )
    assert row.next_search_at == next_reset(clock[0])
    status = collect_status(settings, now=clock[0])
    assert status["quota"]["searches"] == {"used": 100, "share": 100, "percent": 25}


def test_a_budget_below_one_search_says_so(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    ing = sqlite_ingestion
    settings = ing.settings(SEARCH_QUERIES="deepfake", QUOTA_DAILY_BUDGET="50")
    _sync(settings)
    report = discover_once(settings, ing.client(settings))
    assert report.queries_deferred == 1 and not ing.youtube.calls("search")
    row = _query(settings)
    assert row.waiting_reason.startswith(
        "never: FIND_SEARCH_SHARE=50% of FIND_QUOTA_DAILY_BUDGET=50 is 25 units a day, "
        "below the 100 one search costs"
    )
    assert row.next_search_at is None
