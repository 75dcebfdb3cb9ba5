"""Outside text never drives the terminal or forges a log line, whatever command prints it.

Titles, channel names, notes, submitter and reviewer names, file names, stored
error texts, bank entries and bundle manifests come from people FIND does not
trust.  Every sub-command that prints such text is run here for real (in
process, through ``bot.cli.main``) on a database, media store, bank file and
model bundle full of one hostile value: ESC and OSC sequences (window title,
screen clear), a one-byte C1 CSI, bidi overrides and isolates, a CR, and a
newline followed by a forged log line.  Nothing of it may reach stdout, stderr
or the log raw (``bot.terminal`` is the one escaping rule), and no CSV cell may
start with a spreadsheet formula lead.
"""

# The fixtures imported from tests.fakes and tests.model are used as parameters by name:
# ruff: noqa: F811

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.db import session_factory
from bot.store import BankEntry, BankMatch, Channel, Reviewer, Video
from tests.fakes.fixtures import (  # noqa: F401 - fixtures are found by name
    fake_youtube,
    media_server,
    sample_videos,
    sqlite_ingestion,
)
from tests.model.conftest import tiny_bundle_dir, tiny_models  # noqa: F401
from tests.records import analysis_of

STAMP = "1999-12-31T23:59:59.99Z"  # a log line's time stamp, one no real line carries
FORGED = f"{STAMP} INFO find.forged"
#: One value with every trick: OSC window title + BEL, ED (clear screen), C1 CSI,
#: RLO and an isolate, a lone CR, and a newline that starts a forged log line.
HOSTILE = f"x\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u2066y\u2069\rz\n{FORGED} pwned=1"
#: The same without a space or ``=``: a log value that is not quoted for its spaces.
SPACELESS = f"w\x1b]0;pwned\x07\x9b2J\u202e\n{STAMP}"
FORMULA = '=HYPERLINK("http://evil.example/","open")' + HOSTILE

#: Raw characters that must never be printed: C0 but tab and newline, DEL, C1, bidi controls.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORMULA_LEADS = ("=", "+", "-", "@")


def _clean(where: str, text: str, *, csv_text: bool = False) -> None:
    """No raw control character and no line that starts as the forged log line.

    In CSV the row end (RFC 4180's CRLF) is structure, and a quoted cell may span lines
    (a note of several lines): that is one cell, not a forged line.
    """
    if csv_text:
        text = text.replace("\r\n", "\n")
    found = RAW_CONTROL.search(text)
    assert found is None, f"{where}: raw {found.group()!r} in {text[:2000]!r}"
    forged = re.search(rf"^{re.escape(STAMP)}", text, re.M)
    assert csv_text or not forged, f"{where}: forged line: {text!r}"


def _csv_cells_inert(where: str, text: str) -> int:
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_LEADS), f"{where}: live formula cell {cell!r}"
    return len(rows)


