"""`find-bot review ...` end to end through bot.cli.main, on both backends."""

from __future__ import annotations

import io
import json

import pytest

from bot.cli import main
from bot.db import session_factory
from bot.review.reviewers import add_reviewer, authenticate, set_active
from tests.review.conftest import CHANNEL_B


@pytest.fixture
def cli(settings, seeded, monkeypatch, tmp_path):
    """Run the CLI against ``settings``' database; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FIND_LOG_LEVEL", "WARNING")

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def accounts(settings):
    """Reviewer accounts alice and bob: `--reviewer` must name an account."""
    sessions = session_factory(settings)
    for name in ("alice", "bob"):
        add_reviewer(sessions, name, None)


def test_list_sorted_with_filters(cli):
    code, out, _ = cli("review", "list")
    assert code == 0
    lines = out.splitlines()
    assert "SCORE" in lines[0] and "URL" in lines[0]
    assert [line.split()[0] for line in lines[1:4]] == ["0.950", "0.810", "0.720"]
    assert "https://www.youtube.com/watch?v=vidAAAAAAA1" in lines[1]
    assert lines[1].split()[1] == "16" and lines[1].split()[2] == "2d"  # faces, age
    assert "3 of 3 flagged" in lines[-1]

    code, out, _ = cli("review", "list", "--json", "--channel", CHANNEL_B)
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["youtube_id"] for r in rows] == ["vidBBBBBBB2"]
    assert rows[0]["channel_id"] == CHANNEL_B and rows[0]["faces"] == 16

    _, out, _ = cli("review", "list", "--json", "--since", "7d", "--min-score", "0.9")
    assert [json.loads(x)["youtube_id"] for x in out.splitlines()] == ["vidAAAAAAA1"]
    _, out, _ = cli("review", "list", "--state", "confirmed")
    assert "no confirmed videos" in out
    with pytest.raises(SystemExit):
        cli("review", "list", "--min-score", "2")


def test_show_confirm_conflict_force(cli, accounts):
    with pytest.raises(SystemExit):  # argparse: --reason is required
        cli("review", "confirm", "vidAAAAAAA1", "--reviewer", "alice")
    code, _, err = cli(
        "review", "confirm", "vidAAAAAAA1", "--reviewer", "alice", "--reason", "vibes"
    )
    assert code == 2 and "'vibes' is not a policy reason" in err and "impersonation" in err
    code, out, _ = cli(
        "review", "confirm", "vidAAAAAAA1", "--reviewer", "alice", "--note", "swap",
        "--reason", "impersonation",
    )  # fmt: skip
    assert code == 0 and "confirmed by alice" in out and "(was flagged)" in out

    code, _, err = cli("review", "dismiss", "vidAAAAAAA1", "--reviewer", "bob", "--reason", "other")
    assert code == 3
    assert err.startswith("find-bot: error: video vidAAAAAAA1 was flagged")
    assert "already confirmed by alice" in err and "--force" in err

    code, _, err = cli(
        "review", "dismiss", "vidAAAAAAA1", "--reviewer", "bob", "--force", "--reason", "other"
    )
    assert code == 2 and "reverses that decision (an appeal)" in err and "--appeal-reason" in err
    code, out, _ = cli(
        "review", "reverse", "vidAAAAAAA1", "--reviewer", "bob", "--reason", "not manipulated",
        "--appeal-reason", "the uploader sent the raw footage",
    )  # fmt: skip
    assert code == 0 and "reversed to dismissed by bob" in out and "(was confirmed)" in out

    code, out, _ = cli("review", "show", "vidAAAAAAA1")
    assert code == 0
    for expected in (
        "state:     dismissed",
        "model:     find-xception 1.0.0",
        "timings:",
        "track 0: score 0.950",
        "frames that drove the score:",
        "face crops:",
        "confirmed by alice [impersonation] (was flagged): swap",
        "REVERSED to dismissed by bob [not manipulated] (was confirmed)",
        "appeal: the uploader sent the raw footage",
        "declared:  synthetic media: not reported by YouTube",
    ):
        assert expected in out, expected
    code, out, _ = cli("review", "show", "vidAAAAAAA1", "--json")
    data = json.loads(out)
    assert [d["reviewer"] for d in data["decisions"]] == ["alice", "bob"]
    assert data["analysis"]["timings"]["total"] == 5.4

    code, _, err = cli("review", "show", "missing0000")
    assert code == 2 and "no video 'missing0000'" in err


def test_exports(cli, accounts, tmp_path):
    cli("review", "confirm", "vidAAAAAAA1", "--reviewer", "alice", "--reason", "impersonation")
    cli("review", "dismiss", "vidBBBBBBB2", "--reviewer", "bob", "--reason", "not manipulated")
    code, out, _ = cli("review", "export", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("youtube_id,url,state")
    assert len(out.splitlines()) == 4
    report = tmp_path / "r" / "report.jsonl"
    code, _, err = cli(
        "review", "export", "--format", "jsonl", "--state", "dismissed", "-o", str(report)
    )
    assert code == 0 and "1 video(s)" in err
    assert json.loads(report.read_text())["reviewer"] == "bob"

    code, _, err = cli("review", "export", "--format", "dataset")
    assert code == 2 and "--output" in err
    code, out, _ = cli("review", "export", "--format", "dataset", "-o", str(tmp_path / "ds"))
    assert code == 0 and "2 video(s), 6 crop(s) (1 fake, 1 real)" in out
    labels = [json.loads(x) for x in (tmp_path / "ds" / "labels.jsonl").read_text().splitlines()]
    assert {r["video_id"]: r["label"] for r in labels} == {
        "vidAAAAAAA1": "fake",
        "vidBBBBBBB2": "real",
    }


def test_decisions_need_a_reviewer_account(cli, accounts, settings):
    """Issue 21 item 6: `--reviewer mallory` without an account is refused, nothing recorded."""
    from bot.review import get_video

    for command in (["confirm"], ["dismiss"]):
        code, out, err = cli(
            "review", *command, "vidAAAAAAA1", "--reviewer", "mallory", "--reason", "other"
        )
        assert code == 2 and out == ""
        [line] = err.strip().splitlines()
        assert "no reviewer account 'mallory'" in line
        assert "find-bot reviewers add mallory" in line and "--allow-unknown-reviewer" in line
    set_active(session_factory(settings), "bob", False)
    code, _, err = cli("review", "confirm", "vidAAAAAAA1", "--reviewer", "bob", "--reason", "other")
    assert code == 2 and "reviewer 'bob' is deactivated" in err
    with session_factory(settings)() as session:
        assert get_video(session, "vidAAAAAAA1").decisions == []

    code, out, _ = cli(
        "review", "confirm", "vidAAAAAAA1", "--reviewer", "alice", "--reason", "impersonation"
    )
    assert code == 0 and "confirmed by alice" in out
    code, _, err = cli(
        "review", "reverse", "vidAAAAAAA1", "--reviewer", "mallory", "--reason", "other",
        "--appeal-reason", "raw footage",
    )  # fmt: skip
    assert code == 2 and "no reviewer account 'mallory'" in err
    code, out, _ = cli(
        "review", "reverse", "vidAAAAAAA1", "--reviewer", "mallory", "--reason", "other",
        "--appeal-reason", "raw footage", "--allow-unknown-reviewer",
    )  # fmt: skip
    assert code == 0 and "reversed to dismissed by mallory" in out


HOSTILE = "\x1b]0;owned\x07\x1b[2J\rBS\x08\x9b31m\u202eevil"


def _no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    assert not bad and "\u202e" not in text, repr(text)


def test_outside_text_cannot_drive_the_terminal_or_a_spreadsheet(cli, accounts, settings):
    """Issue 21 item 4: titles, channel names, notes and error texts with ESC/OSC/BEL/CR/BS
    reach `review list`, `review show` and `status` escaped; CSV cells never start a formula."""
    import csv

    from sqlalchemy import update

    from bot.store import Video

    with session_factory(settings).begin() as session:
        session.execute(
            update(Video)
            .where(Video.youtube_id == "vidAAAAAAA1")
            .values(title='=HYPERLINK("http://x")' + HOSTILE, channel_title="@SUM(1)" + HOSTILE)
        )
        session.execute(
            update(Video)
            .where(Video.youtube_id == "vidCCCCCCC3")
            .values(last_error="HTTP 503 " + HOSTILE, last_error_kind="http")
        )
    code, out, _ = cli(
        "review", "confirm", "vidAAAAAAA1", "--reviewer", "alice", "--reason", "other",
        "--note", "+cmd|' /C calc'!A0 " + HOSTILE,
    )  # fmt: skip
    assert code == 0

    code, out, _ = cli("review", "list", "--state", "confirmed")
    assert code == 0
    _no_controls(out)
    assert "\\x1b]0;owned\\x07" in out  # shown, not obeyed
    code, out, _ = cli("review", "show", "vidAAAAAAA1")
    assert code == 0
    _no_controls(out)
    assert "\\x1b[2J\\x0dBS\\x08" in out
    code, out, _ = cli("status")
    assert code == 0
    _no_controls(out)
    assert "HTTP 503 \\x1b]0;owned" in out

    code, out, _ = cli("review", "export", "--format", "csv")
    assert code == 0
    rows = {r["youtube_id"]: r for r in csv.DictReader(out.splitlines())}
    row = rows["vidAAAAAAA1"]
    assert row["title"].startswith("'=HYPERLINK(")
    assert row["channel_title"].startswith("'@SUM(")
    assert row["note"].startswith("'+cmd")
    assert float(row["score"]) == 0.95  # numbers stay numbers
    for value in (v for r in rows.values() for v in r.values()):
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_reviewer_accounts(cli, settings):
    code, out, _ = cli(
        "review", "add-reviewer", "alice", "--password-stdin", stdin="s3cret password\n"
    )
    assert code == 0 and "reviewer alice created" in out
    assert "s3cret" not in out
    sessions = session_factory(settings)
    assert authenticate(sessions, "alice", "s3cret password") == "alice"
    assert authenticate(sessions, "alice", "wrong password") is None
    assert authenticate(sessions, "nobody", "s3cret password") is None

    code, _, err = cli(
        "review", "add-reviewer", "alice", "--password-stdin", stdin="another pw 123\n"
    )
    assert code == 2 and "--reset" in err
    code, _, _ = cli(
        "review", "add-reviewer", "alice", "--reset", "--password-stdin", stdin="another pw 123\n"
    )
    assert code == 0 and authenticate(sessions, "alice", "another pw 123") == "alice"
    code, _, err = cli("review", "add-reviewer", "bob", "--password-stdin", stdin="short\n")
    assert code == 2 and "shorter" in err
    code, _, err = cli("review", "add-reviewer", "../bad name", "--password-stdin", stdin="x" * 12)
    assert code == 2 and "not valid" in err
    code, _, err = cli("review", "add-reviewer", "carol", stdin="")
    assert code == 2 and "--password-stdin" in err  # no terminal to prompt on

    code, out, _ = cli("review", "disable-reviewer", "alice")
    assert code == 0 and authenticate(sessions, "alice", "another pw 123") is None
    code, out, _ = cli("review", "reviewers")
    assert "alice" in out and "disabled" in out
    with sessions() as session:
        from bot.store import Reviewer

        stored = session.query(Reviewer).filter_by(name="alice").one().password_hash
    assert stored.startswith("$argon2id$") and "another" not in stored


def test_web_command_needs_a_secret(cli, monkeypatch):
    code, _, err = cli("web")
    assert code == 2 and "FIND_WEB_SECRET_KEY is not set" in err
    monkeypatch.setenv("FIND_WEB_SECRET_KEY", "too-short")
    code, _, err = cli("web")
    assert code == 2 and "shorter than 32" in err and "too-short" not in err


def test_web_command_serves(settings, tmp_path):
    """`find-bot web` as a real process: it starts, answers, and stops on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIND_")},
        "FIND_DATA_DIR": str(settings.data_dir),
        "FIND_DATABASE_URL": settings.database_url,
        "FIND_WEB_SECRET_KEY": "s" * 40,
        "FIND_WEB_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "web"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.read() == b"ok\n"
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "find-bot web did not start"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert "secure" in r.headers["set-cookie"].lower()  # the default
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully (it re-raises SIGTERM; bot.httpserver swallows it).
    assert proc.returncode == 0, output  # issue 21: exit 0 after SIGTERM, as `run`
    assert "Finished server process" in output and "color_message" not in output
    assert "web.start" in output and "s" * 40 not in output


