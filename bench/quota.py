"""Benchmark: YouTube API units per discovered video, and how fast uploads become rows.

Four scenarios, each the real discover stage (real google-api-python-client,
real httpx, real feedparser, real database) against the fakes from
``tests/fakes`` on a simulated clock:

* ``playlist``: the reader before feeds (``FIND_CHANNEL_FEEDS=false``), kept for
  comparison: 50 channels, uploads at random times, a pass every 15 minutes;
* ``feeds``: 1,000 channels of which 5 % post during the day, read through their
  Atom feeds on the daemon's schedule (a light pass every minute, a full one every
  poll interval); the Data API only looks up new ids;
* ``push``: the same with WebSub: the real receiver under uvicorn, a local hub
  notifying it 5-60 s after each upload (a share of notifications lost on
  purpose: the hourly feed reads must find those);
* ``burst``: 40 uploads on one channel between two reads (the feed shows 15):
  every one must be found, through the uploads-playlist fallback.

For ``playlist`` it reports

* the catch-up pass at the start (back catalogue, first page per channel),
* the day: total units, new videos, units per video overall,
* the **marginal cost per discovered video**: the pages of the channels that
  had new uploads in a pass plus the ``videos.list`` batches, divided by the
  videos found (the issue's target: at most 1.2 units per video),
* the cost of quiet channels (1 unit each per poll), and the naive approach
  (one ``search.list`` per channel per poll, 100 units each) for comparison,
* the day's peak use against the budget (must never exceed it).

For ``feeds`` and ``push``: units in the day and per new video (targets: at most
0.1 per video, 500 a day), the time from upload to row (median at most 15
minutes with polling, 1 minute with push) and the load on the feed server
(requests per channel per day, how many were 304s without a body).

    .venv/bin/python bench/quota.py [--scenario all|playlist|feeds|push|burst]
    .venv/bin/python bench/quota.py --quick    # 2 simulated hours, 20/200 channels (~1-2 min)
    .venv/bin/python bench/quota.py --smoke    # 1 simulated hour, 3/10 channels: does it run
    .venv/bin/python bench/quota.py --scenario playlist [--channels 50] [--uploads-per-day 2]
    .venv/bin/python bench/quota.py --scenario feeds [--feed-channels 1000] [--posting 0.05]

``--hours H`` simulates H hours instead of the whole day: the uploads planned
for the day all happen within those hours (so the run still finds as many),
the daily-units target is checked only on a whole day.  ``--quick`` (what
``make bench`` runs) is ``--hours 2 --channels 20 --feed-channels 200``; ``--smoke``
(``make bench BENCH=smoke``, what the test suite runs) is ``--hours 1 --channels 3
--feed-channels 10 --posting 0.3`` and judges no target (too few videos to mean anything).

Writes the numbers as JSON to ``bench/out/quota.json`` too; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: import bot and tests.fakes from this checkout

from sqlalchemy import func, select  # noqa: E402

from bot import db  # noqa: E402
from bot.db import session_factory, session_scope  # noqa: E402
from bot.settings import Settings, load_settings, parse_duration  # noqa: E402
from bot.stages.discover import DiscoverReport, discover_once, make_client, tick_once  # noqa: E402
from bot.stages.discover.feeds import FeedReader  # noqa: E402
from bot.stages.discover.watchlist import sync_watchlist  # noqa: E402
from bot.store import Channel, QuotaEntry, Video  # noqa: E402
from bot.youtube.quota import quota_day  # noqa: E402
from tests.fakes import youtube_feeds  # noqa: E402
from tests.fakes.websub_hub import FakeHub, PushReceiver  # noqa: E402
from tests.fakes.youtube_api import VALID_KEY, FakeYouTubeServer, RecordedRequest  # noqa: E402

#: Midnight Pacific (PDT) on a summer day: the quota day starts with the simulation.
DAY_START = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)
#: The daemon's light pass runs this often (bot.service.periodic.TICK_S).
TICK_S = 60
#: After the day, the simulation runs on this long so late uploads are found too.
OVERRUN = timedelta(minutes=45)
#: How long the hub takes to notify (uniform): an assumption, not measured.
PUSH_DELAY_S = (5, 60)
PUSH_SECRET = "bench-push-secret-0123456789"
#: Targets (issue 13).
TARGET_UNITS_PER_VIDEO = 0.1
TARGET_DAY_UNITS = 500
TARGET_MEDIAN_POLL_S = 15 * 60
TARGET_MEDIAN_PUSH_S = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", choices=("all", "playlist", "feeds", "push", "burst"), default="all"
    )
    parser.add_argument("--channels", type=int, default=50, help="playlist scenario")
    parser.add_argument(
        "--uploads-per-day",
        type=float,
        default=2.0,
        help="playlist scenario: mean uploads per channel during the day (Poisson)",
    )
    parser.add_argument("--backlog", type=int, default=5, help="videos per channel before the day")
    parser.add_argument("--interval", default="15m", help="poll interval")
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument(
        "--enrich-wait",
        default=None,
        help="FIND_ENRICH_WAIT: how long new uploads may wait for a fuller lookup batch "
        "(default: the setting's default)",
    )
    parser.add_argument("--feed-channels", type=int, default=1000, help="feeds/push scenarios")
    parser.add_argument(
        "--posting", type=float, default=0.05, help="share of channels that upload in the day"
    )
    parser.add_argument(
        "--uploads-per-poster",
        type=float,
        default=2.0,
        help="mean uploads of a channel that posts (at least 1)",
    )
    parser.add_argument(
        "--push-loss", type=float, default=0.05, help="share of push notifications lost"
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="simulated span in hours (default: a whole day); the day's uploads fall within it",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="a short run for make bench: --hours 2 --channels 20 --feed-channels 200",
    )
    size.add_argument(
        "--smoke",
        action="store_true",
        help="does it run: --hours 1 --channels 3 --feed-channels 10 --posting 0.3, no target "
        "judged",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quota.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.hours, args.channels, args.feed_channels = 2.0, 20, 200
    if args.smoke:
        args.hours, args.channels, args.feed_channels, args.posting = 1.0, 3, 10, 0.3
        if args.out == parser.get_default("out"):  # keep the real runs' numbers
            args.out = args.out.with_name("quota-smoke.json")
    if not 0 < args.hours <= 24:
        parser.error(f"--hours {args.hours}: give a span between 0 and 24 hours")
    logging.basicConfig(level=logging.WARNING)
    random.seed(args.seed)  # the feeds' schedule jitter too: the same run every time
    chosen = ("playlist", "feeds", "push", "burst") if args.scenario == "all" else (args.scenario,)
    results: dict = {}
    missed: list[str] = []
    for name in chosen:
        if name == "playlist":
            results[name] = run(args)
            print_results(results[name])
            marginal = results[name]["day"]["marginal_units_per_video"]
            if marginal is None:  # no upload found in the day: nothing to divide by
                missed.append("playlist: no upload of the day was found")
            elif marginal > 1.2:
                missed.append("playlist: marginal units per video over 1.2")
        elif name in ("feeds", "push"):
            results[name] = run_feeds(args, push=name == "push")
            missed += print_feeds(name, results[name])
        else:
            results[name] = run_burst(args)
            missed += print_burst(results[name])
        print()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    for line in missed:
        print(f"TARGET MISSED: {line}" + (" (smoke run: not judged)" if args.smoke else ""))
    print(f"written to {args.out}")
    return 1 if missed and not args.smoke else 0


def _span_s(args: argparse.Namespace) -> int:
    """The simulated span in seconds (a whole day unless --hours/--quick shorten it)."""
    return round(args.hours * 3600)


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    interval_s = parse_duration(args.interval, minimum=10)
    clock = [DAY_START]
    with tempfile.TemporaryDirectory() as tmp, FakeYouTubeServer() as server:
        fake = server.state
        fake.clock = lambda: clock[0]
        channels = [fake.add_channel(f"channel {i}") for i in range(args.channels)]
        planned = 0
        for channel in channels:
            for k in range(args.backlog):
                fake.add_video(channel, published_at=DAY_START - timedelta(hours=6 * (k + 1)))
            uploads = _poisson(rng, args.uploads_per_day)
            for _ in range(uploads):
                moment = DAY_START + timedelta(seconds=rng.uniform(1, _span_s(args) - 1))
                fake.add_video(channel, published_at=moment)
            planned += uploads

        settings = load_settings(
            environ={
                "FIND_DATA_DIR": tmp,
                "FIND_YOUTUBE_API_KEY": VALID_KEY,
                "FIND_YOUTUBE_API_ENDPOINT": server.url,
                "FIND_CHANNELS": ",".join(c.id for c in channels),
                "FIND_POLL_INTERVAL": str(interval_s),
                "FIND_QUOTA_DAILY_BUDGET": str(args.budget),
                "FIND_WORKER_ID": "bench",
                "FIND_ENRICH_WAIT": args.enrich_wait or "1h",
                "FIND_CHANNEL_FEEDS": "false",
                "FIND_FEED_URL_TEMPLATE": server.feed_url_template,
            }
        )
        db.upgrade(settings)
        with session_scope(settings) as session:
            sync_watchlist(settings, session)
        client = make_client(settings, clock=lambda: clock[0])
        playlist_owner = {c.uploads_playlist_id: c.id for c in channels}

        passes = []
        started = time.monotonic()
        polls = math.ceil(_span_s(args) / interval_s)
        for index in range(polls):
            clock[0] = DAY_START + timedelta(seconds=index * interval_s)
            before = len(fake.requests)
            report = discover_once(settings, client, now=clock[0])
            requests = fake.requests[before:]
            passes.append(_pass_stats(settings, clock[0], report, requests, playlist_owner))
        wall = time.monotonic() - started

        with session_factory(settings)() as session:
            entries = list(session.scalars(select(QuotaEntry)))
        by_day = Counter()
        for entry in entries:
            by_day[entry.day] += entry.units

    catch_up, day = passes[0], passes[1:]
    found = sum(p["new_videos"] for p in day)
    units = sum(p["units"] for p in day)
    productive = sum(p["productive_units"] for p in day)
    naive = 100 * args.channels * len(day)
    return {
        "setup": {
            "channels": args.channels,
            "uploads_per_day": args.uploads_per_day,
            "backlog": args.backlog,
            "span_s": _span_s(args),
            "poll_interval_s": interval_s,
            "polls": polls,
            "budget": args.budget,
            "seed": args.seed,
            "enrich_wait_s": settings.enrich_wait_s,
        },
        "catch_up": {
            "new_videos": catch_up["new_videos"],
            "units": catch_up["units"],
            "units_per_video": _ratio(catch_up["units"], catch_up["new_videos"]),
        },
        "day": {
            "uploads_planned": planned,
            "new_videos": found,
            "units": units,
            "units_per_video": _ratio(units, found),
            "marginal_units": productive,
            "marginal_units_per_video": _ratio(productive, found),
            "quiet_channel_units": units - productive,
            "calls": dict(sum((Counter(p["calls"]) for p in day), Counter())),
        },
        "naive_search_per_channel": {
            "units": naive,
            "units_per_video": _ratio(naive, found),
            "fits_budget": naive <= args.budget,
        },
        "budget": {
            "peak_day_units": max(by_day.values()),
            "limit": args.budget,
            "exceeded": max(by_day.values()) > args.budget,
            "days": {d: u for d, u in sorted(by_day.items())},
            "day_of_start": quota_day(DAY_START),
        },
        "wall_s": round(wall, 1),
    }


def _pass_stats(
    settings: Settings,
    now: datetime,
    report: DiscoverReport,
    requests: list[RecordedRequest],
    playlist_owner: dict[str, str],
) -> dict:
    """Split a pass's units into productive (channels that had new uploads) and quiet."""
    with session_factory(settings)() as session:
        new_via = Counter(
            session.scalars(select(Video.discovered_via).where(Video.discovered_at == now))
        )
    productive_channels = {via.split(":", 1)[1] for via in new_via if via.startswith("channel:")}
    calls = Counter(r.resource for r in requests)
    productive = (
        calls.get("videos", 0)
        + calls.get("channels", 0)
        + sum(
            1
            for r in requests
            if r.resource == "playlistItems"
            and playlist_owner.get(r.params.get("playlistId")) in productive_channels
        )
    )
    return {
        "new_videos": report.new_videos,
        "units": report.units,
        "productive_units": productive,
        "calls": dict(calls),
    }


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def print_results(r: dict) -> None:
    s, c, d, n, b = r["setup"], r["catch_up"], r["day"], r["naive_search_per_channel"], r["budget"]
    print("== playlist: uploads playlists only (FIND_CHANNEL_FEEDS=false), as before feeds")
    print(
        f"setup: {s['channels']} channels, ~{s['uploads_per_day']} uploads/channel/day"
        f"{_span_note(s['span_s'])}, "
        f"poll every {s['poll_interval_s']}s ({s['polls']} polls), budget {s['budget']}, "
        f"enrich wait {s['enrich_wait_s']}s"
    )
    print(
        f"catch-up pass: {c['new_videos']} videos for {c['units']} units "
        f"({c['units_per_video']} units/video)"
    )
    print(
        f"day: {d['new_videos']}/{d['uploads_planned']} uploads found, {d['units']} units "
        f"({d['units_per_video']} units/video overall), calls {d['calls']}"
    )
    print(
        f"marginal cost: {d['marginal_units']} units for {d['new_videos']} videos = "
        f"{d['marginal_units_per_video']} units/video (target <= 1.2)"
    )
    print(f"quiet channels: {d['quiet_channel_units']} units (1 per channel per poll)")
    print(
        f"naive search.list per channel per poll: {n['units']} units "
        f"({n['units_per_video']} units/video; fits budget: {n['fits_budget']})"
    )
    print(
        f"budget: peak {b['peak_day_units']}/{b['limit']} units in a quota day, "
        f"exceeded: {b['exceeded']}; wall {r['wall_s']}s"
    )


