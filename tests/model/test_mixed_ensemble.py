"""Bundles whose members differ in architecture and input size, and how they combine."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from model.bundle import load_bundle, write_bundle
from model.classifier import ArchSpec, build_classifier
from model.ensemble import MeanCombiner, StackingCombiner, fit_stacking, resize_crops
from tests.model.conftest import TINY

LITE = ArchSpec("efficientnet_lite0", 96)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, tiny_models):
    lite = build_classifier(LITE, seed=3)
    models = [tiny_models[0], lite]
    path = write_bundle(
        tmp_path_factory.mktemp("mixed") / "bundle",
        models,
        [TINY, LITE],
        threshold=0.5,
        name="mixed-test",
        version="1",
        training={},
        metrics={},
        combiner=StackingCombiner((1.0, 0.5), -0.2).to_dict(),
        member_info=[{"candidate": "tiny"}, {"candidate": "lite"}],
    )
    return load_bundle(path), models


def _crops(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_mixed_bundle_cuts_at_the_largest_input_and_stacks_logits(mixed):
    bundle, models = mixed
    assert bundle.input_size == 96 and bundle.specs == [TINY, LITE]
    manifest = bundle.manifest
    assert [m["candidate"] for m in manifest["models"]] == ["tiny", "lite"]
    assert manifest["combiner"]["kind"] == "stacking"
    crops = _crops(6, 96)
    direct = np.stack(
        [
            np.asarray(m(s.preprocess(resize_crops(crops, s.input_size)), training=False))[:, 0]
            for m, s in zip(models, [TINY, LITE], strict=True)
        ]
    )
    logits = bundle.ensemble().predict_logits(crops)
    assert np.allclose(logits, direct, atol=3e-2)  # float16 storage
    expected = 1 / (1 + np.exp(-(-0.2 + 1.0 * logits[0] + 0.5 * logits[1])))
    assert np.allclose(bundle.ensemble().predict(crops), expected, atol=1e-6)


def test_members_normalise_pixels_their_own_way():
    pixels = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    assert TINY.preprocess(pixels).max() == pytest.approx(1.0)  # x / 127.5 - 1
    assert LITE.preprocess(pixels).max() == pytest.approx(128 / 128)  # (x - 127) / 128
    assert LITE.preprocess(np.zeros_like(pixels)).min() == pytest.approx(-127 / 128)


def test_format_1_bundles_still_load(tmp_path, tiny_bundle_dir, tiny_bundle):
    old = shutil.copytree(tiny_bundle_dir, tmp_path / "v1")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 1
    manifest["architecture"] = manifest["models"][0]["architecture"]
    del manifest["combiner"]
    for entry in manifest["models"]:
        del entry["architecture"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(old)
    assert bundle.specs == [TINY, TINY] and bundle.temperature == 2.0
    crops = _crops(4, 64, seed=2)
    assert np.allclose(bundle.ensemble().predict(crops), tiny_bundle.ensemble().predict(crops))


def test_stacking_switches_off_a_member_that_ranks_backwards():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    good = (2 * y - 1) * 1.5 + rng.normal(0, 1.0, len(y))
    backwards = -(2 * y - 1) * 0.3 + rng.normal(0, 1.0, len(y))
    combiner = fit_stacking(np.stack([good, backwards]), y)
    assert combiner.weights[0] > 0.5 and combiner.weights[1] == 0.0
    p = combiner(np.stack([good, backwards]))
    # Calibrated: predicted probabilities match the observed rate within bins.
    for low in (0.1, 0.4, 0.7):
        inside = (p >= low) & (p < low + 0.2)
        assert abs(p[inside].mean() - y[inside].mean()) < 0.06


def test_combiners_refuse_nonsense():
    with pytest.raises(ValueError):
        StackingCombiner((-1.0,), 0.0)
    with pytest.raises(ValueError):
        MeanCombiner(0.0)
    with pytest.raises(ValueError, match="both classes"):
        fit_stacking(np.zeros((1, 3)), np.zeros(3))


def test_members_sharing_a_body_run_it_once_and_keep_their_own_heads(tiny_models):
    """Probe members put a new head on a body another member has: the body runs once and each
    head gives what its member alone would (issue 29: four members, three bodies)."""
    from model.ensemble import Ensemble

    base = tiny_models[0]
    probe = build_classifier(TINY, seed=0)
    probe.set_weights(base.get_weights())
    kernel, _ = probe.get_layer("logit").get_weights()
    rng = np.random.default_rng(7)
    probe.get_layer("logit").set_weights(
        [rng.normal(size=kernel.shape).astype(np.float32), np.array([0.3], np.float32)]
    )
    other = tiny_models[1]
    ensemble = Ensemble(
        [base, other, probe], TINY.input_size, specs=[TINY] * 3,
        combiner=StackingCombiner((1.0, 1.0, 1.0), 0.0),
    )  # fmt: skip
    assert ensemble.body_groups() == [[0, 2], [1]]
    # the body's digest ignores the head: the probe keys its stored features by it
    assert ensemble.body_digest(0) == ensemble.body_digest(2) != ensemble.body_digest(1)
    crops = _crops(20, TINY.input_size, seed=4)
    shared = ensemble.predict_logits(crops)
    for index, model in enumerate([base, other, probe]):
        alone = Ensemble([model], TINY.input_size, specs=[TINY]).predict_logits(crops)[0]
        np.testing.assert_allclose(shared[index], alone, rtol=1e-4, atol=1e-4)
    assert not np.allclose(shared[0], shared[2])  # the heads still differ
