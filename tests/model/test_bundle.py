"""Model bundles: write, load, verify hashes and format, ensemble averaging."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.bundle import FORMAT_VERSION, BundleError, load_bundle, verify_bundle, write_bundle
from model.classifier import preprocess
from model.ensemble import Ensemble
from tests.model.conftest import TINY


@pytest.fixture
def bundle_copy(tmp_path, tiny_bundle_dir) -> Path:
    return Path(shutil.copytree(tiny_bundle_dir, tmp_path / "copy"))


def _crops(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_manifest_describes_the_bundle(tiny_bundle_dir):
    manifest = json.loads((tiny_bundle_dir / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert [m["architecture"] for m in manifest["models"]] == [TINY.to_dict()] * 2
    assert manifest["combiner"] == {"kind": "mean", "temperature": 2.0}
    assert manifest["input_size"] == 64
    assert manifest["threshold"] == 0.5 and manifest["temperature"] == 2.0
    assert manifest["preprocessing"]["crop"]["margin"] == 0.3
    assert manifest["training"] == {"data": "none: untrained test model"}
    assert [m["file"] for m in manifest["models"]] == ["model_0.npz", "model_1.npz"]
    assert all(len(m["sha256"]) == 64 for m in manifest["models"])
    # float16 weights: the files are about half the float32 size.
    params = manifest["models"][0]["params"]
    assert (tiny_bundle_dir / "model_0.npz").stat().st_size < params * 4 * 0.7


def test_load_bundle(tiny_bundle, tiny_bundle_dir):
    assert tiny_bundle.path == tiny_bundle_dir.resolve()
    assert (tiny_bundle.id, tiny_bundle.version) == ("tiny-test", "0.0.1")
    assert tiny_bundle.threshold == 0.5 and tiny_bundle.temperature == 2.0
    assert tiny_bundle.specs == [TINY, TINY] and tiny_bundle.input_size == 64
    assert load_bundle(tiny_bundle_dir / "manifest.json").id == "tiny-test"
    assert verify_bundle(tiny_bundle_dir) == []


def test_loaded_models_reproduce_the_original_logits(tiny_bundle, tiny_models):
    crops = _crops()
    logits = tiny_bundle.ensemble().predict_logits(crops)
    direct = np.stack([np.asarray(m(preprocess(crops), training=False))[:, 0] for m in tiny_models])
    assert logits.shape == (2, 5)
    assert np.allclose(logits, direct, atol=2e-2)  # float16 storage


def test_ensemble_averages_calibrated_probabilities(tiny_bundle, tiny_models):
    crops = _crops(n=21, seed=3)  # more than one batch
    probabilities = tiny_bundle.ensemble().predict(crops)
    logits = np.stack([np.asarray(m(preprocess(crops), training=False))[:, 0] for m in tiny_models])
    expected = (1.0 / (1.0 + np.exp(-logits / 2.0))).mean(axis=0)  # temperature 2
    assert probabilities.shape == (21,)
    assert np.allclose(probabilities, expected, atol=5e-3)
    # The members disagree (biases +1.5 / -0.5), so the mean differs from each member.
    single = Ensemble(tiny_models[:1], 64, temperature=2.0).predict(crops)
    assert np.all(np.abs(single - probabilities) > 0.05)


def test_ensemble_rejects_wrong_crop_size(tiny_bundle):
    with pytest.raises(ValueError, match=r"64 x 64"):
        tiny_bundle.ensemble().predict(np.zeros((2, 32, 32, 3), dtype=np.uint8))
    assert tiny_bundle.ensemble().predict(np.zeros((0, 64, 64, 3), dtype=np.uint8)).shape == (0,)


def test_hash_mismatch_is_refused(bundle_copy):
    path = bundle_copy / "model_1.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model_1\.npz: sha256 mismatch"):
        load_bundle(bundle_copy)


def test_missing_model_file_is_refused(bundle_copy):
    (bundle_copy / "model_0.npz").unlink()
    with pytest.raises(BundleError, match=r"model_0\.npz: model file missing"):
        load_bundle(bundle_copy)


def test_format_version_mismatch_is_refused(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"format version {FORMAT_VERSION + 1} is not supported"):
        load_bundle(bundle_copy)


def test_corrupt_manifest_and_missing_bundle(bundle_copy, tmp_path):
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="corrupt manifest"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        load_bundle(tmp_path / "empty")


def test_corrupt_weight_file_with_matching_hash_is_refused(bundle_copy):
    from model.bundle import sha256_file

    (bundle_copy / "model_0.npz").write_bytes(b"garbage" * 100)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["models"][0]["sha256"] = sha256_file(bundle_copy / "model_0.npz")
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="corrupt weight file"):
        load_bundle(bundle_copy)


def test_weights_that_do_not_fit_the_architecture_are_refused(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["models"][0]["architecture"]["middle_blocks"] = 2  # the files hold 1 block
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="does not match"):
        bundle.ensemble()


def test_rewriting_a_bundle_replaces_it(bundle_copy, tiny_models):
    write_bundle(
        bundle_copy,
        tiny_models[:1],
        TINY,
        threshold=0.7,
        name="tiny-test",
        version="0.0.2",
        training={},
        metrics={},
    )
    bundle = load_bundle(bundle_copy)
    assert bundle.version == "0.0.2" and len(bundle.model_files) == 1


def test_write_bundle_validates_arguments(tmp_path, tiny_models):
    with pytest.raises(ValueError, match="threshold"):
        write_bundle(
            tmp_path / "b",
            tiny_models,
            TINY,
            threshold=1.5,
            name="x",
            version="1",
            training={},
            metrics={},
        )
    with pytest.raises(ValueError, match="at least one model"):
        write_bundle(
            tmp_path / "b", [], TINY, threshold=0.5, name="x", version="1", training={}, metrics={}
        )


def test_the_ensemble_is_built_once(tiny_bundle):
    """One float32 ensemble per bundle (the bfloat16 variant was dropped in issue 19)."""
    assert tiny_bundle.ensemble() is tiny_bundle.ensemble()
