"""Hamming range search over PDQ hashes: multi-index hashing (MIH), exact, in numpy.

A bank of 100,000 frame hashes is searched for every analysed video (about
one hash per second of it).  Comparing each query hash with every bank hash
costs ``queries x bank`` popcounts and grows with the bank; this index does
not look at most of the bank at all.

How: each 256-bit hash is cut into 16 words of 16 bits.  If two hashes differ
in at most ``D`` bits, then by the pigeonhole principle at least one of the 16
words differs in at most ``D // 16`` bits (with ``D = 31``: at most 1 bit; if
every word differed in 2 or more, the hashes would differ in 32 or more).
So for each word position the index keeps the bank's words sorted, and a
query looks up, per position, its own word and the words within ``D // 16``
bits of it (17 values for D = 31) with binary search.  The rows found this
way are the only *candidates*; their full distance is then computed exactly.
No hash within ``D`` can be missed, so results equal brute force.

This is the scheme of Norouzi et al. (multi-index hashing) and of FAISS's
``IndexBinaryMultiHash``, which ThreatExchange uses for PDQ; done in numpy it
needs no new native dependency.  Candidates per query grow with bank size
times ``17 x 16 / 65536`` for random hashes (about 400 rows of 100,000),
more for banks full of near-identical frames, which then also match.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

WORDS = 16
WORD_BITS = 16


def _flip_masks(radius: int) -> np.ndarray:
    """All 16-bit masks with at most ``radius`` bits set (0 first)."""
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(WORD_BITS), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint16)


@dataclass(frozen=True)
class Hits:
    """Pairs (query row, bank row) within the distance, with the distance."""

    query: np.ndarray
    row: np.ndarray
    distance: np.ndarray


class HashIndex:
    """Exact Hamming range search over ``(N, 32)`` uint8 hashes."""

    def __init__(self, hashes: np.ndarray) -> None:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint8).reshape(-1, 32)
        self.size = len(hashes)
        self._packed = hashes.view(">u8").reshape(self.size, 4)
        words = hashes.view(">u2").reshape(self.size, WORDS)
        self._order = [np.argsort(words[:, j], kind="stable") for j in range(WORDS)]
        self._sorted = [words[self._order[j], j] for j in range(WORDS)]

    def search(self, queries: np.ndarray, distance: int) -> Hits:
        """Every (query, bank row) pair whose PDQ distance is at most ``distance``."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, 32)
        empty = np.zeros(0, dtype=np.int64)
        if self.size == 0 or len(queries) == 0:
            return Hits(empty, empty, empty)
        masks = _flip_masks(max(0, distance) // WORDS)
        qwords = queries.view(">u2").reshape(len(queries), WORDS)
        found_q, found_r = [], []
        for j in range(WORDS):
            probes = (qwords[:, j, None] ^ masks[None, :]).ravel()
            left = np.searchsorted(self._sorted[j], probes, side="left")
            right = np.searchsorted(self._sorted[j], probes, side="right")
            counts = right - left
            total = int(counts.sum())
            if total == 0:
                continue
            # positions left..right-1 of every probe, flattened without a Python loop
            starts = np.repeat(left - np.cumsum(counts) + counts, counts)
            positions = starts + np.arange(total)
            found_r.append(self._order[j][positions].astype(np.int64))
            found_q.append(np.repeat(np.arange(len(probes), dtype=np.int64) // len(masks), counts))
        if not found_r:
            return Hits(empty, empty, empty)
        keys = np.unique(np.concatenate(found_q) * self.size + np.concatenate(found_r))
        q_rows, b_rows = np.divmod(keys, self.size)
        qp = queries.view(">u8").reshape(len(queries), 4)
        dist = np.bitwise_count(qp[q_rows] ^ self._packed[b_rows]).sum(axis=1)
        keep = dist <= distance
        return Hits(q_rows[keep], b_rows[keep], dist[keep].astype(np.int64))

    def brute_force(self, queries: np.ndarray, distance: int) -> Hits:
        """The same answer by comparing with every row (the bench's baseline and the tests')."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, 32)
        qp = queries.view(">u8").reshape(len(queries), 4)
        q_idx, r_idx, d_all = [], [], []
        for i in range(len(qp)):
            dist = np.bitwise_count(self._packed ^ qp[i]).sum(axis=1)
            rows = np.nonzero(dist <= distance)[0]
            q_idx.append(np.full(len(rows), i))
            r_idx.append(rows)
            d_all.append(dist[rows])
        if not q_idx:
            empty = np.zeros(0, dtype=np.int64)
            return Hits(empty, empty, empty)
        return Hits(
            np.concatenate(q_idx).astype(np.int64),
            np.concatenate(r_idx).astype(np.int64),
            np.concatenate(d_all).astype(np.int64),
        )