# ======================================================================= feeds
def run_feeds(args: argparse.Namespace, *, push: bool) -> dict:
    """A simulated day of 1,000 channels read through feeds (and pushed, with ``push``)."""
    rng = random.Random(args.seed)
    interval_s = parse_duration(args.interval, minimum=10)
    clock = [DAY_START - timedelta(hours=1)]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        server = stack.enter_context(FakeYouTubeServer())
        fake = server.state
        fake.clock = lambda: clock[0]
        channels = [fake.add_channel(f"channel {i}") for i in range(args.feed_channels)]
        for channel in channels:
            for k in range(3):
                fake.add_video(channel, published_at=DAY_START - timedelta(days=2, hours=7 * k))
        posters = rng.sample(channels, round(len(channels) * args.posting))
        planned: dict[str, tuple[str, datetime]] = {}  # video id -> (channel id, published)
        for channel in posters:
            for _ in range(1 + _poisson(rng, max(0.0, args.uploads_per_poster - 1))):
                moment = DAY_START + timedelta(seconds=rng.uniform(1, _span_s(args) - 1))
                video = fake.add_video(channel, published_at=moment)
                planned[video.id] = (channel.id, moment)

        env = {
            "FIND_DATA_DIR": tmp,
            "FIND_YOUTUBE_API_KEY": VALID_KEY,
            "FIND_YOUTUBE_API_ENDPOINT": server.url,
            "FIND_FEED_URL_TEMPLATE": server.feed_url_template,
            "FIND_CHANNEL_FEEDS": "true",
            "FIND_CHANNELS": ",".join(c.id for c in channels),
            "FIND_POLL_INTERVAL": str(interval_s),
            "FIND_QUOTA_DAILY_BUDGET": str(args.budget),
            "FIND_WORKER_ID": "bench",
        }
        if args.enrich_wait:
            env["FIND_ENRICH_WAIT"] = args.enrich_wait
        hub = None
        if push:
            hub = stack.enter_context(FakeHub())
            env["FIND_WEBSUB_SECRET"] = PUSH_SECRET
            env["FIND_WEBSUB_HUB_URL"] = hub.subscribe_url

            def make_app(url: str) -> object:
                from bot.stages.discover.websub import create_app

                env["FIND_WEBSUB_CALLBACK_URL"] = url
                return create_app(load_settings(environ=env), clock=lambda: clock[0])

            stack.enter_context(PushReceiver(make_app))
        settings = load_settings(environ=env)
        db.upgrade(settings)
        with session_scope(settings) as session:
            sync_watchlist(settings, session)
        client = make_client(settings, clock=lambda: clock[0])
        reader = FeedReader(settings, rate_per_s=None)
        stack.callback(reader.close)

        # Before the day: resolve, first feed reads (back catalogues), subscriptions.
        catch_up = discover_once(settings, client, now=clock[0], reader=reader)
        if push:
            from bot.stages.discover.websub import maintain_subscriptions

            assert hub is not None
            while maintain_subscriptions(settings, session_factory(settings), clock[0]).requested:
                hub.state.settle()
            hub.state.settle()
        subscribed = len(hub.state.verified()) if hub else 0
        feed_calls_before = len(fake.feed_calls())
        requests_before = len(fake.requests)

        # The day, minute by minute: pushes as they come, a tick or a full pass each minute.
        deliveries = sorted(
            (moment + timedelta(seconds=rng.uniform(*PUSH_DELAY_S)), vid, channel_id)
            for vid, (channel_id, moment) in planned.items()
        )
        lost = (
            set(rng.sample(sorted(planned), round(len(planned) * args.push_loss)))
            if push
            else set()
        )
        pushed = 0
        failures = [0]
        ticks = int((_span_s(args) + OVERRUN.total_seconds()) // TICK_S)
        for index in range(1, ticks + 1):
            moment = DAY_START + timedelta(seconds=index * TICK_S)
            while push and deliveries and deliveries[0][0] <= moment:
                when, vid, channel_id = deliveries.pop(0)
                if vid in lost:
                    continue
                clock[0] = when
                pushed += _notify(hub, channel_id, vid, planned[vid][1])
            clock[0] = moment
            if (index * TICK_S) % interval_s == 0:
                report = discover_once(settings, client, now=moment, reader=reader)
            else:
                report = tick_once(settings, client, now=moment, reader=reader)
            failures[0] += report.feeds_failed
        wall = time.monotonic() - started

        day = quota_day(DAY_START)
        with session_factory(settings)() as session:
            rows = {
                v.youtube_id: v
                for v in session.scalars(select(Video).where(Video.youtube_id.in_(planned)))
            }
            ledger = list(session.scalars(select(QuotaEntry).where(QuotaEntry.day == day)))
            fallbacks = session.scalar(
                select(func.count()).select_from(Channel).where(Channel.feed_failures > 0)
            )
            errors = Counter(
                (error or "")[:120]
                for error in session.scalars(
                    select(Channel.last_error).where(Channel.last_error.is_not(None))
                )
            )
        day_calls = fake.calls()[requests_before:]
        failed_reads = failures[0]
        feed_calls = fake.feed_calls()[feed_calls_before:]

    delays = sorted(
        (rows[vid].discovered_at - published).total_seconds()
        for vid, (_channel, published) in planned.items()
        if vid in rows
    )
    in_day = [vid for vid, (_c, published) in planned.items() if vid in rows]
    units = sum(e.units for e in ledger)
    by_via = Counter(rows[vid].discovered_via.split(":", 1)[0] for vid in in_day)
    not_modified = sum(1 for r in feed_calls if r.status == 304)
    return {
        "setup": {
            "channels": len(channels),
            "posting_channels": len(posters),
            "uploads_planned": len(planned),
            "poll_interval_s": interval_s,
            "tick_s": TICK_S,
            "span_s": _span_s(args),
            "enrich_wait_s": settings.enrich_wait_s,
            "push": push,
            "push_delay_s": list(PUSH_DELAY_S) if push else None,
            "push_lost": len(lost),
            "subscribed": subscribed,
            "seed": args.seed,
        },
        "catch_up": {"new_videos": catch_up.new_videos, "units": catch_up.units},
        "day": {
            "uploads_found": len(in_day),
            "units": units,
            "units_per_video": _ratio(units, len(in_day)),
            "calls": dict(Counter(r.resource for r in day_calls)),
            "found_by": dict(by_via),
            "pushed": pushed,
        },
        "latency_s": {
            "median": _percentile(delays, 0.5),
            "p90": _percentile(delays, 0.9),
            "max": delays[-1] if delays else None,
        },
        "feed_server": {
            "requests": len(feed_calls),
            "requests_per_channel_per_day": round(
                len(feed_calls) / len(channels) * 86400 / (_span_s(args) + OVERRUN.total_seconds()),
                1,
            ),
            "not_modified": not_modified,
            "with_body": len(feed_calls) - not_modified,
            "body_bytes": sum(r.bytes for r in feed_calls),
            "bytes_of_304s": sum(r.bytes for r in feed_calls if r.status == 304),
            "failed": sum(1 for r in feed_calls if r.status not in (200, 304)),
        },
        "channels_with_feed_failures": int(fallbacks or 0),
        "channel_errors_at_end": dict(errors),
        "feed_reads_failed": failed_reads,
        "wall_s": round(wall, 1),
    }


def _notify(hub: FakeHub | None, channel_id: str, video_id: str, published: datetime) -> int:
    """The hub tells the receiver about one upload; 1 if the receiver took it (204)."""
    from bot.stages.discover.websub import topic_url

    assert hub is not None
    body = youtube_feeds.push_notification(
        channel_id, video_id, title=f"upload {video_id}", channel_title="c", published_at=published
    )
    return sum(1 for status in hub.state.publish(topic_url(channel_id), body) if status == 204)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(share * len(values)))], 1)


