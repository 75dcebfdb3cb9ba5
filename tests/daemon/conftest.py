"""Fixtures for the daemon tests: a tiny real model bundle and synthetic face videos.

No trained default bundle exists, so the analyse-stage tests build a tiny,
untrained one (64 px Xception, one middle block) with the detection engine's
own ``write_bundle``; with ``FIND_SCORE_THRESHOLD=0`` every video with a face
is flagged, which is what the plumbing tests need.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``bot.cli.main`` configures the root logger onto capsys's stream; undo it after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.bundle import write_bundle
    from model.classifier import ArchSpec, build_classifier

    spec = ArchSpec("xception_compact", 64, 0.125, 1)
    return write_bundle(
        tmp_path_factory.mktemp("bundle") / "tiny",
        [build_classifier(spec, seed=1)],
        spec,
        threshold=0.5,
        name="tiny-daemon-test",
        version="0.0.1",
        training={"data": "none: untrained test model"},
        metrics={"auc": None},
    )


@pytest.fixture(scope="session")
def face_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``face``: one astronaut face; ``empty``: no face; ``corrupt``: random bytes."""
    from tests.model import synth

    root = tmp_path_factory.mktemp("videos")
    out = {
        "face": synth.face_video(root / "face.mp4", n_frames=24, faces=1),
        "empty": synth.face_video(root / "empty.mp4", n_frames=24, faces=0),
    }
    (root / "corrupt.mp4").write_bytes(os.urandom(4096))
    out["corrupt"] = root / "corrupt.mp4"
    return out


from tests.fakes.fixtures import (  # noqa: E402, F401 - fixtures for the end-to-end test
    fake_youtube,
    ingestion,
    media_server,
    sample_videos,
    sqlite_ingestion,
)
