"""Banks in and out of FIND: JSON lines (``find-bank/1``) and a ThreatExchange-style CSV.

A file is streamed line by line within :class:`ImportLimits` and checked whole before
anything is imported: bad lines are reported (file and line, one line each: the first
``reported_problems``, then how many more) and then the whole file is refused.  Memory does
not grow with the number of bad lines, and a CSV row may not run on (an unclosed quote)
past ``line_bytes``.  Both formats carry the same fields, checked by the same code, so an
entry exported in either is imported back the same.  Hashes travel as PDQ/vPDQ signals,
never as media.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
from collections.abc import Iterator
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
from bot.terminal import from_spreadsheet_cell, json_text, spreadsheet_cell
from bot.youtube.ids import is_media_key, shown

log = logging.getLogger("find.banks")


JSONL_FORMAT = "find-bank/1"
#: ``bank_entries.content_id`` holds this many characters.
CONTENT_ID_CHARS = 200

#: The CSV columns: ThreatExchange's two, then ours (the JSON-lines fields), so either format
#: carries an entry whole.
CSV_FIELDS = (
    "signal_type",
    "signal",
    "bank",
    "content_id",
    "title",
    "source",
    "note",
    "added_at",
    "youtube_id",
)


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
            "youtube_id": entry.youtube_id,
        }
        if writer is None:
            row = {"format": JSONL_FORMAT, **meta}
            row["vpdq"] = [f.to_vpdq() for f in frames]
            row["faces"] = [f.to_vpdq() for f in faces]
            out.write(json_text(row) + "\n")
        else:  # cells as review export writes them: no live formula, no raw control character
            meta = {key: spreadsheet_cell(value) for key, value in meta.items()}
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


@dataclass(frozen=True)
class ImportLimits:
    """What one import may hold, so a hostile or broken file cannot exhaust memory.

    A real entry is one video: a 3-hour video hashed once per second is ~11,000 frame
    hashes, ~1 MB of JSON; banked flags keep denser hashes but are pruned.
    """

    #: Bytes in one line (a JSON-lines entry or a CSV row).
    line_bytes: int = 4 * 1024 * 1024
    #: Frame plus face hashes of one entry.
    hashes_per_entry: int = 50_000
    #: Hashes in the whole file (all of it is checked before anything is written).
    total_hashes: int = 2_000_000
    #: Bad lines reported one by one before the rest are only counted.
    reported_problems: int = 20
    #: Characters kept of one bad line's message (it may quote the line).
    problem_chars: int = 1000


class BankFileRejected(BankError):
    """Some lines of a bank file are bad: nothing was imported. ``problems``: one line each."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class _Problems:
    """A file's bad lines: the first ``limits.reported_problems`` messages, and how many.

    A file of millions of bad lines must cost no memory per line: only what is shown is
    kept (4 M kept messages were 806 MB).
    """

    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.shown: list[str] = []
        self.count = 0

    def append(self, message: str) -> None:
        self.count += 1
        if len(self.shown) < self.limits.reported_problems:
            self.shown.append(message[: self.limits.problem_chars])

    def __bool__(self) -> bool:
        return self.count > 0

    def report(self, path: Path) -> list[str]:
        """The kept lines, then one saying how many more there were."""
        more = self.count - len(self.shown)
        tail = [f"{path}: ... and {more} more bad line{'s' if more != 1 else ''}"] if more else []
        return self.shown + tail


class _BadLine(ValueError):
    """One bad line: the message says what is wrong with it (the caller adds file and line)."""


def read_bank_file(
    path: Path, default_bank: str | None = None, limits: ImportLimits | None = None
) -> list[ImportedEntry]:
    """Read and check a whole bank file, streaming it line by line, before anything is written.

    Bad lines are reported (``BankFileRejected.problems``, one line each, naming the file
    and line; past ``limits.reported_problems`` only counted) and then the whole file is
    refused: an import is all or nothing.
    """
    limits = limits or ImportLimits()
    problems = _Problems(limits)
    with path.open("rb") as raw:
        lines = _text_lines(path, raw, limits, problems)
        first = _first_content(lines)
        if first is None:
            entries: list[ImportedEntry] = []
        elif first[1].lstrip().startswith("{"):
            entries = _read_jsonl(path, first, lines, default_bank, limits, problems)
        else:
            entries = _read_csv(path, first, lines, default_bank, limits, problems)
    if problems:
        raise BankFileRejected(
            f"{path}: {problems.count} bad line{'s' if problems.count != 1 else ''}, nothing "
            "imported; fix or remove them and import again",
            problems.report(path),
        )
    if not entries:
        raise BankError(
            f"{path}: no bank entries found (expected JSON lines or a CSV with a "
            "signal_type,signal header)"
        )
    return entries


_Line = tuple[int, str]


