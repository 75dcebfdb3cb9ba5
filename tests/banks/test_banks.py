"""Banks in the database: filled by decisions, moved by reversals, shared by export/import,
looked up through the index; and the `find-bot bank` commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot import banks, review
from bot.cli import main
from bot.db import session_factory
from bot.settings import Settings
from bot.store import Video, VideoFingerprint
from tests.banks.conftest import fake_hashes
from tests.conftest import make_settings

REASON = "impersonation"


def _video_with_fingerprint(settings: Settings, youtube_id: str, seed: int) -> list:
    frames = fake_hashes(seed)
    with session_factory(settings).begin() as session:
        video = Video(youtube_id=youtube_id, title=f"title {youtube_id}", state="flagged")
        session.add(video)
        session.flush()
        session.add(
            VideoFingerprint(
                video_id=video.id,
                frames=[[f.t, f.hash, f.quality] for f in frames[::2]],
                bank_frames=[[f.t, f.hash, f.quality] for f in frames],
                faces=[{"track": 0, "frame": 3, "t": 1.0, "hash": frames[0].hash, "quality": 90}],
            )
        )
    return frames


def _entries(settings: Settings) -> list[banks.EntryInfo]:
    with session_factory(settings)() as session:
        return banks.list_entries(session)


def test_decisions_fill_the_banks_and_a_reversal_moves_the_video(settings: Settings) -> None:
    sessions = session_factory(settings)
    frames = _video_with_fingerprint(settings, "vidBANK0001", seed=1)
    review.decide(sessions, "vidBANK0001", "confirmed", "alice", reason=REASON)
    [entry] = _entries(settings)
    assert (entry.bank, entry.content_id, entry.youtube_id) == (
        "fake",
        "youtube:vidBANK0001",
        "vidBANK0001",
    )
    assert (entry.frames, entry.faces, entry.source, entry.added_by) == (12, 1, "review", "alice")

    with pytest.raises(review.ReviewError, match="appeal-reason"):
        review.decide(
            sessions, "vidBANK0001", "dismissed", "bob", reason="not manipulated", force=True
        )
    info = review.decide(
        sessions,
        "vidBANK0001",
        "dismissed",
        "bob",
        reason="not manipulated",
        force=True,
        reversal_reason="uploader sent the original footage",
    )
    assert info.is_reversal and info.reverses_id is not None
    [entry] = _entries(settings)
    assert entry.bank == "benign" and entry.frames == len(frames)

    matcher = banks.Matcher(sessions)
    [match] = matcher.lookup(frames[:5])
    assert match.bank == "benign" and match.query_share == 1.0
    assert matcher.lookup(frames[:5], exclude_youtube_id="vidBANK0001") == []


def test_policy_reason_is_required_and_checked(sqlite_settings: Settings) -> None:
    sessions = session_factory(sqlite_settings)
    _video_with_fingerprint(sqlite_settings, "vidREASON01", seed=2)
    with pytest.raises(review.ReviewError, match="needs a policy reason"):
        review.decide(sessions, "vidREASON01", "confirmed", "alice")
    with pytest.raises(review.ReviewError, match="'because' is not a policy reason"):
        review.decide(sessions, "vidREASON01", "confirmed", "alice", reason="because")
    info = review.decide(
        sessions, "vidREASON01", "confirmed", "alice", reason="spam", reasons=("spam", "other")
    )
    assert info.policy_reason == "spam" and not info.is_reversal


def test_matcher_follows_additions_and_removals(sqlite_settings: Settings) -> None:
    sessions = session_factory(sqlite_settings)
    matcher = banks.Matcher(sessions, share=0.8)
    first, second = fake_hashes(10), fake_hashes(11)
    assert matcher.lookup(first) == []
    with sessions.begin() as session:
        banks.add_entry(session, bank="fake", content_id="x:1", frames=first, source="cli")
    [match] = matcher.lookup(first[3:9])  # a clip: 6 of its 12 seconds
    assert (match.content_id, match.query_share, match.bank_share) == ("x:1", 1.0, 0.5)
    with sessions.begin() as session:  # appended rows: the index is extended
        banks.add_entry(session, bank="benign", content_id="x:2", frames=second, source="cli")
    assert [m.content_id for m in matcher.lookup(first + second)] == []  # 50 % each: below
    assert [m.content_id for m in matcher.lookup(second)] == ["x:2"]
    with sessions.begin() as session:
        banks.remove_entry(session, "x:1")
    assert matcher.lookup(first) == []
    assert [m.content_id for m in matcher.lookup(second)] == ["x:2"]


def test_low_quality_frames_never_match(sqlite_settings: Settings) -> None:
    sessions = session_factory(sqlite_settings)
    flat = [banks.vpdq.Feature(f.hash, 10, f.t) for f in fake_hashes(12)]
    with sessions.begin() as session:
        banks.add_entry(session, bank="fake", content_id="flat", frames=flat, source="cli")
    assert banks.Matcher(sessions).lookup(flat) == []


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_then_import_elsewhere_gives_the_same_bank(
    tmp_path: Path, sqlite_settings: Settings, fmt: str
) -> None:
    sessions = session_factory(sqlite_settings)
    frames, faces = fake_hashes(20), fake_hashes(21, n=2)
    with sessions.begin() as session:
        banks.add_entry(
            session,
            bank="fake",
            content_id="team-a:42",
            frames=frames,
            faces=faces,
            title="Fake speech, CEO",
            source="cli",
            note="seen on 3 channels",
        )
        banks.add_entry(
            session, bank="benign", content_id="team-a:43", frames=fake_hashes(22), source="cli"
        )
    out = tmp_path / f"bank.{fmt}"
    with sessions() as session, out.open("w", newline="") as handle:
        assert banks.export_bank(session, handle, fmt) == 2
    if fmt == "csv":
        header = out.read_text().splitlines()[0]
        assert header.startswith("signal_type,signal,")
        assert "pdq," + faces[0].hash in out.read_text()

    other = make_settings(tmp_path / "other")
    from bot import db

    db.upgrade(other)
    parsed = banks.read_bank_file(out)
    with session_factory(other).begin() as session:
        summary = banks.import_entries(session, parsed, "import:bank")
    assert (summary.added, summary.skipped) == (2, 0)
    with session_factory(other).begin() as session:  # importing twice adds nothing
        assert banks.import_entries(session, parsed, "import:bank").skipped == 2
    [fake, benign] = _entries(other)
    assert (fake.content_id, fake.bank, fake.frames, fake.faces) == ("team-a:42", "fake", 12, 2)
    assert fake.title == "Fake speech, CEO" and fake.source == "import:bank"
    assert benign.bank == "benign"
    [match] = banks.Matcher(session_factory(other)).lookup(frames)
    assert match.content_id == "team-a:42"


def test_a_bad_bank_file_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"bank": "fake", "content_id": "a", "vpdq": [fake_hashes(1, 1)[0].to_vpdq()]}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "vpdq": ["zz,1,0"]}) + "\n")
    with pytest.raises(banks.BankFileRejected, match=r"bad.jsonl: 1 bad line, nothing") as info:
        banks.read_bank_file(bad)
    [problem] = info.value.problems
    assert problem.startswith(f"{bad}:2: not a bank entry")
    nobank = tmp_path / "nobank.csv"
    nobank.write_text(f"signal_type,signal\npdq,{'a' * 64}\n")
    with pytest.raises(banks.BankFileRejected) as info:
        banks.read_bank_file(nobank)
    assert re.search(r"nobank.csv:2: bank '\(none\)'.*--bank", info.value.problems[0])
    assert banks.read_bank_file(nobank, "benign")[0].frames[0].hash == "a" * 64


def test_bank_commands(
    tmp_path: Path, sqlite_settings: Settings, capsys, monkeypatch, real_clip_or_synthetic: Path
) -> None:
    for key, value in {"FIND_DATA_DIR": str(sqlite_settings.data_dir)}.items():
        monkeypatch.setenv(key, value)
    assert (
        main(
            [
                "bank",
                "add",
                "--file",
                str(real_clip_or_synthetic),
                "--bank",
                "fake",
                "--content-id",
                "file:clip",
                "--title",
                "a known fake",
            ]
        )
        == 0
    )
    assert "file:clip: added to the fake bank" in capsys.readouterr().out
    assert (
        main(
            [
                "bank",
                "add",
                "--file",
                str(real_clip_or_synthetic),
                "--bank",
                "benign",
                "--content-id",
                "file:clip",
            ]
        )
        == 2
    )
    assert "already in the fake bank" in capsys.readouterr().err
    assert main(["bank", "list"]) == 0
    listing = capsys.readouterr().out
    assert "file:clip / a known fake (cli)" in listing and "1 fake, 0 benign" in listing
    exported = tmp_path / "bank.csv"
    assert main(["bank", "export", "--format", "csv", "-o", str(exported)]) == 0
    capsys.readouterr()
    assert main(["bank", "remove", "file:clip"]) == 0
    assert "removed from the fake bank" in capsys.readouterr().out
    assert main(["bank", "import", str(exported)]) == 0
    assert "1 entry added" in capsys.readouterr().out
    assert main(["bank", "list", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["content_id"] == "file:clip" and row["source"] == "import:bank.csv"
    assert main(["bank", "remove", "nothing-like-it"]) == 2
    assert "no bank entry 'nothing-like-it'" in capsys.readouterr().err


@pytest.fixture
def real_clip_or_synthetic(tmp_path: Path) -> Path:
    """A small real-looking video: a synthetic moving face (no shared data needed)."""
    from tests.model import synth

    return synth.face_video(tmp_path / "clip.mp4", n_frames=48, faces=1)


def _entry(**fields: object) -> dict[str, object]:
    return {
        "format": "find-bank/1",
        "bank": "fake",
        "content_id": "team:1",
        "vpdq": [fake_hashes(1, 3)[0].to_vpdq()],
        **fields,
    }


def _cli_import(settings: Settings, monkeypatch, capsys, path: Path) -> tuple[int, str]:
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    code = main(["bank", "import", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _bank_size(settings: Settings) -> int:
    with session_factory(settings)() as session:
        return len(banks.list_entries(session))


def test_every_bad_field_is_one_line_and_nothing_is_half_imported(
    tmp_path: Path, sqlite_settings: Settings, capsys, monkeypatch
) -> None:
    """Issue 21 item 14: quality out of range, nan/inf timestamps, an object as content id."""
    good = fake_hashes(1, 3)[0]
    lines = [
        _entry(content_id="ok:1"),
        _entry(content_id="q:low", vpdq=[f"{good.hash},-5,0.000"]),
        _entry(content_id="q:high", vpdq=[f"{good.hash},1000,0.000"]),
        _entry(content_id="t:nan", vpdq=[f"{good.hash},90,nan"]),
        _entry(content_id="t:inf", vpdq=[f"{good.hash},90,inf"]),
        _entry(content_id={"an": "object"}),
        _entry(content_id="ok:2", title=["not", "text"]),
        _entry(content_id="ok:3", youtube_id="../../pwnd1"),
        _entry(content_id="ok:4", added_at="yesterday"),
        _entry(content_id="ok:5"),
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, err = _cli_import(sqlite_settings, monkeypatch, capsys, path)
    assert code == 2
    reported = err.splitlines()
    for number, what in [
        (2, "quality -5"),
        (3, "quality 1000"),
        (4, "not a time"),
        (5, "not a time"),
        (6, "content_id must be a string"),
        (7, "title must be a string"),
        (8, "not a YouTube video id"),
        (9, "not an ISO date"),
    ]:
        [line] = [r for r in reported if r.startswith(f"{path}:{number}:")]
        assert what in line, line
    assert reported[-1] == (
        f"find-bot: error: {path}: 8 bad lines, nothing imported; fix or remove them and "
        "import again"
    )
    assert _bank_size(sqlite_settings) == 0  # the good lines were not imported either


def test_non_utf8_is_one_line_and_a_bom_is_fine(
    tmp_path: Path, sqlite_settings: Settings, capsys, monkeypatch
) -> None:
    latin = tmp_path / "latin1.jsonl"
    rows = [_entry(content_id=f"caf\u00e9:{i}", note="d\u00e9j\u00e0 vu") for i in range(5)]
    latin.write_bytes(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("latin-1")
    )
    code, err = _cli_import(sqlite_settings, monkeypatch, capsys, latin)
    assert code == 2
    [problem, refusal] = err.splitlines()
    assert (
        problem.startswith(f"{latin}:1: not UTF-8 (byte 0xe9")
        and "save the file as UTF-8" in problem
    )
    assert refusal.startswith("find-bot: error:") and "nothing imported" in refusal

    for name, text in {
        "bom.jsonl": json.dumps(_entry()) + "\n",
        "bom.csv": f"signal_type,signal,bank,content_id\npdq,{'a' * 64},benign,img:1\n",
    }.items():
        bom = tmp_path / name
        bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
        code, err = _cli_import(sqlite_settings, monkeypatch, capsys, bom)
        assert code == 0, err
    assert _bank_size(sqlite_settings) == 2


def test_import_limits_bound_what_a_file_can_hold(tmp_path: Path) -> None:
    """A huge entry is refused by its size without being kept in memory; hash counts too."""
    limits = banks.ImportLimits(line_bytes=4096, hashes_per_entry=20, total_hashes=50)
    feature = fake_hashes(1, 3)[0].to_vpdq()
    path = tmp_path / "big.jsonl"
    with path.open("w") as out:
        out.write(json.dumps(_entry(content_id="huge", vpdq=[feature] * 10_000)) + "\n")
        out.write(json.dumps(_entry(content_id="many", vpdq=[feature] * 21)) + "\n")
        for i in range(3):
            out.write(json.dumps(_entry(content_id=f"fine:{i}", vpdq=[feature] * 20)) + "\n")
    with pytest.raises(banks.BankFileRejected) as info:
        banks.read_bank_file(path, limits=limits)
    huge, many, total = info.value.problems
    assert huge.startswith(f"{path}:1: longer than 4096 bytes")
    assert many.startswith(f"{path}:2:") and "21 hashes, more than 20" in many
    assert total.startswith(f"{path}:5: more than 50 hashes in the file")
