"""Settings: defaults work with no config; bad values stop with one line naming the variable."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import _PARSERS, Secret, env_name, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_defaults_need_no_config(tmp_path: Path) -> None:
    s = load_settings(environ={"FIND_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'find.db'}"
    assert s.media_dir == tmp_path / "media"
    assert s.frames_per_video == 32
    assert s.quota_daily_budget == 10_000
    assert s.channels == ()
    assert s.youtube_api_key is None


def test_values_are_parsed(tmp_path: Path) -> None:
    s = load_settings(
        environ={
            "FIND_DATA_DIR": str(tmp_path),
            "FIND_POLL_INTERVAL": "15m",
            "FIND_MAX_FILESIZE": "2G",
            "FIND_CHANNELS": "UC_x5XG1OV2P6uZZ5FSM9Ttw, @GoogleDevelopers "
            "https://www.youtube.com/channel/UCBR8-60-B28hp2BmDPdntcQ",
            "FIND_SEARCH_QUERIES": "deepfake, interview | ai voice",
            "FIND_DATABASE_URL": "postgresql://u:pw@h/db",
            "FIND_SKIP_LIVE": "no",
            "FIND_MIN_PUBLISHED": "2026-01-31",
        }
    )
    assert s.poll_interval_s == 900
    assert s.max_filesize_bytes == 2 * 1024**3
    assert s.channels == (
        "UC_x5XG1OV2P6uZZ5FSM9Ttw",
        "@GoogleDevelopers",
        "UCBR8-60-B28hp2BmDPdntcQ",
    )
    assert s.search_queries == ("deepfake, interview", "ai voice")
    assert s.database_url.startswith("postgresql+psycopg://")
    assert s.redacted_database_url == "postgresql+psycopg://u:***@h/db"
    assert s.skip_live is False
    assert s.min_published_at is not None and s.min_published_at.tzinfo is not None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FIND_POLL_INTERVAL", "soon", "FIND_POLL_INTERVAL: 'soon' is not a duration"),
        ("FIND_CHANNELS", "UCshort", "FIND_CHANNELS: 'UCshort' is not a channel id"),
        ("FIND_CHANNELS", "not a channel!", "FIND_CHANNELS"),
        ("FIND_DATABASE_URL", "mysql://x/y", "FIND_DATABASE_URL: backend 'mysql'"),
        ("FIND_DATABASE_URL", "nonsense", "FIND_DATABASE_URL"),
        ("FIND_FRAMES_PER_VIDEO", "0", "FIND_FRAMES_PER_VIDEO: 0 is below the minimum 1"),
        ("FIND_SCORE_THRESHOLD", "1.5", "FIND_SCORE_THRESHOLD: 1.5 is outside 0..1"),
        ("FIND_MEDIA_RETENTION", "forever", "FIND_MEDIA_RETENTION: 'forever' is not one of"),
        ("FIND_SKIP_LIVE", "maybe", "FIND_SKIP_LIVE: 'maybe' is not a boolean"),
        ("FIND_POLL_INTERVALL", "5m", "FIND_POLL_INTERVALL is not a FIND setting"),
        # issue 21 item 9: a zero size limit skipped every download as too big
        ("FIND_MAX_FILESIZE", "0", "FIND_MAX_FILESIZE: '0' is below the minimum 1024 bytes"),
        ("FIND_MAX_FILESIZE", "0B", "FIND_MAX_FILESIZE: '0B' is below the minimum 1024 bytes"),
        ("FIND_MAX_FILESIZE", "0M", "FIND_MAX_FILESIZE: '0M' is below the minimum 1024 bytes"),
        ("FIND_MAX_FILESIZE", "100", "FIND_MAX_FILESIZE: '100' is below the minimum 1024 bytes"),
        ("FIND_MAX_FILESIZE", "-5M", "FIND_MAX_FILESIZE: '-5M' is not a size"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={variable: value})
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_missing_required_key_names_command(tmp_path: Path) -> None:
    s = load_settings(environ={"FIND_DATA_DIR": str(tmp_path)})
    with pytest.raises(
        SettingsError, match=r"FIND_YOUTUBE_API_KEY is not set, and `find-bot poll`"
    ):
        s.require("youtube_api_key", "poll")


def test_secrets_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = "AIzaSyTOPSECRET1234567890abcdefghijklmn"
    s = load_settings(
        environ={
            "FIND_DATA_DIR": str(tmp_path),
            "FIND_YOUTUBE_API_KEY": key,
            "FIND_WEB_SECRET_KEY": "cookie-secret-xyz",
            "FIND_DATABASE_URL": "postgresql+psycopg://find:dbpassword@h/db",
        }
    )
    assert isinstance(s.youtube_api_key, Secret) and s.youtube_api_key.reveal() == key
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings %r %s", s, s.summary())
    for text in (repr(s), str(s.summary()), caplog.text):
        assert key not in text and "cookie-secret-xyz" not in text and "dbpassword" not in text
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"FIND_WEBHOOK_URL": "not-a-url-with-token-abc"})
    assert "token-abc" not in str(info.value)


def test_env_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "find.env"
    env.write_text("FIND_FRAMES_PER_VIDEO=8\nFIND_POLL_INTERVAL=1h\n")
    monkeypatch.setenv("FIND_POLL_INTERVAL", "60")
    s = load_settings(env)
    assert s.frames_per_video == 8 and s.poll_interval_s == 60
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.env")


def test_every_setting_is_documented() -> None:
    documented = set(
        re.findall(
            r"^#?\s*(FIND_[A-Z_]+)=", (PROJECT_ROOT / "config.example.env").read_text(), re.M
        )
    )
    expected = {env_name(name) for name in _PARSERS} | {
        "FIND_DATA_DIR",
        "FIND_DATABASE_URL",
        "FIND_MEDIA_DIR",
    }
    assert expected - documented == set(), "document these in config.example.env"
    assert documented - expected == set(), "config.example.env names settings that do not exist"


def test_channels_none_means_watch_nothing_on_purpose(tmp_path: Path) -> None:
    s = load_settings(environ={"FIND_DATA_DIR": str(tmp_path), "FIND_CHANNELS": "None"})
    assert s.channels == () and s.watch_nothing is True
    assert load_settings(environ={"FIND_DATA_DIR": str(tmp_path)}).watch_nothing is False


@pytest.mark.parametrize(
    "cut",
    [
        "AIza",  # an editor's half-saved file: the key cut mid-value
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6",  # 38 characters: one short
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Qx",  # 40: one too many
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q".replace("Q", "!"),  # not a key character
        "BIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",  # not a Google API key
    ],
)
def test_an_api_key_not_of_googles_shape_is_refused_without_showing_it(
    tmp_path: Path, cut: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Issue 30 item 5: a key cut mid-value was accepted, and failed only at the first API
    call.  Start-up (and a reload, tests/daemon/test_reload_complete.py) refuse it, in one
    line naming the variable and never the value."""
    from bot.cli import main

    environ = {"FIND_DATA_DIR": str(tmp_path), "FIND_YOUTUBE_API_KEY": cut}
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    message = str(caught.value)
    assert message.startswith("FIND_YOUTUBE_API_KEY: the value (hidden) is not a whole ")
    assert f"it has {len(cut)} characters, a key has 39 (AIza" in message
    assert cut not in message.replace("(AIza and 35", "") and "\n" not in message

    monkeypatch.chdir(tmp_path)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"find-bot: error: {message}"]
    assert load_settings(
        environ={**environ, "FIND_YOUTUBE_API_KEY": "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"}
    ).youtube_api_key == Secret("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")  # a whole one: fine