def _text_lines(
    path: Path, raw: IO[bytes], limits: ImportLimits, problems: _Problems
) -> Iterator[_Line]:
    """(number, text) per line, decoded as UTF-8 (a BOM is dropped); bad lines reported here."""
    number = 0
    while True:
        data = raw.readline(limits.line_bytes + 1)
        if not data:
            return
        number += 1
        if len(data) > limits.line_bytes and not data.endswith(b"\n"):
            while data and not data.endswith(b"\n"):  # skip the rest without keeping it
                data = raw.readline(1024 * 1024)
            problems.append(
                f"{path}:{number}: longer than {limits.line_bytes} bytes; split the entry "
                "or remove the line"
            )
            continue
        if number == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                f"{path}:{number}: not UTF-8 (byte 0x{data[exc.start]:02x} at column "
                f"{exc.start + 1}); save the file as UTF-8 and import it again"
            )
            return  # the whole file is in another encoding: one line says so
        yield number, text


def _first_content(lines: Iterator[_Line]) -> _Line | None:
    for number, text in lines:
        if text.strip():
            return number, text
    return None


def _bank_of(path: Path, where: str, value: Any, default: str | None) -> str:
    if value is not None and not isinstance(value, str):
        raise _BadLine(f"bank must be a string, not {type(value).__name__}")
    bank = (value or default or "").strip()
    if bank not in BANKS:
        raise BankError(
            f"{path}:{where}: bank {bank or '(none)'!r} is not one of {', '.join(BANKS)}; "
            "pass --bank fake or --bank benign for files that do not say"
        )
    return bank


