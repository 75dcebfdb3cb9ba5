"""bot.review on both backends: queue queries, compare-and-set decisions, exports, crops."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot import review
from bot.db import session_factory
from bot.review import why
from bot.store import ReviewDecision, Video, utcnow
from tests.review.conftest import CHANNEL_B, seed_video

REASON = "impersonation"


def _queue(settings, **kw) -> list[str]:
    with session_factory(settings)() as session:
        return [i.youtube_id for i in review.list_queue(session, review.QueueFilter(**kw)).items]


def test_queue_is_sorted_by_score_and_filters(settings, seeded):
    assert _queue(settings) == ["vidAAAAAAA1", "vidCCCCCCC3", "vidBBBBBBB2"]
    assert _queue(settings, channel=CHANNEL_B) == ["vidBBBBBBB2"]
    assert _queue(settings, min_score=0.8) == ["vidAAAAAAA1", "vidCCCCCCC3"]
    assert _queue(settings, since=utcnow() - timedelta(days=7)) == ["vidAAAAAAA1", "vidCCCCCCC3"]
    assert _queue(settings, limit=2, offset=2) == ["vidBBBBBBB2"]
    assert _queue(settings, state="confirmed") == []
    with session_factory(settings)() as session:
        page = review.list_queue(session, review.QueueFilter(limit=2))
    assert page.total == 3 and page.has_next
    first = page.items[0]
    assert first.faces == 16 and first.analysis_id == seeded[0].analysis_id
    assert first.url == "https://www.youtube.com/watch?v=vidAAAAAAA1"
    assert first.to_json()["age_s"] >= 2 * 86400 - 5
    with pytest.raises(review.ReviewError):
        review.QueueFilter(state="new")


def test_show_returns_analysis_evidence_and_history(settings, seeded):
    sessions = session_factory(settings)
    review.decide(
        sessions, "vidAAAAAAA1", "confirmed", "alice", note="face swap at 0:04", reason=REASON
    )
    with sessions() as session:
        video = review.get_video(session, "vidAAAAAAA1")
    assert video.state == "confirmed"
    a = video.analysis
    assert a is not None and a.id == seeded[0].analysis_id
    assert [c.index for c in a.crops] == [0, 1, 2]
    decisive = why.explain(a).decisive  # per-track summaries: bot.review.why
    assert decisive.track == 0 and decisive.score == pytest.approx(0.95)
    assert a.timings["total"] == 5.4
    assert [(d.reviewer, d.decision, d.previous_state, d.note) for d in video.decisions] == [
        ("alice", "confirmed", "flagged", "face swap at 0:04")
    ]
    assert video.decisions[0].analysis_id == a.id
    data = json.loads(json.dumps(video.to_json()))
    assert data["analysis"]["bundle_id"] == "find-xception"
    with sessions() as session, pytest.raises(review.VideoNotFound):
        review.get_video(session, "nope")


def test_decisions_are_compare_and_set_and_history_is_kept(settings, seeded):
    sessions = session_factory(settings)
    review.decide(sessions, "vidAAAAAAA1", "confirmed", "alice", reason=REASON)
    # Bob looked at the page while the video was still flagged.
    with pytest.raises(review.DecisionConflict) as err:
        review.decide(
            sessions, "vidAAAAAAA1", "dismissed", "bob", expected_state="flagged", reason=REASON
        )
    assert "already confirmed by alice" in str(err.value)
    assert "--force" in str(err.value)
    assert err.value.summary.startswith("already confirmed by alice at ")
    assert err.value.by == "alice" and err.value.current_state == "confirmed"
    # Forcing supersedes, appending to the history.
    review.decide(
        sessions,
        "vidAAAAAAA1",
        "dismissed",
        "bob",
        force=True,
        note="it is parody",
        reason=REASON,
        reversal_reason="parody, labelled as such",
    )
    with sessions() as session:
        rows = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        state = session.scalar(select(Video.state).where(Video.youtube_id == "vidAAAAAAA1"))
    assert [(r.reviewer, r.decision, r.previous_state) for r in rows] == [
        ("alice", "confirmed", "flagged"),
        ("bob", "dismissed", "confirmed"),
    ]
    assert rows[1].reverses_id == rows[0].id and rows[1].policy_reason == REASON
    assert rows[1].reversal_reason == "parody, labelled as such"
    assert state == "dismissed"
    with pytest.raises(review.ReviewError):
        review.decide(sessions, "vidAAAAAAA1", "deleted", "bob", reason=REASON)
    with pytest.raises(review.ReviewError):
        review.decide(sessions, "vidAAAAAAA1", "confirmed", "  ", reason=REASON)


def test_undecidable_states_are_refused(settings):
    seed_video(settings, "vidLOW00001", state="analysed", score=0.1)
    with pytest.raises(review.DecisionConflict, match=r"is analysed, not flagged.*--force"):
        review.decide(session_factory(settings), "vidLOW00001", "confirmed", "alice", reason=REASON)
    seed_video(settings, "vidNEW00001", state="new")
    with pytest.raises(review.ReviewError, match="not analysed yet"):
        review.decide(
            session_factory(settings),
            "vidNEW00001",
            "confirmed",
            "alice",
            force=True,
            reason=REASON,
        )


def test_concurrent_deciders_only_one_wins(settings, seeded):
    """Eight reviewers press a button at the same instant: exactly one decision lands."""
    sessions = session_factory(settings)
    barrier = threading.Barrier(8)
    results: list[object] = [None] * 8

    def decide(i: int) -> None:
        barrier.wait()
        try:
            results[i] = review.decide(
                sessions,
                "vidCCCCCCC3",
                "confirmed" if i % 2 else "dismissed",
                f"rev{i}",
                reason=REASON,
            )
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [r for r in results if isinstance(r, review.DecisionInfo)]
    losses = [r for r in results if isinstance(r, review.DecisionConflict)]
    assert len(wins) == 1 and len(losses) == 7, results
    winner = wins[0]
    assert all(f"by {winner.reviewer}" in str(loss) for loss in losses)
    with sessions() as session:
        rows = session.scalars(select(ReviewDecision)).all()
        state = session.scalar(select(Video.state).where(Video.youtube_id == "vidCCCCCCC3"))
    assert len(rows) == 1 and rows[0].reviewer == winner.reviewer
    assert state == winner.decision


def test_decider_blocked_behind_open_transaction_sees_the_winner(settings, seeded):
    """A decision that waits on another's uncommitted write re-checks the state, not overwrites."""
    sessions = session_factory(settings)
    first = sessions()
    first.begin()
    video = first.scalars(select(Video).where(Video.youtube_id == "vidBBBBBBB2")).one()
    assert (
        first.execute(
            update(Video)
            .where(Video.id == video.id, Video.state == "flagged")
            .values(state="confirmed")
        ).rowcount
        == 1
    )
    first.add(
        ReviewDecision(
            video_id=video.id,
            reviewer="alice",
            decision="confirmed",
            previous_state="flagged",
            decided_at=utcnow(),
        )
    )
    first.flush()

    outcome: list[object] = []
    second = threading.Thread(
        target=lambda: outcome.append(
            _catch(review.decide, sessions, "vidBBBBBBB2", "dismissed", "bob", reason=REASON)
        )
    )
    second.start()
    second.join(1.0)
    assert second.is_alive(), "the second decision should wait for the first transaction"
    first.commit()
    first.close()
    second.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], review.DecisionConflict)
    assert "already confirmed by alice" in str(outcome[0])
    with sessions() as session:
        assert [d.reviewer for d in session.scalars(select(ReviewDecision))] == ["alice"]