def print_feeds(name: str, r: dict) -> list[str]:
    s, d, lat, f = r["setup"], r["day"], r["latency_s"], r["feed_server"]
    title = "feeds + WebSub push" if s["push"] else "channel feeds"
    print(f"== {name}: {title}")
    print(
        f"setup: {s['channels']} channels, {s['posting_channels']} posting "
        f"({s['uploads_planned']} uploads), feeds due every {s['poll_interval_s']}s "
        f"(+/-20 %), a light pass every {s['tick_s']}s, enrich wait {s['enrich_wait_s']}s"
        f"{_span_note(s['span_s'])}"
        + (
            f"; {s['subscribed']} push subscriptions, hub delay {s['push_delay_s'][0]}-"
            f"{s['push_delay_s'][1]}s, {s['push_lost']} notifications lost on purpose"
            if s["push"]
            else ""
        )
    )
    print(f"catch-up pass: {r['catch_up']['new_videos']} videos for {r['catch_up']['units']} units")
    print(
        f"day: {d['uploads_found']}/{s['uploads_planned']} uploads found, {d['units']} units "
        f"({d['units_per_video']} units/video overall), calls {d['calls']}, "
        f"found by {d['found_by']}"
    )
    print(
        f"upload to row: median {_minutes(lat['median'])}, p90 {_minutes(lat['p90'])}, "
        f"max {_minutes(lat['max'])}"
    )
    print(
        f"feed server: {f['requests']} requests ({f['requests_per_channel_per_day']} per channel "
        f"per day), {f['not_modified']} answered 304 with {f['bytes_of_304s']} body bytes, "
        f"{f['with_body']} with a body ({f['body_bytes']} bytes in all), {f['failed']} failed"
    )
    if r["feed_reads_failed"] or r["channel_errors_at_end"]:
        print(
            f"feed reads failed: {r['feed_reads_failed']} (channel errors left at the end: "
            f"{r['channel_errors_at_end'] or 'none'})"
        )
    print(f"wall {r['wall_s']}s")
    missed = []
    if d["uploads_found"] < s["uploads_planned"]:
        missed.append(f"{name}: {s['uploads_planned'] - d['uploads_found']} uploads missed")
    if (d["units_per_video"] or 0) > TARGET_UNITS_PER_VIDEO:
        missed.append(
            f"{name}: {d['units_per_video']} units/video (target {TARGET_UNITS_PER_VIDEO})"
        )
    if s["span_s"] >= 86400 and d["units"] > TARGET_DAY_UNITS:
        missed.append(f"{name}: {d['units']} units in the day (target {TARGET_DAY_UNITS})")
    target = TARGET_MEDIAN_PUSH_S if s["push"] else TARGET_MEDIAN_POLL_S
    if lat["median"] is None or lat["median"] > target:
        missed.append(f"{name}: median upload-to-row {_minutes(lat['median'])} (target {target}s)")
    return missed