def _unguarded(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row with the ``'`` that :func:`export_bank` put before formula-like cells removed."""
    return {k: from_spreadsheet_cell(v) if isinstance(v, str) else v for k, v in row.items()}


def _text(row: dict[str, Any], key: str, limit: int) -> str | None:
    """An optional text field: a string (cut to ``limit``) or null, nothing else."""
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _BadLine(f"{key} must be a string, not {type(value).__name__}")
    return value[:limit]


def _youtube_id(row: dict[str, Any]) -> str | None:
    """The entry's video key: a YouTube id or a submission key (``sub-...``), as stored."""
    youtube_id = _text(row, "youtube_id", 16)
    if youtube_id is not None and not is_media_key(youtube_id):
        raise _BadLine(
            f"youtube_id {shown(youtube_id)!r} is not a YouTube video id or a submission key"
        )
    return youtube_id


def _content_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadLine(f"content_id must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _BadLine("an entry needs a content_id")
    if len(text) > CONTENT_ID_CHARS:
        raise _BadLine(f"content_id is longer than {CONTENT_ID_CHARS} characters")
    return text


def _features(value: Any, key: str) -> list[vpdq.Feature]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _BadLine(f'{key} must be a list of "hex,quality,timestamp" strings')
    return [vpdq.Feature.from_vpdq(s) for s in value]


def _check_size(entry: ImportedEntry, limits: ImportLimits, total: int) -> int:
    count = len(entry.frames) + len(entry.faces)
    if count > limits.hashes_per_entry:
        raise _BadLine(f"{count} hashes, more than {limits.hashes_per_entry} in one entry")
    if total + count > limits.total_hashes:
        raise _TooBig(f"more than {limits.total_hashes} hashes in the file")
    return total + count


class _TooBig(_BadLine):
    """The file as a whole is over the limit: reading stops here."""


class _RowTooLong(Exception):
    """A CSV row ran on over more than ``line_bytes`` characters: reading stops here.

    A quoted cell may span lines, so an unclosed quote swallows the rest of the file into
    one cell (an 80 MB file cost 7.9 GB and minutes before this bound).
    """


def _read_jsonl(
    path: Path,
    first: _Line,
    lines: Iterator[_Line],
    default_bank: str | None,
    limits: ImportLimits,
    problems: _Problems,
) -> list[ImportedEntry]:
    entries: list[ImportedEntry] = []
    total = 0
    for number, line in itertools.chain([first], lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise _BadLine("not a JSON object")
            if row.get("format", JSONL_FORMAT) != JSONL_FORMAT:
                raise _BadLine(f"format is not {JSONL_FORMAT}")
            entry = ImportedEntry(
                bank=_bank_of(path, str(number), row.get("bank"), default_bank),
                content_id=_content_id(row.get("content_id")),
                title=_text(row, "title", 500),
                youtube_id=_youtube_id(row),
                note=_text(row, "note", 10_000),
                added_at=_when(row.get("added_at")),
                frames=_features(row.get("vpdq"), "vpdq"),
                faces=_features(row.get("faces"), "faces"),
            )
            if not entry.frames:
                raise _BadLine("an entry needs vpdq hashes")
            total = _check_size(entry, limits, total)
        except BankError as exc:
            problems.append(str(exc))
            continue
        except _TooBig as exc:
            problems.append(f"{path}:{number}: {exc}; split the file")
            break
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            problems.append(f"{path}:{number}: not a bank entry ({exc}); fix or remove the line")
            continue
        entries.append(entry)
    return entries


def _read_csv(
    path: Path,
    first: _Line,
    lines: Iterator[_Line],
    default_bank: str | None,
    limits: ImportLimits,
    problems: _Problems,
) -> list[ImportedEntry]:
    numbered = itertools.chain([first], lines)
    where = {"line": first[0]}
    pending = {"start": first[0], "chars": 0}  # the CSV row being read: quoted cells span lines

    def texts() -> Iterator[str]:
        for number, text in numbered:
            where["line"] = number
            if not pending["chars"]:
                pending["start"] = number
            pending["chars"] += len(text)
            if pending["chars"] > limits.line_bytes:
                raise _RowTooLong(
                    f"{path}:{pending['start']}: a CSV row starting here runs on past "
                    f"{limits.line_bytes} characters (an unclosed quote?); fix its quoting "
                    "and import again (the rest of the file was not read)"
                )
            yield text

    def next_row() -> dict[str, Any]:
        pending["chars"] = 0
        return _unguarded(next(reader))

    # Long videos make long vpdq signals: allow a field as long as a line may be (texts()
    # bounds a row, and so its fields, whatever this process-wide limit is).
    csv.field_size_limit(max(csv.field_size_limit(), limits.line_bytes))
    reader = csv.DictReader(texts())
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise BankError(f"{path}: not a bank file ({exc})") from None
    except _RowTooLong as exc:
        raise BankError(str(exc)) from None
    if not fieldnames or not {"signal_type", "signal"} <= set(fieldnames):
        raise BankError(
            f"{path}: not a bank file: JSON lines, or a CSV whose header has signal_type and signal"
        )
    entries: dict[str, ImportedEntry] = {}
    total = 0
    while True:
        try:
            row = next_row()
        except StopIteration:
            break
        except _RowTooLong as exc:  # nothing after an unclosed quote can be read as rows
            problems.append(str(exc))
            break
        except csv.Error as exc:
            problems.append(f"{path}:{where['line']}: not a CSV row ({exc}); fix or remove it")
            continue
        number = where["line"]
        try:
            kind = (row.get("signal_type") or "").strip().lower()
            signal = (row.get("signal") or "").strip()
            content_id = _content_id(
                (row.get("content_id") or "").strip() or f"{kind}:{signal[:64]}"
            )
            entry = entries.get(content_id)
            if entry is None:
                entry = ImportedEntry(
                    bank=_bank_of(path, str(number), row.get("bank"), default_bank),
                    content_id=content_id,
                    title=_text(row, "title", 500),
                    youtube_id=_youtube_id(row),
                    note=_text(row, "note", 10_000),
                    added_at=_when(row.get("added_at")),
                )
            before = len(entry.frames) + len(entry.faces)
            if kind == "vpdq":
                features = json.loads(signal)
                if not isinstance(features, list):
                    raise _BadLine("a vpdq signal is a JSON list of strings")
                entry.frames += _features(features, "signal")
            elif kind == "pdq":
                entry.faces.append(vpdq.Feature(vpdq.check_hex(signal), 100, 0.0))
            else:
                raise _BadLine(f"signal type {shown(kind)!r} is not vpdq or pdq")
            added = len(entry.frames) + len(entry.faces) - before
            if len(entry.frames) + len(entry.faces) > limits.hashes_per_entry:
                raise _BadLine(
                    f"more than {limits.hashes_per_entry} hashes for {shown(content_id)!r}"
                )
            if total + added > limits.total_hashes:
                raise _TooBig(f"more than {limits.total_hashes} hashes in the file")
            total += added
            entries[content_id] = entry
        except BankError as exc:
            problems.append(str(exc))
        except _TooBig as exc:
            problems.append(f"{path}:{number}: {exc}; split the file")
            break
        except (ValueError, TypeError, RecursionError) as exc:
            problems.append(f"{path}:{number}: bad signal ({exc}); fix or remove the row")
    for entry in entries.values():
        if not entry.frames:  # a lone image hash: treat it as a one-frame video
            entry.frames, entry.faces = entry.faces, []
    return list(entries.values())


def _when(value: Any) -> datetime | None:
    """``added_at``: empty, or an ISO date (a bad one is a bad line, not silently dropped)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _BadLine(f"added_at must be an ISO date string, not {type(value).__name__}")
    from bot.settings import parse_datetime

    try:
        return parse_datetime(value)
    except ValueError:
        raise _BadLine(f"added_at {shown(value)!r} is not an ISO date") from None


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
