"""XceptionNet face classifier with a width/depth knob, and its input preprocessing.

The full network is Chollet's Xception (299x299, 8 middle-flow blocks,
~20.8M parameters), the FaceForensics++ baseline.  ``ArchSpec`` scales the
channel counts (``width``) and the number of middle-flow blocks so that a
compact variant can be trained on a CPU; the layer graph is otherwise
identical, so one code path serves both.

The network outputs one *logit* per image (no sigmoid): temperature scaling
(calibration) is applied outside the network, by the ensemble.

No ImageNet Xception weights are available offline, so Xceptions start from
random weights (``seed`` makes that reproducible).  The pretrained family is
EfficientNet-Lite (:mod:`model.efficientnet_lite`): ``ARCHITECTURES`` is the
one registry of what a bundle member can be — a new network is one entry there
(its builder, its input normalisation, where its initial weights come from),
not a branch in the bundle, the ensemble, training or the scanner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ArchSpec:
    """Architecture of a classifier: family name, square input size, width factor, depth."""

    name: str  # a key of ARCHITECTURES
    input_size: int  # crops are input_size x input_size RGB
    width: float = 1.0  # channel multiplier, 1.0 = original Xception (Xception only)
    middle_blocks: int = 8  # middle-flow blocks, 8 = original Xception (Xception only)

    def __post_init__(self) -> None:
        if self.name not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.name!r}; expected one of {sorted(ARCHITECTURES)}"
            )
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32, got {self.input_size}")
        if self.width <= 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        if self.middle_blocks < 0:
            raise ValueError(f"middle_blocks must be >= 0, got {self.middle_blocks}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.name]

    def preprocess(self, batch_uint8_rgb: np.ndarray) -> np.ndarray:
        """This architecture's input normalisation of uint8 RGB crops."""
        return self.architecture.preprocess(batch_uint8_rgb)

    @classmethod
    def from_dict(cls, data: dict) -> ArchSpec:
        try:
            name = str(data["name"])
            if name in XCEPTION_NAMES:  # the knobs exist only for Xception: required there
                return cls(
                    name=name,
                    input_size=int(data["input_size"]),
                    width=float(data["width"]),
                    middle_blocks=int(data["middle_blocks"]),
                )
            return cls(name=name, input_size=int(data["input_size"]))
        except KeyError as exc:
            raise ValueError(f"architecture is missing the field {exc.args[0]!r}") from exc


def preprocess(batch_uint8_rgb: np.ndarray) -> np.ndarray:
    """Scale uint8 RGB pixels to [-1, 1] float32 (Xception's ``preprocess_input``).

    The one function used by training and inference: ``x / 127.5 - 1``, which
    is exactly ``keras.applications.xception.preprocess_input`` ("tf" mode).
    """
    batch = np.asarray(batch_uint8_rgb)
    return batch.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def _channels(base: int, width: float) -> int:
    """Scaled channel count, rounded to a multiple of 8 (at least 8) for efficient kernels."""
    return max(8, round(base * width / 8) * 8)


def build_classifier(spec: ArchSpec, seed: int | None = None):
    """Build an untrained classifier of ``spec``'s architecture: one logit out.

    Input: ``spec.preprocess(crops)``.
    """
    return spec.architecture.build(spec, seed)


