"""Which media store holds a video's file, when workers on several hosts share one database.

Each ``FIND_MEDIA_DIR`` has an id, kept in the directory itself (``.find-media-host``,
``<hostname>-<8 hex>``, made by the first worker that uses it).  The id follows the
directory, not the process: a restarted worker finds its files again, two daemons on one
machine with two media directories are two stores, and a directory mounted on every host
(NFS) is one store seen by all of them.

* the download stage records the id in ``videos.media_host``;
* each daemon writes it in its ``workers`` row at every heartbeat;
* the analyse stage claims only videos whose store is its own (or with no store recorded:
  files from before this existed), unless ``FIND_MEDIA_SHARED=true`` says every worker sees
  the same files;
* a store no daemon has reported for longer than the lease (``FIND_LEASE``) is gone: its
  downloaded videos go back to ``new`` to be downloaded again where a worker is alive
  (:meth:`bot.queue.WorkQueue.release_gone_media`).
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from pathlib import Path

MEDIA_HOST_FILE = ".find-media-host"
#: What an id may look like (it is shown by ``status`` and written to the database).
_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def media_host_id(media_dir: Path) -> str:
    """The id of the media store at ``media_dir``, made (atomically) on first use.

    Raises ``OSError`` when the directory cannot be read or written: the caller's
    start-up check (or host-fault handling) reports it.
    """
    path = media_dir / MEDIA_HOST_FILE
    for _ in range(3):
        existing = _read(path)
        if (valid := _valid(existing)) is not None:
            return valid
        media_dir.mkdir(parents=True, exist_ok=True)
        host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:150] or "host"
        new = f"{host}-{uuid.uuid4().hex[:8]}"
        tmp = media_dir / f".{MEDIA_HOST_FILE}.{os.getpid()}.tmp"
        tmp.write_text(new + "\n", encoding="ascii")
        if existing is not None:  # damaged: replace it
            os.replace(tmp, path)
            return new
        try:
            os.link(tmp, path)  # the first starter wins; the others read its id
        except FileExistsError:
            continue
        finally:
            tmp.unlink(missing_ok=True)
        return new
    raise OSError(f"{path}: cannot settle on a media store id (is something rewriting it?)")


def existing_media_host_id(media_dir: Path) -> str | None:
    """The id of the media store at ``media_dir`` if a worker ever made one, else ``None``
    (never creates it: a process without workers, such as ``--role scheduler``, has no store
    of its own)."""
    try:
        return _valid(_read(media_dir / MEDIA_HOST_FILE))
    except OSError:
        return None


def _valid(text: str | None) -> str | None:
    """``text`` when it is a store id; ``None`` for no file or a damaged one."""
    return text if text is not None and _ID_RE.fullmatch(text) else None


def _read(path: Path) -> str | None:
    """The file's text, stripped; ``None`` when there is no file."""
    try:
        return path.read_bytes().decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
