"""A SIGHUP reload applies only complete settings (issue 21 item 11), in-process.

`echo "FIND_CHANNELS=@beta,@gamma" > .env; kill -HUP` used to be accepted: the
query was removed, the API key fell back to unset and the database URL to the
default, while the daemon looked healthy.  Now a file that no longer sets what
is in force is refused like an invalid one: one log line, the old settings kept.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from bot.service.daemon import Daemon
from bot.settings import Settings, load_settings
from tests.fakes.youtube_api import api_key


def _write(path: Path, **values: str) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def test_a_half_written_file_is_refused_and_a_complete_one_applied(
    sqlite_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in [k for k in os.environ if k.startswith("FIND_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env_file = tmp_path / "find.env"
    full = {
        "FIND_DATA_DIR": str(sqlite_settings.data_dir),
        "FIND_DATABASE_URL": sqlite_settings.database_url,
        "FIND_YOUTUBE_API_KEY": api_key("KeyInForce"),
        "FIND_CHANNELS": "@alpha,@beta",
        "FIND_SEARCH_QUERIES": "deepfake news",
        "FIND_POLL_INTERVAL": "1h",
        "FIND_DOWNLOAD_WORKERS": "0",
        "FIND_ANALYSE_WORKERS": "0",
    }
    _write(env_file, **full)
    daemon = Daemon(load_settings(env_file), "worker", env_file=env_file)
    before = daemon.settings

    def rejected() -> str:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="find.daemon"):
            assert daemon.reload() is False
        lines = [r for r in caplog.records if r.getMessage() == "config.reload_rejected"]
        assert len(lines) == 1 and daemon.settings is before
        return str(lines[0].error)

    _write(env_file, FIND_CHANNELS="@beta,@gamma")  # the half-written file
    error = rejected()
    assert error.startswith(f"settings file {env_file} no longer sets FIND_")
    assert "FIND_YOUTUBE_API_KEY" in error and "FIND_DATABASE_URL" in error
    assert "FIND_POLL_INTERVAL" in error and "FIND_CHANNELS" not in error
    assert error.index("FIND_YOUTUBE_API_KEY") < error.index("FIND_POLL_INTERVAL")  # required first

    without_key = {k: v for k, v in full.items() if k != "FIND_YOUTUBE_API_KEY"}
    _write(env_file, **without_key)
    assert "no longer sets FIND_YOUTUBE_API_KEY " in rejected()

    # The watchlist may change freely (a query dropped, a channel swapped), and another
    # setting by writing its new value.
    changed = {**full, "FIND_CHANNELS": "@beta,@gamma", "FIND_POLL_INTERVAL": "30m"}
    del changed["FIND_SEARCH_QUERIES"]
    _write(env_file, **changed)
    assert daemon.reload() is True
    assert daemon.settings.channels == ("@beta", "@gamma")
    assert daemon.settings.search_queries == ()
    assert daemon.settings.poll_interval_s == 1800
    assert daemon.settings.youtube_api_key == before.youtube_api_key

    # Issue 30 item 5: a key cut mid-value (the editor saved "AIza" only) is refused the
    # same way, in one line naming the variable, never the value; the key in force stays.
    in_force = daemon.settings
    _write(env_file, **{**changed, "FIND_YOUTUBE_API_KEY": "AIza"})
    before = in_force
    error = rejected()
    assert error.startswith("FIND_YOUTUBE_API_KEY: the value (hidden) is not a whole Google")
    assert "it has 4 characters" in error
    assert "'AIza'" not in error and "=AIza" not in error and "\n" not in error
    assert daemon.settings.youtube_api_key == in_force.youtube_api_key
