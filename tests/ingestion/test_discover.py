"""Discover against the fake Data API: paging, dedup, resume, quota, errors, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.db import session_factory, session_scope
from bot.stages.discover import discover_once
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import Channel, PollRun, QuotaEntry, SearchQuery, Video
from bot.youtube.client import ApiKeyError
from bot.youtube.quota import QuotaLedger, quota_day
from tests.fakes.youtube_api import api_key

# A fixed moment (noon Pacific) so quota pacing does not depend on when the tests run.
NOON_PACIFIC = datetime(2026, 6, 10, 19, 0, tzinfo=UTC)


def _sync(settings) -> None:
    with session_scope(settings) as session:
        sync_watchlist(settings, session)


def _videos(settings) -> dict[str, Video]:
    with session_factory(settings)() as session:
        return {v.youtube_id: v for v in session.scalars(select(Video))}


def _ledger(settings) -> list[QuotaEntry]:
    with session_factory(settings)() as session:
        return list(session.scalars(select(QuotaEntry).order_by(QuotaEntry.id)))


def _channel_row(settings, configured_as: str) -> Channel:
    with session_factory(settings)() as session:
        return session.scalars(select(Channel).where(Channel.configured_as == configured_as)).one()


def _run(ingestion, settings, **kwargs):
    _sync(settings)
    return discover_once(settings, ingestion.client(settings), **kwargs)


def test_pages_uploads_newest_first_until_last_seen(ingestion) -> None:
    channel = ingestion.channel("Alpha")
    first = [ingestion.upload(channel, serve=False) for _ in range(3)]
    settings = ingestion.settings(CHANNELS=channel.id)

    report = _run(ingestion, settings)
    assert report.new_videos == 3 and not report.errors
    # 1 channels.list + 1 playlistItems.list + 1 videos.list
    assert report.units == 3
    assert _channel_row(settings, channel.id).last_seen_video_id == first[-1].id

    newer = [ingestion.upload(channel, serve=False) for _ in range(70)]
    before = len(ingestion.youtube.calls("playlistItems"))
    report = _run(ingestion, settings)
    assert report.new_videos == 70
    # 70 new uploads: two pages of 50, stopped at the last seen video; ids enriched in 2 batches
    assert len(ingestion.youtube.calls("playlistItems")) - before == 2
    assert report.units == 2 + 2
    assert set(_videos(settings)) == {v.id for v in first + newer}
    assert _channel_row(settings, channel.id).last_seen_video_id == newer[-1].id

    report = _run(ingestion, settings)  # nothing new: one page, one unit
    assert report.new_videos == 0 and report.units == 1


def test_first_poll_reads_only_the_newest_page(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    for _ in range(80):
        ing.upload(channel, serve=False)
    settings = ing.settings(CHANNELS=channel.id)
    report = _run(ing, settings)
    assert report.new_videos == 50  # the back catalogue beyond one page is not ingested


def test_video_seen_by_channel_and_query_is_one_row(ingestion) -> None:
    channel = ingestion.channel("Alpha")
    shared = ingestion.upload(channel, title="deepfake interview", serve=False)
    other_channel = ingestion.channel("Beta")
    only_query = ingestion.upload(other_channel, title="another deepfake clip", serve=False)
    settings = ingestion.settings(
        CHANNELS=channel.id, SEARCH_QUERIES="deepfake", QUOTA_DAILY_BUDGET="10000"
    )

    report = _run(ingestion, settings, now=datetime.now(UTC) + timedelta(seconds=5))
    assert report.queries_polled == 1 and not report.errors
    videos = _videos(settings)
    assert set(videos) == {shared.id, only_query.id}
    assert videos[shared.id].discovered_via == f"channel:{channel.id}"
    assert videos[only_query.id].discovered_via == "query:deepfake"
    # The shared id was enriched once: the query's batch held only the new id.
    enriched = [c.params["id"].split(",") for c in ingestion.youtube.calls("videos")]
    assert sum(ids.count(shared.id) for ids in enriched) == 1

    search = ingestion.youtube.calls("search")[0].params
    assert search["type"] == "video" and search["order"] == "date"
    assert "publishedAfter" in search

    # Found again by both sources on the next pass: still one row each, nothing enriched.
    with session_scope(settings) as session:
        session.get(Channel, _channel_row(settings, channel.id).id).last_seen_video_id = None
        for q in session.scalars(select(SearchQuery)):
            q.last_polled_at = q.last_success_at = None
    report = _run(ingestion, settings, now=datetime.now(UTC) + timedelta(seconds=10))
    assert report.new_videos == 0
    with session_factory(settings)() as session:
        assert session.scalar(select(func.count()).select_from(Video)) == 2


def test_search_asks_only_for_videos_after_last_success(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    ing.upload(channel, title="deepfake one", serve=False)
    settings = ing.settings(SEARCH_QUERIES="deepfake", POLL_INTERVAL="15m")
    now = datetime.now(UTC) + timedelta(seconds=5)
    _run(ing, settings, now=now)
    later = now + timedelta(hours=2)
    _run(ing, settings, now=later)
    searches = ing.youtube.calls("search")
    assert len(searches) == 2
    second_after = datetime.fromisoformat(
        searches[1].params["publishedAfter"].replace("Z", "+00:00")
    )
    # last success minus the indexing overlap (1 hour)
    assert second_after == (now - timedelta(hours=1)).replace(microsecond=0)


def test_a_failed_lookup_loses_nothing(ingestion) -> None:
    """videos.list keeps failing: the uploads are stored anyway (downloads need no lookup),
    the cursor moves, and the lookup is tried again later, after a "restart"."""
    channel = ingestion.channel()
    uploads = [ingestion.upload(channel, serve=False) for _ in range(3)]
    settings = ingestion.settings(CHANNELS=channel.id)
    ingestion.youtube.fail("videos", "backendError", times=10)

    report = _run(ingestion, settings)
    assert report.new_videos == 3 and report.awaiting_lookup == 3
    assert any("videos.list" in e for e in report.errors)
    videos = _videos(settings)
    assert set(videos) == {v.id for v in uploads}
    assert all(v.state == "new" and v.lookup_due_at is not None for v in videos.values())
    assert _channel_row(settings, channel.id).last_seen_video_id == uploads[-1].id
    outcomes = [e.outcome for e in _ledger(settings) if e.method == "videos.list"]
    assert outcomes and set(outcomes) == {"backendError"}

    from bot.db import dispose_engines

    dispose_engines()  # a "restart": fresh pools, fresh client
    ingestion.youtube.errors.clear()
    report = _run(ingestion, settings, now=datetime.now(UTC) + timedelta(minutes=16))
    assert report.new_videos == 0 and not report.errors and report.awaiting_lookup == 0
    videos = _videos(settings)
    assert all(v.duration_s == 60 and v.lookup_due_at is None for v in videos.values())


def test_budget_is_never_exceeded_and_channels_resume_next_day(ingestion) -> None:
    channels = [ingestion.channel(f"C{i}") for i in range(6)]
    for channel in channels:
        ingestion.upload(channel, serve=False)
    # 1 unit resolves all six; then each channel needs a page + room to enrich.
    settings = ingestion.settings(CHANNELS=",".join(c.id for c in channels), QUOTA_DAILY_BUDGET="5")
    clock = [NOON_PACIFIC]
    client = ingestion.client(settings, clock=lambda: clock[0])
    _sync(settings)
    report = discover_once(settings, client, now=clock[0])
    assert report.quota_exhausted
    assert report.resume_at is not None and report.resume_at > clock[0]
    used = sum(e.units for e in _ledger(settings))
    assert used <= 5
    assert 0 < report.new_videos < 6  # what was found before the budget ran out is kept

    # Same day: nothing is sent.
    calls = len(ingestion.youtube.requests)
    report = discover_once(settings, client, now=clock[0])
    assert report.quota_exhausted and len(ingestion.youtube.requests) == calls

    # After midnight Pacific the budget is fresh and the rest is found.
    clock[0] = NOON_PACIFIC + timedelta(hours=13)
    assert quota_day(clock[0]) != quota_day(NOON_PACIFIC)
    total = report.new_videos
    while len(_videos(settings)) < 6:
        report = discover_once(settings, client, now=clock[0])
        total += report.new_videos
        clock[0] += timedelta(days=1)
    for day in {e.day for e in _ledger(settings)}:
        assert sum(e.units for e in _ledger(settings) if e.day == day) <= 5


def test_youtube_quota_exceeded_mid_poll_closes_the_day(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channels = [ing.channel(f"C{i}") for i in range(4)]
    for channel in channels:
        ing.upload(channel, serve=False)
    ing.youtube.quota_limit = 3  # the real project quota is smaller than the configured budget
    settings = ing.settings(CHANNELS=",".join(c.id for c in channels))
    report = _run(ing, settings)
    assert report.quota_exhausted
    assert any("quotaExceeded" in e.outcome for e in _ledger(settings))
    ledger = QuotaLedger(session_factory(settings), settings.quota_daily_budget)
    assert ledger.remaining() == 0
    calls = len(ing.youtube.requests)
    report = _run(ing, settings)
    assert len(ing.youtube.requests) == calls  # nothing more is sent today
    with session_factory(settings)() as session:
        run = session.scalars(select(PollRun).order_by(PollRun.id.desc())).first()
        assert run.errors >= 1 and "quota" in run.note


def test_invalid_key_stops_discovery_without_leaking_it(ingestion) -> None:
    channel = ingestion.channel()
    ingestion.upload(channel, serve=False)
    secret = api_key("SekritKey123")
    settings = ingestion.settings(CHANNELS=channel.id, YOUTUBE_API_KEY=secret)
    with pytest.raises(ApiKeyError) as caught:
        _run(ingestion, settings)
    message = str(caught.value)
    assert "FIND_YOUTUBE_API_KEY" in message and "API_KEY_INVALID" in message
    assert secret not in message
    assert len(ingestion.youtube.requests) == 1  # stopped at the first refusal
    with session_factory(settings)() as session:
        run = session.scalars(select(PollRun)).one()
        assert run.errors == 1 and secret not in (run.note or "")
        assert run.finished_at is not None
    assert [e.outcome for e in _ledger(settings)] == ["API_KEY_INVALID"]


def test_forbidden_stops_discovery(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    settings = ing.settings(CHANNELS=channel.id, SEARCH_QUERIES="x")
    ing.youtube.fail(None, "forbidden", times=5)
    with pytest.raises(ApiKeyError, match="forbidden"):
        _run(ing, settings)
    assert len(ing.youtube.requests) == 1


def test_one_bad_channel_never_stops_the_others(ingestion) -> None:
    good = ingestion.channel("Good")
    video = ingestion.upload(good, serve=False)
    broken = ingestion.channel("Broken")
    ingestion.upload(broken, serve=False)
    missing = "UC" + "x" * 22
    settings = ingestion.settings(CHANNELS=f"{missing},{broken.id},{good.id},@nobody-here")
    ingestion.youtube.fail(
        "playlistItems",
        "playlistNotFound",
        match=lambda p: p.get("playlistId") == broken.uploads_playlist_id,
    )
    report = _run(ingestion, settings)
    assert set(_videos(settings)) == {video.id}
    assert len(report.errors) == 3
    assert "not found" in _channel_row(settings, missing).last_error
    assert "FIND_CHANNELS" in _channel_row(settings, "@nobody-here").last_error
    broken_row = _channel_row(settings, broken.id)
    assert "playlist" in broken_row.last_error and broken_row.uploads_playlist_id is None
    # next pass: the broken channel is resolved again and recovers
    report = _run(ingestion, settings)
    assert _channel_row(settings, broken.id).last_error is None
    assert len(_videos(settings)) == 2


def test_rate_limits_and_5xx_back_off_then_succeed(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    video = ing.upload(channel, serve=False)
    settings = ing.settings(CHANNELS=channel.id)
    ing.youtube.fail("playlistItems", "rateLimitExceeded", times=1)
    ing.youtube.fail("videos", "backendError", times=2)
    sleeps: list[float] = []
    _sync(settings)
    client = ing.client(settings, sleep=sleeps.append, backoff_base_s=1.0)
    report = discover_once(settings, client)
    assert report.new_videos == 1 and not report.errors
    assert video.id in _videos(settings)
    outcomes = [(e.method, e.outcome) for e in _ledger(settings)]
    assert ("playlistItems.list", "rateLimitExceeded") in outcomes
    assert outcomes.count(("videos.list", "backendError")) == 2
    assert len(sleeps) == 3 and all(0 <= s <= 2.0 for s in sleeps)  # jittered, capped


def test_handles_and_urls_are_resolved_once(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    a = ing.channel("A", handle="@alpha")
    b = ing.channel("B", handle="@beta")
    ing.upload(a, serve=False)
    ing.upload(b, serve=False)
    settings = ing.settings(CHANNELS="@alpha https://www.youtube.com/@beta")
    _run(ing, settings)
    _run(ing, settings)
    assert len(ing.youtube.calls("channels")) == 2  # one per handle, first pass only
    assert _channel_row(settings, "@alpha").youtube_id == a.id
    assert _channel_row(settings, "@beta").youtube_id == b.id
    assert len(_videos(settings)) == 2


def test_filters_store_skipped_rows_with_reasons(ingestion) -> None:
    channel = ingestion.channel()
    old = ingestion.upload(
        channel, serve=False, published_at=datetime.now(UTC) - timedelta(days=30)
    )
    ok = ingestion.upload(channel, serve=False, duration_s=120)
    long = ingestion.upload(channel, serve=False, duration_s=7200)
    live = ingestion.upload(channel, serve=False, live="live")
    upcoming = ingestion.upload(channel, serve=False, live="upcoming")
    private = ingestion.upload(channel, serve=False, privacy="private")
    settings = ingestion.settings(
        CHANNELS=channel.id,
        MAX_DURATION="1h",
        MIN_PUBLISHED=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
    )
    report = _run(ingestion, settings)
    videos = _videos(settings)
    assert old.id not in videos  # older than FIND_MIN_PUBLISHED: not stored at all
    assert videos[ok.id].state == "new" and videos[ok.id].duration_s == 120
    assert videos[long.id].state == "skipped" and "FIND_MAX_DURATION" in videos[long.id].last_error
    assert videos[live.id].last_error_kind == "live"
    assert videos[upcoming.id].last_error_kind == "live"
    assert videos[private.id].state == "skipped"
    assert report.new_videos == 1 and report.skipped_videos == 4


def test_searches_wait_while_the_budget_is_needed_for_channels(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    ing.upload(
        channel, title="deepfake", serve=False, published_at=NOON_PACIFIC - timedelta(hours=1)
    )
    # 48 polls left today x (1 channel + 1 batch) = 96 units reserved for the channel
    tight = ing.settings(
        CHANNELS=channel.id,
        SEARCH_QUERIES="deepfake",
        QUOTA_DAILY_BUDGET="150",
        POLL_INTERVAL="15m",
    )
    _sync(tight)
    report = discover_once(tight, ing.client(tight, clock=lambda: NOON_PACIFIC), now=NOON_PACIFIC)
    assert report.queries_deferred == 1 and report.queries_polled == 0
    assert not ing.youtube.calls("search")

    roomy = ing.settings(
        CHANNELS=channel.id,
        SEARCH_QUERIES="deepfake",
        QUOTA_DAILY_BUDGET="10000",
        POLL_INTERVAL="15m",
    )
    report = discover_once(roomy, ing.client(roomy, clock=lambda: NOON_PACIFIC), now=NOON_PACIFIC)
    assert report.queries_polled == 1


def test_small_batches_of_new_uploads_wait_for_company(sqlite_ingestion) -> None:
    """With FIND_ENRICH_WAIT, new uploads are stored (and downloadable) at once, and their
    videos.list lookups wait to share one call."""
    ing = sqlite_ingestion
    channels = [ing.channel(f"C{i}") for i in range(3)]
    for channel in channels:
        ing.upload(channel, serve=False, published_at=NOON_PACIFIC - timedelta(days=2))
    settings = ing.settings(CHANNELS=",".join(c.id for c in channels), ENRICH_WAIT="1h")
    clock = [NOON_PACIFIC]
    ing.youtube.clock = lambda: clock[0]  # uploads appear as simulated time passes
    client = ing.client(settings, clock=lambda: clock[0])
    _sync(settings)
    report = discover_once(settings, client, now=clock[0])
    assert report.new_videos == 3 and report.awaiting_lookup == 3
    assert "3 waiting for a shared lookup" in report.summary()

    fresh = [
        ing.upload(c, serve=False, published_at=clock[0] + timedelta(minutes=15 * i + 1))
        for i, c in enumerate(channels)
    ]
    for minutes in (15, 30, 45):
        clock[0] = NOON_PACIFIC + timedelta(minutes=minutes)
        report = discover_once(settings, client, now=clock[0])
        assert report.new_videos == 1  # each upload is a row at the first pass after it
    assert not ing.youtube.calls("videos")  # nothing looked up yet
    videos = _videos(settings)
    for video in fresh:  # stored, and the download stage may take them now
        row = videos[video.id]
        assert row.state == "new" and row.next_attempt_at is None and row.duration_s is None
    assert _channel_row(settings, channels[0].id).last_seen_video_id == fresh[0].id

    clock[0] = NOON_PACIFIC + timedelta(minutes=60)  # the first ones have waited an hour
    report = discover_once(settings, client, now=clock[0])
    [call] = ing.youtube.calls("videos")  # one call for all six
    assert len(call.params["id"].split(",")) == 6 and report.awaiting_lookup == 0
    assert all(v.duration_s == 60 for v in _videos(settings).values())


def test_a_deleted_last_seen_video_does_not_reread_the_back_catalogue(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    old = datetime.now(UTC) - timedelta(days=3)
    for i in range(60):  # more than a page of older uploads
        ing.upload(channel, serve=False, published_at=old + timedelta(minutes=i))
    settings = ing.settings(CHANNELS=channel.id)
    assert _run(ing, settings).new_videos == 50
    cursor = _channel_row(settings, channel.id).last_seen_video_id
    ing.youtube.remove_video(cursor)  # the uploader deletes their newest video
    fresh = ing.upload(channel, serve=False)
    pages = len(ing.youtube.calls("playlistItems"))
    report = _run(ing, settings)
    assert report.new_videos == 1 and fresh.id in _videos(settings)
    assert len(ing.youtube.calls("playlistItems")) - pages == 1
    assert _channel_row(settings, channel.id).last_seen_video_id == fresh.id
