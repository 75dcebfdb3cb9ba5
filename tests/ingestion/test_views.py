"""View counts against the fake Data API: read in the lookup's own videos.list call, refreshed
for flagged videos within FIND_VIEWS_BUDGET, and the growth the queue's reach order uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.stages.discover import discover_once
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import QuotaEntry, Video, VideoSource, VideoState
from bot.youtube.quota import VIEWS_METHOD
from bot.youtube.views import refresh_flagged_views

# Noon Pacific, so the whole test stays inside one quota day.
NOON_PACIFIC = datetime(2026, 6, 10, 19, 0, tzinfo=UTC)


def _rows(settings) -> dict[str, Video]:
    with session_factory(settings)() as session:
        return {v.youtube_id: v for v in session.scalars(select(Video))}


def _ledger(settings) -> list[tuple[str, int]]:
    with session_factory(settings)() as session:
        return [(e.method, e.units) for e in session.scalars(select(QuotaEntry))]


def test_the_lookup_records_views_in_its_own_call(ingestion) -> None:
    channel = ingestion.channel("Studio")
    published = datetime.now(UTC) - timedelta(days=2)
    popular = ingestion.upload(channel, serve=False, published_at=published)
    popular_views = 48_000
    ingestion.youtube.videos[popular.id].views = popular_views
    hidden = ingestion.upload(channel, serve=False)
    ingestion.youtube.videos[hidden.id].views = None  # the uploader hides the count
    settings = ingestion.settings(CHANNELS=channel.id)
    with session_scope(settings) as session:
        sync_watchlist(settings, session)

    report = discover_once(settings, ingestion.client(settings))

    assert report.new_videos == 2 and not report.errors
    # One videos.list call for both, carrying the statistics part: no unit more than before.
    [lookup] = ingestion.youtube.calls("videos")
    assert lookup.params["part"].split(",") == ["snippet", "contentDetails", "status", "statistics"]
    assert _ledger(settings).count(("videos.list", 1)) == 1 and report.units == 3
    rows = _rows(settings)
    assert rows[popular.id].views == popular_views and rows[popular.id].views_at is not None
    # The first count grew from 0 since publication, two days ago: about 24,000 a day.
    assert 23_000 < rows[popular.id].views_per_day < 24_100
    assert rows[hidden.id].views is None and rows[hidden.id].views_per_day is None


def _flag(settings, ids: list[str], *, source: str = VideoSource.YOUTUBE_UPLOAD.value) -> None:
    with session_scope(settings) as session:
        for key in ids:
            session.add(Video(youtube_id=key, state=VideoState.FLAGGED.value, source=source))


def test_refresh_reads_flagged_views_in_batches_within_the_daily_budget(ingestion) -> None:
    channel = ingestion.channel()
    fakes = [ingestion.upload(channel, serve=False) for _ in range(120)]
    for n, video in enumerate(fakes):
        video.views = 1000 + n
    # 48 units a day: 2 an hour.
    settings = ingestion.settings(VIEWS_BUDGET="48")
    _flag(settings, [v.id for v in fakes])
    _flag(settings, ["sub-0123456789ab"], source=VideoSource.SUBMITTED_FILE.value)  # no API

    def run(now: datetime):
        client = ingestion.client(settings, clock=lambda: now)
        return refresh_flagged_views(settings, session_factory(settings), client, now)

    first = run(NOON_PACIFIC)
    assert (first.calls, first.refreshed) == (2, 100)
    assert first.stopped and "FIND_VIEWS_BUDGET" in first.stopped
    calls = ingestion.youtube.calls("videos")
    assert [c.params["part"] for c in calls] == ["statistics", "statistics"]
    assert [len(c.params["id"].split(",")) for c in calls] == [50, 50]
    assert _ledger(settings) == [(VIEWS_METHOD, 1), (VIEWS_METHOD, 1)]
    rows = _rows(settings)
    assert sum(rows[v.id].views is not None for v in fakes) == 100
    assert rows["sub-0123456789ab"].views is None

    # An hour later the 20 never counted come first, then 80 of the stalest.
    for video in fakes:
        video.views += 2400
    second = run(NOON_PACIFIC + timedelta(hours=1))
    assert (second.calls, second.refreshed) == (2, 100)
    rows = _rows(settings)
    assert all(rows[v.id].views is not None for v in fakes)
    recounted = [rows[v.id] for v in fakes if rows[v.id].views_before is not None]
    assert len(recounted) == 80
    # 2,400 more views in one hour: 57,600 a day.
    assert {round(r.views_per_day) for r in recounted} == {57_600}


def test_refresh_stops_when_the_day_is_spent(ingestion) -> None:
    channel = ingestion.channel()
    video = ingestion.upload(channel, serve=False)
    settings = ingestion.settings(VIEWS_BUDGET="2")  # 1 unit an hour, 2 a day
    _flag(settings, [video.id])
    spent = []
    for hour in range(4):
        now = NOON_PACIFIC + timedelta(hours=hour)
        client = ingestion.client(settings, clock=lambda now=now: now)
        spent.append(refresh_flagged_views(settings, session_factory(settings), client, now).calls)
    assert spent == [1, 1, 0, 0]
    assert _ledger(settings) == [(VIEWS_METHOD, 1), (VIEWS_METHOD, 1)]
    # Nothing else was charged: lookups and playlists have the rest of the budget.
    assert len(ingestion.youtube.calls()) == 2
    # `find-bot status` shows the spend against the budget.
    from bot.service.status import collect_status, render_status

    status = collect_status(settings, now=NOON_PACIFIC + timedelta(hours=3))
    assert status["quota"]["views"] == {"used": 2, "budget": 2}
    assert "of which view counts 2 / 2 (FIND_VIEWS_BUDGET)" in render_status(status)


def test_a_removed_video_gains_no_views(sqlite_ingestion) -> None:
    channel = sqlite_ingestion.channel()
    video = sqlite_ingestion.upload(channel, serve=False)
    settings = sqlite_ingestion.settings()
    _flag(settings, [video.id])
    with session_scope(settings) as session:
        row = session.scalars(select(Video)).one()
        row.views, row.views_per_day = 500, 900.0
    sqlite_ingestion.youtube.remove_video(video.id)
    client = sqlite_ingestion.client(settings, clock=lambda: NOON_PACIFIC)
    report = refresh_flagged_views(settings, session_factory(settings), client, NOON_PACIFIC)
    assert (report.gone, report.refreshed) == (1, 0)
    row = _rows(settings)[video.id]
    assert (row.views, row.views_per_day, row.views_at) == (500, 0.0, NOON_PACIFIC)
