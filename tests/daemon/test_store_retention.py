"""Media retention with several hosts: each deletes (and marks deleted) only the files of its
own media store, and every process with workers cleans its store hourly, not only at start.

Before, the active scheduler's retention looked for every finished video's file in its own
``FIND_MEDIA_DIR``: a file downloaded by a worker on another host was not there, so it was
marked deleted (``media_deleted_at``) while it stayed on that host's disk for good.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_scope
from bot.mediahost import MEDIA_HOST_FILE, media_host_id
from bot.settings import Settings
from bot.stages.retention import clean_store, run_retention
from bot.store import Video, VideoState, Worker, utcnow
from tests.conftest import make_settings
from tests.daemon.helpers import STUB_WORKER, clean_env, spawn, stop, wait_for, wait_log


def _host(settings: Settings, name: str, **env: str) -> Settings:
    """The same database seen from another host, with its own media store."""
    return make_settings(
        settings.data_dir.parent,
        FIND_DATABASE_URL=settings.database_url,
        FIND_MEDIA_DIR=str(settings.data_dir.parent / name),
        **env,
    )


def _video(settings: Settings, key: str, store: str | None, state: str = "analysed") -> Path:
    """A finished video whose file lies in ``settings``' media dir, recorded in ``store``."""
    path = settings.media_dir / "videos" / f"{key}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 100)
    with session_scope(settings) as session:
        session.add(
            Video(
                youtube_id=key,
                state=state,
                media_path=str(path.relative_to(settings.media_dir)),
                media_host=store,
            )
        )
    return path


def _marked(settings: Settings) -> set[str]:
    with session_scope(settings) as session:
        query = select(Video.youtube_id).where(Video.media_deleted_at.is_not(None))
        return set(session.scalars(query))


def test_each_host_deletes_and_marks_only_the_files_of_its_own_store(settings: Settings) -> None:
    a, b = _host(settings, "media-a"), _host(settings, "media-b")
    store_a, store_b = media_host_id(a.media_dir), media_host_id(b.media_dir)
    on_a = _video(a, "onstorea001", store_a)
    on_b = _video(b, "onstoreb001", store_b)
    legacy = _video(a, "legacy00001", None)  # from before stores had ids: this host's if here
    # Host A holds a file of B's name too (an earlier copy): it must not count as B's file.
    decoy = a.media_dir / "videos" / "onstoreb001.mp4"
    decoy.write_bytes(b"y" * 10)

    report = run_retention(a)  # the active scheduler on host A
    assert not on_a.exists() and not legacy.exists()
    assert on_b.exists() and decoy.exists(), "host A deleted a file of host B's store"
    assert report.media_deleted == 2 and report.media_missing == 0
    assert _marked(settings) == {"onstorea001", "legacy00001"}

    # A scheduler-only host has no store: it marks nothing (there is no file of its own).
    scheduler = _host(settings, "media-none")
    assert run_retention(scheduler).media_deleted == 0
    assert not (scheduler.media_dir / MEDIA_HOST_FILE).exists()
    assert _marked(settings) == {"onstorea001", "legacy00001"}

    report = clean_store(b)  # host B's workers clean their own store
    assert not on_b.exists() and report.media_deleted == 1 and report.media_bytes == 100
    assert _marked(settings) == {"onstorea001", "legacy00001", "onstoreb001"}
    assert decoy.exists()


def test_a_shared_store_is_cleaned_by_any_host(sqlite_settings: Settings) -> None:
    """``FIND_MEDIA_SHARED=true``: every host sees one store, so any host deletes any file
    (and two hosts racing for one file both end well)."""
    a = _host(sqlite_settings, "shared", FIND_MEDIA_SHARED="true")
    b = _host(sqlite_settings, "shared", FIND_MEDIA_SHARED="true")
    path = _video(a, "sharedvid01", "some-other-host-1234abcd")
    assert clean_store(b).media_deleted == 1 and not path.exists()
    assert _marked(sqlite_settings) == {"sharedvid01"}
    with session_scope(sqlite_settings) as session:  # as if the other pass had not seen it
        session.scalars(select(Video)).one().media_deleted_at = None
    assert clean_store(a).media_missing == 1


