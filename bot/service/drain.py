"""``find-bot run --until-empty``: process what is queued, say what came of it, and exit.

The daemon's workers never exit: they wait for the next video.  Someone who submitted a
few files (``find-bot submit``) or has downloads waiting wants them processed now, and
to be told when there is nothing left.  :func:`drain` runs the same stage handlers
through the same :func:`bot.queue.run_one` as the daemon's workers, one video at a time,
until no video is due for download or analysis, and counts what became of each.  It
discovers nothing (no YouTube API call, no key needed).  A video that failed for a
reason that may pass is postponed as usual (its backoff is not waited out here) and
counted as "to retry later": the daemon, or the next run, takes it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.hostfault import HostFault
from bot.mediahost import media_host_id
from bot.queue import StageHandler, WorkQueue, run_one
from bot.settings import Settings
from bot.store import Video, VideoState

#: What became of a video, by the state it ended a stage in, as said in the summary.
OUTCOMES = {
    "download": {
        VideoState.DOWNLOADED.value: "downloaded",
        VideoState.SKIPPED.value: "skipped",
        VideoState.FAILED.value: "failed",
    },
    "analyse": {
        VideoState.FLAGGED.value: "flagged for review",
        VideoState.ANALYSED.value: "below the threshold",
        VideoState.SKIPPED.value: "skipped",
        VideoState.FAILED.value: "failed",
    },
}
RETRY_LATER = "to retry later"
#: An analysed video with no score: no face was found to score.
NO_FACE = "no face found"


@dataclass
class DrainReport:
    """Counts per stage and outcome, and why the run stopped early (a host fault)."""

    counts: dict[str, Counter[str]] = field(
        default_factory=lambda: {"download": Counter(), "analyse": Counter()}
    )
    stopped: str | None = None
    #: Videos still in a work state when the run ended: postponed after a failure that may
    #: pass (their backoff is not waited out here), or on another host's media store.
    waiting: int = 0

    @property
    def processed(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def summary(self) -> list[str]:
        """The closing lines: one per stage that did anything, then whether the queue is empty."""
        lines = []
        for stage, counts in self.counts.items():
            if counts:
                done = ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common())
                lines.append(f"{stage}: {sum(counts.values())} video(s): {done}")
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
            return lines
        lines.append(
            "the queue is empty" if self.processed else "nothing was queued: the queue is empty"
        )
        if self.waiting:
            lines.append(
                f"{self.waiting} video(s) wait for a later retry or another host's worker "
                "(`find-bot status` says why; the daemon takes them in time)"
            )
        return lines


def due(sessions: sessionmaker[Session], state: VideoState) -> int:
    """Videos waiting in ``state`` (due now or later): is loading a handler worth it?"""
    with sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(Video).where(Video.state == state)) or 0
        )


def drain(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    handlers: dict[str, Callable[[Settings], StageHandler]] | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> DrainReport:
    """Download, then analyse, every due video until none is left; one line per video.

    ``handlers`` builds each stage's handler (the daemon's by default); the analyse
    handler, which loads the model, is only built when a video waits for analysis.
    Stages with ``FIND_*_WORKERS=0`` are left alone, as the daemon on this host would.
    """
    builders = {"download": _download_handler, "analyse": _analyse_handler, **(handlers or {})}
    queue = WorkQueue(
        sessions,
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
        media_host=media_host_id(settings.media_dir),
        media_shared=settings.media_shared,
    )
    worker = f"{settings.worker_id}/until-empty"
    report = DrainReport()
    workers = {"download": settings.download_workers, "analyse": settings.analyse_workers}
    for stage in ("download", "analyse"):
        if not workers[stage] or not due(sessions, VideoState(_input(stage))):
            continue
        handler: Any = builders[stage](settings)
        while True:
            try:
                job = run_one(queue, stage, worker, handler)
            except HostFault as fault:  # the next video would meet the same disk
                report.stopped = str(fault)
                return report
            if job is None:
                break
            outcome, detail = _outcome(sessions, stage, job.video_id)
            report.counts[stage][outcome] += 1
            say(f"{stage}: {job.title or job.youtube_id} ({job.youtube_id}): {outcome}{detail}")
            send = getattr(handler, "send_notifications", None)
            if send is not None:
                send()
    report.waiting = sum(due(sessions, VideoState(_input(stage))) for stage in workers)
    return report


def _input(stage: str) -> str:
    from bot.store import STAGE_INPUT

    return STAGE_INPUT[stage].value


def _outcome(sessions: sessionmaker[Session], stage: str, video_id: int) -> tuple[str, str]:
    """What became of the video, and for an analysis its score (and a demo sample's label)."""
    from bot.formats import format_score
    from bot.review.queries import demo_label_text

    with sessions() as session:
        video = session.get(Video, video_id)
        if video is None:
            return RETRY_LATER, ""
        outcome = OUTCOMES[stage].get(video.state, RETRY_LATER)
        if outcome == OUTCOMES["analyse"][VideoState.ANALYSED.value] and video.score is None:
            outcome = NO_FACE
        detail = ""
        if stage == "analyse" and video.score is not None:
            detail = f", score {format_score(video.score)}"
        if video.demo_label:
            detail += f" [{demo_label_text(video.demo_label)}]"
    return outcome, detail


def _download_handler(settings: Settings) -> StageHandler:
    from bot.stages.download import make_download_handler

    return make_download_handler(settings)


def _analyse_handler(settings: Settings) -> StageHandler:
    from bot.stages.analyse import Analyser

    return Analyser(settings)  # loads the bundle: a bad one stops here with one line
