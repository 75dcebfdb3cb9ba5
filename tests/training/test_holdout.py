"""Holding part of a real-footage folder out of training, by person, on disk."""

from __future__ import annotations

import pytest

from model.training.datasets import load_dataset
from model.training.holdout import main, split_folder


def _people(root, count):
    for i in range(count):
        person = root / f"person_{i:02d}"
        person.mkdir(parents=True)
        (person / "neutral.jpg").write_bytes(b"jpeg")
        (person / "smiling.jpg").write_bytes(b"jpeg")
    (root / "info.csv").write_text("id,age\n")  # the set's own notes: nobody's face
    return root


def _files(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_each_person_lands_on_one_side_and_the_same_side_every_time(tmp_path):
    source = _people(tmp_path / "photos", 40)
    train, heldout = tmp_path / "train", tmp_path / "heldout"
    names = split_folder(source, train, heldout, fraction=0.5)
    assert not set(names[0]) & set(names[1])
    assert len(names[0]) + len(names[1]) == 40 and 8 <= len(names[1]) <= 32
    assert _files(train) | _files(heldout) == _files(source) - {"info.csv"}
    assert all(p.is_symlink() for p in train.rglob("*.jpg"))
    first = _files(heldout)
    assert split_folder(source, train, heldout, fraction=0.5) == names  # rebuilt, same sides
    assert _files(heldout) == first
    # A bigger share only moves people into the held-out side, never out of it.
    more = split_folder(source, train, heldout, fraction=0.8)
    assert set(names[1]) <= set(more[1])


def test_the_trees_load_as_real_footage_grouped_by_person(tmp_path):
    source = _people(tmp_path / "photos", 10)
    split_folder(source, tmp_path / "train", tmp_path / "heldout")
    samples = load_dataset(f"real:{tmp_path / 'heldout'}") + load_dataset(
        f"real:{tmp_path / 'train'}"
    )
    assert len(samples) == 20 and all(s.label == 0 for s in samples)
    assert len({s.identities for s in samples}) == 10


def test_a_folder_of_real_files_is_never_overwritten(tmp_path, capsys):
    source = _people(tmp_path / "photos", 4)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "mine.jpg").write_bytes(b"jpeg")
    with pytest.raises(SystemExit, match="not links"):
        split_folder(source, precious, tmp_path / "heldout")
    assert (precious / "mine.jpg").read_bytes() == b"jpeg"
    assert (
        main([str(source), "--train", str(tmp_path / "a"), "--held-out", str(tmp_path / "b")]) == 0
    )
    assert "identities for training" in capsys.readouterr().out


def test_a_validation_tree_takes_part_of_the_held_out_people_and_nobody_else(tmp_path, capsys):
    source = _people(tmp_path / "photos", 40)
    train, heldout, val = tmp_path / "train", tmp_path / "heldout", tmp_path / "val"
    plain = split_folder(source, train, heldout, fraction=0.5)
    names = split_folder(source, train, heldout, fraction=0.5, val=val, val_share=0.5)
    assert names == plain  # the trained-on side does not move
    people = {side: {p.name for p in side.iterdir()} for side in (train, heldout, val)}
    assert people[val] and people[heldout]
    assert people[val] | people[heldout] == set(plain[1])
    assert not people[val] & people[heldout] and not people[val] & people[train]
    assert (
        main([str(source), "--train", str(train), "--held-out", str(heldout), "--val", str(val)])
        == 0
    )
    assert f"{len(people[val])} for validation" in capsys.readouterr().out
