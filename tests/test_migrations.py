"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot import db
from bot.errors import DatabaseError
from bot.store import Base
from tests.conftest import make_settings

EXPECTED_TABLES = {
    "channels",
    "search_queries",
    "videos",
    "analyses",
    "review_decisions",
    "quota_ledger",
    "reviewers",
    "workers",
    "poll_runs",
    "web_sessions",
    "video_fingerprints",
    "bank_entries",
    "bank_hashes",
    "bank_matches",
}


def _tables(url: str) -> set[str]:
    return set(sa.inspect(db.get_engine(url)).get_table_names()) - {"alembic_version"}


def test_upgrade_to_head_then_down_to_base(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, FIND_DATABASE_URL=db_url)
    assert db.current_revision(settings) is None

    db.upgrade(settings)
    assert db.current_revision(settings) == db.head_revision()
    assert _tables(db_url) == EXPECTED_TABLES

    db.downgrade(settings, "base")
    assert db.current_revision(settings) is None
    assert _tables(db_url) == set()


def test_models_match_migrations(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, FIND_DATABASE_URL=db_url)
    db.upgrade(settings)
    with db.get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; run alembic revision --autogenerate: {diff}"


def test_check_schema_names_the_fix(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(DatabaseError, match="find-bot db upgrade"):
        db.check_schema(settings)
    db.upgrade(settings)
    db.check_schema(settings)
