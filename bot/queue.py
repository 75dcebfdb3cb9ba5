"""The database is the queue: claim a video for a stage under a lease, then commit its result.

How it holds together with several daemons on several machines:

* **claim** picks the oldest due video in the stage's input state whose lease
  is free or expired (highest ``priority`` first: ``submit --priority``).  On
  PostgreSQL the pick is ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent
  workers never wait on or take the same row; on SQLite every write transaction
  is ``BEGIN IMMEDIATE`` (see ``bot.db``), which makes the same
  select-then-update atomic.  One code path serves both.
* the claim sets ``lease_owner``/``lease_expires_at`` and counts the attempt
  *before* any work starts, so a video that kills its worker (OOM, SIGKILL)
  still runs out of attempts instead of looping forever.
* a :class:`Heartbeat` thread extends the lease while the work runs.
* **complete** writes the result and the next state in one transaction, and
  only if the lease is still ours: a worker that lost its lease (it stalled
  past expiry and someone else took the video) throws its result away.
* **fail** records the error; permanent errors end the video in ``skipped``,
  transient ones are retried with exponential backoff and jitter until
  ``max_attempts``, then the video ends in ``failed`` with its last error.
* **host faults** (a read-only, full or forbidden disk: :mod:`bot.hostfault`)
  postpone the video without spending an attempt, and :func:`run_one` raises
  :class:`~bot.hostfault.HostFault` after recording it, so the worker backs
  off instead of walking the whole queue into the same wall.  When the fault
  hit only the *write* of a finished result (the analysis crops), the result
  is kept in memory and the retry in this process writes it without redoing
  the work.
* **database outages** (:mod:`bot.outage`): a job that lost the database on the
  way (a bank lookup, the commit) is given back without spending an attempt, a
  finished result is kept for the retry as above, and the error goes up to the
  worker, which waits the outage out.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, true, update
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import FindError
from bot.hostfault import HOST_FAULT_KINDS, HostFault, describe, fault_kind
from bot.logs import log_event
from bot.outage import OUTAGE
from bot.store import STAGE_INPUT, Video, VideoSource, VideoState, Worker, utcnow

log = logging.getLogger("find.queue")

#: Writes a stage's result inside the completing transaction.
Apply = Callable[[Session, Video], None]


class StageFailure(FindError):
    """A stage could not process a video.

    ``permanent`` failures (removed, private, too long, corrupt) end the video
    in ``skipped``; transient ones (network, 429, quota) are retried later.
    ``kind`` is a short label for metrics and status (``network``, ``removed``...).
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        kind: str | None = None,
        counts_as_attempt: bool = True,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.kind = kind or ("permanent" if permanent else "transient")
        #: False for conditions of this machine, not of the video (a full disk):
        #: the video waits with backoff for as long as it takes, but is never
        #: pushed towards ``failed`` by them.
        self.counts_as_attempt = counts_as_attempt


class ShutdownRequested(Exception):
    """A handler stopped between two steps because the process is stopping (SIGTERM): the
    video is given back untouched, its attempt not counted (:meth:`WorkQueue.release`),
    and the worker thread ends.  Raised instead of starting new work (another download
    attempt) within the grace period, which is there to let running work finish."""


@dataclass(frozen=True)
class Job:
    """A claimed video: a detached snapshot, safe to use outside any session."""

    video_id: int
    youtube_id: str
    stage: str
    worker: str
    attempt: int
    media_path: str | None
    title: str | None
    #: The page a submitted URL came from: what the download stage opens again for a
    #: submission whose media store is gone (a YouTube id needs none).
    source_url: str | None = None


def backoff_delay(attempt: int, base_s: float = 30.0, cap_s: float = 6 * 3600) -> float:
    """Exponential backoff with full jitter (AWS style), so retries do not stampede."""
    return random.uniform(0.5, 1.0) * min(cap_s, base_s * 2 ** max(0, attempt - 1))


#: How long a finished result whose write met a host fault is kept for the retry.
KEPT_RESULT_S = 6 * 3600
#: At most this many such results are kept per process (the oldest go first).
KEPT_RESULTS = 64


@dataclass(frozen=True)
class _Kept:
    apply: Apply
    media_path: str | None
    until: datetime


#: Stages that read the downloaded file: they claim only videos on their media store.
MEDIA_STAGES = frozenset({"analyse"})
#: ``last_error_kind`` of a video sent back to download because its media store is gone.
MEDIA_HOST_GONE = "media_host_gone"


