"""Adapted bundle versions: a folder of versioned bundles and one "active" pointer.

``find-bot model adapt`` never touches the shipped ``model/bundles/default`` nor the
bundle ``FIND_MODEL_BUNDLE`` names (the *base*).  A promoted candidate is written to
``<root>/<name>-<version>/`` (root: ``FIND_DATA_DIR/bundles``) and then the pointer
``<root>/active.json`` is replaced atomically (write a temporary file, ``os.replace``):
a reader sees the old pointer or the new one, never half of either, and the bundle it
names is complete before the pointer names it.  The pointer keeps the history of
promotions, so ``find-bot model rollback`` steps back one version without deleting any.

The pointer is only followed while it was adapted from the configured base (same
manifest name and version): an operator who sets ``FIND_MODEL_BUNDLE`` to a newly
trained bundle gets that bundle, not an adaptation of the old one.  This module is
engine-side (no database, no settings object): the daemon and the CLI pass the root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from model.bundle import BundleError, bundle_directory, read_manifest

POINTER = "active.json"


def bundles_root(data_dir: str | Path) -> Path:
    """Where adapted bundles and the pointer live for a data directory."""
    return Path(data_dir).expanduser() / "bundles"


def read_pointer(root: str | Path) -> dict[str, Any] | None:
    """The pointer's content, or None when nothing was ever promoted.

    A corrupt pointer is a ``BundleError`` (one line saying what to do), not a silent
    fall-back to the base: the operator promoted something on purpose.
    """
    path = Path(root) / POINTER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"{path}: unreadable active-bundle pointer ({exc}); fix it or remove it to use "
            "FIND_MODEL_BUNDLE"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("history"), list):
        raise BundleError(f"{path}: not an active-bundle pointer; remove it to use the base")
    return data


def _write_pointer(root: Path, data: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=root, prefix=".active-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(json.dumps(data, indent=2) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, root / POINTER)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One promotion or rollback at a time (a CLI run and the daemon's job may overlap):
    the pointer is read, changed and replaced under an exclusive ``flock``."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".pointer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _base_key(manifest: dict) -> dict[str, str]:
    return {"name": str(manifest.get("name")), "version": str(manifest.get("version"))}


def active_entry(root: str | Path, base: str | Path) -> dict[str, Any] | None:
    """The pointer's current entry if it applies to ``base`` (else None: use the base)."""
    pointer = read_pointer(root)
    if not pointer or not pointer["history"]:
        return None
    if pointer.get("base") != _base_key(read_manifest(base)):
        return None
    return pointer["history"][-1]


def active_bundle_path(root: str | Path, base: str | Path) -> Path:
    """The bundle to load: the promoted adaptation of ``base`` if any, else ``base``."""
    entry = active_entry(root, base)
    if entry is None:
        return Path(base)
    path = Path(root) / entry["dir"]
    if not (path / "manifest.json").is_file():
        raise BundleError(
            f"{Path(root) / POINTER} names {path}, which is missing: run `find-bot model "
            "rollback` or restore the folder"
        )
    return path


def pointer_stamp(root: str | Path) -> float | None:
    """A cheap change marker (the pointer's mtime): the analyser polls it between videos."""
    try:
        return (Path(root) / POINTER).stat().st_mtime_ns
    except OSError:
        return None


def promote(root: str | Path, candidate: str | Path, base: str | Path, record: dict) -> Path:
    """Make ``candidate`` (a complete bundle directory under ``root``) the active one.

    ``record`` (which decisions, when, the numbers) is kept in the pointer's history
    beside the directory name.  The previous versions stay on disk for rollback.
    """
    root = Path(root)
    candidate = Path(candidate)
    if candidate.parent.resolve() != root.resolve():
        raise ValueError(f"{candidate} must be a folder directly under {root}")
    base_key = _base_key(read_manifest(base))
    with _locked(root):
        pointer = read_pointer(root) or {"base": base_key, "history": []}
        if pointer.get("base") != base_key:  # adapted from another base before: start over
            pointer = {"base": base_key, "history": [], "earlier_base": pointer.get("base")}
        pointer["history"].append({"dir": candidate.name, **record})
        _write_pointer(root, pointer)
    return candidate


def rollback(root: str | Path, base: str | Path) -> tuple[str, str]:
    """Step back one promotion; returns (from, to) as directory names ("base" for the base).

    Nothing is deleted: the rolled-back bundle stays on disk, and the history keeps a
    ``rolled_back`` list so the provenance of every version served is still there.
    """
    root = Path(root)
    base_key = _base_key(read_manifest(base))
    pointer = read_pointer(root)
    if not pointer or not pointer["history"] or pointer.get("base") != base_key:
        raise BundleError(
            f"nothing to roll back: no adapted bundle of {base} is active (see "
            f"{root / POINTER}); the base bundle is in use"
        )
    with _locked(root):
        pointer = read_pointer(root) or {"history": []}
        if not pointer["history"]:
            raise BundleError(f"nothing to roll back: {root / POINTER} lists no version")
        gone = pointer["history"].pop()
        pointer.setdefault("rolled_back", []).append(gone)
        _write_pointer(root, pointer)
    to = pointer["history"][-1]["dir"] if pointer["history"] else "base"
    return gone["dir"], to


def active_bundle(data_dir: str | Path, base: str | Path | None) -> Path | None:
    """The bundle FIND loads for ``FIND_DATA_DIR`` and ``FIND_MODEL_BUNDLE``.

    The base itself when it is missing (the caller says so in its own words) or when no
    adaptation of it was promoted.
    """
    if base is None or not (bundle_directory(base) / "manifest.json").is_file():
        return None if base is None else Path(base)
    return active_bundle_path(bundles_root(data_dir), bundle_directory(base))
