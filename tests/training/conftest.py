"""Shared fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.training.datasets import has_shared_data, shared_data_dir

#: The tiny architecture of the training tests: plumbing, trained in seconds.
TINY = ["--arch", "compact", "--input-size", "64", "--width", "0.0625", "--middle-blocks", "0"]


@pytest.fixture
def shared_data() -> Path:
    """The real face data folder; skips the test when it is absent."""
    if not has_shared_data():
        pytest.skip(
            f"real face data not found at {shared_data_dir()} "
            "(set FIND_SHARED_DATA or see ../shared/README.md)"
        )
    return shared_data_dir()
