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

import numpy as np

from model.ensemble import Ensemble, resize_crops


class GradCam:
    """Grad-CAM over an ensemble's members (each at its own input size and normalisation).

    Each member's map is taken at its architecture's ``cam_layer`` and brought
    to the ensemble's crop size; the maps are averaged with the members'
    weight in the combiner (a member with stacking weight 0 adds nothing).
    """

    def __init__(self, ensemble: Ensemble) -> None:
        import keras

        self.ensemble = ensemble
        self.input_size = ensemble.input_size
        weights = getattr(ensemble.combiner, "weights", None)
        self.weights = (
            np.ones(len(ensemble.members)) if weights is None else np.asarray(weights, float)
        )
        self._heads = [
            keras.Model(
                m.model.inputs,
                [m.model.get_layer(m.spec.architecture.cam_layer).output, m.model.outputs[0]],
            )
            for m in ensemble.members
        ]

    def heatmaps(self, crops_uint8: np.ndarray) -> np.ndarray:
        """``(N, size, size)`` float32 maps in [0, 1] for ``N`` uint8 RGB crops of the input size.

        A crop where nothing pushed towards "fake" gets an all-zero map.
        """
        import cv2
        import tensorflow as tf

        crops = np.asarray(crops_uint8)
        size = self.input_size
        if len(crops) == 0:
            return np.zeros((0, size, size), dtype=np.float32)
        total = np.zeros((len(crops), size, size), dtype=np.float32)
        for index, head in enumerate(self._heads):
            weight = float(self.weights[index])
            if weight <= 0:
                continue
            spec = self.ensemble.members[index].spec
            x = tf.constant(spec.preprocess(resize_crops(crops, spec.input_size)))
            with tf.GradientTape() as tape:
                features, logit = head(x, training=False)
                features = tf.cast(features, tf.float32)
                target = tf.reduce_sum(tf.cast(logit, tf.float32))
            grads = tape.gradient(target, features)
            pooled = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cams = tf.nn.relu(tf.reduce_sum(pooled * features, axis=-1)).numpy()
            for i, cam in enumerate(cams):
                peak = float(cam.max())
                if not np.isfinite(peak) or peak <= 0:
                    continue
                resized = cv2.resize(
                    (cam / peak).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR
                )
                total[i] += weight * resized
        used = float(self.weights[self.weights > 0].sum()) or 1.0
        out = total / used
        for i in range(len(out)):
            peak = float(out[i].max())
            if peak > 0:
                out[i] = out[i] / peak
        return np.clip(out, 0.0, 1.0)


def overlay(image_rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap in the JET colours laid over ``image_rgb`` (any size), uint8 RGB."""
    import cv2

    h, w = image_rgb.shape[:2]
    heat = cv2.resize(np.asarray(heatmap, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colours = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
    blend = image_rgb.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha
    return np.clip(blend, 0, 255).astype(np.uint8)
