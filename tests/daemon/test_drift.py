"""Drift signals (issue 23): flag and dismiss rates per channel/source over 7 days,
in ``find-bot status`` (text and JSON) and in the Prometheus metrics."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.db import session_factory
from bot.settings import Settings
from bot.store import ReviewDecision, Video, utcnow
from tests.records import analysis_of

FLOODER = "UCfloodsxxxxxxxxxxxxxxxx"
QUIET = "UCquietxxxxxxxxxxxxxxxxx"


def _video(
    session,
    key: str,
    channel: str | None,
    state: str,
    *,
    days_ago: float = 1.0,
    source: str = "youtube_upload",
    decision: str | None = None,
) -> None:
    when = utcnow() - timedelta(days=days_ago)
    video = Video(
        youtube_id=key,
        channel_youtube_id=channel,
        channel_title=None if channel is None else f"title of {channel[:8]}",
        state=state,
        source=source,
        score=0.9 if state != "analysed" else 0.1,
    )
    session.add(video)
    session.flush()
    verdict = "fake" if state != "analysed" else "real"
    session.add(analysis_of(video, verdict=verdict, created_at=when))
    if decision:
        session.add(
            ReviewDecision(
                video_id=video.id,
                reviewer="r",
                decision=decision,
                previous_state="flagged",
                decided_at=when,
                policy_reason="not manipulated",
            )
        )


def seed(settings: Settings) -> None:
    with session_factory(settings).begin() as session:
        # The flooder: 4 analysed this week, 3 flagged, 3 decided, 2 of them dismissed.
        _video(session, "f1xxxxxxxxx", FLOODER, "dismissed", decision="dismissed")
        _video(session, "f2xxxxxxxxx", FLOODER, "dismissed", decision="dismissed")
        _video(session, "f3xxxxxxxxx", FLOODER, "confirmed", decision="confirmed")
        _video(session, "f4xxxxxxxxx", FLOODER, "analysed")
        # Older than the window: not counted.
        _video(session, "f5xxxxxxxxx", FLOODER, "dismissed", days_ago=9, decision="dismissed")
        # A quiet channel: 2 analysed, none flagged.
        _video(session, "q1xxxxxxxxx", QUIET, "analysed")
        _video(session, "q2xxxxxxxxx", QUIET, "analysed")
        # A submitted file has no channel: grouped by its source.
        _video(session, "sub-0123456789ab", None, "flagged", source="submitted_file")


def test_drift_per_channel_and_source_in_status(settings: Settings) -> None:
    from bot.service.status import collect_status, render_status

    seed(settings)
    status = collect_status(settings)
    rows = {r["group"]: r for r in status["drift"]}
    assert rows[FLOODER] == {
        "group": FLOODER,
        "title": f"title of {FLOODER[:8]}",
        "analysed": 4,
        "flagged": 3,
        "decisions": 3,
        "dismissed": 2,
        "flag_rate": 0.75,
        "dismiss_rate": 0.6667,
    }
    assert rows[QUIET]["flag_rate"] == 0.0 and rows[QUIET]["dismiss_rate"] is None
    assert rows["source:submitted_file"]["flagged"] == 1
    assert status["drift"][0]["group"] == FLOODER  # the busiest queue-filler first
    text = render_status(status)
    assert "drift (last 7 days, per channel or source):" in text
    assert (
        f"{FLOODER} (title of UCfloods): 4 analysed, 3 flagged (75%); 3 decisions, "
        "2 dismissed (67%)" in text
    )
    json.dumps(status)  # `status --json` prints this dict


def test_drift_in_prometheus_metrics(sqlite_settings: Settings) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from bot.service.metrics import DatabaseCollector

    seed(sqlite_settings)
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(sqlite_settings))
    text = generate_latest(registry).decode()
    assert f'find_drift_flag_rate{{group="{FLOODER}"}} 0.75' in text
    assert f'find_drift_dismiss_rate{{group="{FLOODER}"}} 0.6667' in text
    assert f'find_drift_videos_analysed{{group="{QUIET}"}} 2.0' in text
    assert f'find_drift_dismiss_rate{{group="{QUIET}"}}' not in text  # no decisions: no rate
    assert 'find_active_bundle{adapted="false"' in text
