"""A real daemon process with a fast stub analyser: what the queue tests start and kill.

``python -m tests.daemon.stub_worker [--role worker]`` builds the real
:class:`bot.service.daemon.Daemon` from the environment (FIND_* variables, or
``--env-file``) and plugs in :func:`stub_analyse` through the documented
``handlers=`` hook, so the scheduling, leases, signals and sd_notify are the
real ones and only the detection engine is replaced.

Test knobs (environment):

* ``STUB_LOG``: file the stub appends ``start|end|hang <video> <worker> <time>`` lines to;
* ``STUB_WORK_S``: seconds each analysis "takes" (default 0.02);
* ``STUB_HANG_FILE``: if this file names our FIND_WORKER_ID, the next job hangs
  (so a test can SIGKILL the process provably mid-analysis);
* ``STUB_NEEDS_MEDIA``: when set, a job whose file is not in our FIND_MEDIA_DIR fails
  as ``media_missing``, as the real analyser does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bot.logs import configure_logging
from bot.queue import Apply, Job, StageFailure
from bot.service.daemon import Daemon
from bot.settings import load_settings
from bot.store import Analysis, Video, VideoState


def _note(event: str, job: Job) -> None:
    path = os.environ.get("STUB_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{event} {job.youtube_id} {job.worker} {time.time():.6f}\n")
            out.flush()
            os.fsync(out.fileno())


def stub_analyse(job: Job) -> Apply:
    _note("start", job)
    hang = os.environ.get("STUB_HANG_FILE")
    mine = os.environ.get("FIND_WORKER_ID")
    if hang and Path(hang).is_file() and Path(hang).read_text().strip() == mine:
        _note("hang", job)
        time.sleep(3600)
    media = os.environ.get("FIND_MEDIA_DIR")
    needs = os.environ.get("STUB_NEEDS_MEDIA") and media and job.media_path
    if needs and not (Path(str(media)) / str(job.media_path)).is_file():
        _note("missing", job)
        raise StageFailure(
            f"{job.youtube_id}: downloaded file is missing", permanent=False, kind="media_missing"
        )
    time.sleep(float(os.environ.get("STUB_WORK_S", "0.02")))
    _note("end", job)

    def apply(session, video: Video) -> None:  # type: ignore[no-untyped-def]
        session.add(
            Analysis(
                video=video,
                bundle_id="stub",
                bundle_version="0",
                frames_requested=0,
                frames_decoded=0,
                faces=0,
                tracks=0,
                scores={"tracks": [], "top_frames": []},
                video_score=0.1,
                threshold=0.5,
                verdict="real",
                timings={},
                crops=[],
                worker=job.worker,
            )
        )
        video.state = VideoState.ANALYSED.value
        video.score, video.verdict = 0.1, "real"

    return apply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", default="worker")
    parser.add_argument("--env-file")
    parser.add_argument("--idle", type=float, default=0.1)
    parser.add_argument("--max-job", type=float, default=3600)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--store-clean", type=float, default=3600.0)
    args = parser.parse_args(argv)
    settings = load_settings(args.env_file)
    configure_logging(settings.log_level, settings.log_format)
    daemon = Daemon(
        settings,
        args.role,
        handlers={"analyse": stub_analyse},
        env_file=args.env_file,
        idle_s=args.idle,
        max_job_s=args.max_job,
        heartbeat_s=args.heartbeat,
        store_clean_s=args.store_clean,
    )
    daemon.install_signal_handlers()
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main())
