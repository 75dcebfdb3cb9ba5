"""Ensemble inference: batched, compiled forward pass of several classifiers, averaged.

The seed averaged the probabilities of its two best Xception models; we keep
that rule: ``p = mean_m sigmoid(logit_m / temperature)``.  Averaging
probabilities (not logits) keeps one over-confident model from dominating.

All models run inside one ``tf.function`` per ensemble, on batches of
crops: ``model.predict`` per image costs ~2x more per crop on a CPU
(it rebuilds a data pipeline per call).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.classifier import preprocess

#: Crops per forward pass: large enough to keep the CPU busy, small enough to
#: bound activation memory of the full Xception (~40 MB per 299 px crop).
BATCH_SIZE = 16


class Ensemble:
    """Average of the calibrated fake probabilities of ``models`` (Keras, one logit each)."""

    def __init__(self, models: Sequence, input_size: int, temperature: float = 1.0):
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.models = list(models)
        self.input_size = int(input_size)
        self.temperature = float(temperature)
        self._forward = None

    def _compiled(self):
        if self._forward is None:
            import tensorflow as tf

            models = self.models
            size = self.input_size

            @tf.function(
                input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
                reduce_retracing=True,
            )
            def forward(x):
                return tf.stack([tf.reshape(m(x, training=False), [-1]) for m in models], axis=0)

            self._forward = forward
        return self._forward

    def predict_logits(self, crops_uint8: np.ndarray) -> np.ndarray:
        """Raw logits, shape ``[n_models, N]`` (for calibration and per-model evaluation)."""
        crops = np.asarray(crops_uint8)
        if crops.ndim != 4 or crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"crops must be N x {self.input_size} x {self.input_size} x 3, got {crops.shape}"
            )
        if len(crops) == 0:
            return np.zeros((len(self.models), 0), dtype=np.float32)
        forward = self._compiled()
        parts = [
            forward(preprocess(crops[i : i + BATCH_SIZE])).numpy()
            for i in range(0, len(crops), BATCH_SIZE)
        ]
        return np.concatenate(parts, axis=1)

    def predict(self, crops_uint8: np.ndarray) -> np.ndarray:
        """Calibrated fake probability per crop, shape ``[N]``: mean of sigmoid(logit / T)."""
        logits = self.predict_logits(crops_uint8).astype(np.float64)
        probabilities = 1.0 / (1.0 + np.exp(-logits / self.temperature))
        return probabilities.mean(axis=0)
