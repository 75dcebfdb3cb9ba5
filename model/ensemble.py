"""Ensemble inference: members of any registered architecture, combined into one probability.

A member is a Keras classifier with one logit and its ``ArchSpec`` (input
size and normalisation).  The scanner cuts every face once, at the largest
member's input size; each member reads it resized to its own size (area
resampling, as training shrank the cached crops) and normalised its own way.

Two combiners, both recorded in the bundle manifest:

* ``mean`` — the seed's rule, ``p = mean_m sigmoid(logit_m / T)``:
  averaging probabilities keeps one over-confident model from dominating.
  Old single-architecture bundles use it.
* ``stacking`` — ``p = sigmoid(b + sum_m w_m * logit_m)`` with ``w_m >= 0``,
  fitted on validation (logistic regression on the members' logits,
  :func:`fit_stacking`).  It calibrates and weighs at once: a member that adds
  nothing gets weight 0 and cannot drag the ensemble down.

Members run inside one ``tf.function`` each, on batches of crops:
``model.predict`` per image costs ~2x more per crop on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.classifier import ArchSpec

#: Crops per forward pass: large enough to keep the CPU busy, small enough to
#: bound activation memory of the full Xception (~40 MB per 299 px crop).
BATCH_SIZE = 16


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


@dataclass(frozen=True)
class MeanCombiner:
    """Mean of the members' temperature-scaled probabilities."""

    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return _sigmoid(np.asarray(logits, np.float64) / self.temperature).mean(axis=0)

    def to_dict(self) -> dict:
        return {"kind": "mean", "temperature": float(self.temperature)}


@dataclass(frozen=True)
class StackingCombiner:
    """Logistic regression on the members' logits, non-negative weights."""

    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if any(not np.isfinite(w) or w < 0 for w in self.weights) or not np.isfinite(self.bias):
            raise ValueError(f"stacking weights must be finite and >= 0, got {self.weights}")

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, np.float64)
        if len(z) != len(self.weights):
            raise ValueError(f"{len(z)} members' logits for {len(self.weights)} weights")
        return _sigmoid(self.bias + np.asarray(self.weights) @ z)

    def to_dict(self) -> dict:
        return {
            "kind": "stacking",
            "weights": [float(w) for w in self.weights],
            "bias": float(self.bias),
        }


Combiner = MeanCombiner | StackingCombiner


def combiner_from_dict(data: dict, members: int) -> Combiner:
    """The combiner a manifest records; ``ValueError`` names what is wrong."""
    kind = data.get("kind")
    if kind == "mean":
        return MeanCombiner(float(data.get("temperature", 1.0)))
    if kind == "stacking":
        weights = tuple(float(w) for w in data.get("weights", ()))
        if len(weights) != members:
            raise ValueError(f"stacking has {len(weights)} weights for {members} members")
        return StackingCombiner(weights, float(data.get("bias", 0.0)))
    raise ValueError(f"unknown combiner {kind!r} (expected 'mean' or 'stacking')")


