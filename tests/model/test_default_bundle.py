"""The default bundle that ships in the repository: present, verified, documented, used.

A fresh clone must scan out of the box: ``find-bot scan`` and the daemon load
``model/bundles/default`` when ``FIND_MODEL_BUNDLE`` is not set.  Its quality
is measured on real data by ``make evaluate-default`` and recorded in its
manifest; these tests check that the record is there and says what it must.
"""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.settings import default_bundle_path, project_root
from model.bundle import load_bundle, read_manifest, verify_bundle

DEFAULT = project_root() / "model" / "bundles" / "default"
#: Largest the repository may carry for its default bundle.
MAX_BYTES = 30 * 1024 * 1024


def test_the_default_bundle_ships_verified_and_small():
    assert default_bundle_path() == DEFAULT
    assert verify_bundle(DEFAULT) == []
    total = sum(p.stat().st_size for p in DEFAULT.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"default bundle is {total / 2**20:.1f} MiB"
    bundle = load_bundle(DEFAULT)
    assert len(bundle.manifest["models"]) == 2  # the card's two-model Xception ensemble
    assert bundle.manifest["architecture"]["name"].startswith("xception")


def test_the_manifest_names_its_data_terms_and_its_measured_quality():
    manifest = read_manifest(DEFAULT)
    assert "DFDC" in manifest["training"]["terms"]
    evaluations = manifest["evaluations"]
    test = evaluations["dfdc-faces-test"]
    assert test["split"] == "test" and test["frame_level"]["n"] > 6000
    for key in ("roc_auc", "accuracy", "recall", "ece"):
        assert test["frame_level"][key] is not None
    for name in ("real-photos", "real-videos-voxceleb2", "dfdc-videos"):
        assert name in evaluations, f"no recorded evaluation {name!r}"


def test_model_info_without_arguments_shows_the_default(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("FIND_MODEL_BUNDLE", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    assert main(["model", "info"]) == 0
    out = capsys.readouterr().out
    assert str(DEFAULT) in out and "verification: OK" in out
    assert "evaluation:" in out and "dfdc-faces-test" in out


def test_scan_needs_no_setting_at_all(monkeypatch, capsys, tmp_path, media_dir):
    """A fresh clone scores a real photo with the shipped bundle and no configuration."""
    monkeypatch.delenv("FIND_MODEL_BUNDLE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["scan", "--json", str(media_dir / "astronaut.png")]) == 0
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line["verdict"] in {"real", "fake"}
    assert 0.0 <= line["score"] <= 1.0
    assert line["bundle_id"] == read_manifest(DEFAULT)["name"]


@pytest.mark.data
def test_scan_gives_every_shared_dfdc_video_a_verdict(monkeypatch, capsys, tmp_path):
    from model.training.datasets import has_shared_data, shared_data_dir

    if not has_shared_data():
        pytest.skip(f"real face data not found at {shared_data_dir()} (see ../shared/README.md)")
    videos = sorted((shared_data_dir() / "dfdc-videos").glob("*.mp4"))
    monkeypatch.delenv("FIND_MODEL_BUNDLE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["scan", "--json", *map(str, videos)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(rows) == len(videos)
    assert all(row["verdict"] in {"real", "fake"} for row in rows)
