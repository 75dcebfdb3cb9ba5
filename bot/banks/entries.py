"""Bank entries: what each bank holds, and how a reviewer's decision moves a video between banks.

An entry is a video (or an imported signal) with its frame and face hashes. A
decision calls :func:`record_decision` inside its own transaction, so the video's
hashes land in the bank its new state calls for, and a reversed decision moves them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.banks import vpdq
from bot.errors import FindError
from bot.logs import log_event
from bot.store import (
    SUBMISSION_KEY_PREFIX,
    BankEntry,
    BankHash,
    Video,
    VideoFingerprint,
    VideoState,
    utcnow,
)

log = logging.getLogger("find.banks")


FAKE = "fake"

BENIGN = "benign"

BANKS = (FAKE, BENIGN)

#: The bank a decision puts its video in.
BANK_OF_DECISION = {VideoState.CONFIRMED.value: FAKE, VideoState.DISMISSED.value: BENIGN}

FRAME = "frame"

FACE = "face"


class BankError(FindError):
    """A bank request that cannot be carried out (bad file, unknown entry...)."""


def content_id_for(youtube_id: str) -> str:
    """``youtube:<id>`` for a YouTube video, ``submission:sub-<hex>`` for a submitted one."""
    if youtube_id.startswith(SUBMISSION_KEY_PREFIX):
        return f"submission:{youtube_id}"
    return f"youtube:{youtube_id}"


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
