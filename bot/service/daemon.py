"""The long-running service behind ``find-bot run``: scheduler, stage workers, signals.

One process plays one *role*:

* ``scheduler`` runs the periodic jobs with APScheduler: a full discover pass on
  the poll interval, a light one every minute (the channel feeds that are due,
  owed playlist reads, due lookups: :func:`bot.stages.discover.tick_once`), and retention
  cleanup every hour.  Several may run: one holds the
  scheduler lock (:mod:`bot.service.leader`) and is active, the others stand by.
* ``worker`` runs a pool of threads per stage (download, analyse) that pull
  work from the database queue (:mod:`bot.queue`) until told to stop.  Run as
  many as you like, on as many machines as share the database.
* ``all`` (the default) is both, for a single-machine install.

Everything the workers know comes from the database, so a process can die at
any moment (``kill -9``, OOM, power cut) and the others carry on: a claimed
video's lease expires and it is taken again.

Signals: SIGTERM/SIGINT stop claiming, give in-flight work ``shutdown_grace_s``
to finish, release the leases of what is still running and return 0.  SIGHUP
re-reads the settings file; an invalid, missing or empty file, or one that
would empty the watchlist without ``FIND_CHANNELS=none`` (:mod:`bot.service.reload`),
is rejected with one log line and the old settings stay in force.  A worker
that meets a host fault (:mod:`bot.hostfault`) backs off instead of failing
video after video.  Under systemd the daemon reports READY,
STATUS, RELOADING/STOPPING and watchdog pings (:mod:`bot.service.systemd`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.db import session_factory
from bot.errors import FindError, SettingsError
from bot.hostfault import HostFault, check_writable
from bot.logs import configure_logging, log_event
from bot.queue import Job, StageFailure, StageHandler, WorkQueue, run_one
from bot.service import systemd
from bot.service.reload import check_watchlist_kept, read_settings_file
from bot.settings import Settings, settings_file
from bot.store import Worker, utcnow

log = logging.getLogger("find.daemon")

ROLES = ("all", "worker", "scheduler")
STAGES = ("download", "analyse")

#: Settings a running process cannot change: they size pools, open databases or
#: load models.  A reload that changes them logs a warning and keeps the old value.
RESTART_ONLY = (
    "data_dir",
    "database_url",
    "media_dir",
    "download_workers",
    "analyse_workers",
    "worker_id",
    "lease_s",
    "max_attempts",
    "model_bundle",
    "frames_per_video",
    "score_threshold",
    "metrics_port",
    "shutdown_grace_s",
)

#: How often the process refreshes its ``workers`` row and its systemd STATUS line.
HEARTBEAT_S = 10.0
#: A download or analysis running longer than this is considered wedged (see ``healthy``).
MAX_JOB_S = 3 * 3600
#: How often the scheduler role runs retention cleanup.
RETENTION_INTERVAL_S = 3600
#: How often the scheduler role reads the channel feeds that are due (each channel has
#: its own jittered time; this is only how finely those times are honoured).
TICK_S = 60
#: A worker that hit a host fault (read-only or full disk) waits this long, doubling
#: up to the maximum, before it claims again: every video would meet the same fault.
HOST_FAULT_BACKOFF_S = 5.0
HOST_FAULT_MAX_BACKOFF_S = 300.0

#: Builds a stage handler for one worker thread (the analyser keeps per-thread state).
HandlerFactory = Callable[[Settings], StageHandler]


class StartupError(FindError):
    """The daemon cannot start (no bundle, bad role, ...): one line, then a non-zero exit."""


class Daemon:
    """A scheduler and/or a pool of stage workers, stopped by :meth:`request_stop`.

    ``handlers`` replaces the real stage handlers (``{"analyse": fn}``): the
    queue tests run real worker processes with a fast stub analyser through
    it, and embedders can plug in their own stages.  ``env_file`` is what
    SIGHUP re-reads.
    """

    def __init__(
        self,
        settings: Settings,
        role: str = "all",
        *,
        handlers: Mapping[str, StageHandler] | None = None,
        env_file: str | Path | None = None,
        idle_s: float = 2.0,
        grace_s: float | None = None,
        max_job_s: float = MAX_JOB_S,
        heartbeat_s: float = HEARTBEAT_S,
        settings_loader: Callable[[], Settings] | None = None,
    ) -> None:
        if role not in ROLES:
            raise StartupError(f"--role {role!r} is not one of {', '.join(ROLES)}")
        self.settings = settings
        self.role = role
        self.env_file = env_file
        self.idle_s = idle_s
        self.max_job_s = max_job_s
        self.heartbeat_s = heartbeat_s
        self._lock: Any = None  # SchedulerLock, for the scheduler role
        self.active_scheduler = False
        self.grace_s = float(
            grace_s if grace_s is not None else getattr(settings, "shutdown_grace_s", 30)
        )
        # The file is resolved once: a reload re-reads this very file and notices if it is gone.
        self.settings_path = settings_file(env_file)
        self._load = settings_loader or (lambda: read_settings_file(self.settings_path))
        self._handler_overrides = dict(handlers or {})
        self.queue = WorkQueue(
            session_factory(settings), lease_s=settings.lease_s, max_attempts=settings.max_attempts
        )
        self.hostname = socket.gethostname()
        self._stop = threading.Event()  # stop claiming; worker loops exit
        self._wake = threading.Event()  # wakes the main loop (signals)
        self._hurry = threading.Event()  # a second stop signal: release in-flight work now
        self._reload_requested = False
        self._signals_installed = False
        self._threads: list[threading.Thread] = []
        self._inflight: dict[str, tuple[Job, float]] = {}  # owner -> (job, monotonic start)
        self._inflight_lock = threading.Lock()
        self._handlers: dict[str, StageHandler] = {}
        self._scheduler: Any = None
        #: One discover pass at a time (full or tick), and one feed reader across them
        #: (its HTTP pool and its 429 pause outlive a pass).
        self._discover_lock = threading.Lock()
        self._feed_reader: Any = None
        self._analyser: Any = None
        self._metrics: Any = None
        self.processed: dict[str, int] = dict.fromkeys(STAGES, 0)
        self.failures: dict[str, int] = dict.fromkeys(STAGES, 0)
        #: stage -> the host fault its workers are backing off from (shown in status)
        self.host_faults: dict[str, HostFault] = {}
        self.last_poll: str | None = None
        self.bundle_id: str | None = None
        self.bundle_version: str | None = None

    # ------------------------------------------------------------ roles
    @property
    def runs_workers(self) -> bool:
        return self.role in ("all", "worker")

    @property
    def runs_scheduler(self) -> bool:
        return self.role in ("all", "scheduler")

    def worker_counts(self) -> dict[str, int]:
        if not self.runs_workers:
            return dict.fromkeys(STAGES, 0)
        return {
            "download": self.settings.download_workers,
            "analyse": self.settings.analyse_workers,
        }

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Build handlers (loading the model bundle once), start scheduler and worker threads.

        Anything that cannot work (missing bundle, missing stage module) fails
        here, before READY, with one line: systemd then shows the unit failed
        instead of a service that looks up but never analyses anything.
        """
        counts = self.worker_counts()
        try:
            check_writable(self.settings.data_dir, "FIND_DATA_DIR")
            if any(counts.values()):  # downloads and crops go there
                check_writable(self.settings.media_dir, "FIND_MEDIA_DIR")
        except SettingsError as exc:
            raise StartupError(str(exc)) from None
        for stage, count in counts.items():
            if count > 0:
                self._handlers[stage] = self._build_handler(stage)
        self._register_worker("starting")
        if self.settings.metrics_port and self._metrics is None:
            from bot.service.metrics import start_metrics_server

            try:
                self._metrics = start_metrics_server(self.settings)
            except OSError as exc:
                raise StartupError(
                    f"cannot serve metrics on 127.0.0.1:{self.settings.metrics_port} ({exc}): "
                    "pick another FIND_METRICS_PORT or unset it"
                ) from None
        if self.runs_scheduler:
            from bot.service.leader import SchedulerLock

            self._lock = SchedulerLock(self.settings)
            self.active_scheduler = self._lock.acquire()
            if self.active_scheduler:
                self._sync_watchlist(at_start=True)
            else:
                log_event(log, "scheduler.standby", note="another process runs discover; waiting")
            self._start_scheduler(paused=not self.active_scheduler)
        for stage, count in counts.items():
            for index in range(count):
                thread = threading.Thread(
                    target=self._worker_loop,
                    args=(stage, index),
                    name=f"{stage}-{index}",
                    daemon=True,  # a wedged handler must not keep the process alive past grace
                )
                self._threads.append(thread)
                thread.start()
        log_event(
            log,
            "daemon.started",
            role=self.role,
            worker=self.settings.worker_id,
            download_workers=counts["download"],
            analyse_workers=counts["analyse"],
            bundle=self.bundle_id,
            bundle_version=self.bundle_version,
            lease_s=self.settings.lease_s,
            scheduler=("active" if self.active_scheduler else "standby")
            if self.runs_scheduler
            else "off",
        )

    def _build_handler(self, stage: str) -> StageHandler:
        if stage in self._handler_overrides:
            return self._handler_overrides[stage]
        if stage == "download":
            try:
                from bot.stages.download import make_download_handler
            except ImportError as exc:
                raise StartupError(f"the download stage is not available ({exc})") from None
            return make_download_handler(self.settings)
        from bot.stages.analyse import Analyser

        self._analyser = Analyser(self.settings)  # loads the bundle: BundleError stops start-up
        self.bundle_id = self._analyser.bundle_id
        self.bundle_version = self._analyser.bundle_version
        self._analyser.warn_if_bundle_changed()
        return self._analyser

    def _start_scheduler(self, paused: bool = False) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
            timezone="UTC",
        )
        now = utcnow()
        scheduler.add_job(
            self.run_discover,
            "interval",
            seconds=self.settings.poll_interval_s,
            id="discover",
            next_run_time=now,
        )
        scheduler.add_job(
            self.run_tick,
            "interval",
            seconds=TICK_S,
            id="tick",
            next_run_time=now + timedelta(seconds=TICK_S),
        )
        scheduler.add_job(
            self.run_retention,
            "interval",
            seconds=RETENTION_INTERVAL_S,
            id="retention",
            next_run_time=now + timedelta(seconds=30),
        )
        scheduler.start(paused=paused)
        self._scheduler = scheduler

    # ---------------------------------------------------------- workers
    def _worker_loop(self, stage: str, index: int) -> None:
        """Claim, work, record, repeat; sleep ``idle_s`` when the stage has nothing to do.

        The lease owner is per thread (``host:pid/analyse-0``) so two threads of
        one process can never complete each other's video.
        """
        owner = f"{self.settings.worker_id}/{stage}-{index}"
        handler = self._tracked(stage, owner)
        errors = faults = 0
        while not self._stop.is_set():
            try:
                job = run_one(self.queue, stage, owner, handler)
                errors = 0
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
                delay = min(60.0, 2.0**errors)
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
            try:
                apply = handler_fn(job)
            except StageFailure as failure:
                self.failures[stage] += 1
                self._observe(stage, "failed", failure.kind, started)
                raise
            except Exception:
                self.failures[stage] += 1
                self._observe(stage, "failed", "internal", started)
                raise
            finally:
                with self._inflight_lock:
                    self._inflight.pop(owner, None)
            self.processed[stage] += 1
            self._observe(stage, "ok", None, started)
            return apply

        return handler

    def _observe(self, stage: str, outcome: str, kind: str | None, started: float) -> None:
        from bot.service import metrics

        metrics.observe_stage(stage, outcome, kind, time.perf_counter() - started)

    # -------------------------------------------------------- scheduled
    def run_discover(self) -> None:
        """One discover pass with the settings in force now (SIGHUP may have changed them)."""
        settings = self.settings
        try:
            from bot.stages.discover import discover_once
        except ImportError as exc:
            log_event(log, "discover.unavailable", logging.ERROR, error=str(exc))
            return
        started = utcnow()
        try:
            with self._discover_lock:
                result = discover_once(settings, reader=self._reader(settings))
        except FindError as exc:
            log_event(log, "discover.failed", logging.ERROR, error=str(exc))
            return
        except Exception as exc:
            log.exception("discover.crashed", extra={"error": repr(exc)[:500]})
            return
        finally:
            if self.settings is not settings:
                self._after_stale_pass()
        self.last_poll = started.isoformat(timespec="seconds")  # discover logs its own summary
        resume_at = getattr(result, "resume_at", None)
        if getattr(result, "quota_exhausted", False) and resume_at and self._scheduler:
            # Polling again before the quota resets would only burn the log: wait for it.
            job = self._scheduler.get_job("discover")
            if job is not None and (job.next_run_time is None or job.next_run_time < resume_at):
                self._scheduler.modify_job("discover", next_run_time=resume_at)
                log_event(log, "discover.paused_until_quota_reset", resume_at=resume_at.isoformat())

    def run_tick(self) -> None:
        """The light pass between full ones; skipped while a full pass runs (it reads feeds too)."""
        settings = self.settings
        if not self._discover_lock.acquire(blocking=False):
            return
        try:
            from bot.stages.discover import tick_once

            tick_once(settings, reader=self._reader(settings))
        except FindError as exc:
            log_event(log, "discover.tick_failed", logging.ERROR, error=str(exc))
        except Exception as exc:
            log.exception("discover.tick_crashed", extra={"error": repr(exc)[:500]})
        finally:
            self._discover_lock.release()

    def _reader(self, settings: Settings) -> Any:
        """The shared feed reader for these settings (a reload may change the feed URL)."""
        if not settings.channel_feeds:
            return None
        reader = self._feed_reader
        if reader is None or reader.settings.feed_url_template != settings.feed_url_template:
            from bot.stages.discover.feeds import FeedReader

            if reader is not None:
                reader.close()
            reader = self._feed_reader = FeedReader(settings)
        reader.settings = settings
        return reader

    def _after_stale_pass(self) -> None:
        """A reload landed while a discover pass ran with the old settings.

        That pass synced the *old* watchlist into the database (undoing the
        reload's sync) and the reload's "poll the new sources now" was skipped
        because a pass was running.  Sync the current settings again and run
        a fresh pass in a moment (not at once: this pass still counts as running).
        """
        self._sync_watchlist()
        if self._scheduler is not None and not self._stop.is_set():
            self._scheduler.modify_job("discover", next_run_time=utcnow() + timedelta(seconds=2))

    def run_retention(self) -> None:
        from bot.stages.retention import run_retention

        try:
            report = run_retention(self.settings)
        except Exception as exc:
            log.exception("retention.crashed", extra={"error": repr(exc)[:500]})
            return
        log_event(log, "retention.done", **report.as_fields())
        try:  # temp folders of downloads that died with their worker
            from bot.stages.download import clean_partials

            clean_partials(self.settings.media_dir)
        except Exception as exc:
            log_event(log, "retention.partials_failed", logging.WARNING, error=repr(exc)[:300])

    # ----------------------------------------------------------- reload
    def reload(self) -> bool:
        """Re-read the settings; keep the old ones (and say why) when the new ones are invalid."""
        systemd.reloading()
        try:
            try:
                new = self._load()
                check_watchlist_kept(self.settings, new, self.settings_path)
            except SettingsError as exc:
                log_event(
                    log,
                    "config.reload_rejected",
                    logging.ERROR,
                    error=str(exc),
                    keeping="previous settings",
                )
                return False
            old = self.settings
            frozen = {
                name: getattr(old, name)
                for name in RESTART_ONLY
                if hasattr(old, name) and getattr(new, name) != getattr(old, name)
            }
            for name in frozen:
                log_event(
                    log,
                    "config.needs_restart",
                    logging.WARNING,
                    setting=name,
                    note="changed in the file; takes effect after a restart",
                )
            if frozen:
                new = dataclasses.replace(new, **frozen)
            added_channels = [c for c in new.channels if c not in old.channels]
            removed_channels = [c for c in old.channels if c not in new.channels]
            added_queries = [q for q in new.search_queries if q not in old.search_queries]
            removed_queries = [q for q in old.search_queries if q not in new.search_queries]
            self.settings = new
            if (new.log_level, new.log_format) != (old.log_level, old.log_format):
                configure_logging(new.log_level, new.log_format)
            for channel in added_channels:
                log_event(log, "config.channel_added", channel=channel)
            for channel in removed_channels:
                log_event(log, "config.channel_removed", channel=channel)
            for query in added_queries:
                log_event(log, "config.query_added", query=query)
            for query in removed_queries:
                log_event(log, "config.query_removed", query=query)
            self._sync_watchlist()
            if self._analyser is not None:  # webhook URL etc.; model settings are frozen above
                self._analyser.settings = new
            if "download" in self._handlers and "download" not in self._handler_overrides:
                from bot.stages.download import make_download_handler

                self._handlers["download"] = make_download_handler(new)
            if self._scheduler is not None:
                if new.poll_interval_s != old.poll_interval_s:
                    self._scheduler.reschedule_job(
                        "discover", trigger="interval", seconds=new.poll_interval_s
                    )
                if added_channels or added_queries:  # look at the new sources now, not in 15 min
                    self._scheduler.modify_job("discover", next_run_time=utcnow())
                if new.quota_daily_budget > old.quota_daily_budget:
                    # A pass paused until the quota reset may go on now with the larger budget
                    # (bot.youtube.quota: it also reopens a day closed by YouTube's quotaExceeded).
                    self._scheduler.modify_job("discover", next_run_time=utcnow())
                    log_event(
                        log,
                        "discover.resumed",
                        reason="quota budget raised",
                        budget=new.quota_daily_budget,
                    )
            log_event(
                log,
                "config.reloaded",
                channels=len(new.channels),
                queries=len(new.search_queries),
                added=len(added_channels) + len(added_queries),
                removed=len(removed_channels) + len(removed_queries),
            )
            return True
        finally:
            systemd.ready(self.status_line())

    def _sync_watchlist(self, *, at_start: bool = False) -> None:
        """Mirror the configured channels/queries into the database now (discover also does it).

        Only the active scheduler does this: a worker's or a standby's settings
        file may list no channels at all, and must not deactivate the real list.
        At start, settings that would empty a watched database (a restart without
        its settings file) stop the daemon with one line instead
        (:func:`bot.stages.discover.watchlist.check_not_emptied`).
        """
        if not (self.runs_scheduler and self.active_scheduler):
            return
        try:
            from bot.stages.discover.watchlist import sync_watchlist
        except ImportError:
            return
        from bot.db import session_scope

        try:
            with session_scope(self.settings) as session:
                change = sync_watchlist(self.settings, session)
            log_event(log, "config.watchlist", change=str(change))
        except SettingsError as exc:
            if at_start:
                raise StartupError(str(exc)) from None
            log_event(log, "config.sync_refused", logging.ERROR, error=str(exc))
        except Exception as exc:
            log_event(log, "config.sync_failed", logging.ERROR, error=repr(exc)[:500])

    # ------------------------------------------------------- main loop
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads; the handlers only set flags for the main loop."""

        def stop(signum: int, _frame: object) -> None:
            if self._stop.is_set():  # a second Ctrl-C / SIGTERM: skip the rest of the grace
                log_event(log, "daemon.signal", signal=signal.Signals(signum).name, action="hurry")
                self._hurry.set()
                return
            log_event(log, "daemon.signal", signal=signal.Signals(signum).name, action="stop")
            self.request_stop()

        def hup(_signum: int, _frame: object) -> None:
            self._reload_requested = True
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)
        self._signals_installed = True

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._wake.set()

    def run(self) -> int:
        """Start, serve until stopped, shut down; the exit code for the process (0 = clean)."""
        try:
            self.start()
        except Exception as exc:  # leave a trace for `find-bot status`, then fail the process
            self._register_worker(f"failed to start: {exc}", quiet=True)
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
            if self._lock is not None:  # let a standby (or the next start) take over
                self._lock.release()
            raise
        systemd.ready(self.status_line())
        watchdog = systemd.watchdog_interval_s()
        tick = min(self.heartbeat_s, watchdog) if watchdog else self.heartbeat_s
        next_heartbeat = 0.0
        while not self._stop.is_set():
            if self._reload_requested:
                self._reload_requested = False
                log_event(log, "daemon.signal", signal="SIGHUP", action="reload")
                self.reload()
            if watchdog and self.healthy():
                systemd.watchdog_ping()
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + self.heartbeat_s
                self._check_leadership()
                self._heartbeat()
            self._wake.wait(tick)
            self._wake.clear()
        return self.shutdown()

    def healthy(self) -> bool:
        """What the watchdog vouches for: threads alive, scheduler running, no job wedged.

        A handler stuck for ``max_job_s`` (a hung download, a deadlocked decoder)
        keeps its thread alive and its lease fresh forever; withholding the
        watchdog ping lets systemd restart the service, after which the lease
        expires and the video is retried (and counted, so it cannot loop).
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
        if stuck:
            return False
        return self._scheduler is None or bool(self._scheduler.running)

    def shutdown(self) -> int:
        """Stop claiming, wait up to the grace period, release what is still running."""
        self._stop.set()
        systemd.stopping()
        busy = self.inflight()
        log_event(log, "daemon.stopping", in_flight=len(busy), grace_s=self.grace_s)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._lock is not None:
            self._lock.release()
        deadline = time.monotonic() + self.grace_s
        for thread in self._threads:
            while thread.is_alive() and not self._hurry.is_set():
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
                log_event(
                    log,
                    "daemon.release_failed",
                    logging.WARNING,
                    video=job.youtube_id,
                    error=repr(exc)[:300],
                )
        self._register_worker("stopped")
        if self._metrics is not None:
            self._metrics.shutdown()
        if self._feed_reader is not None:
            self._feed_reader.close()
        if self._signals_installed:
            # Everything is committed or released: a signal arriving while the process
            # exits (a second `systemctl stop`, Ctrl-C again) must not turn exit 0 into a
            # death by signal.  Python would restore the default (fatal) handlers itself.
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
        log_event(log, "daemon.stopped", released=released, processed=sum(self.processed.values()))
        return 0

    def inflight(self) -> list[Job]:
        with self._inflight_lock:
            return [job for job, _since in self._inflight.values()]

    # ---------------------------------------------------------- status
    def status_line(self) -> str:
        counts = self.worker_counts()
        parts = [f"role {self.role}"]
        for stage, fault in sorted(self.host_faults.items()):
            parts.append(f"HOST FAULT in {stage} ({fault.kind}), see find-bot status")
        if self.runs_workers:
            parts.append(
                f"{counts['download']} download + {counts['analyse']} analyse workers, "
                f"{len(self.inflight())} busy, done {self.processed['download']} downloads "
                f"{self.processed['analyse']} analyses, {sum(self.failures.values())} failures"
            )
        if self.runs_scheduler:
            state = "active" if self.active_scheduler else "standby"
            parts.append(f"scheduler {state}, last poll {self.last_poll or 'never'}")
        if self.bundle_id:
            parts.append(f"model {self.bundle_id} {self.bundle_version}")
        return "; ".join(parts)

    def _check_leadership(self) -> None:
        """Standby schedulers try to take over; the active one verifies it still holds the lock."""
        if self._lock is None or self._scheduler is None:
            return
        if self.active_scheduler and not self._lock.held():
            self.active_scheduler = False
            self._scheduler.pause()
            log_event(log, "scheduler.standby", logging.WARNING, note="lost the scheduler lock")
        elif not self.active_scheduler and self._lock.acquire():
            self.active_scheduler = True
            self._sync_watchlist()
            self._scheduler.resume()
            self._scheduler.modify_job("discover", next_run_time=utcnow())
            log_event(log, "scheduler.active", note="took over discover and retention")

    def _heartbeat(self) -> None:
        line = self.status_line()
        systemd.status(line)
        self._register_worker(line)

    def _register_worker(self, status: str, *, quiet: bool = False) -> None:
        """Upsert this process's ``workers`` row (what ``find-bot status`` lists)."""
        try:
            with self.queue.sessions.begin() as session:
                row = session.get(Worker, self.settings.worker_id)
                if row is None:
                    row = Worker(
                        id=self.settings.worker_id,
                        role=self.role,
                        hostname=self.hostname,
                        pid=os.getpid(),
                        started_at=utcnow(),
                    )
                    session.add(row)
                row.role = self.role
                row.bundle_id = self.bundle_id
                row.bundle_version = self.bundle_version
                row.last_seen_at = utcnow()
                row.status = status[:300]
        except Exception as exc:  # status is informative; never stop work over it
            if not quiet:  # (quiet: start-up already failed with its own one line)
                log_event(log, "daemon.heartbeat_failed", logging.WARNING, error=repr(exc)[:300])
