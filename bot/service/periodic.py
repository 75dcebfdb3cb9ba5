"""The scheduler role: periodic jobs, one active copy per database.

APScheduler runs a full discover pass on the poll interval, a light one every minute
(the channel feeds that are due, owed playlist reads, due lookups:
:func:`bot.stages.discover.tick_once`), retention cleanup every hour, the flagged videos'
view counts every hour within ``FIND_VIEWS_BUDGET`` (:mod:`bot.youtube.views`) and, with
``FIND_ADAPT_INTERVAL``, the guarded adaptation to the reviewers' decisions. Several
scheduler processes may run: the one holding the scheduler lock
(:mod:`bot.service.leader`) is active, the others keep their jobs paused and take over
when the lock frees. Only the active one mirrors the configured watchlist into the
database, so a worker's or a standby's settings file cannot deactivate the real list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any

from bot.errors import FindError, SettingsError, StartupError
from bot.logs import log_event
from bot.outage import OUTAGE
from bot.settings import Settings
from bot.store import utcnow

log = logging.getLogger("find.daemon")

#: How often the scheduler role runs retention cleanup.
RETENTION_INTERVAL_S = 3600
#: How often the scheduler role reads the channel feeds that are due (each channel has
#: its own jittered time; this is only how finely those times are honoured).
TICK_S = 60


class _Outcome:
    """Whether a job's body ran to its end (see :func:`_job_failures`)."""

    ok = False


@contextmanager
def _job_failures(
    event: str, *, failed: str = "failed", crashed: str = "crashed"
) -> Iterator[_Outcome]:
    """Run one periodic job's body; its failure is logged, never raised.

    A ``FindError`` (a bad setting, a spent quota, an unreachable database: said in one
    line already) becomes ``<event>.<failed>``; anything else is a bug and becomes
    ``<event>.<crashed>`` with its traceback; a database outage is told once by
    :mod:`bot.outage` and only at debug here.  None reaches APScheduler, so the job
    simply runs again at its next time.  ``outcome.ok`` tells the caller whether to go on.
    """
    outcome = _Outcome()
    try:
        yield outcome
    except Exception as exc:
        if OUTAGE.failed(exc, where=event):  # told once there; the job runs again later
            log.debug(f"{event}.{failed}", extra={"error": repr(exc)[:500]})
        elif isinstance(exc, FindError):
            log_event(log, f"{event}.{failed}", logging.ERROR, error=str(exc))
        else:
            log.exception(f"{event}.{crashed}", extra={"error": repr(exc)[:500]})
    else:
        outcome.ok = True


