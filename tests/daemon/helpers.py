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


def write_tiny_bundle(directory: Path, name: str) -> Path:
    """A tiny untrained bundle (64 px Xception, one middle block) written by ``write_bundle``.

    The analyse-stage tests check plumbing, not judgement: with
    ``FIND_SCORE_THRESHOLD=0`` every video with a face is flagged.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model.bundle import write_bundle
    from model.classifier import ArchSpec, build_classifier

    spec = ArchSpec("xception_compact", 64, 0.125, 1)
    return write_bundle(
        directory,
        [build_classifier(spec, seed=1)],
        spec,
        threshold=0.5,
        name=name,
        version="0.0.1",
        training={"data": "none: untrained test model"},
        metrics={"auc": None},
    )


def add_downloaded_video(settings: Any, youtube_id: str, source: Path, **columns: Any) -> None:
    """A video as the download stage leaves it: file under media_dir, state downloaded."""
    import shutil

    from bot.db import session_scope
    from bot.store import Video, VideoState

    target = settings.media_dir / "videos" / f"{youtube_id}.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    with session_scope(settings) as session:
        session.add(
            Video(
                youtube_id=youtube_id,
                title=f"title {youtube_id}",
                state=VideoState.DOWNLOADED.value,
                media_path=str(target.relative_to(settings.media_dir)),
                **columns,
            )
        )
