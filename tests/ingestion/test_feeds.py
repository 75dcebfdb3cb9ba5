"""Channel feeds against the fake youtube.com: real HTTP (httpx), real Atom, real feedparser.

What they promise: new uploads are found without quota, unchanged feeds cost
no body, reads are spread over the interval, a burst the feed cannot show and
a feed that keeps failing both fall back to the uploads playlist, and a
hostile document is refused with an error recorded on its channel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.stages.discover import discover_once, tick_once
from bot.stages.discover.feeds import FALLBACK_AFTER, JITTER, FeedReader
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import Channel, QuotaEntry, Video
from bot.youtube.atom import FeedError, parse_youtube_atom
from tests.fakes import youtube_feeds

NOON_PACIFIC = datetime(2026, 6, 10, 19, 0, tzinfo=UTC)


def _sync(settings) -> None:
    with session_scope(settings) as session:
        sync_watchlist(settings, session)


def _videos(settings) -> dict[str, Video]:
    with session_factory(settings)() as session:
        return {v.youtube_id: v for v in session.scalars(select(Video))}


def _channel(settings, configured_as: str) -> Channel:
    with session_factory(settings)() as session:
        return session.scalars(select(Channel).where(Channel.configured_as == configured_as)).one()


def _units(settings) -> dict[str, int]:
    with session_factory(settings)() as session:
        totals: dict[str, int] = {}
        for entry in session.scalars(select(QuotaEntry)):
            totals[entry.method] = totals.get(entry.method, 0) + entry.units
        return totals


class Clock:
    """Simulated time, shared by the fake (what is published) and the client (the ledger)."""

    def __init__(self, ing, start: datetime = NOON_PACIFIC) -> None:
        self.now = start
        ing.youtube.clock = lambda: self.now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def _feeds_settings(ing, **env):
    return ing.settings(CHANNEL_FEEDS="true", **env)


def test_feeds_find_new_uploads_for_no_quota_and_304s_cost_no_body(ingestion) -> None:
    clock = Clock(ingestion)
    channels = [ingestion.channel(f"C{i}") for i in range(3)]
    first = {
        ingestion.upload(c, serve=False, published_at=clock.now - timedelta(hours=k + 1)).id
        for c in channels
        for k in range(2)
    }
    settings = _feeds_settings(ingestion, CHANNELS=",".join(c.id for c in channels))
    client = ingestion.client(settings, clock=clock)
    _sync(settings)

    report = discover_once(settings, client, now=clock.now)
    assert report.new_videos == 6 and not report.errors, report.errors
    assert report.feeds_read == 3 and report.playlist_reads == 0
    assert set(_videos(settings)) == first
    # 1 channels.list (resolving all three) + 1 videos.list (all six): no playlist page
    assert _units(settings) == {"channels.list": 1, "videos.list": 1}
    assert {v.discovered_via for v in _videos(settings).values()} == {
        f"feed:{c.id}" for c in channels
    }

    # Nothing new: every feed answers 304 to the conditional request, with no body.
    marker = len(ingestion.youtube.feed_calls())
    clock.advance(minutes=20)
    report = discover_once(settings, client, now=clock.now)
    again = ingestion.youtube.feed_calls()[marker:]
    assert [(r.status, r.bytes, r.conditional) for r in again] == [(304, 0, True)] * 3
    assert report.feeds_unchanged == 3 and report.units == 0 and report.new_videos == 0

    # One upload: only its channel's feed changes, and only its id is looked up.
    fresh = ingestion.upload(channels[1], serve=False, published_at=clock.advance(minutes=1))
    lookups = len(ingestion.youtube.calls("videos"))
    clock.advance(minutes=20)
    report = discover_once(settings, client, now=clock.now)
    assert report.new_videos == 1 and report.feeds_read == 1 and report.feeds_unchanged == 2
    [call] = ingestion.youtube.calls("videos")[lookups:]
    assert call.params["id"] == fresh.id
    row = _videos(settings)[fresh.id]
    assert row.state == "new" and row.duration_s == 60 and row.discovered_at == clock.now


def test_reads_are_spread_over_the_interval(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    clock = Clock(ing)
    channels = [ing.channel(f"C{i}") for i in range(20)]
    settings = _feeds_settings(ing, CHANNELS=",".join(c.id for c in channels), POLL_INTERVAL="15m")
    client = ing.client(settings, clock=clock)
    _sync(settings)
    discover_once(settings, client, now=clock.now)
    with session_factory(settings)() as session:
        due = sorted(c.feed_next_at for c in session.scalars(select(Channel)))
    low, high = (
        clock.now + timedelta(minutes=15 * (1 - JITTER)),
        clock.now + timedelta(minutes=15 * (1 + JITTER)),
    )
    assert all(low <= d <= high for d in due)
    assert due[-1] - due[0] > timedelta(minutes=2)  # not all at the same moment

    reads = len(ing.youtube.feed_calls())
    tick_once(settings, client, now=clock.now + timedelta(minutes=5))  # nothing is due yet
    assert len(ing.youtube.feed_calls()) == reads
    middle = due[len(due) // 2]
    tick_once(settings, client, now=middle)  # about half of them are due
    assert len(ing.youtube.feed_calls()) - reads == len([d for d in due if d <= middle])
    tick_once(settings, client, now=high)  # and then the rest, each once
    assert len(ing.youtube.feed_calls()) - reads == 20


def test_a_burst_the_feed_cannot_show_is_read_from_the_playlist(ingestion) -> None:
    """40 uploads between two reads: the feed shows 15 and none it saw before, so the
    uploads playlist is read back to the cursor; nothing is missed."""
    clock = Clock(ingestion)
    channel = ingestion.channel()
    for k in range(5):
        ingestion.upload(channel, serve=False, published_at=clock.now - timedelta(days=1, hours=k))
    settings = _feeds_settings(ingestion, CHANNELS=channel.id)
    client = ingestion.client(settings, clock=clock)
    _sync(settings)
    assert discover_once(settings, client, now=clock.now).new_videos == 5

    burst = [
        ingestion.upload(channel, serve=False, published_at=clock.now + timedelta(seconds=10 * i))
        for i in range(1, 41)
    ]
    pages = len(ingestion.youtube.calls("playlistItems"))
    clock.advance(minutes=20)
    report = discover_once(settings, client, now=clock.now)
    assert report.fallbacks == [channel.id] and report.playlist_reads == 1
    assert report.new_videos == 40 and not report.errors
    assert {v.id for v in burst} <= set(_videos(settings))
    assert len(ingestion.youtube.calls("playlistItems")) - pages == 1  # one page of 50
    row = _channel(settings, channel.id)
    assert row.playlist_due is None and row.last_seen_video_id == burst[-1].id

    # Afterwards the feed carries on alone.
    fresh = ingestion.upload(channel, serve=False, published_at=clock.advance(minutes=1))
    clock.advance(minutes=20)
    report = discover_once(settings, client, now=clock.now)
    assert report.new_videos == 1 and report.playlist_reads == 0 and fresh.id in _videos(settings)


def test_an_owed_playlist_read_waits_for_quota_without_losing_uploads(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    clock = Clock(ing)
    channel = ing.channel()
    ing.upload(channel, serve=False, published_at=clock.now - timedelta(days=1))
    settings = _feeds_settings(ing, CHANNELS=channel.id, QUOTA_DAILY_BUDGET="3")
    client = ing.client(settings, clock=clock)
    _sync(settings)
    discover_once(settings, client, now=clock.now)  # 1 channels.list + 1 videos.list
    burst = [
        ing.upload(channel, serve=False, published_at=clock.now + timedelta(seconds=i))
        for i in range(1, 21)
    ]
    clock.advance(minutes=20)
    report = discover_once(settings, client, now=clock.now)  # 1 unit left: the page, no lookup
    assert report.playlist_reads == 1 and report.quota_exhausted
    assert {v.id for v in burst} <= set(_videos(settings))  # all stored, lookups owed

    # The quota is gone for the day, the feed still works: new uploads keep arriving.
    fresh = ing.upload(channel, serve=False, published_at=clock.advance(minutes=1))
    report = discover_once(settings, client, now=clock.advance(minutes=20))
    assert report.new_videos == 1 and report.units == 0 and fresh.id in _videos(settings)
    assert report.awaiting_lookup == 21 and sum(_units(settings).values()) == 3


def test_a_failing_feed_falls_back_to_the_playlist_then_recovers(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    clock = Clock(ing)
    channel = ing.channel()
    settings = _feeds_settings(ing, CHANNELS=channel.id)
    client = ing.client(settings, clock=clock)
    _sync(settings)
    ing.youtube.fail_feed(channel.id, 503, times=FALLBACK_AFTER)

    for attempt in range(1, FALLBACK_AFTER + 1):
        upload = ing.upload(channel, serve=False, published_at=clock.advance(minutes=1))
        report = discover_once(settings, client, now=clock.now, force_feeds=True)
        row = _channel(settings, channel.id)
        assert row.feed_failures == attempt and "HTTP 503" in row.last_error
        assert report.feeds_failed == 1
        if attempt < FALLBACK_AFTER:
            assert report.playlist_reads == 0 and upload.id not in _videos(settings)
    # The third failure: the uploads playlist stands in, and nothing was missed.
    assert report.playlist_reads == 1 and len(_videos(settings)) == FALLBACK_AFTER

    # Until its retry is due (one interval later, doubling) the feed is left alone and
    # the playlist is read at the channel's turns instead.
    feeds = len(ing.youtube.feed_calls())
    late = ing.upload(channel, serve=False, published_at=clock.advance(minutes=1))
    report = discover_once(settings, client, now=clock.advance(minutes=10), force_feeds=True)
    assert len(ing.youtube.feed_calls()) == feeds and report.playlist_reads == 1
    assert late.id in _videos(settings)

    # The retry works: back to the feed, no more playlist reads, the error is gone.
    report = discover_once(settings, client, now=clock.advance(minutes=16), force_feeds=True)
    row = _channel(settings, channel.id)
    assert row.feed_failures == 0 and row.last_error is None and row.playlist_due is None
    assert report.feeds_read + report.feeds_unchanged == 1 and report.playlist_reads == 0


def test_a_429_pauses_every_feed_read(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    channels = [ing.channel(f"C{i}") for i in range(5)]
    settings = _feeds_settings(ing, CHANNELS=",".join(c.id for c in channels))
    _sync(settings)
    ing.youtube.fail_feed(None, 429, times=1, headers={"Retry-After": "120"})
    reader = FeedReader(settings, concurrency=1)
    try:
        report = discover_once(settings, ing.client(settings), reader=reader)
        assert len(ing.youtube.feed_calls()) == 1  # the first one; the others were not sent
        assert report.feeds_failed == 1 and 110 < reader.paused_for() <= 120
        assert "HTTP 429" in report.errors[0]
        with session_factory(settings)() as session:  # the others are still due
            assert sum(c.feed_next_at is None for c in session.scalars(select(Channel))) == 4
    finally:
        reader.close()


def test_a_channel_read_through_its_playlist_so_far_moves_to_its_feed(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    clock = Clock(ing)
    channel = ing.channel()
    for k in range(20):
        ing.upload(channel, serve=False, published_at=clock.now - timedelta(hours=20 - k))
    playlist = ing.settings(CHANNELS=channel.id)  # FIND_CHANNEL_FEEDS=false
    client = ing.client(playlist, clock=clock)
    _sync(playlist)
    assert discover_once(playlist, client, now=clock.now).new_videos == 20

    fresh = ing.upload(channel, serve=False, published_at=clock.advance(minutes=1))
    feeds = _feeds_settings(ing, CHANNELS=channel.id)
    pages = len(ing.youtube.calls("playlistItems"))
    report = discover_once(feeds, ing.client(feeds, clock=clock), now=clock.advance(minutes=1))
    # The playlist cursor is in the feed: only the newer upload is new, no fallback.
    assert report.new_videos == 1 and fresh.id in _videos(feeds)
    assert report.playlist_reads == 0 and len(ing.youtube.calls("playlistItems")) == pages


@pytest.mark.parametrize(
    ("name", "document", "expected"),
    [
        ("billion laughs", youtube_feeds.billion_laughs(), "declares a DTD"),
        ("external entity", youtube_feeds.external_entity(), "declares a DTD"),
        ("not XML", b"<html><body>Sorry, something went wrong", "not well-formed XML"),
        ("not Atom", b"<?xml version='1.0'?><rss><channel/></rss>", "not an Atom feed"),
        ("huge", None, "byte limit"),
        ("foreign entry", None, "belongs to channel"),
        ("bad video id", None, "no valid yt:videoId"),
    ],
)
def test_a_hostile_feed_is_refused_and_recorded_on_its_channel(
    sqlite_ingestion, name: str, document: bytes | None, expected: str
) -> None:
    ing = sqlite_ingestion
    victim, other = ing.channel("Victim"), ing.channel("Other")
    good = ing.upload(other, serve=False)
    if name == "huge":
        document = youtube_feeds.huge_feed(victim.id, 2 * 1024 * 1024)
    elif name in ("foreign entry", "bad video id"):
        entry_channel = other.id if name == "foreign entry" else victim.id
        video_id = "abcdefghijk" if name == "foreign entry" else "../../etc"
        entries = [
            youtube_feeds.feed_entry(
                video_id,
                entry_channel,
                title="x",
                channel_title="x",
                published_at=datetime.now(UTC),
            )
        ]
        document = youtube_feeds.channel_feed(
            victim.id, "Victim", entries, created=datetime(2015, 1, 1, tzinfo=UTC)
        )
    assert document is not None
    ing.youtube.serve_feed_document(victim.id, document)
    settings = _feeds_settings(ing, CHANNELS=f"{victim.id},{other.id}")
    _sync(settings)
    report = discover_once(settings, ing.client(settings))

    assert set(_videos(settings)) == {good.id}  # the other channel is unaffected
    row = _channel(settings, victim.id)
    assert expected in row.last_error and row.feed_failures == 1, row.last_error
    assert "\n" not in row.last_error and "root:" not in row.last_error
    assert any(expected in error for error in report.errors)
    assert row.feed_etag is None and row.feed_seen is None  # nothing from it was kept


def test_the_parser_accepts_youtubes_shapes_and_checks_the_channel() -> None:
    channel = "UC" + "a" * 22
    when = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    entries = [
        youtube_feeds.feed_entry(
            f"video{i:06d}", channel, title=f"t & {i}", channel_title="A", published_at=when
        )
        for i in range(3)
    ]
    document = youtube_feeds.channel_feed(channel, "A", entries, created=when)
    parsed = parse_youtube_atom(document, channel, what="feed")
    assert [e.video_id for e in parsed] == ["video000000", "video000001", "video000002"]
    assert parsed[0].title == "t & 0" and parsed[0].published_at == when
    assert parsed[0].channel_title == "A"
    with pytest.raises(FeedError, match="is the feed of channel"):
        parse_youtube_atom(document, "UC" + "b" * 22, what="feed")
    # A push notification (nanosecond timestamps, no feed-level channel id) parses too.
    note = youtube_feeds.push_notification(
        channel, "abcdefghijk", title="new", channel_title="A", published_at=when
    )
    [entry] = parse_youtube_atom(note, channel, what="notification")
    assert entry.video_id == "abcdefghijk" and entry.updated_at is not None
    tombstone = youtube_feeds.deleted_notification(channel, "abcdefghijk", when)
    assert parse_youtube_atom(tombstone, channel, what="notification") == []


def test_poll_once_reads_the_feeds(sqlite_ingestion, monkeypatch, tmp_path, capsys) -> None:
    from bot.cli import main

    ing = sqlite_ingestion
    channel = ing.channel("Alpha")
    uploads = {ing.upload(channel, serve=False).id for _ in range(2)}
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in ing.env(CHANNELS=channel.id, CHANNEL_FEEDS="true").items():
        monkeypatch.setenv(key, value)
    assert main(["poll", "--once", "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "discover: 2 new video(s)" in out and "feeds: 1 read (0 unchanged, 0 failed)" in out
    assert "quota: 2/10000 units used today" in out  # channels.list + videos.list
    assert set(_videos(ing.base)) == uploads
    assert main(["poll", "--once", "--no-download"]) == 0  # read again at once, 304
    assert "feeds: 1 read (1 unchanged, 0 failed)" in capsys.readouterr().out


def test_feed_entries_dated_far_ahead_are_not_stored(sqlite_ingestion, caplog) -> None:
    """Issue 30 item 5: the feed poller drops an entry dated 400 days ahead, as the push
    receiver does (one rule, bot.youtube.atom.from_the_future); a few minutes of clock
    skew is believed.  The dropped entry is not kept as seen either: a real upload listed
    below it at the next read is still found."""
    import logging

    ing = sqlite_ingestion
    clock = Clock(ing)
    channel = ing.channel("Liar")

    def serve(*entries: tuple[str, timedelta]) -> None:
        rendered = [
            youtube_feeds.feed_entry(
                video_id, channel.id, title=video_id, channel_title="Liar", published_at=when
            )
            for video_id, when in ((v, clock.now + ahead) for v, ahead in entries)
        ]
        document = youtube_feeds.channel_feed(
            channel.id, "Liar", rendered, created=datetime(2015, 1, 1, tzinfo=UTC)
        )
        ing.youtube.serve_feed_document(channel.id, document)

    serve(("fromfuture1", timedelta(days=400)), ("smallskew01", timedelta(minutes=5)))
    settings = _feeds_settings(ing, CHANNELS=channel.id)
    client = ing.client(settings, clock=clock)
    _sync(settings)
    caplog.set_level(logging.INFO, logger="find.feeds")
    report = discover_once(settings, client, now=clock.now)
    assert not report.errors, report.errors
    assert set(_videos(settings)) == {"smallskew01"}
    [read] = [r for r in caplog.records if r.getMessage() == "feeds.read"]
    assert (read.future, read.new) == (1, 1)
    assert _channel(settings, channel.id).feed_seen == ["smallskew01"]

    clock.advance(hours=1)
    serve(
        ("fromfuture1", timedelta(days=400)),
        ("newupload01", timedelta(minutes=-1)),
        ("smallskew01", timedelta(minutes=-55)),
    )
    discover_once(settings, client, now=clock.now, force_feeds=True)
    assert set(_videos(settings)) == {"smallskew01", "newupload01"}
