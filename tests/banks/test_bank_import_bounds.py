"""`find-bot bank import` within bounds, and both export formats read back the same (issue 30
item 3): a file of countless bad lines costs no memory per line and is summarised ("and N
more"), an unclosed CSV quote is refused at once on one line, and the entries of submitted
videos round-trip through JSON lines exactly as through CSV."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

from bot import banks, db, review
from bot.cli import main
from bot.db import session_factory
from bot.settings import Settings
from bot.store import Video, VideoFingerprint
from tests.banks.conftest import fake_hashes
from tests.conftest import make_settings


def _import(settings: Settings, monkeypatch, capsys, path: Path) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """The real command; its exit status, stdout and stderr."""
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    code = main(["bank", "import", str(path)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def test_countless_bad_lines_cost_no_memory_per_line_and_are_summarised(  # type: ignore[no-untyped-def]
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    bad_lines = 25_000  # (1 M of them is the same, only slower; a long name makes each costly)
    path = tmp_path / ("partner-bank-" + "x" * 150 + ".jsonl")
    good = json.dumps(
        {"bank": "fake", "content_id": "ok:1", "vpdq": [fake_hashes(1, 3)[0].to_vpdq()]}
    )
    path.write_text(good + "\n" + '{"not json\n' * bad_lines)

    tracemalloc.start()
    try:
        with pytest.raises(banks.BankFileRejected) as info:
            banks.read_bank_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Every kept message would be ~300 bytes: 25,000 of them ~7.5 MB. Only 20 are kept.
    assert peak < 2_000_000, f"{peak / 1e6:.1f} MB held while reading {bad_lines} bad lines"
    problems = info.value.problems
    assert len(problems) == 21
    assert problems[0].startswith(f"{path}:2: not a bank entry")
    assert problems[-1] == f"{path}: ... and {bad_lines - 20} more bad lines"

    code, out, err = _import(sqlite_settings, monkeypatch, capsys, path)
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert len(lines) == 22, lines[-3:]  # 20 bad lines, "and N more", the refusal
    assert lines[20] == f"{path}: ... and {bad_lines - 20} more bad lines"
    assert lines[21] == (
        f"find-bot: error: {path}: {bad_lines} bad lines, nothing imported; fix or remove "
        "them and import again"
    )


def test_an_unclosed_csv_quote_is_refused_at_once_on_one_line(  # type: ignore[no-untyped-def]
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys
) -> None:
    """A quoted cell that never closes would swallow the rest of the file into one cell (80 MB
    cost 7.9 GB and 3.5 minutes): reading stops at the row bound, with the row's line."""
    path = tmp_path / "runaway.csv"
    with path.open("w") as out:
        out.write("signal_type,signal,bank,content_id\n")
        out.write(f"pdq,{'a' * 64},fake,img:1\n")
        out.write('vpdq,"[\n')  # line 3: the quote never closes
        out.write(("b" * 31 + "\n") * 800_000)  # 25 MB, six times the row bound
    started = time.monotonic()
    code, out, err = _import(sqlite_settings, monkeypatch, capsys, path)
    elapsed = time.monotonic() - started
    assert code == 2 and out == ""
    problem, refusal = err.splitlines()
    assert problem.startswith(f"{path}:3: a CSV row starting here runs on past 4194304 characters")
    assert "unclosed quote" in problem and "not read" in problem
    assert refusal == (
        f"find-bot: error: {path}: 1 bad line, nothing imported; fix or remove them and "
        "import again"
    )
    assert elapsed < 20, f"{elapsed:.1f} s to refuse it"  # (~1 s; every row of it: minutes)
    assert not _listed(sqlite_settings, monkeypatch, capsys)


def _listed(settings: Settings, monkeypatch, capsys) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    assert main(["bank", "list", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_entries_of_submitted_videos_round_trip_in_both_formats(  # type: ignore[no-untyped-def]
    tmp_path: Path, sqlite_settings: Settings, monkeypatch, capsys, fmt: str
) -> None:
    key = "sub-0123456789ab"  # a submitted file's key: not a YouTube id
    frames = fake_hashes(7)
    sessions = session_factory(sqlite_settings)
    with sessions.begin() as session:
        video = Video(youtube_id=key, title="sent-in.mp4", source="submitted_file", state="flagged")
        session.add(video)
        session.flush()
        session.add(
            VideoFingerprint(
                video_id=video.id,
                frames=[[f.t, f.hash, f.quality] for f in frames],
                bank_frames=[[f.t, f.hash, f.quality] for f in frames],
                faces=[{"track": 0, "frame": 3, "t": 1.0, "hash": frames[0].hash, "quality": 90}],
            )
        )
    review.decide(sessions, key, "confirmed", "alice", reason="impersonation")
    [exported] = _listed(sqlite_settings, monkeypatch, capsys)
    assert (exported["content_id"], exported["youtube_id"]) == (f"submission:{key}", key)

    out = tmp_path / f"bank.{fmt}"
    assert main(["bank", "export", "--format", fmt, "-o", str(out)]) == 0
    capsys.readouterr()
    other = make_settings(tmp_path / "other")
    db.upgrade(other)
    code, stdout, err = _import(other, monkeypatch, capsys, out)
    assert code == 0, err
    assert "1 entry added" in stdout
    [imported] = _listed(other, monkeypatch, capsys)
    same = ("bank", "content_id", "youtube_id", "title", "note", "frames", "faces", "created_at")
    assert {k: imported[k] for k in same} == {k: exported[k] for k in same}
    [match] = banks.Matcher(session_factory(other)).lookup(frames)  # and it matches there
    assert match.content_id == f"submission:{key}"
