"""Fixtures shared by the whole suite: settings on a temp dir, SQLite and real PostgreSQL.

PostgreSQL tests use the server named by ``FIND_TEST_POSTGRES_URL`` (``.ci/run``
starts the local one and exports it).  Each test gets its own schema, so tests
never see each other's rows and can run against a shared server.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Undo a CLI test's ``configure_logging``: its handler writes to that test's captured stderr,
    which is closed by the time a later test logs or flushes."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FIND_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings for a test: everything under ``tmp_path``; ``env`` as FIND_* variables."""
    environ = {"FIND_DATA_DIR": str(tmp_path / "data")}
    environ.update({k if k.startswith("FIND_") else f"FIND_{k.upper()}": v for k, v in env.items()})
    return load_settings(environ=environ)


def postgres_base_url() -> str | None:
    return os.environ.get("FIND_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of a reachable PostgreSQL server, or skip with the reason."""
    url = postgres_base_url()
    if not url:
        pytest.skip(
            "PostgreSQL tests need FIND_TEST_POSTGRES_URL "
            "(e.g. postgresql+psycopg://root@127.0.0.1:5432/test); .ci/run sets it"
        )
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"PostgreSQL at FIND_TEST_POSTGRES_URL is not reachable: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty schema on the test server, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    from bot.db import dispose_engines

    dispose_engines()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both supported backends, empty: SQLite in tmp, and a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'find.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Migrated database on each backend, plus settings pointing at it."""
    from bot import db

    s = make_settings(tmp_path, FIND_DATABASE_URL=db_url)
    db.upgrade(s)
    return s


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Migrated SQLite database only, for tests where the backend does not matter."""
    from bot import db

    s = make_settings(tmp_path)
    db.upgrade(s)
    return s
