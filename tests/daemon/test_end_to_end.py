"""``find-bot run`` as a new user runs it: empty database to flagged, kill -9, restart, SIGHUP.

The real CLI in a real process, against the local fake YouTube API and media
server from the ingestion tests, with a tiny real model bundle (threshold 0,
so every video with a face is flagged and the no-face one is analysed).
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_scope
from bot.store import Analysis, Video, VideoState
from tests.daemon.helpers import FIND_BOT, PROJECT_ROOT, clean_env, spawn, stop, wait_for, wait_log

pytestmark = pytest.mark.slow


def _states(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with session_scope(settings) as session:
        return dict(session.execute(select(Video.youtube_id, Video.state)).all())


def test_run_discovers_downloads_flags_survives_kill_and_reloads(
    ingestion, tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:  # type: ignore[no-untyped-def]
    ing = ingestion
    ing.samples["face"] = face_videos["face"]
    channel_a, channel_b = ing.channel("Channel A"), ing.channel("Channel B")
    faces_a = [ing.upload(channel_a, sample="face").id for _ in range(3)]
    no_face = ing.upload(channel_a, sample="short").id
    face_b = ing.upload(channel_b, sample="face").id
    settings = ing.base

    def write_env(channels: str) -> None:
        values = ing.env(
            FIND_DATA_DIR=str(settings.data_dir),
            FIND_CHANNELS=channels,
            FIND_MODEL_BUNDLE=str(tiny_bundle_dir),
            FIND_SCORE_THRESHOLD="0",
            FIND_FRAMES_PER_VIDEO="4",
            FIND_LEASE="5",
            FIND_POLL_INTERVAL="10m",
            FIND_SHUTDOWN_GRACE="5",
        )
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    env_file = tmp_path / "find-bot.env"
    write_env(channel_a.id)
    command = [*FIND_BOT, "--env-file", str(env_file), "run"]
    first = spawn(command, clean_env(), tmp_path / "run1.log")
    second = None
    try:
        wait_for(
            lambda: VideoState.FLAGGED.value in _states(settings).values(),
            180,
            "the first flagged video",
            step=0.2,
        )
        first.send_signal(signal.SIGKILL)  # kill -9, mid-pipeline
        first.wait(10)
        assert {*faces_a, no_face} <= set(_states(settings))

        second = spawn(command, clean_env(), tmp_path / "run2.log")
        expected = {v: VideoState.FLAGGED.value for v in faces_a}
        expected[no_face] = VideoState.ANALYSED.value
        wait_for(lambda: _states(settings) == expected, 180, f"all of {expected}", step=0.3)

        mark = len((tmp_path / "run2.log").read_bytes())
        write_env(f"{channel_a.id},{channel_b.id}")
        second.send_signal(signal.SIGHUP)
        wait_log(tmp_path / "run2.log", f"config.channel_added channel={channel_b.id}", 20, mark)
        wait_for(
            lambda: _states(settings).get(face_b) == VideoState.FLAGGED.value,
            120,
            "the new channel's video flagged without a restart",
            step=0.3,
        )

        status = subprocess.run(
            [*FIND_BOT, "--env-file", str(env_file), "status", "--json"],
            cwd=PROJECT_ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["review_queue"] == 4
        assert report["last_poll"] is not None and report["quota"]["used"] > 0
        assert report["model"]["in_use"] == ["tiny-daemon-test 0.0.1"]
        assert stop(second, timeout=30) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    with session_scope(settings) as session:
        per_video = Counter(
            session.scalars(select(Video.youtube_id).join(Analysis, Analysis.video_id == Video.id))
        )
        bundles = set(session.execute(select(Analysis.bundle_id, Analysis.bundle_version)).all())
        flagged = session.scalars(select(Video).where(Video.state == "flagged")).all()
        crops = [c for v in flagged for a in v.analyses for c in a.crops]
    assert set(per_video.values()) == {1}, f"a video was analysed twice: {per_video}"
    assert len(per_video) == 5
    assert bundles == {("tiny-daemon-test", "0.0.1")}
    assert crops and all((settings.media_dir / c["path"]).is_file() for c in crops)
    log = (tmp_path / "run2.log").read_text()
    assert "Traceback" not in log
    for line in log.splitlines():  # structured: every line about a claimed video names it
        if "queue.claimed" in line or "analyse.scored" in line:
            assert " video=" in line, line