@pytest.fixture
def cli(sqlite_ingestion, monkeypatch, tmp_path):
    """Run ``find-bot`` in process on the test database; check every output; return it."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in sqlite_ingestion.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FIND_DATA_DIR", str(sqlite_ingestion.base.data_dir))
    monkeypatch.setenv("FIND_LOG_LEVEL", "DEBUG")  # every event of the log is checked too

    def run(*argv: str, csv_out: bool = False, json_log: bool = False) -> tuple[int, str, str]:
        monkeypatch.setenv("FIND_LOG_FORMAT", "json" if json_log else "text")
        out, err = io.StringIO(), io.StringIO()  # stderr carries the log as well
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        code = main(list(argv))
        where = "find-bot " + " ".join(a.encode("unicode_escape").decode() for a in argv)
        _clean(f"{where} (stdout)", out.getvalue(), csv_text=csv_out)
        _clean(f"{where} (stderr/log)", err.getvalue())
        return code, out.getvalue(), err.getvalue()

    return run


def test_every_command_escapes_outside_text(
    cli, sqlite_ingestion, tiny_bundle_dir, tmp_path
) -> None:
    ingestion = sqlite_ingestion
    settings = ingestion.settings()
    sessions = session_factory(settings)

    # poll: channel and video titles from the (fake) YouTube API, one upload gone (404).
    channel = ingestion.channel(HOSTILE, handle="@hostile")
    for title in (HOSTILE, FORMULA):
        ingestion.upload(channel, title=title)
    ingestion.upload(channel, title=HOSTILE, serve=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIND_CHANNELS", "@hostile")
        code, out, _ = cli("poll", "--once")
    assert code == 0 and "discover: 3 new video(s)" in out

    # submit DIR and scan DIR: file names with the hostile value, a missing one too.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    hostile_file = inbox / f"{HOSTILE}.mp4"
    shutil.copyfile(ingestion.samples["long"], hostile_file)
    spaceless = tmp_path / "spaceless" / f"{SPACELESS}.mp4"  # the same video: a duplicate
    spaceless.parent.mkdir()
    shutil.copyfile(ingestion.samples["long"], spaceless)
    code, out, err = cli(
        "submit", str(inbox), str(spaceless.parent), "--note", HOSTILE, "--submitter", HOSTILE
    )
    assert code == 0 and "pwned" in out and "submit.added" in err and "submit.duplicate" in err
    code, _, err = cli("submit", str(inbox), str(inbox / f"{HOSTILE}-gone.mp4"), json_log=True)
    assert code == 1 and "pwned" in err
    code, out, err = cli(
        "scan", str(inbox), str(inbox / f"{HOSTILE}-gone.mp4"), "--bundle", str(tiny_bundle_dir),
        "--frames", "2",
    )  # fmt: skip
    assert "pwned" in out and "no such file" in err
    code, out, _ = cli("scan", str(inbox), "--bundle", str(tiny_bundle_dir), "--frames", "2",
                       "--json")  # fmt: skip
    assert json.loads(out)["path"] == str(hostile_file)

    # Hostile values stored where the pipeline keeps outside text.
    with sessions.begin() as session:
        videos = list(session.scalars(select(Video).order_by(Video.id)))
        flagged, failed, submitted = videos[0], videos[1], videos[-1]
        flagged.state, flagged.score, flagged.verdict = "flagged", 0.9, "fake"
        flagged.channel_title = HOSTILE
        session.flush()
        session.add(analysis_of(flagged, worker=HOSTILE, bundle_id=HOSTILE))
        session.add(
            BankMatch(
                video_id=flagged.id, bank="fake", content_id=HOSTILE, matched_title=HOSTILE,
                query_share=0.5, bank_share=0.5, frames_matched=1, frames_compared=2,
                outcome="recorded",
            )
        )  # fmt: skip
        failed.state, failed.last_error_kind, failed.last_error = "failed", "network", HOSTILE
        for row in session.scalars(select(Channel)):
            row.last_error = HOSTILE
        session.add(Reviewer(name=HOSTILE, password_hash=None))
        flagged_id, failed_id, submitted_id = (
            flagged.youtube_id,
            failed.youtube_id,
            submitted.youtube_id,
        )

    # requeue: stored error text, dry run and for real.
    for dry in (("--dry-run",), ()):
        code, out, _ = cli("requeue", failed_id, *dry)
        assert code == 0 and "pwned" in out

    for argv in (("status",), ("status", "--json")):
        code, out, _ = cli(*argv)
        assert code == 0 and "pwned" in out

    # reviewers and review: names, titles, channels, notes, submitters, exports.
    assert cli("reviewers", "add", "alice", "--no-password")[0] == 0
    code, out, _ = cli("reviewers", "list")
    assert code == 0 and "pwned" in out
    for action in ("revoke", "disable", "enable"):
        code, out, _ = cli("reviewers", action, HOSTILE)
        assert code == 0 and "pwned" in out, action
    code, _, err = cli("review", "show", HOSTILE)  # an error that quotes the argument
    assert code == 2 and "pwned" in err
    for argv in (
        ("review", "list"),
        ("review", "list", "--json"),
        ("review", "show", flagged_id),
        ("review", "show", flagged_id, "--json"),
        ("review", "show", submitted_id),
    ):
        code, out, _ = cli(*argv)
        assert code == 0 and "pwned" in out, argv
    code, out, _ = cli(
        "review", "confirm", flagged_id, "--reviewer", "alice", "--reason", "impersonation",
        "--note", FORMULA,
    )  # fmt: skip
    assert code == 0
    code, out, _ = cli("review", "show", flagged_id)
    assert "HYPERLINK" in out
    code, out, _ = cli("review", "export", "--format", "csv", csv_out=True)
    assert code == 0 and _csv_cells_inert("review export", out) == 2 and "pwned" in out
    code, out, _ = cli("review", "export", "--format", "jsonl")
    assert code == 0 and json.loads(out)["note"] == FORMULA

    # bank: add (hostile content id, title and note), list, export, import, remove.
    code, out, _ = cli(
        "bank", "add", "--video", submitted_id, "--bank", "fake", "--content-id", HOSTILE,
        "--title", FORMULA, "--note", FORMULA, "--by", HOSTILE,
    )  # fmt: skip
    assert code == 0 and "pwned" in out
    for argv in (("bank", "list"), ("bank", "list", "--json")):
        code, out, _ = cli(*argv)
        assert code == 0 and "pwned" in out, argv
    code, out, _ = cli("bank", "export", "--format", "csv", csv_out=True)
    assert code == 0 and _csv_cells_inert("bank export", out) == 2
    exported = tmp_path / "bank.csv"
    exported.write_text(out, encoding="utf-8", newline="")
    code, out, _ = cli("bank", "export", "--format", "jsonl")
    assert code == 0 and json.loads(out)["title"] == FORMULA
    bad = tmp_path / f"{HOSTILE}.csv"
    bad.write_text(
        f'signal_type,signal,bank,content_id\n"{HOSTILE}",x,fake,"{HOSTILE}"\n',
        encoding="utf-8",
    )
    code, _, err = cli("bank", "import", str(bad))
    assert code != 0 and "pwned" in err
    code, out, _ = cli("bank", "remove", HOSTILE)
    assert code == 0 and "pwned" in out
    code, out, _ = cli("bank", "import", str(exported), "--source", HOSTILE)
    assert code == 0 and "1 entry added" in out
    with sessions() as session:  # the guard quote was the export's, not part of the title
        entry = session.scalars(select(BankEntry)).one()
        assert entry.title.startswith("=HYPERLINK") and "\x1b" not in entry.title

    # model info: a bundle from elsewhere, its manifest full of the hostile value.
    bundle = shutil.copytree(tiny_bundle_dir, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.update(name=HOSTILE, version=HOSTILE, created_at=HOSTILE, terms=HOSTILE)
    by_source = {
        f"fake/{HOSTILE}": {
            "label": 1,
            "videos": 1,
            "flagged": 1,
            "auc_vs_real": 0.5,
            "auc_vs_real_ci95": [HOSTILE, 0.7],
        },
        f"real/{HOSTILE}": {"label": 0, "videos": 1, "flagged": 0},
    }
    manifest["evaluations"] = {
        HOSTILE: {
            "frame_level": {"roc_auc": 0.5, "roc_auc_ci95": HOSTILE},
            "video_by_source": by_source,
        }
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    for argv in (("model", "info", str(bundle)), ("model", "info", str(bundle), "--json")):
        code, out, _ = cli(*argv)
        assert "pwned" in out, argv
        assert argv[-1] == "--json" or "by source: fake/x" in out  # the per-source line too

    # evaluate: a labelled folder whose sub-folders (the per-source lines) are hostile.
    import cv2

    from tests.model import synth

    face = cv2.cvtColor(synth.astronaut(), cv2.COLOR_RGB2BGR)
    for label, image in (("real", face), ("fake", face[:, ::-1])):
        folder = tmp_path / "labelled" / label / HOSTILE / "person"
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "0.png"), image)
    report_dir = tmp_path / f"e{SPACELESS}"
    code, out, _ = cli(
        "evaluate", str(bundle), str(tmp_path / "labelled"), "--out", str(report_dir), "--quiet"
    )
    assert code == 0 and out.count("pwned") >= 3, out  # two source lines and the report path
    # --against: the baseline report names a hostile bundle, its source rows hostile folders.
    code, out, _ = cli(
        "evaluate", str(bundle), str(tmp_path / "labelled"), "--out", str(tmp_path / "again"),
        "--quiet", "--against", str(report_dir / "report.json"),
    )  # fmt: skip
    against = out[out.index("against ") :].splitlines()
    assert code == 0 and "pwned" in against[0] and "pwned" in against[3], out

    # db: a database path chosen in the settings.
    odd = tmp_path / f"{HOSTILE}.db".replace("/", "_")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIND_DATABASE_URL", f"sqlite:///{odd}")
        for argv in (("db", "upgrade"), ("db", "current")):
            code, out, _ = cli(*argv)
            assert code == 0 and "pwned" in out