class WorkQueue:
    """The queue over ``sessions``.

    ``media_host`` is this process's media store (:mod:`bot.mediahost`): with it, the
    stages in :data:`MEDIA_STAGES` claim only videos stored there (or with no store
    recorded), unless ``media_shared`` says every host sees the same files.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        lease_s: int = 300,
        max_attempts: int = 5,
        media_host: str | None = None,
        media_shared: bool = False,
    ) -> None:
        self.sessions = sessions
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.media_host = media_host
        self.media_shared = media_shared
        #: (stage, video id) -> a finished result whose write met a host fault: the retry
        #: writes it instead of doing the work (minutes of model time) again.
        self._kept: dict[tuple[str, int], _Kept] = {}
        self._kept_lock = threading.Lock()

    # ------------------------------------------------------- kept results
    def keep_result(self, job: Job, apply: Apply) -> None:
        """Hold ``apply`` for this video's next claim in this process (see :func:`run_one`)."""
        with self._kept_lock:
            while len(self._kept) >= KEPT_RESULTS:
                self._kept.pop(next(iter(self._kept)))
            self._kept[(job.stage, job.video_id)] = _Kept(
                apply, job.media_path, utcnow() + timedelta(seconds=KEPT_RESULT_S)
            )

    def kept_result(self, job: Job) -> Apply | None:
        """The kept result for a claimed job, if it is still fresh and for the same media."""
        with self._kept_lock:
            kept = self._kept.pop((job.stage, job.video_id), None)
        if kept is None or kept.until < utcnow() or kept.media_path != job.media_path:
            return None
        return kept.apply

    # ------------------------------------------------------------- claim
    def claim(self, stage: str, worker: str, now: datetime | None = None) -> Job | None:
        """Take the next due video for ``stage`` under a lease, or ``None`` if there is none."""
        wanted = STAGE_INPUT[stage]
        readable = (
            (Video.media_host.is_(None)) | (Video.media_host == self.media_host)
            if stage in MEDIA_STAGES and self.media_host is not None and not self.media_shared
            else true()
        )
        while True:
            now = now or utcnow()
            with self.sessions.begin() as session:
                video = session.scalars(
                    select(Video)
                    .where(
                        Video.state == wanted.value,
                        (Video.lease_expires_at.is_(None)) | (Video.lease_expires_at < now),
                        (Video.next_attempt_at.is_(None)) | (Video.next_attempt_at <= now),
                        readable,
                    )
                    .order_by(Video.priority.desc(), Video.next_attempt_at.is_not(None), Video.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if video is None:
                    return None
                if video.attempts >= self.max_attempts:
                    # Its previous holders all died mid-work: stop the loop here.
                    video.state = VideoState.FAILED.value
                    video.last_error = (
                        video.last_error
                        or f"{stage} was interrupted {video.attempts} times (worker crashed?)"
                    )
                    video.lease_owner = video.lease_expires_at = None
                    log_event(
                        log,
                        "queue.gave_up",
                        logging.WARNING,
                        video=video.youtube_id,
                        stage=stage,
                        attempts=video.attempts,
                    )
                    now = None
                    continue
                video.attempts += 1
                video.lease_owner = worker
                video.lease_expires_at = now + timedelta(seconds=self.lease_s)
                job = Job(
                    video_id=video.id,
                    youtube_id=video.youtube_id,
                    stage=stage,
                    worker=worker,
                    attempt=video.attempts,
                    media_path=video.media_path,
                    title=video.title,
                    source_url=video.source_url,
                )
            log_event(
                log,
                "queue.claimed",
                video=job.youtube_id,
                stage=stage,
                attempt=job.attempt,
                worker=worker,
            )
            return job

    def release_gone_media(self, grace_s: float, now: datetime | None = None) -> list[str]:
        """Send back to download the videos whose media store no daemon has reported for
        ``grace_s`` (its host is gone: nobody can analyse them); return their ids.

        Stores are alive while a ``workers`` row names them with a recent heartbeat.
        Leased videos are left alone; with ``media_shared`` nothing is released (every
        host reads every file).  A submitted *file* has no page to download again: it
        ends in ``failed`` instead, keeping its path and store, so its host can requeue it
        when it is back, or the file can be submitted again elsewhere.
        """
        if self.media_shared:
            return []
        now = now or utcnow()
        alive = select(Worker.media_host).where(
            Worker.media_host.is_not(None), Worker.last_seen_at >= now - timedelta(seconds=grace_s)
        )
        released: dict[str, list[str]] = {}
        stranded: dict[str, list[str]] = {}  # submitted files: no page to download again
        with self.sessions.begin() as session:
            videos = session.scalars(
                select(Video)
                .where(
                    Video.state == VideoState.DOWNLOADED.value,
                    Video.media_host.is_not(None),
                    Video.media_host.not_in(alive),
                    (Video.lease_expires_at.is_(None)) | (Video.lease_expires_at < now),
                )
                .order_by(Video.id)
                .limit(500)
                .with_for_update(skip_locked=True)
            ).all()
            for video in videos:
                host = str(video.media_host)
                released.setdefault(host, []).append(video.youtube_id)
                gone = f"media store {host} has not been seen for {grace_s:g}s (host gone?)"
                video.last_error_kind = MEDIA_HOST_GONE
                video.attempts = 0
                video.next_attempt_at = video.lease_owner = video.lease_expires_at = None
                if video.source == VideoSource.SUBMITTED_FILE.value:
                    stranded.setdefault(host, []).append(video.youtube_id)
                    video.state = VideoState.FAILED.value
                    video.last_error = (
                        f"{gone}: this submitted file was only there: when that host is back, "
                        f"run `find-bot requeue {video.youtube_id}` on it, or submit the file "
                        "again on a live host"
                    )
                    continue
                video.state = VideoState.NEW.value
                video.last_error = f"{gone}: downloaded again where a worker is alive"
                video.media_path = video.media_host = video.media_size = None
        for host, ids in released.items():
            lost = len(stranded.get(host, ()))
            log_event(
                log,
                "queue.media_host_gone",
                logging.WARNING,
                media_host=host,
                videos=len(ids),
                submitted_files=lost,
                note="its downloaded videos go back to download"
                + (
                    ", its submitted files fail until it is back or they are submitted again"
                    if lost
                    else ""
                ),
            )
        return [i for ids in released.values() for i in ids]

    def heartbeat(self, job: Job) -> bool:
        """Extend the lease; ``False`` means it was lost (someone else owns the video now)."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Video)
                .where(Video.id == job.video_id, Video.lease_owner == job.worker)
                .values(lease_expires_at=utcnow() + timedelta(seconds=self.lease_s))
            )
            return result.rowcount == 1

    # ----------------------------------------------------------- results
    def complete(self, job: Job, apply: Apply) -> bool:
        """Write the result and release the lease atomically, if the lease is still ours."""
        with self.sessions.begin() as session:
            video = self._owned(session, job)
            if video is None:
                log_event(
                    log,
                    "queue.lease_lost",
                    logging.WARNING,
                    video=job.youtube_id,
                    stage=job.stage,
                    worker=job.worker,
                )
                return False
            apply(session, video)
            video.attempts = 0
            video.last_error = video.last_error_kind = video.next_attempt_at = None
            video.lease_owner = video.lease_expires_at = None
        log_event(log, "queue.completed", video=job.youtube_id, stage=job.stage)
        return True

    def fail(self, job: Job, failure: StageFailure) -> VideoState | None:
        """Record a failure: skip, retry later with backoff, or give up after max attempts."""
        with self.sessions.begin() as session:
            video = self._owned(session, job)
            if video is None:
                return None
            video.last_error = str(failure)[:2000]
            video.last_error_kind = failure.kind
            video.lease_owner = video.lease_expires_at = None
            if not failure.counts_as_attempt:
                video.attempts = max(0, video.attempts - 1)
            if failure.permanent:
                video.state = VideoState.SKIPPED.value
            elif video.attempts >= self.max_attempts:
                video.state = VideoState.FAILED.value
            else:
                video.next_attempt_at = utcnow() + timedelta(seconds=backoff_delay(video.attempts))
            state = VideoState(video.state)
        log_event(
            log,
            "queue.failed",
            logging.WARNING,
            video=job.youtube_id,
            stage=job.stage,
            kind=failure.kind,
            state=state.value,
            attempt=job.attempt,
            error=str(failure),
        )
        return state

    def release(self, job: Job) -> None:
        """Give the video back untouched (shutdown): the attempt is not counted against it."""
        with self.sessions.begin() as session:
            video = self._owned(session, job)
            if video is not None:
                video.attempts = max(0, video.attempts - 1)
                video.lease_owner = video.lease_expires_at = None
        log_event(log, "queue.released", video=job.youtube_id, stage=job.stage)

    @staticmethod
    def _owned(session: Session, job: Job) -> Video | None:
        return session.scalars(
            select(Video)
            .where(Video.id == job.video_id, Video.lease_owner == job.worker)
            .with_for_update()
        ).first()


class Heartbeat:
    """Extends a job's lease every third of the lease period while work runs."""

    def __init__(self, queue: WorkQueue, job: Job) -> None:
        self.queue, self.job = queue, job
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{job.youtube_id}", daemon=True
        )

    def _run(self) -> None:
        interval = max(1.0, self.queue.lease_s / 3)
        while not self._stop.wait(interval):
            try:
                if not self.queue.heartbeat(self.job):
                    self.lost.set()
                    return
            except Exception as exc:  # a DB hiccup: keep trying until the lease really expires
                outage = OUTAGE.failed(exc, where=self.job.worker)  # told once there
                log.log(
                    logging.DEBUG if outage else logging.WARNING,
                    "queue.heartbeat_failed",
                    extra={"video": self.job.youtube_id},
                    exc_info=not outage,
                )
                continue
            OUTAGE.succeeded()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


#: A stage handler does the work for one job and returns how to record the result.
StageHandler = Callable[[Job], Apply]


def run_one(queue: WorkQueue, stage: str, worker: str, handler: StageHandler) -> Job | None:
    """Claim one video for ``stage``, run ``handler`` on it, record the outcome.

    This is the one way every stage runs, in the daemon and in ``poll --once``.
    Returns the job processed, or ``None`` when the stage had nothing to do.
    Raises :class:`~bot.hostfault.HostFault` after postponing the video when the
    host, not the video, is at fault: the caller should wait before claiming again.
    """
    job = queue.claim(stage, worker)
    if job is None:
        return None
    failure: StageFailure | None = None
    kept = queue.kept_result(job)
    try:
        if kept is not None:  # done before; only its write failed (a host fault)
            log_event(log, "queue.kept_result", video=job.youtube_id, stage=stage)
            apply = kept
        else:
            with Heartbeat(queue, job):
                apply = handler(job)
    except StageFailure as stage_failure:
        failure = stage_failure
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit | ShutdownRequested):
            queue.release(job)
            raise
        if OUTAGE.failed(exc, where=worker):  # the database, not the video (a bank lookup)
            _give_back(queue, job)
            raise
        failure = host_failure(exc, stage, job)
        if failure is None:
            log.exception("stage crashed", extra={"video": job.youtube_id, "stage": stage})
            failure = StageFailure(
                f"internal error in {stage}: {exc!r}", permanent=False, kind="internal"
            )
    else:
        try:
            queue.complete(job, apply)
        except Exception as exc:
            if OUTAGE.failed(exc, where=worker):
                # The work is sound; the database went away before it was recorded. Keep
                # it for the retry here, and give the video back if the database allows.
                queue.keep_result(job, apply)
                _give_back(queue, job)
                raise
            # apply() or the commit failed: the transaction rolled back, so record a
            # failure instead of leaving the video leased (and the worker crashed) until expiry.
            failure = host_failure(exc, stage, job)
            if failure is not None:
                # The work is done and sound; the disk refused its files. Keep it, so
                # the retry writes it without scoring (or downloading) the video again.
                queue.keep_result(job, apply)
            else:
                log.exception(
                    "recording the result failed", extra={"video": job.youtube_id, "stage": stage}
                )
                failure = StageFailure(
                    f"internal error recording {stage} result: {exc!r}",
                    permanent=False,
                    kind="internal",
                )
    if failure is not None:
        queue.fail(job, failure)
        if failure.kind in HOST_FAULT_KINDS and not failure.counts_as_attempt:
            raise HostFault(str(failure), kind=failure.kind)
    return job


def _give_back(queue: WorkQueue, job: Job) -> None:
    """Release ``job`` after a database outage hit it, uncharged; if the database is still
    away, its lease expires instead (the caller re-raises the outage, told once)."""
    try:
        queue.release(job)
    except Exception as exc:
        if not OUTAGE.failed(exc, where=job.worker):
            log.warning("queue.release_failed", extra={"video": job.youtube_id}, exc_info=True)


def host_failure(exc: BaseException, stage: str, job: Job) -> StageFailure | None:
    """The postponement for an ``OSError`` that is the host's fault, else ``None``."""
    kind = fault_kind(exc)
    if kind is None:
        return None
    assert isinstance(exc, OSError)
    return StageFailure(
        f"{stage} of {job.youtube_id} postponed ({kind}): {describe(exc)}; the video is retried "
        "without using an attempt",
        permanent=False,
        kind=kind,
        counts_as_attempt=False,
    )
