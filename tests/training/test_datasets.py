"""Dataset adapters: parsing of each layout, labels, identities and official splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.training.datasets import (
    DatasetError,
    detect_format,
    load_celebdf,
    load_dataset,
    load_dfdc,
    load_ffpp,
    load_folder,
    load_review_export,
    parse_spec,
)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def by_key(samples):
    return {s.key: s for s in samples}


# ----------------------------------------------------------------------------- folder


def test_folder_groups_images_by_subfolder_and_videos_by_file(tmp_path):
    touch(tmp_path / "real/alice/0.jpg")
    touch(tmp_path / "real/alice/1.png")
    touch(tmp_path / "real/solo.jpg")
    touch(tmp_path / "fake/clip.mp4")
    touch(tmp_path / "fake/notes.txt")  # not media: ignored
    samples = by_key(load_folder(tmp_path))
    assert set(samples) == {
        "folder:real/alice/0.jpg",
        "folder:real/alice/1.png",
        "folder:real/solo.jpg",
        "folder:fake/clip.mp4",
    }
    a0, a1 = samples["folder:real/alice/0.jpg"], samples["folder:real/alice/1.png"]
    assert a0.label == a1.label == 0 and a0.media == "image"
    assert a0.video_id == a1.video_id == "real/alice"
    assert a0.identities == a1.identities
    clip = samples["folder:fake/clip.mp4"]
    assert (clip.label, clip.media, clip.video_id) == (1, "video", "fake/clip")
    assert samples["folder:real/solo.jpg"].identities != a0.identities


def test_folder_pairs_real_and_fake_of_the_same_subfolder(tmp_path):
    touch(tmp_path / "real/p07/a.jpg")
    touch(tmp_path / "fake/p07/b.jpg")
    real, fake = sorted(load_folder(tmp_path), key=lambda s: s.label)
    assert real.identities == fake.identities  # one split group
    assert real.video_id != fake.video_id  # but two videos


def test_folder_sub_folders_name_the_method_a_report_groups_by(tmp_path):
    touch(tmp_path / "fake/aniportrait/a.mp4")  # a video one level down: its folder
    touch(tmp_path / "fake/hallo/p07/0.jpg")  # images two levels down: the top folder
    touch(tmp_path / "real/alice/0.jpg")  # images one level down: that is the person
    touch(tmp_path / "real/clip.mp4")
    samples = by_key(load_folder(tmp_path))
    assert samples["folder:fake/aniportrait/a.mp4"].method == "aniportrait"
    assert samples["folder:fake/hallo/p07/0.jpg"].method == "hallo"
    assert samples["folder:real/alice/0.jpg"].method == ""
    assert samples["folder:real/clip.mp4"].method == ""


def test_folder_without_fake_names_the_problem(tmp_path):
    touch(tmp_path / "real/a.jpg")
    with pytest.raises(DatasetError, match=r"missing fake/"):
        load_folder(tmp_path)


# ----------------------------------------------------------------------------- FF++


def make_ffpp(root: Path, ids=("000", "001", "002", "003"), splits: dict | None = None) -> Path:
    for vid in ids:
        touch(root / f"original_sequences/youtube/c23/videos/{vid}.mp4")
    pairs = [(ids[i], ids[i + 1]) for i in range(0, len(ids), 2)]
    for a, b in pairs:
        for method in ("Deepfakes", "FaceSwap"):
            touch(root / f"manipulated_sequences/{method}/c23/videos/{a}_{b}.mp4")
            touch(root / f"manipulated_sequences/{method}/c23/videos/{b}_{a}.mp4")
    if splits:
        for name, value in splits.items():
            touch(root / f"splits/{name}.json").write_text(json.dumps(value))
    return root


def test_ffpp_labels_identities_and_originals(tmp_path):
    samples = by_key(load_ffpp(make_ffpp(tmp_path)))
    assert len(samples) == 4 + 2 * 4
    original = samples["ffpp:original/youtube/000"]
    assert (original.label, original.identities, original.original) == (0, ("ffpp:000",), None)
    fake = samples["ffpp:Deepfakes/000_001"]
    assert fake.label == 1 and fake.method == "Deepfakes"
    assert fake.identities == ("ffpp:000", "ffpp:001")  # target and source
    assert fake.original == "ffpp:original/youtube/000"  # the target's video
    assert all(s.split is None for s in samples.values())


def test_ffpp_official_split_json_assigns_pairs(tmp_path):
    root = make_ffpp(
        tmp_path, splits={"train": [["000", "001"]], "val": [], "test": [["002", "003"]]}
    )
    samples = by_key(load_ffpp(root))
    assert samples["ffpp:original/youtube/001"].split == "train"
    assert samples["ffpp:FaceSwap/001_000"].split == "train"
    assert samples["ffpp:Deepfakes/002_003"].split == "test"
    assert samples["ffpp:original/youtube/003"].split == "test"


def test_ffpp_falls_back_to_another_compression(tmp_path):
    touch(tmp_path / "original_sequences/youtube/c40/videos/000.mp4")
    touch(tmp_path / "manipulated_sequences/Deepfakes/c40/videos/000_001.mp4")
    samples = load_ffpp(tmp_path, compression="c23")
    assert {s.path.parent.parent.name for s in samples} == {"c40"}


def test_ffpp_actor_sequences_use_actor_ids(tmp_path):
    touch(tmp_path / "original_sequences/actors/c23/videos/01__exit_phone_room.mp4")
    touch(tmp_path / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__hug__ABC.mp4")
    samples = by_key(load_ffpp(tmp_path))
    assert samples["ffpp:original/actors/01__exit_phone_room"].identities == ("ffpp-actor:01",)
    assert samples["ffpp:DeepFakeDetection/01_02__hug__ABC"].identities == (
        "ffpp-actor:01",
        "ffpp-actor:02",
    )


def test_ffpp_without_manipulated_folder_is_rejected(tmp_path):
    touch(tmp_path / "original_sequences/youtube/c23/videos/000.mp4")
    with pytest.raises(DatasetError, match="manipulated_sequences"):
        load_ffpp(tmp_path)


# ----------------------------------------------------------------------------- Celeb-DF


def make_celebdf(root: Path, listing: str) -> Path:
    for rel in (
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id1_0000.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4",
        "YouTube-real/00000.mp4",
        "YouTube-real/00001.mp4",
    ):
        touch(root / rel)
    (root / "List_of_testing_videos.txt").write_text(listing)
    return root


def test_celebdf_test_list_identities_and_labels(tmp_path):
    root = make_celebdf(tmp_path, "1 YouTube-real/00001.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    samples = by_key(load_celebdf(root))
    fake = samples["celebdf:Celeb-synthesis/id0_id1_0000"]
    assert (fake.label, fake.split) == (1, "test")
    assert fake.identities == ("celebdf:id0", "celebdf:id1")
    assert fake.original == "celebdf:Celeb-real/id0_0000"
    assert samples["celebdf:YouTube-real/00001"].split == "test"
    real = samples["celebdf:Celeb-real/id1_0000"]
    assert (real.label, real.split, real.identities) == (0, None, ("celebdf:id1",))
    assert samples["celebdf:YouTube-real/00000"].identities == ("celebdf:YouTube-real/00000",)


def test_celebdf_list_contradicting_folder_is_an_error(tmp_path):
    root = make_celebdf(tmp_path, "1 Celeb-synthesis/id0_id1_0000.mp4\n")
    with pytest.raises(DatasetError, match=r"List_of_testing_videos.txt:1"):
        load_celebdf(root)


# ----------------------------------------------------------------------------- DFDC


def test_dfdc_metadata_labels_and_original_links(tmp_path):
    part = tmp_path / "dfdc_train_part_0"
    for name in ("aaa.mp4", "bbb.mp4", "ccc.mp4"):
        touch(part / name)
    (part / "metadata.json").write_text(
        json.dumps(
            {
                "aaa.mp4": {"label": "REAL", "split": "train", "original": None},
                "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
                "ccc.mp4": {"label": "FAKE", "split": "train", "original": "zzz.mp4"},
                "gone.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
            }
        )
    )
    samples = by_key(load_dfdc(tmp_path))
    assert set(samples) == {"dfdc:aaa", "dfdc:bbb", "dfdc:ccc"}  # gone.mp4 is not on disk
    assert samples["dfdc:aaa"].label == 0
    assert samples["dfdc:bbb"].identities == ("dfdc:bbb", "dfdc:aaa")
    assert samples["dfdc:bbb"].original == "dfdc:aaa"
    assert samples["dfdc:ccc"].original is None  # its original is not on disk


def test_dfdc_entry_without_label_is_an_error(tmp_path):
    touch(tmp_path / "p/a.mp4")
    (tmp_path / "p/metadata.json").write_text(json.dumps({"a.mp4": {"split": "train"}}))
    with pytest.raises(DatasetError, match=r"'a\.mp4' has no FAKE/REAL label"):
        load_dfdc(tmp_path)


# ----------------------------------------------------------------------------- review export


def write_labels(root: Path, rows: list) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.jsonl").write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    )


def test_review_export_groups_crops_by_video_and_rereview_wins(tmp_path):
    for rel in ("crops/v1/a.jpg", "crops/v1/b.jpg", "crops/v2/a.jpg"):
        touch(tmp_path / rel)
    base = {"reviewer": "ann", "decided_at": "2026-01-01T00:00:00Z"}
    write_labels(
        tmp_path,
        [
            {"video_id": "v1", "label": "real", "crops": ["crops/v1/a.jpg"], **base},
            {"video_id": "v2", "label": "fake", "crops": ["crops/v2/a.jpg", "crops/v2/x.jpg"]},
            {"video_id": "v1", "label": "fake", "crops": ["crops/v1/a.jpg", "crops/v1/b.jpg"]},
        ],
    )
    samples = load_review_export(tmp_path)
    assert sorted((s.video_id, s.path.name, s.label) for s in samples) == [
        ("v1", "a.jpg", 1),
        ("v1", "b.jpg", 1),
        ("v2", "a.jpg", 1),  # x.jpg is listed but missing: skipped
    ]
    assert all(s.media == "crop" and s.identities == (f"review:{s.video_id}",) for s in samples)


def test_review_export_malformed_line_is_reported_with_its_number(tmp_path):
    write_labels(tmp_path, [{"video_id": "v", "label": "real", "crops": []}, "{not json"])
    with pytest.raises(DatasetError, match=r"labels.jsonl:2"):
        load_review_export(tmp_path)


def test_review_export_rejects_paths_outside_the_export(tmp_path):
    touch(tmp_path / "outside.jpg")
    write_labels(
        tmp_path / "export", [{"video_id": "v", "label": "real", "crops": ["../outside.jpg"]}]
    )
    with pytest.raises(DatasetError, match="outside the export"):
        load_review_export(tmp_path / "export")


def test_review_export_label_must_be_fake_or_real(tmp_path):
    write_labels(tmp_path, [{"video_id": "v", "label": "maybe", "crops": []}])
    with pytest.raises(DatasetError, match="'fake' or 'real'"):
        load_review_export(tmp_path)


# ----------------------------------------------------------------------------- dispatch


def test_detect_format_recognises_each_layout(tmp_path):
    make_ffpp(tmp_path / "ff")
    make_celebdf(tmp_path / "celeb", "")
    touch(tmp_path / "dfdc/part0/metadata.json")
    touch(tmp_path / "folder/real/a.jpg")
    write_labels(tmp_path / "review", [])
    assert detect_format(tmp_path / "ff") == "ffpp"
    assert detect_format(tmp_path / "celeb") == "celebdf"
    assert detect_format(tmp_path / "dfdc") == "dfdc"
    assert detect_format(tmp_path / "folder") == "folder"
    assert detect_format(tmp_path / "review") == "review"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="unrecognised dataset layout"):
        detect_format(tmp_path / "empty")


def test_parse_spec_and_explicit_format(tmp_path):
    assert parse_spec("ffpp:/data/ff") == ("ffpp", Path("/data/ff"))
    assert parse_spec("/data/x:y") == (None, Path("/data/x:y"))
    touch(tmp_path / "real/a.jpg")
    touch(tmp_path / "fake/b.jpg")
    assert len(load_dataset(f"folder:{tmp_path}")) == 2
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing")


def test_shared_data_dir_defaults_beside_the_project_and_env_overrides(tmp_path, monkeypatch):
    from bot.settings import project_root
    from model.training.datasets import has_shared_data, shared_data_dir

    monkeypatch.delenv("FIND_SHARED_DATA", raising=False)
    assert shared_data_dir() == project_root().parent / "shared" / "data"
    monkeypatch.setenv("FIND_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    assert not has_shared_data()  # empty folder
    (tmp_path / "ffpp").mkdir()
    assert has_shared_data()


def test_a_repeat_suffix_reads_a_small_set_more_often(tmp_path):
    """``real:PATH*N``: the set's samples say N; the path and format parse as without it."""
    from model.training.datasets import parse_repeat

    touch(tmp_path / "photos" / "ann" / "a.jpg")
    spec = f"real:{tmp_path / 'photos'}*8"
    assert parse_repeat(spec) == (f"real:{tmp_path / 'photos'}", 8)
    assert parse_spec(spec) == ("real", tmp_path / "photos")
    assert [s.repeat for s in load_dataset(spec)] == [8]
    assert [s.repeat for s in load_dataset(f"real:{tmp_path / 'photos'}")] == [1]
    with pytest.raises(DatasetError, match="repeat count"):
        load_dataset(f"real:{tmp_path / 'photos'}*0")