def _span_note(span_s: int) -> str:
    """Say when the run was shorter than a day (--hours/--quick): the day's uploads, fewer hours."""
    if span_s >= 86400:
        return ""
    return f" (quick: the day's uploads within {span_s / 3600:g} h; no daily-units target)"


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ======================================================================= burst
def run_burst(args: argparse.Namespace) -> dict:
    """40 uploads between two reads of one channel: all must be found (playlist fallback)."""
    clock = [DAY_START]
    with tempfile.TemporaryDirectory() as tmp, FakeYouTubeServer() as server:
        fake = server.state
        fake.clock = lambda: clock[0]
        channel = fake.add_channel("bursty")
        for k in range(5):
            fake.add_video(channel, published_at=DAY_START - timedelta(days=1, hours=k))
        settings = load_settings(
            environ={
                "FIND_DATA_DIR": tmp,
                "FIND_YOUTUBE_API_KEY": VALID_KEY,
                "FIND_YOUTUBE_API_ENDPOINT": server.url,
                "FIND_FEED_URL_TEMPLATE": server.feed_url_template,
                "FIND_CHANNELS": channel.id,
                "FIND_WORKER_ID": "bench",
            }
        )
        db.upgrade(settings)
        client = make_client(settings, clock=lambda: clock[0])
        first = discover_once(settings, client, now=clock[0])
        burst = [
            fake.add_video(channel, published_at=DAY_START + timedelta(seconds=10 * (i + 1))).id
            for i in range(40)
        ]
        clock[0] = DAY_START + timedelta(minutes=20)  # the channel's next read (15 min +/-20 %)
        calls_before = len(fake.requests)
        report = discover_once(settings, client, now=clock[0])
        with session_factory(settings)() as session:
            found = set(
                session.scalars(select(Video.youtube_id).where(Video.youtube_id.in_(burst)))
            )
        calls = Counter(r.resource for r in fake.requests[calls_before:])
    return {
        "backlog_found": first.new_videos,
        "burst": len(burst),
        "found": len(found),
        "feed_entries": youtube_feeds.FEED_SIZE,
        "fallbacks": report.fallbacks,
        "units": report.units,
        "calls": dict(calls),
    }


def print_burst(r: dict) -> list[str]:
    print("== burst: 40 uploads on one channel between two reads")
    print(
        f"burst: {r['found']}/{r['burst']} found (the feed shows {r['feed_entries']}; "
        f"playlist fallback for {len(r['fallbacks'])} channel), {r['units']} units, "
        f"calls {r['calls']}"
    )
    return [] if r["found"] == r["burst"] else [f"burst: {r['burst'] - r['found']} uploads missed"]


if __name__ == "__main__":
    sys.exit(main())
