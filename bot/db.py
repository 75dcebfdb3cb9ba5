"""The one place that opens the database: engines, sessions, migrations.

SQLite and PostgreSQL go through the same code.  SQLite gets WAL mode and a
busy timeout so the daemon's threads and a reviewer's CLI can share the file;
PostgreSQL gets a pre-ping pool so a restarted server does not kill a worker.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import DatabaseError
from bot.settings import Settings, redact_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # ln() for the review queue's reach order (bot.youtube.views.reach), as PostgreSQL has
    # it: SQLite has it only when built with its math functions, which not every build is.
    dbapi_connection.create_function("ln", 1, _ln, deterministic=True)


def _ln(value: float | None) -> float | None:
    return math.log(value) if value is not None and value > 0 else None


_engines: dict[str, Engine] = {}


def get_engine(database_url: str) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
    if database_url not in _engines:
        _engines[database_url] = _create_engine(database_url)
    return _engines[database_url]


def dispose_engines() -> None:
    """Close every pool, e.g. after fork or at the end of a test."""
    while _engines:
        _engines.popitem()[1].dispose()


#: SQLite's words for a database that cannot be used right now (not a bad query).
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk I/O error")
#: PostgreSQL SQLSTATEs of a server that went away: shut down, crashed, not yet accepting.
_PG_GONE = frozenset({"57P01", "57P02", "57P03"})


def is_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` (or an exception it was raised from) "the database cannot be reached"?

    A refused or dropped connection, a server shutting down, an exhausted pool or a
    locked SQLite file: conditions of the database, the same for every query, that end by
    themselves (:mod:`bot.outage` waits them out).  A bad query, a constraint or a
    deadlock is not one: it says something about the work and is reported as such.
    """
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PoolTimeout):
            return True
        if isinstance(current, DBAPIError):
            return current.connection_invalidated or _driver_unavailable(current.orig)
        if _driver_unavailable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _driver_unavailable(error: BaseException | None) -> bool:
    """The DBAPI driver's own error (psycopg, sqlite3) says the database is unreachable."""
    import sqlite3

    if error is None:
        return False
    names = {cls.__name__ for cls in type(error).__mro__}
    if not names & {"OperationalError", "InterfaceError"}:  # every DBAPI driver has both
        return False
    if isinstance(error, sqlite3.Error):
        return str(error).startswith(_SQLITE_UNAVAILABLE)
    if not type(error).__module__.startswith("psycopg"):
        return False
    # None: the connection itself failed (psycopg 3 says sqlstate, psycopg2 pgcode)
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code is None or code.startswith("08") or code in _PG_GONE


def _create_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy, not pysqlite, issue BEGIN so transactions really
        # start when we say (IMMEDIATE for writers, see bot.queue).
        event.listen(engine, "connect", lambda conn, _r: setattr(conn, "isolation_level", None))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    else:
        # Each worker thread holds a connection for its job and one for its heartbeat.
        # A server that does not answer (a dropped network) fails a connect in seconds
        # instead of hanging the thread that asked (unless the URL says otherwise).
        connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args
        )
    return engine


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(get_engine(settings.database_url), expire_on_commit=False)


@contextlib.contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = session_factory(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not through the ini parser, which would mangle '%'.
    config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def current_revision(settings: Settings) -> str | None:
    try:
        with get_engine(settings.database_url).connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyDatabaseError as exc:
        raise DatabaseError(_unreachable(settings, exc)) from None


def upgrade(settings: Settings, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(settings.database_url), revision)
    except SQLAlchemyDatabaseError as exc:
        raise DatabaseError(_unreachable(settings, exc)) from None


def downgrade(settings: Settings, revision: str) -> None:
    try:
        command.downgrade(alembic_config(settings.database_url), revision)
    except SQLAlchemyDatabaseError as exc:
        raise DatabaseError(_unreachable(settings, exc)) from None


#: What ``db downgrade`` names before it drops anything: table -> what its rows are.
COUNTED_TABLES = {
    "videos": "video(s)",
    "review_decisions": "review decision(s)",
    "reviewers": "reviewer account(s)",
    "bank_entries": "bank entry(ies)",
}


def row_counts(settings: Settings) -> dict[str, int]:
    """Rows in the tables whose loss matters (absent tables count 0), e.g. ``{"video(s)": 3}``."""
    from sqlalchemy import inspect, text

    try:
        with get_engine(settings.database_url).connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {
                label: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
                for table, label in COUNTED_TABLES.items()
                if table in present
            }
    except SQLAlchemyDatabaseError as exc:
        raise DatabaseError(_unreachable(settings, exc)) from None


def check_schema(settings: Settings) -> None:
    """Stop early, with the fix, when the database is not at the code's revision."""
    current, head = current_revision(settings), head_revision()
    if current != head:
        raise DatabaseError(
            f"database {settings.redacted_database_url} is at revision {current or 'none (empty)'}"
            f" but this code needs {head}: run `find-bot db upgrade`"
        )


#: SQLite's words for a file that is not (or no longer) a database.
_CORRUPT_SQLITE = ("file is not a database", "database disk image is malformed")


def _unreachable(settings: Settings, exc: Exception) -> str:
    """One line for a database that cannot be used: which one, why, and what to do."""
    reason = (str(getattr(exc, "orig", exc)).strip().splitlines() or ["unknown error"])[0]
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and reason in _CORRUPT_SQLITE:
        path = Path(url.database).expanduser()
        return (
            f"database file {path} is not a usable SQLite database ({reason}): restore it from "
            "a backup, or move it aside and run `find-bot db upgrade` to start an empty one"
        )
    missing = f'database "{url.database}" does not exist'
    if url.get_backend_name() == "postgresql" and missing in reason:
        return (
            f"cannot open database {redact_url(settings.database_url)}: {redact_url(reason)}; "
            f"create it with `{_createdb_line(url)}`, then run `find-bot db upgrade`"
        )
    if url.get_backend_name() == "sqlite" and url.database:
        # SQLite's "unable to open database file" / "readonly database" is about the folder.
        folder = Path(url.database).expanduser().parent
        advice = f"check that {folder} exists and this user can write it (FIND_DATA_DIR)"
    else:
        advice = "check FIND_DATABASE_URL and that the server is running"
    return (
        f"cannot open database {redact_url(settings.database_url)}: {redact_url(reason)}; {advice}"
    )


def _createdb_line(url) -> str:  # type: ignore[no-untyped-def]
    """The ``createdb`` command for a PostgreSQL URL's database (never with its password)."""
    import shlex

    parts = ["createdb"]
    for flag, value in (("-h", url.host), ("-p", url.port), ("-U", url.username)):
        if value:
            parts += [flag, shlex.quote(str(value))]
    return " ".join([*parts, shlex.quote(url.database)])
