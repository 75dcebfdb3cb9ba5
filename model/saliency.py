"""Where the model looks: Grad-CAM heatmaps over face crops, for reviewers.

Grad-CAM (Selvaraju et al., 2017) weights the last convolutional feature map
of the classifier by the gradient of the fake logit with respect to it,
averaged over space, and keeps the positive part: the regions whose features
pushed the crop towards "fake".  It costs one forward and one backward pass
per crop and model, so the analyse stage runs it only on the evidence crops
(the few faces that drove the score), once, and stores the result as
images; nothing is recomputed when a reviewer opens the page.

For an ensemble the members' maps are averaged, as their probabilities are.
The maps are coarse (the last feature map of Xception-299 is 10x10 cells,
of a 64 px test model 2x2): they point at an area of the face (mouth, eyes,
the blending boundary), not at pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.classifier import preprocess

#: The last rectified feature map before global pooling in ``build_classifier``.
LAYER = "exit_relu4"


class GradCam:
    """Grad-CAM for one or more Keras classifiers with one logit output."""

    def __init__(self, models: Sequence, layer: str = LAYER) -> None:
        import keras

        if not models:
            raise ValueError("Grad-CAM needs at least one model")
        self.input_size = int(models[0].input_shape[1])
        self._heads = [
            keras.Model(m.inputs, [m.get_layer(layer).output, m.outputs[0]]) for m in models
        ]

    def heatmaps(self, crops_uint8: np.ndarray) -> np.ndarray:
        """``(N, size, size)`` float32 maps in [0, 1] for ``N`` uint8 RGB crops of the input size.

        A crop where nothing pushed towards "fake" gets an all-zero map.
        """
        import cv2
        import tensorflow as tf

        crops = np.asarray(crops_uint8)
        if len(crops) == 0:
            return np.zeros((0, self.input_size, self.input_size), dtype=np.float32)
        x = tf.constant(preprocess(crops))
        total = None
        for head in self._heads:
            with tf.GradientTape() as tape:
                features, logit = head(x, training=False)
                features = tf.cast(features, tf.float32)
                target = tf.reduce_sum(tf.cast(logit, tf.float32))
            grads = tape.gradient(target, features)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
            total = cam if total is None else total + cam
        assert total is not None
        total = total / len(self._heads)
        out = np.zeros((len(crops), self.input_size, self.input_size), dtype=np.float32)
        for i, cam in enumerate(total):
            peak = float(cam.max())
            if not np.isfinite(peak) or peak <= 0:
                continue
            resized = cv2.resize(
                (cam / peak).astype(np.float32),
                (self.input_size, self.input_size),
                interpolation=cv2.INTER_LINEAR,
            )
            out[i] = np.clip(resized, 0.0, 1.0)
        return out


def overlay(image_rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap in the JET colours laid over ``image_rgb`` (any size), uint8 RGB."""
    import cv2

    h, w = image_rgb.shape[:2]
    heat = cv2.resize(np.asarray(heatmap, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colours = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
    blend = image_rgb.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha
    return np.clip(blend, 0, 255).astype(np.uint8)
