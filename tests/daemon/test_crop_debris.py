"""Issue 30 item 7: a full disk or a rolled-back analysis leaves no crop debris behind.

* A crop write that meets ENOSPC (a real, tiny tmpfs: tests/fakes/filesystems.py) removes
  its ``.<name>.tmp`` instead of leaving a truncated file nothing would ever delete.
* The crops of an analysis whose transaction rolled back (written inside it, as
  ``bot.stages.analyse`` does, on both backends) are deleted by retention once older
  than the grace period; crops an analysis records, and recent unrecorded ones (an
  analysis still on its way to the database), stay.
* A worker process sweeps its own media store at start (retention runs on the active
  scheduler's host only).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from bot.db import session_factory, session_scope
from bot.settings import Settings
from bot.stages.analyse import write_crops
from bot.stages.retention import CROP_GRACE_S, run_retention
from bot.store import Analysis, Video, VideoState
from tests.daemon.helpers import STUB_WORKER, clean_env, spawn, stop, wait_log
from tests.fakes.filesystems import full_dir

KEY = "debris00001"


def _crops(size: int = 2000) -> list[dict]:
    return [
        {
            "track": track,
            "frame": 10 + track,
            "t": 0.4,
            "score": 0.9,
            "jpeg": os.urandom(size),
            "context_jpeg": os.urandom(size),
        }
        for track in range(2)
    ]


def _analysis(video: Video) -> Analysis:
    return Analysis(
        video=video,
        bundle_id="test",
        bundle_version="0",
        frames_requested=4,
        frames_decoded=4,
        faces=2,
        tracks=2,
        scores={"tracks": [], "top_frames": []},
        video_score=0.9,
        threshold=0.5,
        verdict="fake",
        timings={},
        crops=[],
        worker="w",
    )


def _add_video(settings: Settings, youtube_id: str = KEY) -> None:
    with session_scope(settings) as session:
        session.add(Video(youtube_id=youtube_id, state=VideoState.FLAGGED.value))


def _record_analysis(settings: Settings, youtube_id: str = KEY) -> list[str]:
    """An analysis committed with its crops, as the analyse stage's apply does it."""
    with session_scope(settings) as session:
        video = session.query(Video).filter_by(youtube_id=youtube_id).one()
        analysis = _analysis(video)
        session.add(analysis)
        session.flush()
        analysis.crops = write_crops(settings, youtube_id, analysis.id, _crops())
        return [c[view] for c in analysis.crops for view in ("path", "context")]


def _rolled_back_analysis(settings: Settings, youtube_id: str = KEY) -> list[str]:
    """The same, but its transaction rolls back after the crops were written (the commit
    failed: the database went away, or the lease was lost)."""
    session = session_factory(settings)()
    try:
        video = session.query(Video).filter_by(youtube_id=youtube_id).one()
        analysis = _analysis(video)
        session.add(analysis)
        session.flush()
        records = write_crops(settings, youtube_id, analysis.id, _crops())
    finally:
        session.rollback()
        session.close()
    return [c[view] for c in records for view in ("path", "context")]


def _age(paths: list[Path], seconds: float) -> None:
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def test_a_crop_write_on_a_full_disk_leaves_no_temporary_file(
    sqlite_settings: Settings,
) -> None:
    folder = sqlite_settings.media_dir / "crops" / KEY
    with full_dir(sqlite_settings.media_dir, size_kib=64):
        with pytest.raises(OSError) as full:
            write_crops(sqlite_settings, KEY, 1, _crops(size=24 * 1024))
        assert full.value.errno == errno.ENOSPC
        left = sorted(p.name for p in folder.iterdir())
        assert not [name for name in left if name.endswith(".tmp")], left
        assert left, "the crops written before the disk filled up are complete files"


def test_retention_sweeps_the_crops_of_a_rolled_back_analysis_and_keeps_recorded_ones(
    settings: Settings,
) -> None:
    media = settings.media_dir
    _add_video(settings)
    recorded = _record_analysis(settings)
    orphans = _rolled_back_analysis(settings)
    assert set(orphans).isdisjoint(recorded)  # the retry's analysis gets a new id
    folder = media / "crops" / KEY
    crashed = folder / ".77-t0-f3.jpg.tmp"  # a write killed mid-way (power cut, SIGKILL)
    crashed.write_bytes(b"half a jpeg")
    unrelated = folder / "notes.txt"  # not a name an analysis writes: never touched
    unrelated.write_text("operator's notes")
    _age([media / p for p in recorded + orphans] + [crashed, unrelated], CROP_GRACE_S + 60)

    _add_video(settings, "debris00002")  # (SQLite gives the next analysis the same id again)
    in_flight = _rolled_back_analysis(settings, "debris00002")  # unrecorded, but recent
    report = run_retention(settings)

    assert all((media / p).is_file() for p in recorded)
    assert not any((media / p).exists() for p in orphans), sorted(os.listdir(folder))
    assert not crashed.exists()
    assert unrelated.is_file() and all((media / p).is_file() for p in in_flight)
    assert report.crops_deleted == len(orphans) + 1 and report.crops_bytes > 0


@pytest.mark.slow
def test_a_worker_sweeps_its_media_store_at_start(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    settings = sqlite_settings
    _add_video(settings)
    recorded = _record_analysis(settings)
    orphans = _rolled_back_analysis(settings)
    media = settings.media_dir
    _age([media / p for p in recorded + orphans], CROP_GRACE_S + 60)
    out = tmp_path / "out.log"
    env = clean_env(
        FIND_DATA_DIR=str(settings.data_dir),
        FIND_DATABASE_URL=settings.database_url,
        FIND_DOWNLOAD_WORKERS="0",
        FIND_ANALYSE_WORKERS="1",
        FIND_WORKER_ID="sweeper",
    )
    proc = spawn([*STUB_WORKER, "--role", "worker"], env, out)
    try:
        text = wait_log(out, "retention.crops_swept", 60)
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"files={len(orphans)}" in text, text[-2000:]
    assert not any((media / p).exists() for p in orphans)
    assert all((media / p).is_file() for p in recorded)
