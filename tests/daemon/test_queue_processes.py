"""Scale-out: 4 real worker processes share one database; one is SIGKILLed mid-analysis.

Every video must end analysed with exactly one Analysis row; the video the
killed worker held must be taken over by another worker once its lease
expires; no two workers may run the same video at the same time.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db import session_scope
from bot.settings import Settings
from bot.store import Analysis, Video, VideoState
from tests.daemon.helpers import STUB_WORKER, clean_env, spawn, stop, wait_for

VIDEOS = 200
WORKERS = 4
LEASE_S = 5


def _queue_videos(settings: Settings, n: int) -> None:
    with session_scope(settings) as session:
        session.add_all(
            Video(youtube_id=f"vid{i:05d}", state=VideoState.DOWNLOADED.value, media_path=f"x{i}")
            for i in range(n)
        )


def _done(settings: Settings) -> int:
    with session_scope(settings) as session:
        return (
            session.scalar(select(func.count()).where(Video.state == VideoState.ANALYSED.value))
            or 0
        )


@pytest.mark.slow
def test_four_workers_one_killed_every_video_done_exactly_once(
    settings: Settings, tmp_path: Path
) -> None:
    _queue_videos(settings, VIDEOS)
    hang_file = tmp_path / "hang"
    procs, logs = [], []
    for i in range(WORKERS):
        env = clean_env(
            FIND_DATA_DIR=str(settings.data_dir),
            FIND_DATABASE_URL=settings.database_url,
            FIND_LEASE=str(LEASE_S),
            FIND_DOWNLOAD_WORKERS="0",
            FIND_ANALYSE_WORKERS="1",
            FIND_WORKER_ID=f"w{i}",
            FIND_SHUTDOWN_GRACE="5",
            STUB_LOG=str(tmp_path / f"stub-{i}.log"),
            STUB_WORK_S="0.03",
            STUB_HANG_FILE=str(hang_file),
        )
        logs.append(tmp_path / f"stub-{i}.log")
        procs.append(spawn(STUB_WORKER, env, tmp_path / f"worker-{i}.out"))
    try:
        wait_for(lambda: _done(settings) >= VIDEOS // 4, 60, "a quarter of the videos done")
        victim = random.randrange(WORKERS)
        hang_file.write_text(f"w{victim}")
        hung_line = wait_for(
            lambda: next(
                (ln for ln in logs[victim].read_text().splitlines() if ln.startswith("hang")), None
            ),
            30,
            f"worker w{victim} to be mid-analysis",
            step=0.005,
        )
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(10)
        hang_file.unlink()
        killed_at = time.time()
        hung_video = hung_line.split()[1]
        wait_for(lambda: _done(settings) == VIDEOS, 60, "all videos analysed")
        for i, proc in enumerate(procs):
            if i != victim:
                assert stop(proc) == 0, (tmp_path / f"worker-{i}.out").read_text()[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    with session_scope(settings) as session:
        states = Counter(session.scalars(select(Video.state)))
        per_video = Counter(
            session.scalars(select(Video.youtube_id).join(Analysis, Analysis.video_id == Video.id))
        )
        hung_owner = session.scalar(
            select(Analysis.worker).join(Video).where(Video.youtube_id == hung_video)
        )
        leftovers = session.scalar(select(func.count()).where(Video.lease_owner.is_not(None)))
    assert states == {VideoState.ANALYSED.value: VIDEOS}
    assert len(per_video) == VIDEOS and set(per_video.values()) == {1}, "an analysis twice"
    assert hung_owner is not None and not hung_owner.startswith(f"w{victim}/")
    assert leftovers == 0

    # No video ever ran on two workers at once: the only restart is the killed one's,
    # and it started after the victim's lease had run out.
    runs: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for log in logs:
        for line in log.read_text().splitlines():
            event, video, worker, at = line.split()
            runs[video].append((event, worker, float(at)))
    restarted = {v for v, events in runs.items() if sum(e == "start" for e, _, _ in events) > 1}
    assert restarted == {hung_video}
    starts = [
        at for e, w, at in runs[hung_video] if e == "start" and not w.startswith(f"w{victim}/")
    ]
    victim_start = min(at for e, w, at in runs[hung_video] if w.startswith(f"w{victim}/"))
    assert min(starts) >= victim_start + LEASE_S - 0.5
    assert min(starts) <= killed_at + LEASE_S + 10  # taken again promptly once the lease expired