def test_every_format_names_the_sources_an_evaluation_reports_apart(tmp_path):
    """``find-bot evaluate``'s per-source lines (``source_name``) for each dataset format: the
    manipulation or generator where the format says it, else the folder or dataset."""
    from model.training.evaluate import source_name

    def sources(samples) -> set[str]:
        return {source_name(s) for s in samples}

    assert sources(load_ffpp(make_ffpp(tmp_path / "ffpp"))) == {
        "real/original", "fake/Deepfakes", "fake/FaceSwap",
    }  # fmt: skip
    celebdf = make_celebdf(tmp_path / "celebdf", "0 Celeb-synthesis/id0_id1_0000.mp4\n")
    assert sources(load_celebdf(celebdf)) == {
        "real/Celeb-real", "real/YouTube-real", "fake/Celeb-synthesis",
    }  # fmt: skip
    part = tmp_path / "dfdc" / "dfdc_train_part_7"
    for name in ("a.mp4", "b.mp4"):
        touch(part / name)
    (part / "metadata.json").write_text(
        json.dumps({"a.mp4": {"label": "REAL"}, "b.mp4": {"label": "FAKE", "original": "a.mp4"}})
    )
    assert sources(load_dfdc(tmp_path / "dfdc")) == {
        "real/dfdc_train_part_7", "fake/dfdc_train_part_7",
    }  # fmt: skip
    touch(tmp_path / "folder/fake/aniportrait/a.mp4")
    touch(tmp_path / "folder/real/clip.mp4")
    assert sources(load_folder(tmp_path / "folder")) == {"fake/aniportrait", "real/folder"}
