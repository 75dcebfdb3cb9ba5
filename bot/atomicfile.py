"""Files written whole or not at all: a temporary file beside the target, renamed over it.

Readers (the web page serving a crop, a copy to a backup) see the old file or the
complete new one, never half of it.  A write that fails, typically ENOSPC on a full
media disk, removes its temporary file instead of leaving a truncated
``.<name>.tmp`` behind (issue 30: nothing else would ever delete it).  The retention
sweep (:func:`bot.stages.retention.sweep_crops`) recognises the few such files a crash
can still leave with :func:`is_temporary`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def temporary_for(path: Path) -> Path:
    """The temporary file :func:`write_atomically` writes before renaming it to ``path``."""
    return path.with_name(f".{path.name}.tmp")


def is_temporary(name: str) -> bool:
    """Is ``name`` the name of such a temporary file (left by a crash mid-write)?"""
    return name.startswith(".") and name.endswith(".tmp") and len(name) > len("..tmp")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; on any error nothing new is left on disk."""
    tmp = temporary_for(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
