"""Faults of the machine, not of the video: read-only, full or forbidden directories.

A read-only media mount, a full disk or a directory owned by the wrong user
breaks *every* download and analysis the same way.  Charging each video an
attempt for it would walk the whole queue into ``failed`` while the operator
is still looking for the cause, so these conditions are told apart here, once:

* at start-up, :func:`check_writable` refuses to start with one line naming
  the setting whose directory cannot be written;
* during work, :func:`fault_kind` recognises the ``OSError`` (EROFS, EACCES,
  EPERM, ENOSPC, EDQUOT) and :mod:`bot.queue` postpones the video without
  spending an attempt, then raises :class:`HostFault` so the worker backs off;
* :func:`describe` turns any ``OSError`` into one line naming the path, which
  is what the CLI prints instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

from bot.errors import FindError, SettingsError

#: ``Video.last_error_kind`` of a video postponed because the disk is read-only or forbidden.
HOST_FAULT = "host_fault"
#: ... because the disk (or the user's quota on it) is full.
DISK_FULL = "disk_full"
#: Failure kinds that are the host's fault: they never use up a video's attempts.
HOST_FAULT_KINDS = (HOST_FAULT, DISK_FULL)

_KIND_BY_ERRNO = {
    errno.EROFS: HOST_FAULT,
    errno.EACCES: HOST_FAULT,
    errno.EPERM: HOST_FAULT,
    errno.ENOSPC: DISK_FULL,
    errno.EDQUOT: DISK_FULL,
}

#: The same conditions as yt-dlp reports them, as text inside its own error messages.
MESSAGE_PATTERNS = (
    (
        re.compile(r"no space left on device|disk quota exceeded|\[Errno (28|122)\]", re.I),
        DISK_FULL,
    ),
    (re.compile(r"read-only file system|\[Errno (13|30)\]", re.I), HOST_FAULT),
)

_ADVICE = {
    errno.EROFS: "the file system is mounted read-only: remount it read-write",
    errno.EACCES: "permission denied: give the user running find-bot write access",
    errno.EPERM: "operation not permitted: check the owner, permissions and attributes",
    errno.ENOSPC: "the disk is full: free space",
    errno.EDQUOT: "the user's disk quota is used up: free space or raise the quota",
    errno.ENOENT: "it does not exist: create it or fix the path",
    errno.ENOTDIR: "part of the path is a file, not a directory: fix the path",
    errno.EISDIR: "it is a directory where a file was expected: fix the path",
}


class HostFault(FindError):
    """Work stopped on a fault of this machine; the video was postponed, not charged."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def fault_kind(exc: BaseException) -> str | None:
    """``host_fault`` / ``disk_full`` when ``exc`` is an ``OSError`` caused by the host."""
    if isinstance(exc, OSError) and exc.errno in _KIND_BY_ERRNO:
        return _KIND_BY_ERRNO[exc.errno]
    return None


def message_kind(text: str) -> str | None:
    """The host-fault kind an error *message* (yt-dlp's) describes, if any."""
    for pattern, kind in MESSAGE_PATTERNS:
        if pattern.search(text or ""):
            return kind
    return None


def describe(exc: OSError) -> str:
    """One line: the path, what the system said and what to do about it."""
    reason = exc.strerror or type(exc).__name__
    advice = _ADVICE.get(exc.errno or -1, "check the path and its permissions")
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths) if paths else "a file or directory"
    return f"cannot use {where}: {reason}; {advice}"


def check_writable(path: Path, variable: str) -> None:
    """Create ``path`` if needed and prove a file can be written there, or stop with one line.

    Called at start-up for the data and media directories: a daemon that
    cannot write them would only fail every job, later and less clearly.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".find-write-check-", dir=path)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise SettingsError(
            f"{variable}={path} is not writable ({describe(exc)}); "
            f"fix it or point {variable} at a writable directory"
        ) from None
