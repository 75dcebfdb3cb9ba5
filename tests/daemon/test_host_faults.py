"""Host faults are not the video's fault: read-only, full or vanished media directories.

Real broken file systems (tests/fakes/filesystems.py: tmpfs mounts as root,
permissions otherwise), real yt-dlp against the local media server, real
``find-bot run`` processes.  A fault of the machine postpones the video
without spending an attempt, the worker backs off, ``find-bot status`` shows
it, and ``find-bot requeue`` brings the videos back once it is fixed.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.db import session_factory, session_scope
from bot.hostfault import DISK_FULL, HOST_FAULT, HostFault
from bot.queue import WorkQueue, run_one
from bot.settings import Settings
from bot.stages.download import classify, make_download_handler
from bot.store import Analysis, Video, VideoState, Worker
from tests.conftest import make_settings
from tests.daemon.helpers import FIND_BOT, clean_env, spawn, stop, wait_for, wait_log
from tests.fakes.filesystems import full_dir, read_only_dir


def _queue_new(settings: Settings, *ids: str) -> None:
    with session_scope(settings) as session:
        for youtube_id in ids:
            session.add(Video(youtube_id=youtube_id, title="t", discovered_via="test"))


def _videos(settings: Settings) -> dict[str, Video]:
    with session_factory(settings)() as session:
        return {v.youtube_id: v for v in session.scalars(select(Video))}


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FIND_LOG_LEVEL", "WARNING")
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    return main(list(argv)), out.getvalue()


def test_run_refuses_to_start_on_a_read_only_media_dir(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    env = clean_env(
        FIND_DATA_DIR=str(sqlite_settings.data_dir),
        FIND_MEDIA_DIR=str(media),
        FIND_DOWNLOAD_WORKERS="1",
        FIND_ANALYSE_WORKERS="0",
    )
    out = tmp_path / "out.log"
    with read_only_dir(media):
        proc = spawn([*FIND_BOT, "run", "--role", "worker"], env, out)
        code = proc.wait(60)
    text = out.read_text()
    assert code != 0 and "Traceback" not in text, text
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, text
    assert f"FIND_MEDIA_DIR={media} is not writable" in errors[0]


def test_a_read_only_media_dir_postpones_downloads_and_status_shows_it(
    sqlite_ingestion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The media disk turns read-only under a running daemon, then is repaired."""
    ing = sqlite_ingestion
    ids = ["rofault0001", "rofault0002", "rofault0003"]
    for youtube_id in ids:
        ing.media.state.add(f"{youtube_id}.mp4", ing.samples["short"])
    values = ing.env(
        FIND_DATA_DIR=str(ing.base.data_dir),
        FIND_DOWNLOAD_WORKERS="1",
        FIND_ANALYSE_WORKERS="0",
        FIND_WORKER_ID="ro-worker",
        FIND_MAX_ATTEMPTS="2",
    )
    settings = make_settings(tmp_path, **values)
    out = tmp_path / "out.log"
    proc = spawn([*FIND_BOT, "run", "--role", "worker"], clean_env(**values), out)
    try:
        wait_log(out, "daemon.started", 60)
        with read_only_dir(settings.media_dir):
            _queue_new(settings, *ids)
            wait_log(out, "worker.host_fault", 30)
            videos = _videos(settings)
            faulted = [v for v in videos.values() if v.last_error_kind == HOST_FAULT]
            assert faulted, {v.youtube_id: v.last_error for v in videos.values()}
            for video in videos.values():
                assert video.state == VideoState.NEW.value and video.attempts == 0

            code, text = _cli(settings, monkeypatch, "status")
            assert code == 0 and "HOST FAULT" in text and HOST_FAULT in text, text
            assert str(settings.media_dir) in text
            code, text = _cli(settings, monkeypatch, "status", "--json")
            assert '"host_faults"' in text

            def worker_status() -> str:
                with session_scope(settings) as session:
                    return session.get(Worker, "ro-worker").status

            wait_for(lambda: "HOST FAULT in download" in worker_status(), 30, "the worker row")
            # The worker backs off, doubling: it does not sweep through the whole queue.
            faults = [line for line in out.read_text().splitlines() if "worker.host_fault " in line]
            for i, line in enumerate(faults):
                assert f"retry_in_s={5.0 * 2**i}" in line, faults
        # Fixed: requeue brings the postponed videos back now instead of after their backoff.
        code, text = _cli(settings, monkeypatch, "requeue", "--kind", HOST_FAULT)
        assert code == 0 and f"requeued {faulted[0].youtube_id}: new -> new" in text, text

        def all_downloaded() -> bool:
            return all(v.state == VideoState.DOWNLOADED.value for v in _videos(settings).values())

        wait_for(all_downloaded, 90, "the downloads after the repair", step=0.5)
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_full_media_disk_postpones_without_spending_attempts(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    """ENOSPC while yt-dlp writes (the free-space pre-check passed): postponed, not charged."""
    ing = sqlite_ingestion
    assert ing.samples["long"].stat().st_size > 16 * 1024
    ing.media.state.add("fulldisk001.mp4", ing.samples["long"])
    settings = ing.settings(MIN_FREE_DISK="0", DOWNLOAD_RETRIES="0", MAX_ATTEMPTS="1")
    _queue_new(settings, "fulldisk001")
    queue = WorkQueue(session_factory(settings), lease_s=60, max_attempts=1)
    with full_dir(settings.media_dir, size_kib=8):
        handler = make_download_handler(settings, retry_base_s=0.01)
        for _ in range(3):  # more faults than max_attempts allows failures
            with pytest.raises(HostFault) as info:
                run_one(queue, "download", "w", handler)
            assert info.value.kind == DISK_FULL
            with session_scope(settings) as session:
                session.get(Video, 1).next_attempt_at = None  # due again at once
    video = _videos(settings)["fulldisk001"]
    assert (video.state, video.attempts, video.last_error_kind) == ("new", 0, DISK_FULL)


def test_a_vanished_media_dir_is_not_recreated(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    """An unmounted media dir: downloading into a new empty folder would hide the fault."""
    ing = sqlite_ingestion
    ing.media.state.add("vanished001.mp4", ing.samples["short"])
    settings = ing.settings()
    _queue_new(settings, "vanished001")
    handler = make_download_handler(settings)  # creates the media dir, as at start-up
    shutil.rmtree(settings.media_dir)
    queue = WorkQueue(session_factory(settings), lease_s=60)
    with pytest.raises(HostFault):
        run_one(queue, "download", "w", handler)
    assert not settings.media_dir.exists()
    video = _videos(settings)["vanished001"]
    assert (video.state, video.attempts, video.last_error_kind) == ("new", 0, HOST_FAULT)
    assert "FIND_MEDIA_DIR" in video.last_error and "missing" in video.last_error


@pytest.mark.slow
def test_a_read_only_media_dir_postpones_an_analysis(
    tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    """The crops cannot be written: the analysis is postponed, not charged, and not lost."""
    from bot import db
    from bot.stages.analyse import Analyser

    settings = make_settings(
        tmp_path,
        FIND_MODEL_BUNDLE=str(tiny_bundle_dir),
        FIND_FRAMES_PER_VIDEO="4",
        FIND_SCORE_THRESHOLD="0",
        FIND_MAX_ATTEMPTS="1",
    )
    db.upgrade(settings)
    analyser = Analyser(settings)
    queue = WorkQueue(session_factory(settings), lease_s=60, max_attempts=1)
    with session_scope(settings) as session:
        session.add(Video(youtube_id="roanalyse01", state="downloaded", media_path="face.mp4"))
    face = {"face.mp4": face_videos["face"].read_bytes()}
    with read_only_dir(settings.media_dir, files=face), pytest.raises(HostFault):
        run_one(queue, "analyse", "w", analyser)
    video = _videos(settings)["roanalyse01"]
    assert (video.state, video.attempts, video.last_error_kind) == ("downloaded", 0, HOST_FAULT)
    with session_factory(settings)() as session:
        assert session.scalars(select(Analysis)).all() == []  # rolled back with the crops


@pytest.mark.slow
def test_a_host_fault_while_writing_keeps_the_analysis_and_retries_only_the_write(
    tmp_path: Path,
    tiny_bundle_dir: Path,
    face_videos: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 21 item 18: the model ran; only the crops could not be written. The retry
    writes the kept result instead of scoring the video again."""
    import logging

    from bot import db
    from bot.stages.analyse import Analyser

    settings = make_settings(
        tmp_path,
        FIND_MODEL_BUNDLE=str(tiny_bundle_dir),
        FIND_FRAMES_PER_VIDEO="4",
        FIND_SCORE_THRESHOLD="0",
    )
    db.upgrade(settings)
    analyser = Analyser(settings)
    queue = WorkQueue(session_factory(settings), lease_s=60)
    with session_scope(settings) as session:
        session.add(Video(youtube_id="keptresult1", state="downloaded", media_path="face.mp4"))
    face = {"face.mp4": face_videos["face"].read_bytes()}
    with caplog.at_level(logging.INFO, logger="find"):
        with read_only_dir(settings.media_dir, files=face), pytest.raises(HostFault):
            run_one(queue, "analyse", "w", analyser)
        with session_scope(settings) as session:  # repaired; due again at once
            session.scalars(select(Video)).one().next_attempt_at = None
        assert run_one(queue, "analyse", "w", analyser) is not None
    scored = [r for r in caplog.records if r.getMessage() == "analyse.scored"]
    assert len(scored) == 1, "the video was scored again"
    assert any(r.getMessage() == "queue.kept_result" for r in caplog.records)
    video = _videos(settings)["keptresult1"]
    assert (video.state, video.attempts) == ("flagged", 0)
    with session_factory(settings)() as session:
        [analysis] = session.scalars(select(Analysis)).all()
        assert analysis.crops and all(
            (settings.media_dir / c["path"]).is_file() for c in analysis.crops
        )


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "ERROR: unable to open for writing: [Errno 30] Read-only file system: '/m/x.part'",
            HOST_FAULT,
        ),
        (
            "ERROR: unable to open for writing: [Errno 13] Permission denied: '/m/x.part'",
            HOST_FAULT,
        ),
        ("ERROR: [Errno 28] No space left on device", DISK_FULL),
    ],
)
def test_yt_dlp_host_fault_messages_cost_no_attempt(message: str, kind: str) -> None:
    failure = classify("abc", message)
    assert (failure.kind, failure.permanent, failure.counts_as_attempt) == (kind, False, False)
