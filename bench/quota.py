"""Benchmark: YouTube API units spent per newly discovered video, 50 channels, one simulated day.

Runs the real discover stage (real google-api-python-client, real database)
against the fake Data API from ``tests/fakes`` on a simulated clock: every
channel has a back catalogue, then uploads at random times during the day;
discover runs every poll interval.  Reports

* the catch-up pass at the start (back catalogue, first page per channel),
* the day: total units, new videos, units per video overall,
* the **marginal cost per discovered video**: the pages of the channels that
  had new uploads in a pass plus the ``videos.list`` batches, divided by the
  videos found (the issue's target: at most 1.2 units per video),
* the cost of quiet channels (1 unit each per poll), and the naive approach
  (one ``search.list`` per channel per poll, 100 units each) for comparison,
* the day's peak use against the budget (must never exceed it).

    .venv/bin/python bench/quota.py [--channels 50] [--uploads-per-day 2] [--interval 15m]

Writes the numbers as JSON to ``bench/out/quota.json`` too.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bot import db  # noqa: E402
from bot.db import session_factory, session_scope  # noqa: E402
from bot.discover import DiscoverReport, discover_once, make_client  # noqa: E402
from bot.quota import quota_day  # noqa: E402
from bot.settings import Settings, load_settings, parse_duration  # noqa: E402
from bot.store import QuotaEntry, Video  # noqa: E402
from bot.watchlist import sync_watchlist  # noqa: E402
from tests.fakes.youtube_api import VALID_KEY, FakeYouTubeServer, RecordedRequest  # noqa: E402

#: Midnight Pacific (PDT) on a summer day: the quota day starts with the simulation.
DAY_START = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument(
        "--uploads-per-day",
        type=float,
        default=2.0,
        help="mean uploads per channel during the day (Poisson)",
    )
    parser.add_argument("--backlog", type=int, default=5, help="videos per channel before the day")
    parser.add_argument("--interval", default="15m", help="poll interval")
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument(
        "--enrich-wait",
        default="1h",
        help="FIND_ENRICH_WAIT: how long new uploads may wait for a fuller batch",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quota.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = run(args)
    print_results(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.out}")
    return 0 if results["day"]["marginal_units_per_video"] <= 1.2 else 1


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
                moment = DAY_START + timedelta(seconds=rng.uniform(1, 86400 - 1))
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
                "FIND_ENRICH_WAIT": args.enrich_wait,
            }
        )
        db.upgrade(settings)
        with session_scope(settings) as session:
            sync_watchlist(settings, session)
        client = make_client(settings, clock=lambda: clock[0])
        playlist_owner = {c.uploads_playlist_id: c.id for c in channels}

        passes = []
        started = time.monotonic()
        polls = math.ceil(86400 / interval_s)
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
    print(
        f"setup: {s['channels']} channels, ~{s['uploads_per_day']} uploads/channel/day, "
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


if __name__ == "__main__":
    sys.exit(main())