class PeriodicJobs:
    """Discover, tick and retention on APScheduler, paused while another process leads.

    ``settings_of`` returns the settings in force now: a SIGHUP reload replaces them
    in the daemon, and every job reads them when it starts.
    """

    def __init__(
        self,
        settings_of: Callable[[], Settings],
        stop: threading.Event,
        *,
        model_gate: Any = None,
    ) -> None:
        self._settings_of = settings_of
        #: Shared with this process's analyse workers (``StageWorkers.model_gate``).
        self._model_gate = model_gate
        self._stop = stop
        self._lock: Any = None  # SchedulerLock
        self.active = False
        self.scheduler: Any = None
        #: One discover pass at a time (full or tick), and one feed reader across them
        #: (its HTTP pool and its 429 pause outlive a pass).
        self.discover_lock = threading.Lock()
        self._feed_reader: Any = None
        self.last_poll: str | None = None

    @property
    def settings(self) -> Settings:
        return self._settings_of()

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Take the lead if no one holds it (then sync the watchlist), and start the jobs."""
        from bot.service.leader import SchedulerLock

        self._lock = SchedulerLock(self.settings)
        self.active = self._lock.acquire()
        if self.active:
            self.sync_watchlist(at_start=True)
        else:
            log_event(log, "scheduler.standby", note="another process runs discover; waiting")
        self._start_scheduler(paused=not self.active)

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
        if self.settings.views_budget:
            from bot.youtube.views import REFRESH_INTERVAL_S

            scheduler.add_job(
                self.run_views,
                "interval",
                seconds=REFRESH_INTERVAL_S,
                id="views",
                next_run_time=now + timedelta(seconds=90),
            )
        if self.settings.adapt_interval_s:
            scheduler.add_job(
                self.run_adapt,
                "interval",
                seconds=self.settings.adapt_interval_s,
                id="adapt",
                next_run_time=now + timedelta(seconds=self.settings.adapt_interval_s),
            )
        scheduler.start(paused=paused)
        self.scheduler = scheduler

    @property
    def running(self) -> bool:
        return self.scheduler is None or bool(self.scheduler.running)

    # ------------------------------------------------------------- jobs
    def run_discover(self) -> None:
        """One discover pass with the settings in force now (SIGHUP may have changed them)."""
        settings = self.settings
        try:
            from bot.stages.discover import discover_once
        except ImportError as exc:
            log_event(log, "discover.unavailable", logging.ERROR, error=str(exc))
            return
        started = utcnow()
        with _job_failures("discover") as outcome:
            try:
                with self.discover_lock:
                    result = discover_once(settings, reader=self._reader(settings))
            finally:
                if self.settings is not settings:
                    self._after_stale_pass()
        if not outcome.ok:
            return
        self.last_poll = started.isoformat(timespec="seconds")  # discover logs its own summary
        resume_at = getattr(result, "resume_at", None)
        if getattr(result, "quota_exhausted", False) and resume_at and self.scheduler:
            # Polling again before the quota resets would only burn the log: wait for it.
            job = self.scheduler.get_job("discover")
            if job is not None and (job.next_run_time is None or job.next_run_time < resume_at):
                self.scheduler.modify_job("discover", next_run_time=resume_at)
                log_event(log, "discover.paused_until_quota_reset", resume_at=resume_at.isoformat())

    def run_tick(self) -> None:
        """The light pass between full ones; skipped while a full pass runs (it reads feeds too)."""
        settings = self.settings
        if not self.discover_lock.acquire(blocking=False):
            return
        try:
            with _job_failures("discover", failed="tick_failed", crashed="tick_crashed"):
                from bot.stages.discover import tick_once

                tick_once(settings, reader=self._reader(settings))
        finally:
            self.discover_lock.release()

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
        self.sync_watchlist()
        if self.scheduler is not None and not self._stop.is_set():
            self.scheduler.modify_job("discover", next_run_time=utcnow() + timedelta(seconds=2))

    def run_retention(self) -> None:
        from bot.stages.retention import run_retention

        with _job_failures("retention") as outcome:
            report = run_retention(self.settings)
        if not outcome.ok:
            return
        log_event(log, "retention.done", **report.as_fields())
        try:  # temp folders of downloads that died with their worker
            from bot.stages.download import clean_partials

            clean_partials(self.settings.media_dir)
        except Exception as exc:
            log_event(log, "retention.partials_failed", logging.WARNING, error=repr(exc)[:300])

    def run_views(self) -> None:
        """Refresh the view counts of flagged videos within FIND_VIEWS_BUDGET
        (:mod:`bot.youtube.views`): the queue's reach order reads them."""
        from bot.db import session_factory
        from bot.stages.discover import make_client
        from bot.youtube.views import refresh_flagged_views

        settings = self.settings
        with _job_failures("views") as outcome:
            client = make_client(settings)
            report = refresh_flagged_views(settings, session_factory(settings), client, utcnow())
        if not outcome.ok:
            return
        if report.calls or report.stopped or report.errors:
            level = logging.WARNING if report.errors else logging.INFO
            errors = "; ".join(report.errors[:5]) or None
            log_event(log, "views.refreshed", level, **report.as_fields(), errors=errors)

    def run_adapt(self) -> None:
        """The guarded adaptation (``find-bot model adapt``), never during an analysis here.

        Only the active scheduler runs it (leader lock), so one host adapts at a time;
        this process's analyses wait at the gate while it runs.  A refusal is logged by
        :func:`bot.review.learning.run_adaptation` with its reasons.
        """
        from bot.review.learning import AdaptRefused, run_adaptation

        gate = self._model_gate.exclusive() if self._model_gate else nullcontext()
        with _job_failures("adapt") as outcome:
            try:
                with gate:
                    report = run_adaptation(self.settings)
            except AdaptRefused as exc:  # not a failure: too few decisions, or no better
                log_event(log, "adapt.skipped", reason=str(exc))
                return
        if not outcome.ok:
            return
        log_event(
            log,
            "adapt.done",
            promoted=report.promoted,
            candidate=report.candidate,
            refused="; ".join(report.reasons) or None,
        )

    # ----------------------------------------------------------- reload
    def reload(self, old: Settings, new: Settings, *, new_sources: bool) -> None:
        """Apply new settings (already in force): watchlist, poll interval, passes owed now."""
        self.sync_watchlist()
        if self.scheduler is None:
            return
        if new.poll_interval_s != old.poll_interval_s:
            self.scheduler.reschedule_job(
                "discover", trigger="interval", seconds=new.poll_interval_s
            )
        if new_sources:  # look at the new sources now, not in 15 min
            self.scheduler.modify_job("discover", next_run_time=utcnow())
        if new.quota_daily_budget > old.quota_daily_budget:
            # A pass paused until the quota reset may go on now with the larger budget
            # (bot.youtube.quota: it also reopens a day closed by YouTube's quotaExceeded).
            self.scheduler.modify_job("discover", next_run_time=utcnow())
            log_event(
                log,
                "discover.resumed",
                reason="quota budget raised",
                budget=new.quota_daily_budget,
            )

    def sync_watchlist(self, *, at_start: bool = False) -> None:
        """Mirror the configured channels/queries into the database now (discover also does it).

        Only the active scheduler does this: a worker's or a standby's settings
        file may list no channels at all, and must not deactivate the real list.
        At start, settings that would empty a watched database (a restart without
        its settings file) stop the daemon with one line instead
        (:func:`bot.stages.discover.watchlist.check_not_emptied`).
        """
        if not self.active:
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

    # ------------------------------------------------------- leadership
    def check_leadership(self) -> None:
        """Standby schedulers try to take over; the active one verifies it still holds the lock."""
        if self._lock is None or self.scheduler is None:
            return
        if self.active and not self._lock.held():
            self.active = False
            self.scheduler.pause()
            # In a database outage (told once by bot.outage) the lock went with the connection.
            level = logging.INFO if OUTAGE.down else logging.WARNING
            log_event(log, "scheduler.standby", level, note="lost the scheduler lock")
        elif not self.active and self._lock.acquire():
            self.active = True
            self.sync_watchlist()
            self.scheduler.resume()
            self.scheduler.modify_job("discover", next_run_time=utcnow())
            log_event(log, "scheduler.active", note="took over discover and retention")

    # ------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stop starting jobs and let a standby (or the next start) take the lead."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self._lock is not None:
            self._lock.release()

    def close(self) -> None:
        """Close the feed reader's connections (after the last pass had its grace)."""
        if self._feed_reader is not None:
            self._feed_reader.close()
