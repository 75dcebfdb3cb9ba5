"""The worker role: threads that claim videos from the database queue and run a stage on them.

Each thread loops claim → work → record through :func:`bot.queue.run_one` until the
daemon's stop event is set. The lease owner is per thread (``host:pid/analyse-0``) so
two threads of one process can never complete each other's video. A host fault (a
read-only or full media disk, :mod:`bot.hostfault`) makes the thread back off instead
of failing video after video; any other error backs off too, and never kills it.  A
database outage is told once for the process (:mod:`bot.outage`), and its back-off ends
as soon as the database answers again.
The pool also keeps what the daemon reports: the jobs in flight (for shutdown and the
watchdog), counts of done and failed work, and the host faults being waited out.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.errors import StartupError
from bot.hostfault import HostFault
from bot.logs import log_event
from bot.outage import OUTAGE
from bot.queue import Job, ShutdownRequested, StageFailure, StageHandler, WorkQueue, run_one
from bot.settings import Settings

log = logging.getLogger("find.daemon")

STAGES = ("download", "analyse")

#: A worker that hit a host fault (read-only or full disk) waits this long, doubling
#: up to the maximum, before it claims again: every video would meet the same fault.
HOST_FAULT_BACKOFF_S = 5.0
HOST_FAULT_MAX_BACKOFF_S = 300.0
#: Any other error backs off doubling from 2 s up to this ...
ERROR_MAX_BACKOFF_S = 60.0
#: ... and a database outage up to this: the wait also ends as soon as the database is
#: back (bot.outage), so claiming resumes within a second or two of its return.
OUTAGE_MAX_BACKOFF_S = 15.0


class StageWorkers:
    """A pool of threads per stage, stopped by the shared ``stop`` event.

    ``overrides`` replaces the real stage handlers (``{"analyse": fn}``): the
    queue tests run real worker processes with a fast stub analyser through
    it, and embedders can plug in their own stages.
    """

    def __init__(
        self,
        settings_of: Callable[[], Settings],
        queue: WorkQueue,
        stop: threading.Event,
        *,
        overrides: Mapping[str, StageHandler] | None = None,
        idle_s: float,
        max_job_s: float,
    ) -> None:
        self._settings_of = settings_of
        self.queue = queue
        self.idle_s = idle_s
        self.max_job_s = max_job_s
        self._stop = stop
        self._overrides = dict(overrides or {})
        self._handlers: dict[str, StageHandler] = {}
        self._analyser: Any = None
        self._threads: list[threading.Thread] = []
        self._inflight: dict[str, tuple[Job, float]] = {}  # owner -> (job, monotonic start)
        self._inflight_lock = threading.Lock()
        self.processed: dict[str, int] = dict.fromkeys(STAGES, 0)
        self.failures: dict[str, int] = dict.fromkeys(STAGES, 0)
        #: stage -> the host fault its workers are backing off from (shown in status)
        self.host_faults: dict[str, HostFault] = {}
        #: Held shared by each analysis, exclusively by the scheduled adaptation: a new
        #: bundle is never built while this process analyses a video (docs/adaptation.md).
        self.model_gate = ModelGate()

    @property
    def bundle_id(self) -> str | None:
        """The bundle analysing now (it changes after `model adapt`/`rollback`)."""
        return None if self._analyser is None else self._analyser.bundle_id

    @property
    def bundle_version(self) -> str | None:
        return None if self._analyser is None else self._analyser.bundle_version

    @property
    def settings(self) -> Settings:
        """The settings in force now (the daemon's: a reload replaces them there)."""
        return self._settings_of()

    # ------------------------------------------------------------ start
    def build(self, counts: Mapping[str, int]) -> None:
        """Build the handlers of the stages that will run (loading the model bundle once)."""
        for stage, count in counts.items():
            if count > 0:
                self._handlers[stage] = self._build_handler(stage)

    def _build_handler(self, stage: str) -> StageHandler:
        if stage in self._overrides:
            return self._overrides[stage]
        if stage == "download":
            try:
                from bot.stages.download import make_download_handler
            except ImportError as exc:
                raise StartupError(f"the download stage is not available ({exc})") from None
            return make_download_handler(self.settings, stop=self._stop)
        from bot.stages.analyse import Analyser

        self._analyser = Analyser(self.settings)  # loads the bundle: BundleError stops start-up
        self._analyser.warn_if_bundle_changed()
        return self._analyser

    def start(self, counts: Mapping[str, int]) -> None:
        for stage, count in counts.items():
            for index in range(count):
                thread = threading.Thread(
                    target=self._loop,
                    args=(stage, index),
                    name=f"{stage}-{index}",
                    daemon=True,  # a wedged handler must not keep the process alive past grace
                )
                self._threads.append(thread)
                thread.start()

    def reload(self) -> None:
        """Hand the new settings to the running handlers (model settings are restart-only)."""
        settings = self.settings
        if self._analyser is not None:  # the webhook URL etc.
            self._analyser.settings = settings
        if "download" in self._handlers and "download" not in self._overrides:
            from bot.stages.download import make_download_handler

            self._handlers["download"] = make_download_handler(settings, stop=self._stop)

    # ------------------------------------------------------------ loop
    def _loop(self, stage: str, index: int) -> None:
        """Claim, work, record, repeat; sleep ``idle_s`` when the stage has nothing to do."""
        owner = f"{self.settings.worker_id}/{stage}-{index}"
        handler = self._tracked(stage, owner)
        errors = faults = 0
        while not self._stop.is_set():
            try:
                job = run_one(self.queue, stage, owner, handler)
                errors = 0
                OUTAGE.succeeded()
            except ShutdownRequested:  # stopping: the video was given back, nothing more starts
                break
            except HostFault as fault:  # the video is postponed; the disk needs the operator
                faults += 1
                delay = min(HOST_FAULT_MAX_BACKOFF_S, HOST_FAULT_BACKOFF_S * 2 ** (faults - 1))
                self.host_faults[stage] = fault
                log_event(
                    log,
                    "worker.host_fault",
                    logging.ERROR,
                    stage=stage,
                    worker=owner,
                    kind=fault.kind,
                    error=str(fault),
                    retry_in_s=delay,
                )
                self._stop.wait(delay)
                continue
            except Exception as exc:  # DB down, a bug in apply: back off, never die
                errors += 1
                if OUTAGE.failed(exc, where=owner):  # told once there; woken when it is back
                    delay = min(OUTAGE_MAX_BACKOFF_S, 2.0**errors)
                    log.debug(
                        "worker.error",
                        extra={"stage": stage, "worker": owner, "error": repr(exc)[:500]},
                    )
                    OUTAGE.wait(delay, self._stop)
                    continue
                delay = min(ERROR_MAX_BACKOFF_S, 2.0**errors)
                log_event(
                    log,
                    "worker.error",
                    logging.ERROR,
                    stage=stage,
                    worker=owner,
                    error=repr(exc)[:500],
                    retry_in_s=delay,
                )
                self._stop.wait(delay)
                continue
            if faults and job is not None:  # a job got through: the host is fine again
                faults = 0
                if self.host_faults.pop(stage, None) is not None:
                    log_event(log, "worker.host_fault_cleared", stage=stage, worker=owner)
            if job is None:
                self._stop.wait(self.idle_s)
                continue
            send = getattr(self._handlers.get(stage), "send_notifications", None)
            if send is not None:
                send()
        log_event(log, "worker.stopped", stage=stage, worker=owner)

    def _tracked(self, stage: str, owner: str) -> StageHandler:
        """Wrap the stage handler: remember the in-flight job (for shutdown) and count outcomes."""

        def handler(job: Job) -> Any:
            handler_fn = self._handlers[stage]
            with self._inflight_lock:
                self._inflight[owner] = (job, time.monotonic())
            started = time.perf_counter()
            gate = self.model_gate.shared() if stage == "analyse" else contextlib.nullcontext()
            try:
                with gate:
                    apply = handler_fn(job)
            except StageFailure as failure:
                self.failures[stage] += 1
                _observe(stage, "failed", failure.kind, started)
                raise
            except Exception:
                self.failures[stage] += 1
                _observe(stage, "failed", "internal", started)
                raise
            finally:
                with self._inflight_lock:
                    self._inflight.pop(owner, None)
            self.processed[stage] += 1
            _observe(stage, "ok", None, started)
            return apply

        return handler

    # ---------------------------------------------------------- report
    def inflight(self) -> list[Job]:
        with self._inflight_lock:
            return [job for job, _since in self._inflight.values()]

    def healthy(self) -> bool:
        """Every thread alive and no job running longer than ``max_job_s`` (logged if so).

        A handler stuck for ``max_job_s`` (a hung download, a deadlocked decoder)
        keeps its thread alive and its lease fresh forever; reporting it lets the
        daemon withhold the watchdog ping, so systemd restarts the service, the
        lease expires and the video is retried (and counted, so it cannot loop).
        """
        if any(not t.is_alive() for t in self._threads):
            return False
        now = time.monotonic()
        with self._inflight_lock:
            stuck = [job for job, since in self._inflight.values() if now - since > self.max_job_s]
        for job in stuck:
            log_event(
                log,
                "worker.stuck",
                logging.ERROR,
                video=job.youtube_id,
                stage=job.stage,
                worker=job.worker,
                limit_s=self.max_job_s,
            )
        return not stuck

    # ------------------------------------------------------------ stop
    def drain(self, grace_s: float, hurry: threading.Event) -> int:
        """Wait up to ``grace_s`` for the threads (less if ``hurry`` is set), then release
        the leases of what is still running; returns how many were released."""
        deadline = time.monotonic() + grace_s
        for thread in self._threads:
            while thread.is_alive() and not hurry.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                thread.join(min(0.2, left))
        released = 0
        for job in self.inflight():
            try:
                self.queue.release(job)
                released += 1
            except Exception as exc:  # the lease will simply expire instead
                if OUTAGE.failed(exc, where="shutdown"):
                    log.debug("daemon.release_failed", extra={"video": job.youtube_id})
                    continue
                log_event(
                    log,
                    "daemon.release_failed",
                    logging.WARNING,
                    video=job.youtube_id,
                    error=repr(exc)[:300],
                )
        return released


class ModelGate:
    """A readers-writer gate: analyses share it, an adaptation takes it alone.

    The adaptation waits for the videos in analysis to finish and holds new ones back
    while it runs (writer preference, so a steady stream of videos cannot starve it).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def shared(self):
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _observe(stage: str, outcome: str, kind: str | None, started: float) -> None:
    from bot.service import metrics

    metrics.observe_stage(stage, outcome, kind, time.perf_counter() - started)
