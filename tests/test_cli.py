"""The console command as a new user meets it: help everywhere, db upgrade with no config."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, main


def _subcommand_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(parser, prefix):  # type: ignore[no-untyped-def]
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    paths.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


def test_help_on_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _subcommand_paths()
    assert ["db", "upgrade"] in paths
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        assert "usage: find-bot " + " ".join(path) in capsys.readouterr().out


def test_console_script_upgrades_with_no_config(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env["HOME"] = str(tmp_path)
    env.pop("XDG_DATA_HOME", None)
    exe = Path(sys.executable).with_name("find-bot")
    result = subprocess.run(
        [str(exe), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".local/share/find-bot/find.db").is_file()
    current = subprocess.run(
        [str(exe), "db", "current"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "up to date" in current.stdout


def test_bad_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env.update(HOME=str(tmp_path), FIND_POLL_INTERVAL="every now and then")
    exe = Path(sys.executable).with_name("find-bot")
    result = subprocess.run(
        [str(exe), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "find-bot: error: FIND_POLL_INTERVAL: 'every now and then' is not a duration "
        "(use seconds, or e.g. 15m, 2h, 1d)"
    ]


def test_unreachable_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIND_DATABASE_URL", "postgresql+psycopg://find:hunter2@127.0.0.1:1/nope")
    assert main(["db", "current"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("find-bot: error: cannot open database postgresql+psycopg://find:***@")
    assert "hunter2" not in err and len(err.strip().splitlines()) == 1


def _find_bot(tmp_path: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env.update(HOME=str(tmp_path), **env_vars)
    exe = Path(sys.executable).with_name("find-bot")
    return subprocess.run(
        [str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_db_upgrade_on_a_read_only_data_dir_is_one_line(tmp_path: Path) -> None:
    from tests.fakes.filesystems import read_only_dir

    with read_only_dir(tmp_path / "ro") as fault:
        data_dir = tmp_path / "ro" / "find"
        result = _find_bot(tmp_path, "db", "upgrade", FIND_DATA_DIR=str(data_dir))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"find-bot: error: cannot use {data_dir}: ")
    assert ("read-only" if fault == "EROFS" else "permission denied") in line.lower()


def test_an_unusable_path_is_one_line_naming_it(tmp_path: Path) -> None:
    """Any command's unexpected OSError: here the data dir sits below a regular file."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    for command in (["db", "upgrade"], ["status"]):
        result = _find_bot(tmp_path, *command, FIND_DATA_DIR=str(blocker / "find"))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert str(blocker / "find") in line and "not a directory" in line.lower(), line


@pytest.mark.slow
def test_scan_prints_no_native_library_banner(tmp_path: Path) -> None:
    """Issue 21 item 9: TensorFlow's cpu_feature_guard/oneDNN/absl start-up lines never reach
    stderr, even when nothing in the environment asked for quiet (bot.logs.quiet_native_logging)."""
    from tests.model.synth import face_video

    video = face_video(tmp_path / "face.mp4", n_frames=12)
    quiet = ("FIND_", "TF_", "GLOG_", "GRPC_", "OPENCV_")  # nothing asks for quiet
    env = {k: v for k, v in os.environ.items() if not k.startswith(quiet)}
    env.update(HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path / "mpl"))
    exe = Path(sys.executable).with_name("find-bot")
    result = subprocess.run(
        [str(exe), "scan", "--frames", "4", str(video)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert result.returncode == 0, result.stderr
    assert "face.mp4" in result.stdout
    for banner in ("cpu_feature_guard", "oneDNN", "absl::InitializeLog", "rebuild TensorFlow"):
        assert banner not in result.stderr, result.stderr


#: ``find-bot`` as a command in prose or code (not a path like /etc/find-bot/ or find-bot.service),
#: then its words: ``review list\|show`` (a Markdown table's alternatives) counts as both.
_NAMED = re.compile(r"(?<![\w/.-])find-bot((?:[ \t]+[a-z][a-z-]*(?:\\?\|[a-z][a-z-]*)*)+)")


def _listed_subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-commands ``--help`` lists (hidden old spellings are not offered to new users)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest for choice in action._choices_actions}
            return {name: sub for name, sub in action.choices.items() if name in listed}
    return {}


def _unknown_subcommands(text: str) -> list[str]:
    unknown = []
    for match in _NAMED.finditer(text):
        parser, path = build_parser(), ["find-bot"]
        for word in match.group(1).split():
            commands = _listed_subcommands(parser)
            if not commands:
                break  # a command's own arguments follow
            alternatives = word.replace("\\|", "|").split("|")
            missing = [a for a in alternatives if a not in commands]
            if missing:
                unknown.append(f"{' '.join(path)} {'|'.join(missing)}  (in: {match.group(0)!r})")
                break
            parser, path = commands[alternatives[0]], [*path, alternatives[0]]
    return unknown


@pytest.mark.parametrize("doc", ["README.md", "config.example.env"])
def test_every_subcommand_the_docs_name_exists(doc: str) -> None:
    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    assert len(_NAMED.findall(text)) > 3, f"{doc}: the pattern finds no find-bot commands"
    assert _unknown_subcommands(text) == [], f"{doc} names sub-commands find-bot lacks"


def test_the_docs_check_catches_a_missing_or_hidden_subcommand() -> None:
    assert _unknown_subcommands("run `find-bot review list\\|frobnicate`") == [
        "find-bot review frobnicate  (in: 'find-bot review list\\\\|frobnicate')"
    ]
    assert _unknown_subcommands("(find-bot review add-reviewer) are let in") != []
    assert _unknown_subcommands("/etc/find-bot/find-bot.env, find-bot.service") == []
    assert _unknown_subcommands("find-bot model info [BUNDLE], find-bot train --data x") == []


def test_review_help_lists_reverse_and_reasons_not_the_old_account_names(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["review", "--help"])
    out = capsys.readouterr().out
    assert "reverse" in out and "reasons" in out
    for old in ("add-reviewer", "disable-reviewer", "enable-reviewer", "    reviewers "):
        assert old not in out
