"""The long-running service behind ``find-bot run``: scheduler, stage workers, signals.

One process plays one *role*:

* ``scheduler`` runs the periodic jobs (:mod:`bot.service.periodic`): a full
  discover pass on the poll interval, a light one every minute and retention
  cleanup every hour.  Several may run: one holds the scheduler lock
  (:mod:`bot.service.leader`) and is active, the others stand by.
* ``worker`` runs a pool of threads per stage (:mod:`bot.service.workers`) that
  pull work from the database queue (:mod:`bot.queue`) until told to stop.  Run
  as many as you like, on as many machines as share the database.
* ``all`` (the default) is both, for a single-machine install.

This module is the process around them: start-up checks, the main loop,
signals and reloads, the watchdog, the ``workers`` row and a clean shutdown.

Everything the workers know comes from the database, so a process can die at
any moment (``kill -9``, OOM, power cut) and the others carry on: a claimed
video's lease expires and it is taken again.

Signals: SIGTERM/SIGINT stop claiming, give in-flight work ``shutdown_grace_s``
to finish, release the leases of what is still running and return 0.  SIGHUP
re-reads the settings file; an invalid, missing or empty file, one that
would empty the watchlist without ``FIND_CHANNELS=none``, or one that no longer
sets a setting in force (:mod:`bot.service.reload`), is rejected with one log
line and the old settings stay in force.  A worker that meets a host fault
(:mod:`bot.hostfault`) backs off instead of failing video after video.  A database
outage is logged once when it starts and once when it ends, with its length
(:mod:`bot.outage`), and the workers claim again within seconds of its end.  Under
systemd the daemon reports READY, STATUS, RELOADING/STOPPING and watchdog pings
(:mod:`bot.service.systemd`).
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
from pathlib import Path
from typing import Any

from bot.db import session_factory
from bot.errors import SettingsError, StartupError
from bot.hostfault import check_writable
from bot.logs import configure_logging, log_event
from bot.mediahost import media_host_id
from bot.outage import OUTAGE
from bot.queue import Job, StageHandler, WorkQueue
from bot.service import systemd
from bot.service.periodic import RETENTION_INTERVAL_S, PeriodicJobs
from bot.service.reload import (
    check_nothing_dropped,
    check_watchlist_kept,
    read_settings_file,
)
from bot.service.workers import STAGES, StageWorkers
from bot.settings import Settings, settings_file
from bot.store import Worker, utcnow

log = logging.getLogger("find.daemon")

ROLES = ("all", "worker", "scheduler")

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
    "adapt_interval_s",
    "frames_per_video",
    "score_threshold",
    "metrics_port",
    "shutdown_grace_s",
    "media_shared",
)

#: How often the process refreshes its ``workers`` row and its systemd STATUS line.
HEARTBEAT_S = 10.0
#: A download or analysis running longer than this is considered wedged (see ``healthy``).
MAX_JOB_S = 3 * 3600

__all__ = ["ROLES", "STAGES", "Daemon", "StartupError"]


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
        store_clean_s: float = RETENTION_INTERVAL_S,
        settings_loader: Callable[[], Settings] | None = None,
    ) -> None:
        if role not in ROLES:
            raise StartupError(f"--role {role!r} is not one of {', '.join(ROLES)}")
        self.settings = settings
        self.role = role
        self.env_file = env_file
        self.heartbeat_s = heartbeat_s
        #: How often a process with workers cleans its media store (when it is not the active
        #: scheduler); the first run is at start.  Infinite until start() knows it has workers.
        self.store_clean_s = store_clean_s
        self._next_store_clean = float("inf")
        self.grace_s = float(
            grace_s if grace_s is not None else getattr(settings, "shutdown_grace_s", 30)
        )
        # The file is resolved once: a reload re-reads this very file and notices if it is gone.
        self.settings_path = settings_file(env_file)
        self._load = settings_loader or (lambda: read_settings_file(self.settings_path))
        self.queue = WorkQueue(
            session_factory(settings), lease_s=settings.lease_s, max_attempts=settings.max_attempts
        )
        self.hostname = socket.gethostname()
        self._stop = threading.Event()  # stop claiming; worker loops exit
        self._wake = threading.Event()  # wakes the main loop (signals)
        self._hurry = threading.Event()  # a second stop signal: release in-flight work now
        self._reload_requested = False
        self._signals_installed = False
        self._metrics: Any = None
        # Both parts read the settings through the daemon: a reload replaces them in one place.
        self.workers = StageWorkers(
            self._current_settings,
            self.queue,
            self._stop,
            overrides=handlers,
            idle_s=idle_s,
            max_job_s=max_job_s,
        )
        #: The scheduler role's jobs; None in a worker-only process.
        self.periodic = (
            PeriodicJobs(self._current_settings, self._stop, model_gate=self.workers.model_gate)
            if self.runs_scheduler
            else None
        )

    def _current_settings(self) -> Settings:
        return self.settings

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
                self.queue.media_host = media_host_id(self.settings.media_dir)
                self.queue.media_shared = self.settings.media_shared
        except SettingsError as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(
                f"FIND_MEDIA_DIR={self.settings.media_dir}: cannot read or make its media store "
                f"id ({exc.strerror or exc}); check the directory's permissions"
            ) from None
        self.workers.build(counts)
        OUTAGE.probe_with(self._probe_database)  # notices the database's return in seconds
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
        if self.periodic is not None:
            self.periodic.start()
            self._say_if_watching_nothing()
        self.workers.start(counts)
        if any(counts.values()):
            self._clean_store_soon()
            self._next_store_clean = time.monotonic() + self.store_clean_s
        log_event(
            log,
            "daemon.started",
            role=self.role,
            worker=self.settings.worker_id,
            download_workers=counts["download"],
            analyse_workers=counts["analyse"],
            bundle=self.workers.bundle_id,
            bundle_version=self.workers.bundle_version,
            lease_s=self.settings.lease_s,
            scheduler=self._scheduler_state(),
        )

    def _clean_store_soon(self) -> None:
        """Clean this host's media store (bot.stages.retention.clean_store: its files by the
        media policy, crops no analysis records) in the background.  Retention runs only on
        the active scheduler's host, and each worker host has its own store, so every
        process with workers runs this at start and hourly while it is not the active
        scheduler (whose retention pass cleans its own store)."""

        def clean() -> None:
            from bot.stages.retention import clean_store

            try:
                report = clean_store(self.settings)
            except Exception as exc:  # the next hour, or the next start, tries again
                if not OUTAGE.failed(exc, where="media store cleaning"):
                    log_event(
                        log, "retention.store_clean_failed", logging.WARNING, error=repr(exc)[:300]
                    )
                return
            fields = report.as_fields()
            del fields["rows_deleted"], fields["ledger_deleted"]  # rows are the scheduler's
            log_event(log, "retention.store_cleaned", **fields)

        threading.Thread(target=clean, name="store-clean", daemon=True).start()

    def _say_if_watching_nothing(self) -> None:
        """One line when the scheduler has no channel and no query: it would idle silently."""
        if not (self.settings.channels or self.settings.search_queries):
            from bot.stages.discover.watchlist import EMPTY_WATCHLIST

            log_event(log, "config.watchlist_empty", logging.WARNING, note=EMPTY_WATCHLIST)

    # ----------------------------------------------------------- reload
    def reload(self) -> bool:
        """Re-read the settings; keep the old ones (and say why) when the new ones are invalid."""
        systemd.reloading()
        try:
            try:
                new = self._load()
                check_watchlist_kept(self.settings, new, self.settings_path)
                check_nothing_dropped(self.settings, new, self.settings_path)
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
            self.workers.reload()  # model settings are frozen above
            if self.periodic is not None:
                self.periodic.reload(old, new, new_sources=bool(added_channels or added_queries))
                if old.channels or old.search_queries:
                    self._say_if_watching_nothing()
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
            if self.periodic is not None:  # let a standby (or the next start) take over
                self.periodic.stop()
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
                if self.periodic is not None:
                    self.periodic.check_leadership()
                self._heartbeat()
            if time.monotonic() >= self._next_store_clean:
                self._next_store_clean = time.monotonic() + self.store_clean_s
                if self._scheduler_state() != "active":
                    self._clean_store_soon()
            self._wake.wait(tick)
            self._wake.clear()
        return self.shutdown()

    def healthy(self) -> bool:
        """What the watchdog vouches for: worker threads alive, none wedged, scheduler running."""
        return self.workers.healthy() and (self.periodic is None or self.periodic.running)

    def shutdown(self) -> int:
        """Stop claiming, wait up to the grace period, release what is still running."""
        self._stop.set()
        systemd.stopping()
        busy = self.inflight()
        log_event(log, "daemon.stopping", in_flight=len(busy), grace_s=self.grace_s)
        if self.periodic is not None:
            self.periodic.stop()
        released = self.workers.drain(self.grace_s, self._hurry)
        OUTAGE.probe_with(None)
        self._register_worker("stopped")
        if self._metrics is not None:
            self._metrics.shutdown()
        if self.periodic is not None:
            self.periodic.close()
        if self._signals_installed:
            # Everything is committed or released: a signal arriving while the process
            # exits (a second `systemctl stop`, Ctrl-C again) must not turn exit 0 into a
            # death by signal.  Python would restore the default (fatal) handlers itself.
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
        log_event(
            log, "daemon.stopped", released=released, processed=sum(self.workers.processed.values())
        )
        return 0

    def inflight(self) -> list[Job]:
        return self.workers.inflight()

    # ---------------------------------------------------------- status
    def status_line(self) -> str:
        counts = self.worker_counts()
        parts = [f"role {self.role}"]
        workers = self.workers
        for stage, fault in sorted(workers.host_faults.items()):
            parts.append(f"HOST FAULT in {stage} ({fault.kind}), see find-bot status")
        if self.runs_workers:
            parts.append(
                f"{counts['download']} download + {counts['analyse']} analyse workers, "
                f"{len(self.inflight())} busy, done {workers.processed['download']} downloads "
                f"{workers.processed['analyse']} analyses, "
                f"{sum(workers.failures.values())} failures"
            )
        if self.periodic is not None:
            last_poll = self.periodic.last_poll or "never"
            parts.append(f"scheduler {self._scheduler_state()}, last poll {last_poll}")
        if workers.bundle_id:
            parts.append(f"model {workers.bundle_id} {workers.bundle_version}")
        return "; ".join(parts)

    def _scheduler_state(self) -> str:
        if self.periodic is None:
            return "off"
        return "active" if self.periodic.active else "standby"

    def _heartbeat(self) -> None:
        line = self.status_line()
        systemd.status(line)
        self._register_worker(line)
        try:  # a host that is gone leaves its downloads to the living (bot.mediahost)
            self.queue.release_gone_media(max(float(self.settings.lease_s), 3 * self.heartbeat_s))
        except Exception as exc:  # never stop work over it; the next heartbeat tries again
            if OUTAGE.failed(exc, where="heartbeat"):  # told once there
                log.debug("daemon.release_failed", extra={"error": repr(exc)[:300]})
            else:
                log_event(log, "daemon.release_failed", logging.WARNING, error=repr(exc)[:300])

    def _probe_database(self) -> None:
        """One cheap query: raises while the database is unreachable (see bot.outage)."""
        from sqlalchemy import text

        with self.queue.sessions() as session:
            session.execute(text("select 1"))

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
                row.bundle_id = self.workers.bundle_id
                row.bundle_version = self.workers.bundle_version
                row.last_seen_at = utcnow()
                row.status = status[:300]
                row.media_host = self.queue.media_host
        except Exception as exc:  # status is informative; never stop work over it
            if OUTAGE.failed(exc, where="heartbeat"):  # told once there
                log.debug("daemon.heartbeat_failed", extra={"error": repr(exc)[:300]})
            elif not quiet:  # (quiet: start-up already failed with its own one line)
                log_event(log, "daemon.heartbeat_failed", logging.WARNING, error=repr(exc)[:300])
            return
        OUTAGE.succeeded()