def test_cli_state_choices_are_the_review_states() -> None:
    from bot.commands.review import STATES
    from bot.store import REVIEW_STATES

    assert STATES == REVIEW_STATES


def test_cli_source_choices_are_the_video_sources() -> None:
    from bot.commands.review import SOURCES
    from bot.store import VideoSource

    assert tuple(s.value for s in VideoSource) == SOURCES


def test_list_and_show_by_source(cli, settings):
    """A submitted video says where it came from, and the queue filters on it."""
    from sqlalchemy import update

    from bot.store import Video

    with session_factory(settings).begin() as session:
        session.execute(
            update(Video)
            .where(Video.youtube_id == "vidCCCCCCC3")
            .values(
                source="submitted_file",
                submitted_by="bob",
                submission_note="user report #7",
                channel_youtube_id=None,
                channel_title=None,
            )
        )
    code, out, _ = cli("review", "list", "--source", "submitted_file")
    assert code == 0
    assert "vidCCCCCCC3" in out and "submitted_file by bob" in out
    assert "1 of 1 flagged" in out
    _, out, _ = cli("review", "list", "--json", "--source", "youtube_upload")
    ids = [json.loads(x)["youtube_id"] for x in out.splitlines()]
    assert ids == ["vidAAAAAAA1", "vidBBBBBBB2"]
    assert all(json.loads(x)["source"] == "youtube_upload" for x in out.splitlines())
    code, out, _ = cli("review", "show", "vidCCCCCCC3")
    assert code == 0 and "submitted_file by bob: user report #7" in out
    with pytest.raises(SystemExit):
        cli("review", "list", "--source", "email")


