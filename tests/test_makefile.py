"""The Makefile's install is a stamp: `make run` reinstalls only when pyproject.toml changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _dry_run(venv: Path, target: str, *variables: str) -> str:
    """What `make TARGET` would run (``make -n``), with the venv under test's control."""
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}", *variables],
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
    """Issue 22 item 1: quota, claims, scan, banks (and train, issue 32), each quick, through
    the venv's python."""
    lines = [line for line in _dry_run(tmp_path / "venv", "bench").splitlines() if "bench" in line]
    assert len(lines) == 5 and all(
        line.startswith(f"{tmp_path / 'venv'}/bin/python") for line in lines
    )
    for script in (
        "bench/quota.py --quick",
        "-m bench.claims --quick",
        "bench/scan.py --quick",
        "bench/banks.py --quick",
        "bench/train.py --quick",
    ):
        assert sum(script in line for line in lines) == 1, script
    readme = (ROOT / "README.md").read_text()
    assert "| `python bench" not in readme and "| `.venv/bin/python bench/banks.py" in readme


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_bench_runs_for_real_in_each_benchmarks_smallest_mode(tmp_path: Path) -> None:
    """Issue 30 item 9: `make bench` crashed on a fresh clone (bench/banks.py imported a
    function a later commit had removed) while the test above, reading `make -n`, passed.
    So `make bench BENCH_MODE=smoke` runs here for real: the very commands `make bench`
    runs, each benchmark in its smallest mode (seconds, no target judged)."""
    import sys

    venv = Path(sys.prefix)  # the environment running the tests: its bin/python
    quick = _dry_run(venv, "bench").replace("--quick", "--smoke")
    assert quick == _dry_run(venv, "bench", "BENCH_MODE=smoke")  # the same commands
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    if os.environ.get("FIND_TEST_POSTGRES_URL"):  # bench.claims measures it, as make bench
        env["FIND_TEST_POSTGRES_URL"] = os.environ["FIND_TEST_POSTGRES_URL"]
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "bench", "BENCH_MODE=smoke",
         f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    for shown in (
        "burst: 40/40 found",  # quota: the last of its four scenarios
        "2 worker(s): 100 videos",  # claims
        "h264-360p-2s: 1 video(s) in",  # scan: its one class scanned
        "decoding the sampled frames",  # scan: the decoders compared
        "Matcher.lookup incl. refresh",  # banks: the last line of its lookup part
        "\nratio: ",  # train: plain trainer against the frozen prefix, its last line
    ):
        assert shown in result.stdout, f"{shown!r} missing:\n{result.stdout[-4000:]}"


def test_the_licence_is_an_spdx_string() -> None:
    """Issue 22 item 2: setuptools warns three times per install about a ``{text = ...}`` table."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
