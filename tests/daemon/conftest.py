"""Fixtures for the daemon tests: a tiny real model bundle and synthetic face videos.

The analyse-stage tests do not depend on the shipped default bundle: they
build a tiny, untrained one (``tests.daemon.helpers.write_tiny_bundle``); with
``FIND_SCORE_THRESHOLD=0`` every video with a face is flagged, which is what
the plumbing tests need.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging
from collections.abc import Iterator

import pytest

from tests.daemon.helpers import write_tiny_bundle


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
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", "tiny-daemon-test")


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
