"""Ingestion tests: the real client library and real yt-dlp against local fake servers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.fakes.fixtures import (  # noqa: F401 - fixtures are found by name
    fake_youtube,
    ingestion,
    media_server,
    sample_videos,
    sqlite_ingestion,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``bot.cli.main`` reconfigures logging (handlers, library levels): undo it after a test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("googleapiclient", "urllib3", "alembic")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