def build_xception(spec: ArchSpec, seed: int | None = None):
    """Build an untrained Xception classifier: float input in [-1, 1], one logit out.

    Input: ``(batch, input_size, input_size, 3)`` float32 already passed through
    ``preprocess``.  Output: ``(batch, 1)`` logit.  Every layer is named, so
    weight files map onto the graph by name and order.
    """
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(seed)

    def c(base: int) -> int:
        return _channels(base, spec.width)

    def sep(x, filters: int, name: str):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
        return layers.BatchNormalization(name=f"{name}_bn")(x)

    def down_block(x, filters: int, name: str, first_relu: bool = True):
        residual = layers.Conv2D(
            filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_res"
        )(x)
        residual = layers.BatchNormalization(name=f"{name}_res_bn")(residual)
        if first_relu:
            x = layers.Activation("relu", name=f"{name}_relu1")(x)
        x = sep(x, filters, f"{name}_sep1")
        x = layers.Activation("relu", name=f"{name}_relu2")(x)
        x = sep(x, filters, f"{name}_sep2")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
        return layers.add([x, residual], name=f"{name}_add")

    inputs = keras.Input((spec.input_size, spec.input_size, 3), name="image")
    # Entry flow.
    x = layers.Conv2D(c(32), 3, strides=2, use_bias=False, name="entry_conv1")(inputs)
    x = layers.BatchNormalization(name="entry_conv1_bn")(x)
    x = layers.Activation("relu", name="entry_conv1_relu")(x)
    x = layers.Conv2D(c(64), 3, use_bias=False, name="entry_conv2")(x)
    x = layers.BatchNormalization(name="entry_conv2_bn")(x)
    x = layers.Activation("relu", name="entry_conv2_relu")(x)
    x = down_block(x, c(128), "entry_block1", first_relu=False)
    x = down_block(x, c(256), "entry_block2")
    x = down_block(x, c(728), "entry_block3")
    # Middle flow.
    for i in range(spec.middle_blocks):
        name = f"middle_block{i + 1}"
        residual = x
        for j in range(3):
            x = layers.Activation("relu", name=f"{name}_relu{j + 1}")(x)
            x = sep(x, c(728), f"{name}_sep{j + 1}")
        x = layers.add([x, residual], name=f"{name}_add")
    # Exit flow.
    residual = layers.Conv2D(
        c(1024), 1, strides=2, padding="same", use_bias=False, name="exit_res"
    )(x)
    residual = layers.BatchNormalization(name="exit_res_bn")(residual)
    x = layers.Activation("relu", name="exit_relu1")(x)
    x = sep(x, c(728), "exit_sep1")
    x = layers.Activation("relu", name="exit_relu2")(x)
    x = sep(x, c(1024), "exit_sep2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="exit_pool")(x)
    x = layers.add([x, residual], name="exit_add")
    x = sep(x, c(1536), "exit_sep3")
    x = layers.Activation("relu", name="exit_relu3")(x)
    x = sep(x, c(2048), "exit_sep4")
    x = layers.Activation("relu", name="exit_relu4")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    logit = layers.Dense(1, name="logit", dtype="float32")(x)
    return keras.Model(inputs, logit, name=spec.name)


def _build_lite(spec: ArchSpec, seed: int | None):
    from model.efficientnet_lite import build_efficientnet_lite

    return build_efficientnet_lite(spec.name, spec.input_size, seed=seed)


def _lite_preprocess(batch_uint8_rgb: np.ndarray) -> np.ndarray:
    from model.efficientnet_lite import preprocess as lite_preprocess

    return lite_preprocess(batch_uint8_rgb)


@dataclass(frozen=True)
class Architecture:
    """One kind of bundle member: how to build it, how it reads pixels, how it starts."""

    build: Callable  # (spec, seed) -> keras.Model with one logit
    preprocess: Callable[[np.ndarray], np.ndarray]
    #: Key of ``model.pretrained.SOURCES`` with its ImageNet weights (None: random init).
    pretrained: str | None
    description: str


XCEPTION_NAMES = ("xception", "xception_compact")
ARCHITECTURES: dict[str, Architecture] = {
    "xception": Architecture(
        build_xception, preprocess, None, "Xception (Chollet 2017), x / 127.5 - 1"
    ),
    "xception_compact": Architecture(
        build_xception,
        preprocess,
        None,
        "Xception with fewer channels and middle blocks, x / 127.5 - 1",
    ),
    **{
        f"efficientnet_lite{k}": Architecture(
            _build_lite,
            _lite_preprocess,
            f"efficientnet_lite{k}",
            f"EfficientNet-Lite{k} (ImageNet-pretrained), (x - 127) / 128",
        )
        for k in (0, 1, 2)
    },
}
#: Kept for callers that list the names (CLI choices, docs).
ARCH_NAMES = tuple(ARCHITECTURES)

FULL_XCEPTION = ArchSpec("xception", 299, 1.0, 8)
#: ~1/4 of the channels' cost, half the middle flow, 160 px input: trainable on a CPU.
COMPACT_XCEPTION = ArchSpec("xception_compact", 160, 0.5, 4)
