"""Retention policies, ``find-bot status`` and the Prometheus endpoint, on both backends."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.db import session_scope
from bot.service.status import collect_status, quota_day, render_status
from bot.settings import Settings
from bot.stages.retention import run_retention
from bot.store import (
    Analysis,
    PollRun,
    QuotaEntry,
    SearchQuery,
    Video,
    VideoState,
    Worker,
    utcnow,
)
from tests.conftest import make_settings
from tests.daemon.helpers import FIND_BOT, PROJECT_ROOT, clean_env
from tests.records import analysis_of

STATES = ["new", "downloaded", "analysed", "flagged", "confirmed", "dismissed", "skipped", "failed"]


def _populate(settings: Settings, age_days: float = 0) -> dict[str, Path]:
    """One video per state, each with a media file; returns state -> file."""
    files = {}
    when = utcnow() - timedelta(days=age_days)
    with session_scope(settings) as session:
        for i, state in enumerate(STATES):
            path = settings.media_dir / "videos" / f"{state}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 100)
            files[state] = path
            crops = settings.media_dir / "crops" / f"v{i:010d}"
            crops.mkdir(parents=True, exist_ok=True)
            (crops / "1-t0-f0.jpg").write_bytes(b"\xff\xd8\xff")
            video = Video(
                youtube_id=f"v{i:010d}",
                state=state,
                media_path=str(path.relative_to(settings.media_dir)),
                updated_at=when,
            )
            session.add(video)
    if age_days:  # onupdate does not fire on insert, but be explicit for both backends
        with session_scope(settings) as session:
            for video in session.scalars(select(Video)):
                video.updated_at = when
    return files


def _with(settings: Settings, **env: str) -> Settings:
    return make_settings(
        settings.data_dir.parent,
        FIND_DATABASE_URL=settings.database_url,
        **env,
    )


def test_keep_flagged_deletes_media_of_finished_videos_only(settings: Settings) -> None:
    files = _populate(settings)
    report = run_retention(_with(settings, FIND_MEDIA_RETENTION="keep-flagged"))
    gone = {state for state, path in files.items() if not path.exists()}
    assert gone == {"analysed", "skipped", "failed"}
    assert report.media_deleted == 3 and report.media_bytes == 300
    with session_scope(settings) as session:
        marked = set(
            session.scalars(select(Video.state).where(Video.media_deleted_at.is_not(None)))
        )
    assert marked == gone
    assert run_retention(_with(settings)).media_deleted == 0  # idempotent


def test_flagged_media_expires_after_flagged_media_days(settings: Settings) -> None:
    files = _populate(settings, age_days=10)
    run_retention(_with(settings, FIND_FLAGGED_MEDIA_DAYS="30"))
    assert files["flagged"].exists() and files["confirmed"].exists()
    run_retention(_with(settings, FIND_FLAGGED_MEDIA_DAYS="5"))
    assert not files["flagged"].exists() and not files["confirmed"].exists()
    assert files["new"].exists() and files["downloaded"].exists()


def test_delete_all_and_keep_all(settings: Settings) -> None:
    files = _populate(settings)
    run_retention(_with(settings, FIND_MEDIA_RETENTION="keep-all"))
    assert all(path.exists() for path in files.values())
    run_retention(_with(settings, FIND_MEDIA_RETENTION="delete-all"))
    kept = {state for state, path in files.items() if path.exists()}
    assert kept == {"new", "downloaded"}, "work still in the pipeline keeps its file"
    assert (settings.media_dir / "crops" / "v0000000003" / "1-t0-f0.jpg").exists()


def test_leased_video_is_never_touched(sqlite_settings: Settings) -> None:
    files = _populate(sqlite_settings)
    with session_scope(sqlite_settings) as session:
        video = session.scalars(select(Video).where(Video.state == "analysed")).one()
        video.lease_owner, video.lease_expires_at = "w", utcnow() + timedelta(minutes=5)
    run_retention(_with(sqlite_settings))
    assert files["analysed"].exists()


def test_row_retention_deletes_old_finished_rows_but_keeps_evidence(settings: Settings) -> None:
    _populate(settings, age_days=40)
    with session_scope(settings) as session:
        video = session.scalars(select(Video).where(Video.state == "analysed")).one()
        session.add(analysis_of(video, faces=0, tracks=0, video_score=None, verdict="no_face"))
        session.add(
            QuotaEntry(
                day="2000-01-01", method="search.list", units=100, at=utcnow() - timedelta(days=40)
            )
        )
        session.add(QuotaEntry(day=quota_day(), method="search.list", units=100))
        session.add(PollRun(started_at=utcnow() - timedelta(days=40)))
    assert run_retention(_with(settings)).rows_deleted == 0  # 0 days = keep forever
    report = run_retention(_with(settings, FIND_ROW_RETENTION_DAYS="30"))
    assert report.rows_deleted == 3 and report.ledger_deleted == 1
    with session_scope(settings) as session:
        left = set(session.scalars(select(Video.state)))
        assert session.scalar(select(func.count()).select_from(Analysis)) == 0
        assert session.scalar(select(func.count()).select_from(PollRun)) == 0
    assert left == {"new", "downloaded", "flagged", "confirmed", "dismissed"}
    assert not (settings.media_dir / "crops" / "v0000000002").exists()
    assert (settings.media_dir / "crops" / "v0000000003").exists()


def _status_fixture(settings: Settings) -> None:
    now = utcnow()
    with session_scope(settings) as session:
        for i in range(3):
            session.add(Video(youtube_id=f"new{i}", state="new"))
        session.add(
            Video(
                youtube_id="leased",
                state="new",
                lease_owner="w",
                lease_expires_at=now + timedelta(minutes=1),
            )
        )
        session.add(
            Video(
                youtube_id="retry",
                state="downloaded",
                attempts=1,
                next_attempt_at=now + timedelta(minutes=5),
                last_error="boom",
                last_error_kind="network",
            )
        )
        session.add(Video(youtube_id="flag1", state="flagged", score=0.9))
        session.add(
            Video(youtube_id="bad", state="failed", last_error="gave up", last_error_kind="decode")
        )
        session.add(QuotaEntry(day=quota_day(), method="search.list", units=100))
        session.add(QuotaEntry(day=quota_day(), method="playlistItems.list", units=3))
        session.add(QuotaEntry(day="2000-01-01", method="search.list", units=100))
        session.add(
            PollRun(started_at=now - timedelta(minutes=3), finished_at=now, new_videos=4, units=103)
        )
        session.add(
            Worker(
                id="host:1",
                role="all",
                hostname="host",
                pid=1,
                bundle_id="tiny",
                bundle_version="1",
                status="ok",
            )
        )


def test_status_reports_queue_errors_quota_model_and_last_poll(settings: Settings) -> None:
    _status_fixture(settings)
    status = collect_status(settings)
    assert status["stages"]["download"] == {
        "queued": 4,
        "in_progress": 1,
        "backing_off": 0,
        "ready": 3,
    }
    assert status["stages"]["analyse"] == {
        "queued": 1,
        "in_progress": 0,
        "backing_off": 1,
        "ready": 0,
    }
    assert status["review_queue"] == 1
    assert status["quota"]["used"] == 103
    assert {e["video"] for e in status["recent_errors"]} == {"retry", "bad"}
    assert status["model"]["in_use"] == ["tiny 1"]
    assert status["last_poll"]["new_videos"] == 4
    assert status["workers"][0]["alive"] is True
    text = render_status(status)
    for needle in ("download", "4 queued", "103 / 10000", "tiny 1", "gave up", "last poll"):
        assert needle in text


def _find_bot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (in-process ``main`` would run ``logging.shutdown``)."""
    return subprocess.run(
        [*FIND_BOT, *args],
        cwd=PROJECT_ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_command_json(sqlite_settings: Settings) -> None:
    _status_fixture(sqlite_settings)
    env = {
        "FIND_DATA_DIR": str(sqlite_settings.data_dir),
        "FIND_DATABASE_URL": sqlite_settings.database_url,
    }
    result = _find_bot("status", "--json", **env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["stages"]["download"]["queued"] == 4
    result = _find_bot("status", **env)
    assert result.returncode == 0 and "recent errors:" in result.stdout


def test_status_on_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    result = _find_bot("status", FIND_DATA_DIR=str(tmp_path / "empty"))
    assert result.returncode != 0
    assert "find-bot db upgrade" in result.stderr and "Traceback" not in result.stderr


def test_metrics_endpoint(sqlite_settings: Settings) -> None:
    import socket

    from bot.service import metrics

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _status_fixture(sqlite_settings)
    server = metrics.start_metrics_server(_with(sqlite_settings, FIND_METRICS_PORT=str(port)))
    try:
        metrics.observe_stage("analyse", "ok", None, 1.5)
        metrics.observe_stage("download", "failed", "network", 0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
    assert 'find_videos{state="new"} 4.0' in text
    assert 'find_queue_videos{condition="backing_off",stage="analyse"} 1.0' in text
    assert "find_quota_used_units 103.0" in text
    assert 'find_stage_seconds_count{outcome="ok",stage="analyse"}' in text
    assert 'find_stage_errors_total{kind="network",stage="download"}' in text
    assert VideoState.FLAGGED.value in text


def test_status_says_when_nothing_is_watched_and_when_lookups_go_out(
    sqlite_settings: Settings,
) -> None:
    """Issue 21 item 8 / issue 20 item 4: an empty watchlist is said, not idled through;
    FIND_ENRICH_WAIT's value and the time held lookups are released are shown."""
    settings = _with(sqlite_settings, FIND_ENRICH_WAIT="2h")
    text = render_status(collect_status(settings))
    assert "watchlist: nothing to watch" in text and "FIND_CHANNELS" in text
    assert "lookups:  none waiting (FIND_ENRICH_WAIT=2h)" in text

    now = utcnow().replace(microsecond=0)
    with session_scope(settings) as session:
        session.add(SearchQuery(query="deepfake", active=True))
        for i, due in enumerate((now + timedelta(minutes=90), now + timedelta(minutes=30))):
            session.add(Video(youtube_id=f"held{i:07d}", state="new", lookup_due_at=due))
    status = collect_status(settings, now=now)
    assert status["watchlist_empty"] is False and status["enrich_wait_s"] == 7200
    release = (now + timedelta(minutes=30)).isoformat(timespec="seconds")
    assert status["channels"]["lookup_release_at"] == release
    text = render_status(status)
    assert "nothing to watch" not in text
    assert "2 video(s) waiting for a shared videos.list lookup (FIND_ENRICH_WAIT=2h), " in text
    assert f"released by {release}" in text


def test_run_with_an_empty_watchlist_says_so_at_start(sqlite_settings: Settings, caplog) -> None:  # type: ignore[no-untyped-def]
    """`run` (scheduler) with no channel and no query logs one line saying so at start-up."""
    import logging

    from bot.service.daemon import Daemon

    settings = _with(
        sqlite_settings, FIND_DOWNLOAD_WORKERS="0", FIND_ANALYSE_WORKERS="0", FIND_CHANNELS="none"
    )
    daemon = Daemon(settings, "scheduler", idle_s=0.1)
    with caplog.at_level(logging.INFO, logger="find.daemon"):
        daemon.start()
        try:
            lines = [r for r in caplog.records if r.getMessage() == "config.watchlist_empty"]
            assert len(lines) == 1 and lines[0].levelno == logging.WARNING
            assert "nothing to watch" in lines[0].note and "FIND_SEARCH_QUERIES" in lines[0].note
        finally:
            daemon.request_stop()
            assert daemon.shutdown() == 0
