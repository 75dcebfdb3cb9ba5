"""The talking-heads set is split by person and by generator, never by clip (issue 29).

Data-marked: reads ``../shared/data/talking-heads`` (skips without it).  The fold test
needs no crops: the folds are made from the samples' identities alone.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from model.training.cache import CacheItem
from model.training.datasets import detect_format, load_dataset, person_of
from model.training.probe import generator_folds
from model.training.splits import split_samples

pytestmark = pytest.mark.data


@pytest.fixture
def talking_heads(shared_data):
    root = shared_data / "talking-heads"
    if not root.is_dir():
        pytest.skip(f"{root} not found (see ../shared/data/MANIFEST.md)")
    return root


def _keys(sample) -> set[str]:
    return set(sample.identities)


def test_the_loader_reads_every_clip_with_its_person_and_generator(talking_heads):
    assert detect_format(talking_heads) == "talkingheads"
    samples = load_dataset(talking_heads)
    fakes = [s for s in samples if s.is_fake]
    assert (len(samples), len(fakes)) == (72, 30)
    assert len({s.method for s in fakes}) == 15
    # Every fake carries its generator as a split identity; reals only their person.
    assert all(any(i.startswith("th-method:") for i in s.identities) for s in fakes)
    assert not any(
        i.startswith("th-method:") for s in samples if not s.is_fake for i in s.identities
    )
    # One person across the suffixes that name what was done with their clips.
    assert person_of("roop_car_woman_swapped") == person_of("roop_car_woman_target")
    people = defaultdict(set)
    for s in samples:
        people[s.identities[0]].add(s.label)
    assert people["th:Theresa_May"] == {0, 1}  # real beside SyncTalk/GeneFace fakes


def test_splits_never_share_a_person_or_a_generator(talking_heads):
    samples = load_dataset(talking_heads)
    result = split_samples(samples, val_fraction=0.25, test_fraction=0.25, seed=0)
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for sample in result[split]:
            for key in _keys(sample):
                assert seen.setdefault(key, split) == split, f"{key} in {seen[key]} and {split}"
    assert len(result["train"]) + len(result["val"]) + len(result["test"]) == 72


def test_leave_one_generator_out_folds_hold_out_whole_people_and_generators(talking_heads):
    items = [
        CacheItem(sample=s, status="ok", crops_path=talking_heads, faces=[])
        for s in load_dataset(talking_heads)
    ]
    folds = generator_folds(items)
    covered = sorted(i for members in folds.values() for i in members)
    assert covered == list(range(len(items)))  # every clip held out exactly once
    generators = {s.sample.method for s in items if s.sample.label == 1}
    named = {g for name in folds for g in name.split(" & ")}
    assert named == generators
    for name, members in folds.items():
        held = set(members)
        held_keys = set().union(*(_keys(items[i].sample) for i in held))
        for i, item in enumerate(items):
            if i not in held:
                assert not (_keys(item.sample) & held_keys), f"fold {name} leaks {item.sample.key}"
        # Each fold holds out some real people as well as its generator's fakes.
        assert {items[i].sample.label for i in held} == {0, 1}
