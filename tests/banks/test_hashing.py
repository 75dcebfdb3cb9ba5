"""vPDQ hashing and the multi-index hash search, on real clips and on planted hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.banks import vpdq
from bot.banks.hashindex import HashIndex


def _flip(hashes: np.ndarray, rng: np.random.Generator, max_bits: int) -> np.ndarray:
    out = hashes.copy()
    for row in out:
        for bit in rng.choice(256, int(rng.integers(0, max_bits + 1)), replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


@pytest.mark.parametrize("distance", [0, 15, 31, 40])
def test_index_finds_exactly_what_brute_force_finds(distance: int) -> None:
    rng = np.random.default_rng(distance)
    bank = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    # Near-duplicates within and just beyond the distance, plus random queries.
    near = _flip(bank[rng.choice(len(bank), 40)], rng, distance + 6)
    queries = np.concatenate([near, rng.integers(0, 256, (20, 32), dtype=np.uint8)])
    index = HashIndex(bank)
    fast = index.search(queries, distance)
    slow = index.brute_force(queries, distance)
    assert sorted(zip(fast.query.tolist(), fast.row.tolist(), strict=True)) == sorted(
        zip(slow.query.tolist(), slow.row.tolist(), strict=True)
    )
    assert len(slow.query) >= 1
    assert (fast.distance <= distance).all()


def test_empty_index_and_empty_query() -> None:
    index = HashIndex(np.zeros((0, 32), np.uint8))
    assert len(index.search(np.zeros((3, 32), np.uint8), 31).row) == 0
    full = HashIndex(np.ones((3, 32), np.uint8))
    assert len(full.search(np.zeros((0, 32), np.uint8), 31).row) == 0


def test_feature_serialisation_is_threatexchange_vpdq() -> None:
    feature = vpdq.Feature("ab" * 32, 87, 12.5)
    assert feature.to_vpdq() == f"{'ab' * 32},87,12.500"
    assert vpdq.Feature.from_vpdq(feature.to_vpdq()) == feature
    with pytest.raises(ValueError, match="not a PDQ hash"):
        vpdq.Feature.from_vpdq("abc,50,1.0")


def test_unreadable_file_gives_no_hashes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    assert vpdq.hash_video(bad).features == []


@pytest.mark.data
def test_clip_cut_from_a_longer_video_matches_it_after_reencode_and_resize(
    real_clips: dict[str, Path],
) -> None:
    banked = vpdq.hash_video(real_clips["long"], dense=True)  # what a bank keeps
    sampled = vpdq.hash_video(real_clips["long"])
    assert 30 <= len(sampled.features) <= 33, "one hash per second of a ~31 s video"
    assert len(sampled.features) < len(banked.features) < 31 * 25, "pruned, but dense"
    assert banked.duration_s == pytest.approx(31, abs=1.5) and banked.seconds > 0

    for name in ("cut", "cut30"):
        cut = vpdq.hash_video(real_clips[name])
        assert 9 <= len(cut.features) <= 11
        found = vpdq.compare(vpdq.usable(cut.features), vpdq.usable(banked.features))
        assert found.query_share >= vpdq.QUERY_MATCH_SHARE, (name, found)

    unrelated = vpdq.hash_video(real_clips["unrelated"])
    stranger = vpdq.compare(vpdq.usable(unrelated.features), vpdq.usable(banked.features))
    assert stranger.query_share < 0.2, stranger