@pytest.mark.slow
def test_a_worker_host_cleans_its_store_at_start_and_every_interval(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    worker = _host(sqlite_settings, "media-w")
    store = media_host_id(worker.media_dir)
    first = _video(worker, "workervid01", store)
    elsewhere = _video(worker, "elsewhere01", "other-host-0000abcd")
    out = tmp_path / "out.log"
    env = clean_env(
        FIND_DATA_DIR=str(worker.data_dir),
        FIND_DATABASE_URL=worker.database_url,
        FIND_MEDIA_DIR=str(worker.media_dir),
        FIND_DOWNLOAD_WORKERS="0",
        FIND_ANALYSE_WORKERS="1",
        FIND_WORKER_ID="cleaner",
    )
    proc = spawn([*STUB_WORKER, "--role", "worker", "--store-clean", "1"], env, out)
    try:
        text = wait_log(out, "retention.store_cleaned", 60)
        assert "media_deleted=1" in text, text[-2000:]
        wait_for(lambda: not first.exists(), 10, "the worker's first pass")
        # A video finished after start is cleaned by a later pass, not only at the next start.
        later = _video(worker, "workervid02", store, state=VideoState.SKIPPED.value)
        wait_for(lambda: not later.exists(), 30, "a later pass of the worker's store")
        time.sleep(1.5)  # one more pass: still nothing of the other store
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert elsewhere.exists()
    assert _marked(sqlite_settings) == {"workervid01", "workervid02"}


def _age(settings: Settings, key: str, days: int) -> None:
    with session_scope(settings) as session:
        video = session.scalars(select(Video).where(Video.youtube_id == key)).one()
        video.updated_at = utcnow() - timedelta(days=days)


def _rows(settings: Settings) -> set[str]:
    with session_scope(settings) as session:
        return set(session.scalars(select(Video.youtube_id)))


@pytest.mark.parametrize("policy", ["keep-all", "keep-flagged", "delete-all"])
def test_an_old_row_waits_until_the_host_holding_its_file_has_deleted_it(
    settings: Settings, policy: str
) -> None:
    """Row retention deleted a row whose file was in another host's store: the file stayed
    on that disk with nothing left to find it by.  Now each host deletes the files of its
    expiring rows (under keep-all too: row and file always went together) and the
    scheduler deletes a row once no live store holds its file."""
    env = {"FIND_ROW_RETENTION_DAYS": "30", "FIND_MEDIA_RETENTION": policy}
    a, b = _host(settings, "media-a", **env), _host(settings, "media-b", **env)
    store_a, store_b = media_host_id(a.media_dir), media_host_id(b.media_dir)
    with session_scope(settings) as session:  # host B's worker is alive
        session.add(Worker(id="b-1", role="worker", hostname="b", pid=1, media_host=store_b))
    on_a, on_b = _video(a, "oldonstorea", store_a), _video(b, "oldonstoreb", store_b)
    gone = _video(b, "oldongone01", "retired-host-0000abcd")  # a store nobody runs any more
    recent = _video(b, "newonstoreb", store_b)
    for key in ("oldonstorea", "oldonstoreb", "oldongone01"):
        _age(settings, key, 60)

    run_retention(a)  # the active scheduler on host A
    assert not on_a.exists(), "host A's own expired file stays"
    assert on_b.exists(), "host A reached into host B's store"
    assert _rows(settings) == {"oldonstoreb", "newonstoreb"}, "a row left its file behind"
    assert gone.exists()  # on a disk no live host cleans: only the row could go

    report = clean_store(b)  # host B's hourly pass deletes and marks its expired file
    assert not on_b.exists()
    assert recent.exists() == (policy == "keep-all")  # the policy still rules the rest
    assert report.media_deleted == (1 if policy == "keep-all" else 2)
    run_retention(a)
    assert _rows(settings) == {"newonstoreb"}
