"""Banks in and out of FIND: JSON lines (``find-bank/1``) and a ThreatExchange-style CSV.

A file is parsed and checked whole (``BankError`` names the file and line) before
anything is imported; hashes travel as PDQ/vPDQ signals, never as media.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.banks import vpdq
from bot.banks.entries import (
    BANKS,
    FACE,
    FRAME,
    BankError,
    add_entry,
)
from bot.logs import log_event
from bot.store import BankEntry, BankHash

log = logging.getLogger("find.banks")


JSONL_FORMAT = "find-bank/1"

CSV_FIELDS = ("signal_type", "signal", "bank", "content_id", "title", "source", "note", "added_at")


def export_bank(session: Session, out: IO[str], fmt: str, bank: str | None = None) -> int:
    """Write entries as JSON lines (ours, complete) or ThreatExchange-style CSV; return count.

    CSV rows are ``signal_type,signal,...``: a ``vpdq`` row per entry whose
    signal is ThreatExchange's vPDQ serialisation (a JSON list of
    ``"hex,quality,timestamp"``), and a ``pdq`` row per face hash (64 hex).
    """
    if fmt not in ("jsonl", "csv"):
        raise BankError(f"bank format {fmt!r} is not one of jsonl, csv")
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    query = select(BankEntry).order_by(BankEntry.id)
    if bank:
        query = query.where(BankEntry.bank == bank)
    for entry in session.scalars(query.execution_options(yield_per=100)):
        frames = [_feature(h) for h in entry.hashes if h.kind == FRAME]
        faces = [_feature(h) for h in entry.hashes if h.kind == FACE]
        meta = {
            "bank": entry.bank,
            "content_id": entry.content_id,
            "title": entry.title,
            "source": entry.source,
            "note": entry.note,
            "added_at": entry.created_at.isoformat(),
        }
        if writer is None:
            row = {"format": JSONL_FORMAT, **meta, "youtube_id": entry.youtube_id}
            row["vpdq"] = [f.to_vpdq() for f in frames]
            row["faces"] = [f.to_vpdq() for f in faces]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer.writerow(
                {**meta, "signal_type": "vpdq", "signal": json.dumps([f.to_vpdq() for f in frames])}
            )
            for face in faces:
                writer.writerow({**meta, "signal_type": "pdq", "signal": face.hash})
        count += 1
    return count


def _feature(h: BankHash) -> vpdq.Feature:
    return vpdq.Feature(h.hash, h.quality, h.t or 0.0)


@dataclass
class ImportedEntry:
    bank: str
    content_id: str
    title: str | None = None
    youtube_id: str | None = None
    note: str | None = None
    added_at: datetime | None = None
    frames: list[vpdq.Feature] = field(default_factory=list)
    faces: list[vpdq.Feature] = field(default_factory=list)


@dataclass(frozen=True)
class ImportSummary:
    added: int
    skipped: int
    hashes: int


def read_bank_file(path: Path, default_bank: str | None = None) -> list[ImportedEntry]:
    """Parse and check a whole bank file first; ``BankError`` names the file and line."""
    text = path.read_text(encoding="utf-8")
    first = text.lstrip()[:1]
    entries = (
        _read_jsonl(path, text, default_bank)
        if first == "{"
        else _read_csv(path, text, default_bank)
    )
    if not entries:
        raise BankError(
            f"{path}: no bank entries found (expected JSON lines or a CSV with a "
            "signal_type,signal header)"
        )
    return entries


def _bank_of(path: Path, where: str, value: str | None, default: str | None) -> str:
    bank = (value or default or "").strip()
    if bank not in BANKS:
        raise BankError(
            f"{path}:{where}: bank {bank or '(none)'!r} is not one of {', '.join(BANKS)}; "
            "pass --bank fake or --bank benign for files that do not say"
        )
    return bank


def _read_jsonl(path: Path, text: str, default_bank: str | None) -> list[ImportedEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            entry = ImportedEntry(
                bank=_bank_of(path, str(number), row.get("bank"), default_bank),
                content_id=str(row.get("content_id") or "").strip(),
                title=row.get("title"),
                youtube_id=row.get("youtube_id"),
                note=row.get("note"),
                added_at=_when(row.get("added_at")),
                frames=[vpdq.Feature.from_vpdq(s) for s in row.get("vpdq") or []],
                faces=[vpdq.Feature.from_vpdq(s) for s in row.get("faces") or []],
            )
        except BankError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise BankError(
                f"{path}:{number}: not a bank entry ({exc}); fix or remove the line"
            ) from None
        if not entry.content_id or not entry.frames:
            raise BankError(f"{path}:{number}: an entry needs a content_id and vpdq hashes")
        entries.append(entry)
    return entries


def _read_csv(path: Path, text: str, default_bank: str | None) -> list[ImportedEntry]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"signal_type", "signal"} <= set(reader.fieldnames):
        raise BankError(
            f"{path}: not a bank file: JSON lines, or a CSV whose header has signal_type and signal"
        )
    entries: dict[str, ImportedEntry] = {}
    for number, row in enumerate(reader, start=2):
        where = f"{path}:{number}"
        kind = (row.get("signal_type") or "").strip().lower()
        signal = (row.get("signal") or "").strip()
        content_id = (row.get("content_id") or "").strip() or f"{kind}:{signal[:64]}"
        entry = entries.get(content_id)
        if entry is None:
            entry = entries[content_id] = ImportedEntry(
                bank=_bank_of(path, str(number), row.get("bank"), default_bank),
                content_id=content_id,
                title=row.get("title") or None,
                note=row.get("note") or None,
                added_at=_when(row.get("added_at")),
            )
        try:
            if kind == "vpdq":
                entry.frames += [vpdq.Feature.from_vpdq(s) for s in json.loads(signal)]
            elif kind == "pdq":
                entry.faces.append(vpdq.Feature(vpdq.check_hex(signal), 100, 0.0))
            else:
                raise ValueError(f"signal type {kind!r} is not vpdq or pdq")
        except (ValueError, TypeError) as exc:
            raise BankError(f"{where}: bad signal ({exc}); fix or remove the row") from None
    for entry in entries.values():
        if not entry.frames:  # a lone image hash: treat it as a one-frame video
            entry.frames, entry.faces = entry.faces, []
    return list(entries.values())


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    from bot.settings import parse_datetime

    try:
        return parse_datetime(str(value))
    except ValueError:
        return None


def import_entries(session: Session, entries: list[ImportedEntry], source: str) -> ImportSummary:
    """Add parsed entries; content ids already in a bank are skipped (and counted)."""
    known = set(session.scalars(select(BankEntry.content_id)))
    added = skipped = hashes = 0
    for entry in entries:
        if entry.content_id in known:
            skipped += 1
            continue
        add_entry(
            session,
            bank=entry.bank,
            content_id=entry.content_id,
            frames=entry.frames,
            faces=entry.faces,
            youtube_id=entry.youtube_id,
            title=entry.title,
            source=source,
            note=entry.note,
            created_at=entry.added_at,
        )
        known.add(entry.content_id)
        added += 1
        hashes += len(entry.frames) + len(entry.faces)
    log_event(log, "bank.imported", source=source, added=added, skipped=skipped, hashes=hashes)
    return ImportSummary(added, skipped, hashes)
