"""Database outages: told once when they start, once when they end, and waited out together.

Every thread of a daemon talks to the database: the stage workers, their lease
heartbeats, the process heartbeat, the scheduler lock.  When the database goes away
they all fail at once, and each used to say so in its own words, once per retry
(issue 30: 21 warnings under 7 names for one 30 s outage), while the workers' growing
back-off kept them asleep long after it was back.  Here is the one place that knows:

* :meth:`DatabaseOutage.failed` is told of every failed call; when the error means
  "unreachable" (:func:`bot.db.is_unavailable`) the first one logs
  ``database.unavailable`` and the caller logs its own failure at debug only;
* :meth:`DatabaseOutage.succeeded` is told of every successful call; the first one
  after an outage logs ``database.back`` with the outage's length;
* while it lasts, a probe thread (the daemon's :meth:`DatabaseOutage.probe_with`) asks
  the database every :data:`PROBE_S`, so its return is noticed within seconds even when
  every worker is asleep, and :meth:`DatabaseOutage.wait` wakes the sleepers then.

One tracker per process (:data:`OUTAGE`), like the engines of :mod:`bot.db`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.db import is_unavailable
from bot.logs import log_event
from bot.settings import redact_url

log = logging.getLogger("find.database")

#: How often the probe asks a database that is down whether it is back.
PROBE_S = 1.0
#: A thread waiting out an outage sleeps at least this long (no busy retry loop) ...
MIN_WAIT_S = 0.5
#: ... and checks this often whether the database came back meanwhile.
WAKE_POLL_S = 0.2


class DatabaseOutage:
    """Whether the database is reachable, as this process's threads find it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # when the current outage was first seen
        self._up = threading.Event()  # set while no outage is known: wakes the waiters
        self._up.set()
        self._probe: Callable[[], object] | None = None
        self._prober: threading.Thread | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def probe_with(self, probe: Callable[[], object] | None) -> None:
        """Ask the database with ``probe`` (a cheap query) while it is down; None: never."""
        self._probe = probe

    def failed(self, exc: BaseException, *, where: str) -> bool:
        """Note a failed database call; True when ``exc`` means the database is unreachable.

        Then the caller logs its own failure at debug level only: the outage is told
        here, once (``where`` names the thread that saw it first).
        """
        if not is_unavailable(exc):
            return False
        with self._lock:
            first = self._since is None
            if first:
                self._since = self._clock()
                self._up.clear()
        if first:
            log_event(
                log,
                "database.unavailable",
                logging.WARNING,
                error=_reason(exc),
                seen_by=where,
                note="work pauses and resumes by itself when the database answers again",
            )
            self._start_probe()
        return True

    def succeeded(self) -> None:
        """Note a successful database call: ends the outage, if there was one."""
        if self._since is None:  # the usual case: no lock on every query
            return
        with self._lock:
            since, self._since = self._since, None
            if since is None:
                return
            self._up.set()
        log_event(
            log,
            "database.back",
            logging.WARNING,  # the pair of database.unavailable, at the same level
            outage_s=round(self._clock() - since, 1),
        )

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Sleep up to ``timeout`` s, less if ``stop`` is set or the database comes back."""
        deadline = self._clock() + timeout
        if stop.wait(min(MIN_WAIT_S, timeout)):
            return
        while not stop.is_set():
            left = deadline - self._clock()
            if left <= 0 or self._up.wait(min(WAKE_POLL_S, left)):
                return

    def _start_probe(self) -> None:
        if self._probe is None or (self._prober is not None and self._prober.is_alive()):
            return
        self._prober = threading.Thread(target=self._run_probe, name="database-probe", daemon=True)
        self._prober.start()

    def _run_probe(self) -> None:
        """Ask every PROBE_S until the database answers (or someone else saw it answer)."""
        while self.down:
            time.sleep(PROBE_S)
            probe = self._probe
            if probe is None or not self.down:
                return
            try:
                probe()
            except Exception as exc:
                log.debug("database.probe_failed", extra={"error": _reason(exc)})
                continue
            self.succeeded()


def _reason(exc: BaseException) -> str:
    """The driver's first line (``connection refused``...), without a password."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return redact_url(f"{type(exc).__name__}: {lines[0] if lines else ''}")[:300]


#: This process's tracker.
OUTAGE = DatabaseOutage()
