"""Architecture spec, the classifier graph and the shared preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import (
    COMPACT_XCEPTION,
    FULL_XCEPTION,
    ArchSpec,
    build_classifier,
    preprocess,
)
from tests.model.conftest import TINY


def test_spec_round_trip_and_validation():
    for spec in (FULL_XCEPTION, COMPACT_XCEPTION, TINY):
        assert ArchSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown architecture"):
        ArchSpec("resnet", 224, 1.0, 8)
    with pytest.raises(ValueError, match="middle_blocks"):
        ArchSpec.from_dict({"name": "xception", "input_size": 299, "width": 1.0})


def test_preprocess_matches_keras_xception():
    from keras.applications.xception import preprocess_input

    batch = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    out = preprocess(batch)
    assert out.dtype == np.float32
    assert np.allclose(out, preprocess_input(batch.astype(np.float32)))
    assert preprocess(np.array([0, 255], dtype=np.uint8)).tolist() == [-1.0, 1.0]


def test_tiny_classifier_outputs_one_logit_per_image(tiny_models):
    model = tiny_models[0]
    x = preprocess(np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8))
    out = np.asarray(model(x, training=False))
    assert out.shape == (3, 1)
    # A logit, not a probability: the head is linear (shift by the bias set in conftest).
    assert model.get_layer("logit").activation.__name__ == "linear"


def test_seed_makes_weights_reproducible():
    a = build_classifier(TINY, seed=7)
    b = build_classifier(TINY, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


def test_width_and_depth_shrink_the_network():
    small = build_classifier(ArchSpec("xception_compact", 64, 0.25, 1)).count_params()
    deeper = build_classifier(ArchSpec("xception_compact", 64, 0.25, 3)).count_params()
    wider = build_classifier(ArchSpec("xception_compact", 64, 0.5, 1)).count_params()
    assert small < deeper and small < wider


@pytest.mark.slow
def test_full_xception_matches_keras_parameter_count():
    import keras

    reference = keras.applications.Xception(weights=None, include_top=False).count_params()
    model = build_classifier(FULL_XCEPTION)
    assert model.count_params() == reference + 2048 + 1  # + the one-logit dense head
    assert model.input_shape == (None, 299, 299, 3)
