"""Hosts without shared media (issue 21, item 10).

Two real worker processes, each with its own FIND_MEDIA_DIR, on one PostgreSQL
database: each analyses only the videos whose file it holds, and when one host
disappears its downloaded videos go back to download after the lease.
"""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import db
from bot.db import session_factory, session_scope
from bot.mediahost import MEDIA_HOST_FILE, media_host_id
from bot.queue import MEDIA_HOST_GONE, WorkQueue
from bot.settings import Settings
from bot.store import Video, VideoState, Worker
from tests.conftest import make_settings
from tests.daemon.helpers import STUB_WORKER, clean_env, spawn, stop, wait_for

LEASE_S = 5


def _add(settings: Settings, host: str, media: Path, ids: list[str]) -> None:
    media.mkdir(parents=True, exist_ok=True)
    with session_scope(settings) as session:
        for youtube_id in ids:
            (media / f"{youtube_id}.mp4").write_bytes(b"not really a video")
            session.add(
                Video(
                    youtube_id=youtube_id,
                    state=VideoState.DOWNLOADED.value,
                    media_path=f"{youtube_id}.mp4",
                    media_host=host,
                )
            )


def _videos(settings: Settings) -> dict[str, Video]:
    with session_factory(settings)() as session:
        return {v.youtube_id: v for v in session.scalars(select(Video))}


def _runs(log: Path) -> dict[str, list[str]]:
    """video -> the stub's events for it (start, end, missing)."""
    runs: dict[str, list[str]] = defaultdict(list)
    if log.exists():
        for line in log.read_text().splitlines():
            event, video, _worker, _at = line.split()
            runs[video].append(event)
    return runs


@pytest.mark.postgres
@pytest.mark.slow
def test_two_hosts_analyse_only_their_own_media_and_a_gone_host_is_released(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, FIND_DATABASE_URL=postgres_url)
    db.upgrade(settings)
    media = {name: tmp_path / f"media-{name}" for name in "ab"}
    hosts = {name: media_host_id(path) for name, path in media.items()}
    assert hosts["a"] != hosts["b"]
    mine = {name: [f"{name}media{i:05d}" for i in range(5)] for name in "ab"}

    procs, logs = {}, {}
    for name in "ab":
        env = clean_env(
            FIND_DATA_DIR=str(settings.data_dir),
            FIND_DATABASE_URL=postgres_url,
            FIND_MEDIA_DIR=str(media[name]),
            FIND_LEASE=str(LEASE_S),
            FIND_DOWNLOAD_WORKERS="0",
            FIND_ANALYSE_WORKERS="2",
            FIND_WORKER_ID=f"host-{name}",
            FIND_SHUTDOWN_GRACE="5",
            STUB_LOG=str(tmp_path / f"stub-{name}.log"),
            STUB_WORK_S="0.05",
            STUB_NEEDS_MEDIA="1",
        )
        logs[name] = tmp_path / f"stub-{name}.log"
        procs[name] = spawn(
            [*STUB_WORKER, "--heartbeat", "0.5"], env, tmp_path / f"worker-{name}.out"
        )
    try:

        def both_up() -> bool:  # (a store with videos but no daemon yet would count as gone)
            with session_factory(settings)() as session:
                return set(session.scalars(select(Worker.media_host))) == set(hosts.values())

        wait_for(both_up, 120, "both workers registered", step=0.2)
        for name in "ab":
            _add(settings, hosts[name], media[name], mine[name])

        def all_analysed() -> bool:
            return all(v.state == VideoState.ANALYSED.value for v in _videos(settings).values())

        wait_for(all_analysed, 240, "every video analysed", step=0.2)
        for name in "ab":
            runs = _runs(logs[name])
            assert set(runs) == set(mine[name]), f"host {name} took another host's video"
            assert all(events == ["start", "end"] for events in runs.values()), runs

        # Host b disappears (kill -9) with downloaded videos still waiting on its disk.
        procs["b"].send_signal(signal.SIGKILL)
        procs["b"].wait(10)
        orphans = [f"borphan{i:04d}" for i in range(4)]
        _add(settings, hosts["b"], media["b"], orphans)

        def released() -> bool:
            videos = _videos(settings)
            return all(videos[i].state == VideoState.NEW.value for i in orphans)

        wait_for(released, LEASE_S + 90, "host b's videos back in download", step=0.2)
        for youtube_id in orphans:
            video = _videos(settings)[youtube_id]
            assert video.media_host is None and video.media_path is None
            assert (video.last_error_kind, video.attempts) == (MEDIA_HOST_GONE, 0)
        assert not set(orphans) & set(_runs(logs["a"])), "host a tried files it does not have"
        assert stop(procs["a"]) == 0, (tmp_path / "worker-a.out").read_text()[-2000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = (tmp_path / "worker-a.out").read_text()
    assert "media_missing" not in out and "queue.media_host_gone" in out


def test_a_shared_media_dir_lets_any_worker_analyse(sqlite_settings: Settings) -> None:
    """FIND_MEDIA_SHARED=true: the store of the downloading host does not matter."""
    _add(sqlite_settings, "elsewhere-1234abcd", sqlite_settings.media_dir, ["sharedvid01"])
    sessions = session_factory(sqlite_settings)
    own = WorkQueue(sessions, media_host="here-0000aaaa")
    assert own.claim("analyse", "w") is None
    assert own.claim("download", "w") is None  # (nothing to download either)
    shared = WorkQueue(sessions, media_host="here-0000aaaa", media_shared=True)
    job = shared.claim("analyse", "w")
    assert job is not None and job.youtube_id == "sharedvid01"
    assert shared.release_gone_media(1.0) == []  # shared media is never released


def test_the_media_store_id_lives_in_the_directory(tmp_path: Path) -> None:
    first = media_host_id(tmp_path / "m")
    assert media_host_id(tmp_path / "m") == first  # stable across restarts
    assert (tmp_path / "m" / MEDIA_HOST_FILE).read_text().strip() == first
    assert media_host_id(tmp_path / "other") != first


def test_a_download_records_its_media_store(sqlite_ingestion) -> None:  # type: ignore[no-untyped-def]
    from bot.queue import run_one
    from bot.stages.download import make_download_handler

    ing = sqlite_ingestion
    ing.media.state.add("storedhere1.mp4", ing.samples["short"])
    settings = ing.settings()
    with session_scope(settings) as session:
        session.add(Video(youtube_id="storedhere1", title="t", discovered_via="test"))
    run_one(WorkQueue(session_factory(settings)), "download", "w", make_download_handler(settings))
    video = _videos(settings)["storedhere1"]
    assert video.state == VideoState.DOWNLOADED.value
    assert video.media_host == media_host_id(settings.media_dir)
