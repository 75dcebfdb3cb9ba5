"""Identity-aware splitting: no person in two splits, reproducible, official splits kept."""

from __future__ import annotations

from pathlib import Path

from model.training.datasets import Sample
from model.training.splits import group_samples, split_samples


def sample(key: str, label: int, *identities: str, split=None) -> Sample:
    return Sample(
        key=key,
        path=Path(f"/nonexistent/{key}.mp4"),
        label=label,
        media="video",
        video_id=key,
        identities=identities,
        dataset="test",
        split=split,
    )


def ffpp_like(pairs: int) -> list[Sample]:
    """Originals 0..2n-1 and fakes a_b / b_a for pairs (2k, 2k+1)."""
    samples = []
    for k in range(pairs):
        a, b = f"{2 * k:03d}", f"{2 * k + 1:03d}"
        samples += [
            sample(a, 0, a),
            sample(b, 0, b),
            sample(f"{a}_{b}", 1, a, b),
            sample(f"{b}_{a}", 1, b, a),
        ]
    return samples


def splits_of(result) -> dict[str, str]:
    return {s.key: name for name in ("train", "val", "test") for s in result[name]}


def test_fakes_share_the_split_of_both_identities():
    result = split_samples(ffpp_like(40), val_fraction=0.2, test_fraction=0.2, seed=3)
    where = splits_of(result)
    assert len(where) == 160
    for k in range(40):
        a, b = f"{2 * k:03d}", f"{2 * k + 1:03d}"
        assert where[a] == where[b] == where[f"{a}_{b}"] == where[f"{b}_{a}"]
    assert result.report["leaked_identities"] == []
    counts = {name: result.report["splits"][name]["samples"] for name in ("train", "val", "test")}
    assert counts["val"] == counts["test"] == 32  # 20% of 160 samples, in whole groups of 4
    assert counts["train"] == 96


def test_split_is_reproducible_and_independent_of_input_order():
    samples = ffpp_like(20)
    first = splits_of(split_samples(samples, seed=7))
    again = splits_of(split_samples(list(reversed(samples)), seed=7))
    other = splits_of(split_samples(samples, seed=8))
    assert first == again
    assert first != other


def test_official_splits_are_kept():
    samples = [
        sample("a", 0, "a", split="test"),
        sample("b", 1, "b", split="train"),
        *[sample(f"r{i}", i % 2, f"r{i}") for i in range(10)],
    ]
    where = splits_of(split_samples(samples, val_fraction=0.2, test_fraction=0.2))
    assert where["a"] == "test" and where["b"] == "train"


def test_each_label_stratum_is_split_separately():
    samples = [sample(f"real{i}", 0, f"r{i}") for i in range(10)]
    samples += [sample(f"fake{i}", 1, f"f{i}") for i in range(10)]
    report = split_samples(samples, val_fraction=0.2, test_fraction=0.2).report["splits"]
    for name, n in (("train", 6), ("val", 2), ("test", 2)):
        assert report[name]["real"] == report[name]["fake"] == n


def test_one_identity_blob_falls_back_to_the_target_identity():
    # Celeb-DF-like: every fake swaps two of 6 celebrities, linking them all.
    samples = [sample(f"id{i}_real", 0, f"id{i}") for i in range(6)]
    samples += [sample(f"id{i}_id{(i + 1) % 6}", 1, f"id{i}", f"id{(i + 1) % 6}") for i in range(6)]
    groups, fallback = group_samples(samples)
    assert fallback
    assert sorted(len(g) for g in groups.values()) == [2] * 6  # real + fake of each target
    result = split_samples(samples, val_fraction=0.2, test_fraction=0.2)
    assert result.report["grouping_fallback"] is True
    where = splits_of(result)
    for i in range(6):
        assert where[f"id{i}_real"] == where[f"id{i}_id{(i + 1) % 6}"]


def test_tiny_dataset_keeps_everything_in_training():
    samples = [sample("a", 0, "a"), sample("b", 1, "b")]
    result = split_samples(samples, val_fraction=0.15, test_fraction=0.15)
    assert [s.key for s in result.train] == ["a", "b"]
