"""Real broken directories for host-fault tests: read-only and full file systems.

As root (CI, containers) these are real ``tmpfs`` mounts: a read-only one
answers EROFS and a tiny one ENOSPC, exactly what a remounted or full disk
does to the daemon.  As an ordinary user a directory without write
permission answers EACCES, the other common host fault; a full disk cannot be
made without privileges, so that case skips.  The mount is undone when the
``with`` block ends, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount_tmpfs(path: Path, options: str) -> bool:
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "find-test", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_dir(path: Path, *, files: dict[str, bytes] | None = None) -> Iterator[str]:
    """Make ``path`` a directory nobody here can write; yields ``"EROFS"`` or ``"EACCES"``.

    ``files`` are put in it first (a read-only disk usually has data on it).
    """
    path.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {}).items():
        (path / name).write_bytes(data)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield "EACCES"
        finally:
            path.chmod(0o755)
        return
    if not _mount_tmpfs(path, "size=16m,mode=0755"):
        pytest.skip("cannot mount a tmpfs here to make a read-only directory")
    try:
        for name, data in (files or {}).items():
            (path / name).write_bytes(data)
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
        yield "EROFS"
    finally:
        _unmount(path)


@contextlib.contextmanager
def full_dir(path: Path, size_kib: int = 64) -> Iterator[Path]:
    """Make ``path`` a tiny file system that is full after ``size_kib`` KiB (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount_tmpfs(path, f"size={size_kib}k,mode=0755"):
        pytest.skip("a full file system needs root to mount a small tmpfs")
    try:
        yield path
    finally:
        _unmount(path)
