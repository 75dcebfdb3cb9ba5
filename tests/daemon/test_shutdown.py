"""SIGTERM during real analyses always ends with exit 0 and every lease released.

The real ``find-bot run --role worker`` with two analyse workers on a tiny real
model bundle: TensorFlow is busy in both threads when the signal arrives.
Before the fix a released analysis still running inside TensorFlow at
interpreter exit aborted the process ("terminate called without an active
exception", exit 134), and a second SIGTERM during the exit killed it (-15).
Each round is a fresh process, so the race gets several chances to show.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_scope
from bot.settings import Settings
from bot.store import Video, VideoState
from tests.conftest import make_settings
from tests.daemon.helpers import FIND_BOT, clean_env, spawn, wait_log

pytestmark = pytest.mark.slow

VIDEOS = 4
#: (signals, grace): one SIGTERM with the grace period over at once or after a second;
#: a second SIGTERM during the grace period ("hurry"); a second one while exiting.
ROUNDS = [
    ("once", "0"),
    ("once", "1"),
    ("hurry", "600"),
    ("late", "0"),
    ("hurry", "600"),
    ("late", "0"),
]


@pytest.fixture(scope="module")
def long_face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.model import synth

    return synth.face_video(tmp_path_factory.mktemp("long") / "face.mp4", n_frames=96)


def _queue_videos(settings: Settings, source: Path, round_no: int) -> None:
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    with session_scope(settings) as session:
        for i in range(VIDEOS):
            name = f"r{round_no}v{i}.mp4"
            shutil.copy(source, settings.media_dir / name)
            session.add(
                Video(
                    youtube_id=f"shut{round_no:02d}{i:05d}",
                    state=VideoState.DOWNLOADED.value,
                    media_path=name,
                )
            )


def test_sigterm_during_real_analyses_always_exits_0_and_releases(
    tmp_path: Path, tiny_bundle_dir: Path, long_face_video: Path
) -> None:
    from bot import db

    settings = make_settings(tmp_path)
    db.upgrade(settings)
    outcomes = []
    for round_no, (how, grace) in enumerate(ROUNDS):
        _queue_videos(settings, long_face_video, round_no)
        env = clean_env(
            FIND_DATA_DIR=str(settings.data_dir),
            FIND_MODEL_BUNDLE=str(tiny_bundle_dir),
            FIND_DOWNLOAD_WORKERS="0",
            FIND_ANALYSE_WORKERS="2",
            FIND_FRAMES_PER_VIDEO="64",  # several seconds of TensorFlow per video
            FIND_SCORE_THRESHOLD="0",
            FIND_SHUTDOWN_GRACE=grace,
        )
        out = tmp_path / f"round{round_no}.log"
        proc = spawn([*FIND_BOT, "run", "--role", "worker"], env, out)
        try:
            wait_log(out, "queue.claimed", 120)
            time.sleep(1.0)  # both workers inside detection / classification
            proc.send_signal(signal.SIGTERM)
            if how == "hurry":
                wait_log(out, "daemon.stopping", 10)
                proc.send_signal(signal.SIGTERM)
            elif how == "late":
                wait_log(out, "daemon.stopped", 15)
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log = out.read_text(errors="replace")
        in_flight = int(re.search(r"daemon.stopping in_flight=(\d+)", log).group(1))
        outcomes.append((how, grace, code, in_flight, "terminate called" in log))
    with session_scope(settings) as session:
        videos = session.scalars(select(Video)).all()
        leased = [v.youtube_id for v in videos if v.lease_owner or v.lease_expires_at]
        charged = [
            v.youtube_id for v in videos if v.state == VideoState.DOWNLOADED.value and v.attempts
        ]
    assert all(code == 0 and not aborted for _h, _g, code, _n, aborted in outcomes), outcomes
    assert all(n >= 1 for _h, _g, _c, n, _a in outcomes), f"no analysis in flight: {outcomes}"
    assert leased == [] and charged == [], (leased, charged)
