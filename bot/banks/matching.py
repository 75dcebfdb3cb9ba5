"""Re-upload matching: is a new video's content already in a bank?

Lookups go through an in-memory :class:`~bot.banks.hashindex.HashIndex` per process
(:class:`Matcher`), reloaded when the bank tables change, so every worker sees a
confirmation made on the web page at its next video.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.banks import vpdq
from bot.banks.entries import (
    FACE,
    FAKE,
    FRAME,
)
from bot.banks.hashindex import HashIndex
from bot.logs import log_event
from bot.store import BankEntry, BankHash, Video

log = logging.getLogger("find.banks")


#: A re-flag of a dismissed video is suppressed only up to its old score plus this.
SUPPRESS_SCORE_MARGIN = 0.1


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