def test_show_marks_a_still_picture_in_the_scene_static(cli, settings):
    """Issue 19 item 1: a static track stays in the evidence, marked as a still picture."""
    from tests.review.conftest import seed_video

    seed_video(settings, "vidSTATIC01", score=0.9, tracks=2, static_tracks=(1,))
    code, out, _ = cli("review", "show", "vidSTATIC01")
    assert code == 0
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if "track " in line}
    assert "static (a still picture in the scene)" in lines["track 1"]
    assert "static" not in lines["track 0"]


def test_a_local_file_is_listed_and_shown_as_a_file(cli, settings):
    """Issue 31 item 3: a submitted file's ``sub-`` key is not shown as if it were a URL, and
    ``show`` prints no ``channel: (?)`` for a video that has no channel."""
    from tests.review.conftest import seed_video

    seed_video(settings, "sub-0123456789ab", score=0.99, title="clip.mp4")
    from sqlalchemy import update

    from bot.store import Video

    with session_factory(settings).begin() as session:
        session.execute(
            update(Video)
            .where(Video.youtube_id == "sub-0123456789ab")
            .values(
                source="submitted_file",
                submitted_by="ana",
                channel_youtube_id=None,
                channel_title=None,
            )
        )
    code, out, _ = cli("review", "list", "--source", "submitted_file")
    assert code == 0
    (row,) = [line for line in out.splitlines() if "clip.mp4" in line]
    assert "sub-0123456789ab (local file)" in row and "submitted_file by ana" in row
    code, out, _ = cli("review", "show", "sub-0123456789ab")
    assert code == 0
    assert "sub-0123456789ab  (local file)" in out and "clip.mp4" in out
    assert "channel:" not in out and "(?)" not in out
    _, out, _ = cli("review", "show", "vidAAAAAAA1")
    assert "channel:   Channel A (UC" in out  # a YouTube video keeps its channel line
