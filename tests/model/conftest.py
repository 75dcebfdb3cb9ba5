"""Session fixtures for the detection tests: one MTCNN, one tiny bundle, synthetic media.

Everything heavy is built once per session; the classifier is a tiny
Xception (64 px input, width 1/8, one middle block) so that the whole
directory runs in well under a minute on two cores.  The tiny models are
untrained: tests check the plumbing (shapes, averaging, hashes, verdict
rules), never that they detect anything.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from model.classifier import ArchSpec

TINY = ArchSpec("xception_compact", 64, 0.125, 1)


@pytest.fixture(scope="session")
def detector():
    """One MTCNN for the whole session (loading it costs ~1 s)."""
    from model.faces import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def tiny_models():
    import numpy as np

    from model.classifier import build_classifier

    models = [build_classifier(TINY, seed=1), build_classifier(TINY, seed=2)]
    # Untrained logits sit near 0; distinct output biases make the two members
    # disagree clearly, so averaging is visible in the ensemble tests.
    for model, bias in zip(models, (1.5, -0.5), strict=True):
        layer = model.get_layer("logit")
        kernel, _ = layer.get_weights()
        layer.set_weights([kernel, np.array([bias], dtype=np.float32)])
    return models


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory, tiny_models) -> Path:
    """A valid two-model bundle; tests that damage a bundle must copy it first."""
    from model.bundle import write_bundle

    return write_bundle(
        tmp_path_factory.mktemp("bundle") / "tiny",
        tiny_models,
        TINY,
        threshold=0.5,
        temperature=2.0,
        name="tiny-test",
        version="0.0.1",
        training={"data": "none: untrained test model"},
        metrics={"auc": None},
    )


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_dir):
    from model.bundle import load_bundle

    return load_bundle(tiny_bundle_dir)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Synthetic videos and images shared by the scoring and CLI tests."""
    import cv2

    from tests.model import synth

    root = tmp_path_factory.mktemp("media")
    synth.face_video(root / "one_face.mp4", faces=1)
    synth.face_video(root / "two_faces.mp4", faces=2)
    synth.face_video(root / "no_face.mp4", faces=0)
    cv2.imwrite(str(root / "astronaut.png"), cv2.cvtColor(synth.astronaut(), cv2.COLOR_RGB2BGR))
    (root / "corrupt.mp4").write_bytes(os.urandom(4096))
    return root