def fit_stacking(
    logits: np.ndarray,
    labels: np.ndarray,
    l2: float = 1e-3,
    balanced: bool = True,
    sample_weight: np.ndarray | None = None,
) -> StackingCombiner:
    """Fit ``sigmoid(b + w . z)`` to ``labels`` by log loss, with ``w >= 0`` and a little L2.

    Non-negative weights: a member whose logit ranks worse than chance on
    validation is switched off rather than inverted (an inversion would be
    an artefact of that validation set).  ``balanced`` weighs the classes
    equally (choosing members); without it the fit keeps the data's class
    balance (calibrating probabilities for footage like it).  ``sample_weight``
    (per item, e.g. each source and each video weighing the same) replaces both.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    if z.ndim != 2 or z.shape[1] != len(y) or len(np.unique(y)) < 2:
        raise ValueError("stacking needs [members, N] logits and both classes in the labels")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, np.float64)
        sample_weight = sample_weight * len(y) / sample_weight.sum()
    elif balanced:
        sample_weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    else:
        sample_weight = np.ones_like(y)
    scale = z.std(axis=1) + 1e-6  # fit in standardised units, report in raw ones

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        s = b + w @ (z / scale[:, None])
        p = _sigmoid(s)
        eps = 1e-12
        nll = -(sample_weight * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).mean()
        g = sample_weight * (p - y) / len(y)
        grad_w = (z / scale[:, None]) @ g + 2 * l2 * w
        return nll + l2 * float(w @ w), np.append(grad_w, g.sum())

    start = np.append(np.ones(len(z)) / len(z), 0.0)
    bounds = [(0.0, None)] * len(z) + [(None, None)]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    w = np.maximum(result.x[:-1], 0.0) / scale
    return StackingCombiner(tuple(float(v) for v in w), float(result.x[-1]))


@dataclass
class Member:
    """One classifier of an ensemble and the architecture that says how it reads pixels."""

    model: object  # keras.Model, one logit out
    spec: ArchSpec


class Ensemble:
    """Combined fake probability of several members (Keras, one logit each).

    ``Ensemble(models, input_size, temperature)`` keeps the old form: Xception
    members, all at ``input_size``, averaged.  Mixed ensembles pass ``specs``
    (one per model) and a ``combiner``; crops then come at ``input_size`` (the
    largest member's) and are resized per member.
    """

    def __init__(
        self,
        models: Sequence,
        input_size: int,
        temperature: float = 1.0,
        *,
        specs: Sequence[ArchSpec] | None = None,
        combiner: Combiner | None = None,
    ):
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.input_size = int(input_size)
        if specs is None:
            specs = [ArchSpec("xception_compact", self.input_size, 1.0, 0)] * len(models)
        if len(specs) != len(models):
            raise ValueError(f"{len(models)} models but {len(specs)} architectures")
        self.members = [Member(m, s) for m, s in zip(models, specs, strict=True)]
        self.combiner: Combiner = combiner or MeanCombiner(temperature)
        self._forwards: list = [None] * len(self.members)
        self._feature_forwards: list = [None] * len(self.members)
        self._groups: list[list[int]] | None = None

    @property
    def models(self) -> list:
        return [member.model for member in self.members]

    @property
    def temperature(self) -> float:
        return getattr(self.combiner, "temperature", 1.0)

    def _compiled(self, index: int):
        if self._forwards[index] is None:
            import tensorflow as tf

            model = self.members[index].model
            size = self.members[index].spec.input_size

            @tf.function(
                input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
                reduce_retracing=True,
            )
            def forward(x):
                return tf.reshape(model(x, training=False), [-1])

            self._forwards[index] = forward
        return self._forwards[index]

    def _compiled_features(self, index: int):
        """Member ``index`` up to the input of its final ``logit`` layer, compiled once."""
        if self._feature_forwards[index] is None:
            import keras
            import tensorflow as tf

            model = self.members[index].model
            body = keras.Model(model.inputs[0], model.get_layer("logit").input)
            size = self.members[index].spec.input_size

            @tf.function(
                input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
                reduce_retracing=True,
            )
            def forward(x):
                return body(x, training=False)

            self._feature_forwards[index] = forward
        return self._feature_forwards[index]

    def head_inputs(self, crops_uint8: np.ndarray) -> list[np.ndarray]:
        """Per member, what its final dense layer (``logit``) reads: ``[N, D]`` each.

        For refitting the heads on new labels (``model.adapt``): the bodies run once and
        any head is then a matrix product.
        """
        return [self.member_features(i, crops_uint8) for i in range(len(self.members))]

    def member_features(self, index: int, crops_uint8: np.ndarray) -> np.ndarray:
        """What member ``index``'s ``logit`` layer reads for ``crops``: ``[N, D]``; only that
        member's body runs (fitting one member's head needs no other)."""
        crops = np.asarray(crops_uint8)
        if len(crops) == 0:
            width = int(self.members[index].model.get_layer("logit").input.shape[-1])
            return np.zeros((0, width), np.float32)
        return self._run(self._compiled_features(index), index, crops)

    def _run(self, forward, index: int, crops: np.ndarray) -> np.ndarray:
        """``forward`` over ``crops`` as member ``index`` reads them, ``BATCH_SIZE`` at a time."""
        return np.concatenate(
            [
                forward(self.member_inputs(index, crops[i : i + BATCH_SIZE])).numpy()
                for i in range(0, len(crops), BATCH_SIZE)
            ]
        )

    def member_inputs(self, index: int, crops_uint8: np.ndarray) -> np.ndarray:
        """Crops as member ``index`` reads them: resized to its size, normalised its way."""
        spec = self.members[index].spec
        return spec.preprocess(resize_crops(crops_uint8, spec.input_size))

    def body_groups(self) -> list[list[int]]:
        """Members whose bodies are one network (same architecture, same weights up to the
        ``logit`` layer), in member order: probe members put a new head on a body another
        member already has, and the body then runs once for all of them."""
        if self._groups is None:
            groups: dict[str, list[int]] = {}
            for index in range(len(self.members)):
                groups.setdefault(self.body_digest(index), []).append(index)
            self._groups = list(groups.values())
        return self._groups

    def body_digest(self, index: int) -> str:
        """SHA-256 of member ``index``'s body: its architecture and every weight up to the
        ``logit`` layer.  Equal digests, equal features, whatever the head or the file
        (the probe keys its stored features by it; bodies run once per digest)."""
        import hashlib
        import json

        member = self.members[index]
        digest = hashlib.sha256(json.dumps(member.spec.to_dict()).encode())
        for layer in member.model.layers:
            if layer.name != "logit":
                for weight in layer.get_weights():
                    digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()

    def predict_logits(self, crops_uint8: np.ndarray) -> np.ndarray:
        """Raw logits, shape ``[n_members, N]`` (for calibration and per-member evaluation)."""
        crops = np.asarray(crops_uint8)
        if crops.ndim != 4 or crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"crops must be N x {self.input_size} x {self.input_size} x 3, got {crops.shape}"
            )
        if len(crops) == 0:
            return np.zeros((len(self.members), 0), dtype=np.float32)
        rows: list[np.ndarray | None] = [None] * len(self.members)
        for group in self.body_groups():
            first = group[0]
            # One pass of a shared body, then each member's head; else the whole member.
            forward = self._compiled(first) if len(group) == 1 else self._compiled_features(first)
            out = self._run(forward, first, crops)
            if len(group) == 1:
                rows[first] = out
                continue
            for index in group:
                kernel, bias = self.members[index].model.get_layer("logit").get_weights()
                rows[index] = (out @ kernel.astype(np.float32) + bias.astype(np.float32))[:, 0]
        return np.stack(rows)

    def predict(self, crops_uint8: np.ndarray) -> np.ndarray:
        """Calibrated fake probability per crop, shape ``[N]``, by the ensemble's combiner."""
        return self.combiner(self.predict_logits(crops_uint8))

    def predict_members(self, crops_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` (shape ``[N]``) and each member's own probability (``[n_members, N]``).

        A member's probability is ``sigmoid(logit / temperature)`` (temperature 1 under
        stacking, where only the combination is calibrated): it says which member fired
        on a face, so reviewers see why it scored as it did; ``predict`` stays the verdict.
        """
        logits = self.predict_logits(crops_uint8)
        return self.combiner(logits), _sigmoid(np.asarray(logits, np.float64) / self.temperature)


def resize_crops(crops_uint8: np.ndarray, size: int) -> np.ndarray:
    """Square crops resized to ``size`` with area resampling (a no-op at the same size)."""
    crops = np.asarray(crops_uint8)
    if len(crops) == 0 or crops.shape[1] == size:
        return crops
    import cv2

    interpolation = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(c, (size, size), interpolation=interpolation) for c in crops])
