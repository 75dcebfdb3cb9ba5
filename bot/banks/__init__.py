"""Banks of known videos, and re-upload matching against them.

Two banks, both in the database (``bank_entries`` + ``bank_hashes``):

* ``fake``: deepfakes a reviewer confirmed (or a team imported).  A new video
  whose frames are found in one is flagged at once, before the model runs,
  with the matched video as its evidence.
* ``benign``: false alarms a reviewer dismissed.  A new video found in one is
  recorded, and if the model flags it again the flag is suppressed, but only
  when it scores no higher than the dismissed video did (plus
  ``SUPPRESS_SCORE_MARGIN``): a face swap made *from* a dismissed real video
  has the same frames around a different face, and must still reach a
  reviewer.  (Face crops are compared too and recorded, but PDQ of a talking
  face changes too fast between frames for the evidence crops of two copies,
  taken at different moments, to decide anything.)

A reviewer's decision moves the video's hashes into the bank its state calls
for (:func:`record_decision`, inside the decision's transaction), so a
reversed decision moves it across.  Lookups go through an in-memory
:class:`~bot.banks.hashindex.HashIndex` per process (:class:`Matcher`), reloaded
when the bank tables change, so every worker sees a confirmation made on the
web page at its next video.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.banks import vpdq
from bot.banks.hashindex import HashIndex
from bot.errors import FindError
from bot.logs import log_event
from bot.store import BankEntry, BankHash, Video, VideoFingerprint, VideoState, utcnow

log = logging.getLogger("find.banks")

FAKE = "fake"
BENIGN = "benign"
BANKS = (FAKE, BENIGN)
#: The bank a decision puts its video in.
BANK_OF_DECISION = {VideoState.CONFIRMED.value: FAKE, VideoState.DISMISSED.value: BENIGN}
FRAME = "frame"
FACE = "face"
#: A re-flag of a dismissed video is suppressed only up to its old score plus this.
SUPPRESS_SCORE_MARGIN = 0.1
JSONL_FORMAT = "find-bank/1"
CSV_FIELDS = ("signal_type", "signal", "bank", "content_id", "title", "source", "note", "added_at")


class BankError(FindError):
    """A bank request that cannot be carried out (bad file, unknown entry...)."""


def content_id_for(youtube_id: str) -> str:
    return f"youtube:{youtube_id}"


# ------------------------------------------------------------------ fingerprints


def fingerprint_record(video_hash: vpdq.VideoHash) -> list[list[Any]]:
    """``VideoFingerprint.frames`` (or ``bank_frames``): ``[t, hex, quality]`` per hashed frame."""
    return [[f.t, f.hash, f.quality] for f in video_hash.features]


def frame_features(frames: Iterable[Any]) -> list[vpdq.Feature]:
    return [vpdq.Feature(str(h), int(q), float(t)) for t, h, q in frames]


def face_features(faces: Iterable[dict[str, Any]]) -> list[vpdq.Feature]:
    return [
        vpdq.Feature(str(f["hash"]), int(f["quality"]), float(f.get("t") or 0.0)) for f in faces
    ]


def latest_fingerprint(session: Session, video_id: int) -> VideoFingerprint | None:
    return session.scalars(
        select(VideoFingerprint)
        .where(VideoFingerprint.video_id == video_id)
        .order_by(VideoFingerprint.id.desc())
        .limit(1)
    ).first()


# ------------------------------------------------------------------ entries


@dataclass(frozen=True)
class EntryInfo:
    id: int
    bank: str
    content_id: str
    youtube_id: str | None
    title: str | None
    source: str
    added_by: str | None
    note: str | None
    created_at: datetime
    frames: int
    faces: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bank": self.bank,
            "content_id": self.content_id,
            "youtube_id": self.youtube_id,
            "title": self.title,
            "source": self.source,
            "added_by": self.added_by,
            "note": self.note,
            "created_at": self.created_at.isoformat(),
            "frames": self.frames,
            "faces": self.faces,
        }


def add_entry(
    session: Session,
    *,
    bank: str,
    content_id: str,
    frames: Iterable[vpdq.Feature],
    faces: Iterable[vpdq.Feature] = (),
    youtube_id: str | None = None,
    video_id: int | None = None,
    title: str | None = None,
    source: str,
    added_by: str | None = None,
    note: str | None = None,
    decision_id: int | None = None,
    created_at: datetime | None = None,
) -> BankEntry:
    """Insert one entry with its hashes (the caller's transaction commits it)."""
    if bank not in BANKS:
        raise BankError(f"bank {bank!r} is not one of {', '.join(BANKS)}")
    entry = BankEntry(
        bank=bank,
        content_id=content_id[:200],
        youtube_id=youtube_id,
        video_id=video_id,
        title=(title or "")[:500] or None,
        source=source[:200],
        added_by=added_by,
        note=note,
        decision_id=decision_id,
        created_at=created_at or utcnow(),
    )
    entry.hashes = [BankHash(kind=FRAME, hash=f.hash, quality=f.quality, t=f.t) for f in frames] + [
        BankHash(kind=FACE, hash=f.hash, quality=f.quality, t=f.t) for f in faces
    ]
    session.add(entry)
    session.flush()
    return entry


def record_decision(
    session: Session, video: Video, decision: str, decision_id: int | None, reviewer: str
) -> str | None:
    """Put a decided video's hashes in the bank its decision calls for; return the bank.

    Runs inside the decision's transaction.  A video already in the other bank
    (a reversed decision) is moved; one without a fingerprint (analysed before
    hashing existed, or undecodable) is left out and ``None`` returned.
    """
    bank = BANK_OF_DECISION.get(decision)
    if bank is None:
        return None
    content_id = content_id_for(video.youtube_id)
    existing = session.scalars(select(BankEntry).where(BankEntry.content_id == content_id)).first()
    if existing is not None and existing.bank == bank:
        return bank
    fingerprint = latest_fingerprint(session, video.id)
    frames = (fingerprint.bank_frames or fingerprint.frames) if fingerprint is not None else None
    if fingerprint is None or not frames:
        if existing is not None:  # a reversal must not leave it in the wrong bank
            session.delete(existing)
        return None
    if existing is not None:
        session.delete(existing)
        session.flush()
    add_entry(
        session,
        bank=bank,
        content_id=content_id,
        frames=frame_features(frames),
        faces=face_features(fingerprint.faces or []),
        youtube_id=video.youtube_id,
        video_id=video.id,
        title=video.title,
        source="review",
        added_by=reviewer,
        decision_id=decision_id,
    )
    log_event(log, "bank.added", video=video.youtube_id, bank=bank, source="review")
    return bank


def list_entries(session: Session, bank: str | None = None) -> list[EntryInfo]:
    counts = (
        select(
            BankHash.entry_id,
            func.sum(case((BankHash.kind == FRAME, 1), else_=0)).label("frames"),
            func.sum(case((BankHash.kind == FACE, 1), else_=0)).label("faces"),
        )
        .group_by(BankHash.entry_id)
        .subquery()
    )
    query = (
        select(BankEntry, counts.c.frames, counts.c.faces)
        .outerjoin(counts, counts.c.entry_id == BankEntry.id)
        .order_by(BankEntry.id)
    )
    if bank:
        query = query.where(BankEntry.bank == bank)
    return [
        EntryInfo(
            id=e.id,
            bank=e.bank,
            content_id=e.content_id,
            youtube_id=e.youtube_id,
            title=e.title,
            source=e.source,
            added_by=e.added_by,
            note=e.note,
            created_at=e.created_at,
            frames=int(frames or 0),
            faces=int(faces or 0),
        )
        for e, frames, faces in session.execute(query)
    ]


def find_entry(session: Session, key: str) -> BankEntry:
    """An entry by content id, YouTube id or numeric id; ``BankError`` naming the key if none."""
    key = key.strip()
    query = select(BankEntry).where(
        (BankEntry.content_id == key)
        | (BankEntry.content_id == content_id_for(key))
        | (BankEntry.youtube_id == key)
    )
    entry = session.scalars(query.limit(1)).first()
    if entry is None and key.isdigit():
        entry = session.get(BankEntry, int(key))
    if entry is None:
        raise BankError(f"no bank entry {key!r}: `find-bot bank list` shows the entries")
    return entry


def remove_entry(session: Session, key: str) -> EntryInfo:
    entry = find_entry(session, key)
    info = next(e for e in list_entries(session) if e.id == entry.id)
    session.delete(entry)
    log_event(log, "bank.removed", bank=info.bank, content_id=info.content_id)
    return info


# ------------------------------------------------------------------ export / import


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


# ------------------------------------------------------------------ matching


@dataclass(frozen=True)
class Match:
    """A bank entry the new video was found in."""

    entry_id: int
    bank: str
    content_id: str
    youtube_id: str | None
    title: str | None
    comparison: vpdq.Comparison

    @property
    def query_share(self) -> float:
        return self.comparison.query_share

    @property
    def bank_share(self) -> float:
        return self.comparison.other_share


@dataclass
class _Snapshot:
    """The frame hashes of every bank entry, indexed; rebuilt when the tables change."""

    stamp: tuple[int, int, int, int]
    rows: np.ndarray  # bank_hashes.id of each indexed hash
    entries: np.ndarray  # entry id of each indexed hash
    bits: np.ndarray  # (N, 32) uint8
    index: HashIndex
    meta: dict[int, tuple[str, str, str | None, str | None]]  # entry -> bank, content, yt, title
    totals: dict[int, int]  # entry -> distinct usable frame hashes


class Matcher:
    """Looks fingerprints up in both banks; one per process, shared by its threads."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        distance: int = vpdq.DISTANCE_THRESHOLD,
        share: float = vpdq.QUERY_MATCH_SHARE,
        quality: int = vpdq.QUALITY_THRESHOLD,
    ) -> None:
        self.sessions = sessions
        self.distance, self.share, self.quality = distance, share, quality
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        #: Seconds the last refresh took (0 when the snapshot was current), for the bench.
        self.last_refresh_s = 0.0

    def _stamp(self, session: Session) -> tuple[int, int, int, int]:
        hashes = session.execute(
            select(func.count(BankHash.id), func.max(BankHash.id)).where(BankHash.kind == FRAME)
        ).one()
        entries = session.execute(select(func.count(BankEntry.id), func.max(BankEntry.id))).one()
        return (
            int(hashes[0] or 0),
            int(hashes[1] or 0),
            int(entries[0] or 0),
            int(entries[1] or 0),
        )

    def refresh(self) -> _Snapshot:
        """The current snapshot: reused while nothing changed, extended when rows were only
        appended, rebuilt otherwise (a removal or a moved entry)."""
        import time

        with self._lock, self.sessions() as session:
            started = time.perf_counter()
            stamp = self._stamp(session)
            old = self._snapshot
            if old is not None and old.stamp == stamp:
                self.last_refresh_s = 0.0
                return old
            hash_query = select(BankHash.id, BankHash.entry_id, BankHash.hash).where(
                BankHash.kind == FRAME, BankHash.quality >= self.quality
            )
            appended = (
                old is not None
                and stamp[1] >= old.stamp[1]
                and stamp[0] - old.stamp[0]
                == session.scalar(
                    select(func.count(BankHash.id)).where(
                        BankHash.kind == FRAME, BankHash.id > old.stamp[1]
                    )
                )
                and stamp[2] - old.stamp[2]
                == session.scalar(
                    select(func.count(BankEntry.id)).where(BankEntry.id > old.stamp[3])
                )
            )
            if appended:
                assert old is not None
                new_rows = session.execute(hash_query.where(BankHash.id > old.stamp[1])).all()
                meta = dict(old.meta)
                meta.update(self._meta(session, BankEntry.id > old.stamp[3]))
                rows = np.concatenate([old.rows, np.array([r[0] for r in new_rows], np.int64)])
                entries = np.concatenate(
                    [old.entries, np.array([r[1] for r in new_rows], np.int64)]
                )
                new_bits = vpdq.to_bits(r[2] for r in new_rows)
                bits = np.concatenate([old.bits, new_bits])
                # New hashes belong to new entries (add_entry writes an entry with its hashes).
                totals = {
                    **old.totals,
                    **_distinct_per_entry(entries[len(old.entries) :], new_bits),
                }
            else:
                all_rows = session.execute(hash_query.order_by(BankHash.id)).all()
                meta = self._meta(session, None)
                rows = np.array([r[0] for r in all_rows], np.int64)
                entries = np.array([r[1] for r in all_rows], np.int64)
                bits = vpdq.to_bits(r[2] for r in all_rows)
                totals = _distinct_per_entry(entries, bits)
            self._snapshot = _Snapshot(stamp, rows, entries, bits, HashIndex(bits), meta, totals)
            self.last_refresh_s = time.perf_counter() - started
            log_event(
                log,
                "bank.index_loaded",
                hashes=len(rows),
                entries=len(meta),
                incremental=bool(appended),
                seconds=round(self.last_refresh_s, 3),
            )
            return self._snapshot

    @staticmethod
    def _meta(session: Session, where: Any) -> dict[int, tuple[str, str, str | None, str | None]]:
        query = select(
            BankEntry.id,
            BankEntry.bank,
            BankEntry.content_id,
            BankEntry.youtube_id,
            BankEntry.title,
        )
        if where is not None:
            query = query.where(where)
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in session.execute(query)}

    def lookup(
        self, features: Iterable[vpdq.Feature], exclude_youtube_id: str | None = None
    ) -> list[Match]:
        """Bank entries holding at least ``share`` of the video's distinct usable frames.

        Best first: the fake bank before the benign one, then by share.  The
        video's own entry (a re-analysed decided video) is never a match.
        """
        query = vpdq.usable(features, self.quality)
        if not query:
            return []
        snap = self.refresh()
        hits = snap.index.search(vpdq.to_bits(query), self.distance)
        if len(hits.query) == 0:
            return []
        entry_of_hit = snap.entries[hits.row]
        matches = []
        for entry_id in np.unique(entry_of_hit):
            mine = entry_of_hit == entry_id
            matched_query = len(np.unique(hits.query[mine]))
            if matched_query / len(query) < self.share:
                continue
            bank, content_id, youtube_id, title = snap.meta.get(
                int(entry_id), ("?", "?", None, None)
            )
            if exclude_youtube_id and youtube_id == exclude_youtube_id:
                continue
            matched_bits = snap.bits[hits.row[mine]]
            matched_entry = len({row.tobytes() for row in matched_bits})
            comparison = vpdq.Comparison(
                matched_query,
                len(query),
                matched_entry,
                snap.totals.get(int(entry_id), matched_entry),
            )
            matches.append(Match(int(entry_id), bank, content_id, youtube_id, title, comparison))
        matches.sort(key=lambda m: (m.bank != FAKE, -m.query_share, -m.bank_share))
        return matches

    def entry_score(self, entry_id: int) -> float | None:
        """The model score of a banked video decided here (None: imported, or never scored)."""
        with self.sessions() as session:
            return session.scalar(
                select(Video.score)
                .join(BankEntry, BankEntry.video_id == Video.id)
                .where(BankEntry.id == entry_id)
            )

    def faces_match(self, entry_id: int, faces: Iterable[vpdq.Feature]) -> tuple[int, int] | None:
        """(face crops of the new video found among the entry's, crops compared), or ``None``
        when either side has no usable face hash to compare."""
        mine = vpdq.usable(faces, self.quality)
        with self.sessions() as session:
            theirs = list(
                session.scalars(
                    select(BankHash.hash).where(
                        BankHash.entry_id == entry_id,
                        BankHash.kind == FACE,
                        BankHash.quality >= self.quality,
                    )
                )
            )
        if not mine or not theirs:
            return None
        result = vpdq.compare(mine, list(dict.fromkeys(theirs)), self.distance)
        return result.query_matched, result.query_total


def _distinct_per_entry(entries: np.ndarray, bits: np.ndarray) -> dict[int, int]:
    """Distinct hashes per entry (vPDQ compares bags of distinct hashes), vectorised."""
    if len(entries) == 0:
        return {}
    rows = np.concatenate([entries.astype(">i8").view(np.uint8).reshape(-1, 8), bits], axis=1)
    unique = np.unique(np.ascontiguousarray(rows).view(f"V{rows.shape[1]}").ravel())
    ids = unique.view(np.uint8).reshape(-1, rows.shape[1])[:, :8].copy().view(">i8").ravel()
    values, counts = np.unique(ids, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))
