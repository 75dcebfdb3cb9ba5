"""One active scheduler per database, however many ``find-bot run`` processes are started.

Discover spends YouTube quota, so two schedulers polling the same channels
would spend it twice.  Every process with the scheduler role therefore asks
for a lock first; the one that gets it runs discover and retention, the
others wait on standby and take over when the active one dies (its lock
goes with its database connection or its process).  That makes "run
``--role all`` on every machine" safe, and gives a hot spare for free.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) keyed
  on the schema, held on a dedicated connection.  If that connection breaks
  (server restart, network), the lock is gone: :meth:`SchedulerLock.held`
  notices and the scheduler pauses until it is won again.
* SQLite: an exclusive ``flock`` on ``<database file>.scheduler.lock``, released by
  the kernel when the process exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.db import get_engine
from bot.outage import OUTAGE
from bot.settings import Settings

log = logging.getLogger("find.leader")

#: Hashed with the schema name, so test schemas (and separate installs) never collide.
_LOCK_SQL = "select pg_try_advisory_lock(hashtext('find-bot scheduler ' || current_schema()))"


class SchedulerLock:
    """Non-blocking, re-checkable lock: :meth:`acquire` to try, :meth:`held` to verify."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = make_url(settings.database_url).get_backend_name()
        self._conn: Any = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Try to become the active scheduler; ``False`` if another process is."""
        if self.backend == "sqlite":
            return self._flock()
        try:
            if self._conn is None:
                self._conn = get_engine(self.settings.database_url).connect()
            won = bool(self._conn.execute(text(_LOCK_SQL)).scalar())
            self._conn.commit()  # session-level lock: survives the commit, no idle transaction
        except Exception as exc:  # database unreachable: not the leader, try again later
            if OUTAGE.failed(exc, where="scheduler"):  # told once there
                log.debug("leader.lock_failed", extra={"error": repr(exc)[:300]})
            else:
                log.warning("leader.lock_failed", extra={"error": repr(exc)[:300]})
            self._drop_connection()
            return False
        OUTAGE.succeeded()
        if not won:
            self._drop_connection()  # a standby holds no connection
        return won

    def held(self) -> bool:
        """Is the lock still ours?  (On PostgreSQL: is its connection still alive?)"""
        if self.backend == "sqlite":
            return self._fd is not None
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("select 1"))
            self._conn.commit()
        except Exception as exc:
            if OUTAGE.failed(exc, where="scheduler"):  # told once there
                log.debug("leader.lock_lost", extra={"error": repr(exc)[:300]})
            else:
                log.warning("leader.lock_lost", extra={"error": repr(exc)[:300]})
            self._drop_connection()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("select pg_advisory_unlock_all()"))
                self._conn.commit()
            self._drop_connection()

    def _flock(self) -> bool:
        if self._fd is not None:
            return True
        database = make_url(self.settings.database_url).database
        if database and database != ":memory:":  # next to the file: whoever shares it, competes
            path = Path(database).expanduser().with_name(Path(database).name + ".scheduler.lock")
        else:
            path = self.settings.data_dir / "scheduler.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()  # never hand a lock-holding session back to the pool
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
