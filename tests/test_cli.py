"""The console command as a new user meets it: help everywhere, db upgrade with no config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, main


def _subcommand_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(parser, prefix):  # type: ignore[no-untyped-def]
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    paths.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


def test_help_on_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _subcommand_paths()
    assert ["db", "upgrade"] in paths
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        assert "usage: find-bot " + " ".join(path) in capsys.readouterr().out


def test_console_script_upgrades_with_no_config(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env["HOME"] = str(tmp_path)
    env.pop("XDG_DATA_HOME", None)
    exe = Path(sys.executable).with_name("find-bot")
    result = subprocess.run(
        [str(exe), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".local/share/find-bot/find.db").is_file()
    current = subprocess.run(
        [str(exe), "db", "current"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "up to date" in current.stdout


def test_bad_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env.update(HOME=str(tmp_path), FIND_POLL_INTERVAL="every now and then")
    exe = Path(sys.executable).with_name("find-bot")
    result = subprocess.run(
        [str(exe), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "find-bot: error: FIND_POLL_INTERVAL: 'every now and then' is not a duration "
        "(use seconds, or e.g. 15m, 2h, 1d)"
    ]


def test_unreachable_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIND_DATABASE_URL", "postgresql+psycopg://find:hunter2@127.0.0.1:1/nope")
    assert main(["db", "current"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("find-bot: error: cannot open database postgresql+psycopg://find:***@")
    assert "hunter2" not in err and len(err.strip().splitlines()) == 1
