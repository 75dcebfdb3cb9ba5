"""Helpers for the daemon tests: real child processes, clean environments, polling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIND_BOT = [sys.executable, "-m", "bot.cli"]
STUB_WORKER = [sys.executable, "-m", "tests.daemon.stub_worker"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any FIND_* (children read only what we pass)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


def spawn(
    cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path = PROJECT_ROOT
) -> subprocess.Popen[bytes]:
    """Start a real OS process (cwd = repo root so ``-m tests...`` imports), output to a file."""
    out = open(log_path, "ab")  # noqa: SIM115 - closed when the process is reaped
    if cwd != PROJECT_ROOT:  # still import this checkout's code, wherever the process runs
        env = {**env, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``condition`` until truthy; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def wait_log(path: Path, text: str, timeout: float, start: int = 0) -> str:
    """Wait until ``text`` appears in the log file (after byte ``start``); return the log."""

    def found() -> str | None:
        data = path.read_text(errors="replace") if path.exists() else ""
        return data if text in data[start:] else None

    try:
        return wait_for(found, timeout, f"{text!r} in {path.name}")
    except AssertionError:
        tail = path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
        raise AssertionError(f"{text!r} not logged within {timeout}s; log tail:\n{tail}") from None


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM and wait; kill (and fail loudly) if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"process {proc.pid} ignored SIGTERM for {timeout}s") from None
