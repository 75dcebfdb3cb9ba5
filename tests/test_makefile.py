"""The Makefile's install is a stamp: `make run` reinstalls only when pyproject.toml changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _dry_run(venv: Path, target: str) -> str:
    """What `make TARGET` would run (``make -n``), with the venv under test's control."""
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_run_installs_only_when_pyproject_changed(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert "pip install" in _dry_run(venv, "run")  # never installed: install first

    venv.mkdir()
    stamp = venv / ".installed"
    stamp.touch()
    newer = (ROOT / "pyproject.toml").stat().st_mtime + 60
    os.utime(stamp, (newer, newer))
    commands = _dry_run(venv, "run")
    assert "pip install" not in commands  # issue 21 item 9: not on every `make run`
    assert "find-bot db upgrade" in commands and "find-bot run" in commands

    older = (ROOT / "pyproject.toml").stat().st_mtime - 60
    os.utime(stamp, (older, older))  # pyproject.toml edited since: install again
    assert "pip install" in _dry_run(venv, "run")
    os.utime(stamp, (newer, newer))
    assert "pip install" in _dry_run(venv, "install")  # asked for: always


def test_make_bench_runs_every_benchmark_in_its_short_form(tmp_path: Path) -> None:
    """Issue 22 item 1: quota, claims, scan and banks, each quick, through the venv's python."""
    lines = [line for line in _dry_run(tmp_path / "venv", "bench").splitlines() if "bench" in line]
    assert len(lines) == 4 and all(
        line.startswith(f"{tmp_path / 'venv'}/bin/python") for line in lines
    )
    for script in (
        "bench/quota.py --quick",
        "-m bench.claims",
        "bench/scan.py --quick",
        "bench/banks.py --quick",
    ):
        assert sum(script in line for line in lines) == 1, script
    readme = (ROOT / "README.md").read_text()
    assert "| `python bench" not in readme and "| `.venv/bin/python bench/banks.py" in readme


def test_the_licence_is_an_spdx_string() -> None:
    """Issue 22 item 2: setuptools warns three times per install about a ``{text = ...}`` table."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
