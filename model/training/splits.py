"""Identity-aware train/val/test splitting.

Frames of one video look alike, and so do two videos of one person; a model
tested on a person it trained on scores better than it will on YouTube.  So
splits are made over *groups*, never frames:

1. Samples sharing any identity key are merged with union-find (an FF++ fake
   ``071_054`` joins originals ``071`` and ``054``; a DFDC fake joins its
   ``original``).
2. If one component swallows more than ``max_component_fraction`` of the data
   (Celeb-DF swaps faces between nearly every pair of its 59 celebrities, so
   the union of everything is one blob), grouping falls back to each sample's
   *first* identity (the target person) and the report says so.
3. Groups are ordered by a hash of ``seed`` and their key — not by file order
   — so a split is reproducible and adding data moves few existing groups —
   and dealt out per label stratum until each held-out split reaches its
   share of samples.

Samples whose dataset fixes an official split (FF++ split JSONs, Celeb-DF's
test list) keep it; a sample's ``held_out`` names the held-out splits it may be
dealt to (real-only footage: validation, never test).  Identities that still end
up in two splits are counted in the report (``leaked_identities``) rather than
silently ignored.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from model.training.datasets import Sample

SPLITS = ("train", "val", "test")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Deterministic: the smaller key becomes the root.
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


@dataclass
class SplitResult:
    """Samples per split plus a report of how the split was made."""

    train: list[Sample] = field(default_factory=list)
    val: list[Sample] = field(default_factory=list)
    test: list[Sample] = field(default_factory=list)
    report: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> list[Sample]:
        return getattr(self, name)

    def all(self) -> list[Sample]:
        return [*self.train, *self.val, *self.test]


def group_samples(
    samples: Sequence[Sample], max_component_fraction: float = 0.5
) -> tuple[dict[str, list[Sample]], bool]:
    """Group samples by connected identities; returns (groups, used_fallback)."""
    uf = _UnionFind()
    for s in samples:
        first = s.identities[0] if s.identities else s.key
        uf.find(first)
        for other in s.identities[1:]:
            uf.union(first, other)
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[uf.find(s.identities[0] if s.identities else s.key)].append(s)
    largest = max((len(g) for g in groups.values()), default=0)
    if len(samples) < 4 or largest <= max_component_fraction * len(samples):
        return dict(groups), False
    # One blob: fall back to the primary (target) identity.
    primary: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        primary[s.identities[0] if s.identities else s.key].append(s)
    if len(primary) <= len(groups):
        return dict(groups), False
    return dict(primary), True


def _order_key(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def split_samples(
    samples: Sequence[Sample],
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    max_component_fraction: float = 0.5,
) -> SplitResult:
    """Split samples into train/val/test without sharing a group across splits.

    Fractions are of *samples* (per label stratum); a group lands in a
    held-out split only while that split is below its share by more than half
    the group's size, so tiny datasets keep their groups in training.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must leave room for training")
    result = SplitResult()
    fixed = [s for s in samples if s.split is not None]
    free = [s for s in samples if s.split is None]
    for s in fixed:
        result[s.split].append(s)

    groups, fallback = group_samples(free, max_component_fraction)
    strata: dict[str, list[tuple[str, list[Sample]]]] = defaultdict(list)
    for key, members in groups.items():
        labels = {m.label for m in members}
        held = [h for h in ("test", "val") if all(h in m.held_out for m in members)]
        stratum = "mixed" if len(labels) > 1 else f"label{labels.pop()}"
        strata[f"{stratum}:{'+'.join(held)}"].append((key, members))
    for stratum in sorted(strata):
        ordered = sorted(strata[stratum], key=lambda kv: _order_key(seed, kv[0]))
        total = sum(len(m) for _, m in ordered)
        targets = {"test": test_fraction * total, "val": val_fraction * total}
        counts = {"test": 0, "val": 0}
        held = [h for h in stratum.split(":")[1].split("+") if h]
        for _, members in ordered:
            size = len(members)
            dest = "train"
            for split in held:
                if counts[split] + size / 2 < targets[split]:
                    dest = split
                    counts[split] += size
                    break
            result[dest].extend(members)

    for split in SPLITS:
        result[split].sort(key=lambda s: s.key)
    result.report = split_report(result, fallback=fallback, seed=seed)
    return result


def split_report(result: SplitResult, *, fallback: bool, seed: int) -> dict:
    """Counts per split and label, and identities that appear in several splits."""
    where: dict[str, set[str]] = defaultdict(set)
    report: dict = {"seed": seed, "grouping_fallback": fallback, "splits": {}}
    for split in SPLITS:
        members = result[split]
        labels = Counter("fake" if s.is_fake else "real" for s in members)
        report["splits"][split] = {
            "samples": len(members),
            "videos": len({s.video_id for s in members}),
            "real": labels["real"],
            "fake": labels["fake"],
        }
        for s in members:
            for identity in s.identities:
                where[identity].add(split)
    report["leaked_identities"] = sorted(i for i, splits in where.items() if len(splits) > 1)
    return report
