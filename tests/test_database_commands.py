"""Database commands on a database that is damaged, missing, or worth keeping.

* a corrupt SQLite file: one line naming the file and what to do, for `db upgrade`,
  `status` and `review list` (issue 21, item 15);
* a PostgreSQL database that does not exist: the `createdb` line (item 9);
* `db downgrade` refuses without `--yes`, naming what would be lost (item 5).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.db import current_revision, dispose_engines, session_factory
from bot.settings import Settings


class _Terminal(io.StringIO):
    """Standard input that says it is a terminal, as a person at a shell would have."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``find-bot`` in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("FIND_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FIND_LOG_LEVEL", "WARNING")

    def run(*argv: str, stdin: str = "", tty: bool = False) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        monkeypatch.setattr("sys.stdin", _Terminal(stdin) if tty else io.StringIO(stdin))
        try:
            code = main(list(argv))
        finally:
            dispose_engines()
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.mark.parametrize("command", [["db", "upgrade"], ["status"], ["review", "list"]])
def test_a_corrupt_sqlite_file_is_one_line_naming_it(
    run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    corrupt = data_dir / "find.db"
    corrupt.write_bytes(os.urandom(5000))  # `head -c 5000 /dev/urandom > find.db`
    monkeypatch.setenv("FIND_DATA_DIR", str(data_dir))
    code, out, err = run_cli(*command)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith(f"find-bot: error: database file {corrupt} is not a usable SQLite")
    assert "backup" in line and "find-bot db upgrade" in line
    assert corrupt.stat().st_size == 5000  # left as it was, for whoever investigates


def test_a_missing_postgres_database_says_how_to_create_it(
    run_cli, postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server).set(database="find_no_such_db_21")
    monkeypatch.setenv("FIND_DATABASE_URL", url.render_as_string(hide_password=False))
    code, _, err = run_cli("db", "upgrade")
    assert code == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert 'database "find_no_such_db_21" does not exist' in line
    assert "create it with `createdb " in line and line.endswith(
        "find_no_such_db_21`, then run `find-bot db upgrade`"
    )
    if url.host:
        assert f"-h {url.host}" in line


def _seed_decision(settings: Settings) -> None:
    from bot.review import decide
    from tests.review.conftest import seed_video

    seed_video(settings, "vidAAAAAAA1", score=0.95)
    decide(session_factory(settings), "vidAAAAAAA1", "confirmed", "alice", reason="other")


def test_db_downgrade_refuses_without_yes_and_names_what_is_lost(
    run_cli, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_decision(sqlite_settings)
    head = current_revision(sqlite_settings)
    monkeypatch.setenv("FIND_DATA_DIR", str(sqlite_settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", sqlite_settings.database_url)

    code, out, err = run_cli("db", "downgrade", "base")  # stdin is no terminal: no question
    assert code == 2 and out == ""
    [line] = err.strip().splitlines()
    assert "base (every table dropped)" in line and "refusing without --yes" in line
    assert "1 video(s)" in line and "1 review decision(s)" in line
    assert current_revision(sqlite_settings) == head  # nothing dropped

    code, out, _ = run_cli("db", "downgrade", "base", "--yes")
    assert code == 0 and "is at base" in out
    assert current_revision(sqlite_settings) is None


def test_db_downgrade_asks_on_a_terminal(
    run_cli, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = current_revision(sqlite_settings)
    monkeypatch.setenv("FIND_DATA_DIR", str(sqlite_settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", sqlite_settings.database_url)
    code, _, err = run_cli("db", "downgrade", "base", stdin="no\n", tty=True)
    assert "Type 'yes' to downgrade" in err or "drops what later migrations added" in err
    assert code == 2 and "downgrade cancelled: nothing changed" in err
    assert current_revision(sqlite_settings) == head
    code, _, err = run_cli("db", "downgrade", "base", stdin="yes\n", tty=True)
    assert code == 0, err
    assert current_revision(sqlite_settings) is None