def _catch(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return exc


def test_crop_path_stays_inside_media_dir(settings, seeded, tmp_path):
    with session_factory(settings)() as session:
        a = review.get_analysis(session, seeded[0].analysis_id)
    assert review.crop_path(settings, a, 0) == seeded[0].crop_paths[0].resolve()
    assert review.crop_path(settings, a, 3) is None
    assert review.crop_path(settings, a, -1) is None
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for you")
    hostile = [
        review.CropInfo(0, "../../secret.jpg", 0, 0, 0.0, 0.9),
        review.CropInfo(1, str(secret), 0, 0, 0.0, 0.9),
        review.CropInfo(2, "crops/../../../etc/passwd", 0, 0, 0.0, 0.9),
    ]
    bad = review.AnalysisInfo(**{**a.__dict__, "crops": hostile})
    assert [review.crop_path(settings, bad, i) for i in range(3)] == [None, None, None]
    # A symlink inside the media dir that points out is refused too.
    link = settings.media_dir / "crops" / "link.jpg"
    link.symlink_to(secret)
    linked = review.AnalysisInfo(
        **{**a.__dict__, "crops": [review.CropInfo(0, "crops/link.jpg", 0, 0, 0.0, 0.9)]}
    )
    assert review.crop_path(settings, linked, 0) is None


def test_score_plot_is_a_png(settings, seeded):
    with session_factory(settings)() as session:
        a = review.get_analysis(session, seeded[0].analysis_id)
    png = review.render_score_plot(a)
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert [s[0] for s in review.score_series(a)] == [0, 1]


def test_report_exports(settings, seeded):
    sessions = session_factory(settings)
    review.decide(
        sessions, "vidAAAAAAA1", "confirmed", "alice", note='says "hi", twice', reason=REASON
    )
    review.decide(sessions, "vidBBBBBBB2", "dismissed", "bob", reason=REASON)
    with sessions() as session:
        out = io.StringIO()
        assert review.export_report(session, out, "csv") == 3
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        out = io.StringIO()
        assert review.export_report(session, out, "jsonl", states=["confirmed"]) == 1
        lines = [json.loads(x) for x in out.getvalue().splitlines()]
    by_id = {r["youtube_id"]: r for r in rows}
    assert by_id["vidAAAAAAA1"]["reviewer"] == "alice"
    assert by_id["vidAAAAAAA1"]["note"] == 'says "hi", twice'
    assert by_id["vidAAAAAAA1"]["policy_reason"] == REASON
    assert by_id["vidCCCCCCC3"]["decision"] == ""
    assert lines[0]["decisions"][0]["reviewer"] == "alice"


def test_dataset_export_is_readable_by_training(settings, seeded, tmp_path):
    sessions = session_factory(settings)
    review.decide(sessions, "vidAAAAAAA1", "confirmed", "alice", reason=REASON)
    review.decide(sessions, "vidBBBBBBB2", "confirmed", "alice", reason=REASON)
    review.decide(
        sessions,
        "vidBBBBBBB2",
        "dismissed",
        "bob",
        force=True,
        reason=REASON,
        reversal_reason="second look",
    )  # supersedes
    review.decide(
        sessions, "vidDDDDDDD4", "dismissed", "carol", expected_state="analysed", reason=REASON
    )
    seeded[0].crop_paths[0].unlink()  # media retention removed one crop
    out = tmp_path / "export"
    with sessions() as session:
        summary = review.export_dataset(session, settings, out)
    assert (summary.videos, summary.fake, summary.real, summary.missing_crops) == (3, 1, 2, 1)
    rows = {
        r["video_id"]: r for r in map(json.loads, (out / "labels.jsonl").read_text().splitlines())
    }
    assert rows["vidAAAAAAA1"]["label"] == "fake" and len(rows["vidAAAAAAA1"]["crops"]) == 2
    assert rows["vidBBBBBBB2"]["label"] == "real" and rows["vidBBBBBBB2"]["reviewer"] == "bob"
    for row in rows.values():
        for rel in row["crops"]:
            assert rel.startswith(f"crops/{row['video_id']}/")
            assert (out / rel).read_bytes()[:2] == b"\xff\xd8"
    with sessions() as session, pytest.raises(review.ReviewError, match="already holds"):
        review.export_dataset(session, settings, out)

    from model.training.datasets import detect_format, load_review_export

    assert detect_format(out) == "review"
    samples = load_review_export(out)
    assert len(samples) == summary.crops == 2 + 3 + 3
    assert {s.video_id for s in samples} == set(rows)
