"""Hosts without shared media (issue 21, item 10).

Two real worker processes, each with its own FIND_MEDIA_DIR, on one PostgreSQL
database: each analyses only the videos whose file it holds, and when one host
disappears its downloaded videos go back to download after the lease.
"""

from __future__ import annotations

import shutil
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
    # No analysis failed for a missing file (the store-cleaning line counts media_missing=0).
    assert "kind=media_missing" not in out and "queue.media_host_gone" in out


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


# ------------------------------------------- submissions (issue 30 item 2)
def _submit(monkeypatch, tmp_path: Path, env: dict[str, str], *inputs: str) -> int:
    """``find-bot submit`` for real, on the host whose media directory ``env`` names."""
    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FIND_DATA_DIR", str(tmp_path / "data"))
    return main(["submit", *inputs, "--submitter", "alice"])


def _sent_in(ingestion, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return Path(shutil.copyfile(ingestion.samples["short"], inbox / "sent-in.mp4"))


def test_a_submitted_file_waits_for_the_host_that_holds_it(  # type: ignore[no-untyped-def]
    sqlite_ingestion, monkeypatch, tmp_path: Path, capsys
) -> None:
    """A second host, which cannot see this host's disk, never claims a submitted file."""
    ing = sqlite_ingestion
    assert _submit(monkeypatch, tmp_path, ing.env(), str(_sent_in(ing, tmp_path))) == 0
    settings = ing.settings()
    [video] = _videos(settings).values()
    here = media_host_id(settings.media_dir)
    assert (video.source, video.media_host) == ("submitted_file", here)

    sessions = session_factory(settings)
    elsewhere = WorkQueue(sessions, media_host=media_host_id(tmp_path / "media-b"))
    assert elsewhere.claim("analyse", "host-b/analyse-0") is None  # not its file
    job = WorkQueue(sessions, media_host=here).claim("analyse", "host-a/analyse-0")
    assert job is not None and job.youtube_id == video.youtube_id


def test_a_gone_hosts_submissions_are_fetched_again_or_submitted_again(  # type: ignore[no-untyped-def]
    sqlite_ingestion, monkeypatch, tmp_path: Path, capsys
) -> None:
    """A submitted URL goes back to download like any video; a submitted file, which has no
    page to download again, fails with a line saying what to do, and submitting it again on
    a live host puts it back (not refused as a duplicate)."""
    from bot.queue import run_one
    from bot.stages.download import make_download_handler

    ing = sqlite_ingestion
    ing.media.state.add("report.mp4", ing.samples["long"])
    url = f"{ing.media.url}/report.mp4"
    local = _sent_in(ing, tmp_path)
    assert _submit(monkeypatch, tmp_path, ing.env(), url, str(local)) == 0
    host_a = media_host_id(ing.settings().media_dir)
    media_b = tmp_path / "media-b"
    settings_b = ing.settings(FIND_MEDIA_DIR=str(media_b))
    host_b = media_host_id(media_b)
    queue_b = WorkQueue(session_factory(settings_b), media_host=host_b)
    by_source = {v.source: v for v in _videos(settings_b).values()}
    assert {v.media_host for v in by_source.values()} == {host_a}

    # Host a is gone (no daemon reports its store): both rows are handled, nothing is charged.
    released = queue_b.release_gone_media(1.0)
    assert sorted(released) == sorted(v.youtube_id for v in by_source.values())
    now = _videos(settings_b)
    from_url, from_file = (
        now[by_source[s].youtube_id] for s in ("submitted_url", "submitted_file")
    )
    assert (from_url.state, from_url.media_host, from_url.media_path) == ("new", None, None)
    assert (from_url.last_error_kind, from_url.attempts) == (MEDIA_HOST_GONE, 0)
    assert (from_file.state, from_file.last_error_kind, from_file.attempts) == (
        "failed",
        MEDIA_HOST_GONE,
        0,
    )
    assert f"find-bot requeue {from_file.youtube_id}" in from_file.last_error
    assert "submit the file again" in from_file.last_error
    assert queue_b.claim("analyse", "host-b/analyse-0") is None  # nothing host b can read

    # Host b downloads the submitted URL again, from its page.
    fetched = ing.media.state.count("report.mp4")
    job = run_one(queue_b, "download", "host-b/download-0", make_download_handler(settings_b))
    assert job is not None and job.youtube_id == from_url.youtube_id
    again = _videos(settings_b)[from_url.youtube_id]
    assert (again.state, again.media_host) == ("downloaded", host_b)
    assert Path(again.media_path).parent == media_b and Path(again.media_path).is_file()
    assert ing.media.state.count("report.mp4") > fetched

    # The same file submitted again on host b is put back, under the same key.
    capsys.readouterr()
    env_b = ing.env(FIND_MEDIA_DIR=str(media_b))
    assert _submit(monkeypatch, tmp_path, env_b, str(local)) == 0
    assert "in place here again" in capsys.readouterr().out
    back = _videos(settings_b)[from_file.youtube_id]
    assert (back.state, back.media_host, back.last_error_kind) == ("downloaded", host_b, None)
    assert Path(back.media_path).parent == media_b and Path(back.media_path).is_file()
    claimed = {queue_b.claim("analyse", "host-b/analyse-0").youtube_id for _ in range(2)}
    assert claimed == {from_url.youtube_id, from_file.youtube_id}


def test_a_submitted_file_requeued_where_its_copy_is_not_is_skipped_not_fetched(  # type: ignore[no-untyped-def]
    sqlite_ingestion, monkeypatch, tmp_path: Path, capsys
) -> None:
    """``requeue`` on a host without the file sends it to download: a submitted file has no
    page, so it is skipped with what to do (never FIND_MEDIA_URL_TEMPLATE with a sub- key),
    and submitting it again there puts it back."""
    from bot.queue import run_one
    from bot.requeue import requeue
    from bot.stages.download import make_download_handler

    ing = sqlite_ingestion
    local = _sent_in(ing, tmp_path)
    assert _submit(monkeypatch, tmp_path, ing.env(), str(local)) == 0
    media_b = tmp_path / "media-b"
    settings_b = ing.settings(FIND_MEDIA_DIR=str(media_b))
    sessions = session_factory(settings_b)
    [key] = _videos(settings_b)
    with session_scope(settings_b) as session:  # it ended in failed, as a gone store leaves it
        video = session.scalars(select(Video)).one()
        video.state = VideoState.FAILED.value
        Path(video.media_path).unlink()  # (one machine here: host b must not see host a's file)
    [moved] = requeue(sessions, settings_b, video_ids=[key])
    assert moved.to_state == "new"  # not on host b's disk

    requests = len(ing.media.state.requests)
    queue_b = WorkQueue(sessions, media_host=media_host_id(media_b))
    run_one(queue_b, "download", "host-b/download-0", make_download_handler(settings_b))
    video = _videos(settings_b)[key]
    assert (video.state, video.last_error_kind) == ("skipped", "media_missing")
    assert "submit the file again" in video.last_error
    assert len(ing.media.state.requests) == requests  # no page was opened

    capsys.readouterr()
    assert _submit(monkeypatch, tmp_path, ing.env(FIND_MEDIA_DIR=str(media_b)), str(local)) == 0
    assert "in place here again" in capsys.readouterr().out
    back = _videos(settings_b)[key]
    assert (back.state, back.media_host) == ("downloaded", media_host_id(media_b))
