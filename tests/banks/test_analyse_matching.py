"""The analyse stage against the banks, on real clips re-encoded by the test.

A long video is analysed and confirmed: a clip cut out of it, re-encoded
smaller, is then flagged as a re-upload without a model run.  Another video is
dismissed: its re-encoded copy is analysed, flagged by the (untrained,
threshold 0) model, and the flag is suppressed because its frames match the
dismissed one and it scores no higher; a copy that scores higher is flagged.
With FIND_DECLARED_SYNTHETIC=review a declared video is queued whatever its
score.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import review
from bot.db import session_factory
from bot.queue import WorkQueue, run_one
from bot.settings import Settings
from bot.stages.analyse import Analyser
from bot.store import KNOWN_FAKE_VERDICT, Analysis, BankMatch, Video
from tests.banks.conftest import ffmpeg
from tests.conftest import make_settings
from tests.daemon.helpers import add_downloaded_video

pytestmark = [pytest.mark.slow, pytest.mark.data]


def _settings(tmp_path: Path, bundle: Path, **env: str) -> Settings:
    from bot import db

    s = make_settings(tmp_path, FIND_MODEL_BUNDLE=str(bundle), FIND_FRAMES_PER_VIDEO="4", **env)
    db.upgrade(s)
    return s


def _analyse(settings: Settings, analyser: Analyser) -> None:
    queue = WorkQueue(session_factory(settings), lease_s=120)
    assert run_one(queue, "analyse", "t/analyse-0", analyser) is not None


def _video(settings: Settings, youtube_id: str) -> tuple[Video, list[Analysis], list[BankMatch]]:
    with session_factory(settings)() as session:
        video = session.scalars(select(Video).where(Video.youtube_id == youtube_id)).one()
        analyses = list(video.analyses)
        matches = list(session.scalars(select(BankMatch).where(BankMatch.video_id == video.id)))
        session.expunge_all()
        return video, analyses, matches


def test_reuploads_are_flagged_and_known_false_alarms_are_not(
    tmp_path: Path, tiny_bundle_dir: Path, real_clips: dict[str, Path]
) -> None:
    settings = _settings(tmp_path, tiny_bundle_dir, FIND_SCORE_THRESHOLD="0")
    analyser = Analyser(settings)
    sessions = session_factory(settings)

    # 1. The long video is flagged by the model and confirmed: it enters the fake bank.
    add_downloaded_video(settings, "vidLONGFAKE", real_clips["long"])
    _analyse(settings, analyser)
    assert _video(settings, "vidLONGFAKE")[0].state == "flagged"
    review.decide(sessions, "vidLONGFAKE", "confirmed", "alice", reason="impersonation")

    # 2. A clip of it, cut at 12.36 s, resized and re-encoded: flagged with no model run.
    add_downloaded_video(settings, "vidREUPLOAD", real_clips["cut"])
    _analyse(settings, analyser)
    video, analyses, [match] = _video(settings, "vidREUPLOAD")
    assert (video.state, video.verdict, video.score) == ("flagged", KNOWN_FAKE_VERDICT, None)
    assert analyses == [], "a known fake costs no model run"
    assert (match.bank, match.outcome, match.matched_youtube_id) == (
        "fake",
        "flagged",
        "vidLONGFAKE",
    )
    assert match.query_share >= 0.8 and match.bank_share < 0.6
    with sessions() as session:
        detail = review.get_video(session, "vidREUPLOAD")
        [first] = review.list_queue(session, review.QueueFilter()).items
    assert detail.known_fake is not None and detail.known_fake.matched_youtube_id == "vidLONGFAKE"
    assert first.youtube_id == "vidREUPLOAD" and first.known_fake, "re-uploads come first"

    # 3. Another video is dismissed; a re-encoded copy of it is not flagged again.
    add_downloaded_video(settings, "vidREALONE1", real_clips["unrelated"])
    _analyse(settings, analyser)
    assert _video(settings, "vidREALONE1")[0].state == "flagged"
    review.decide(sessions, "vidREALONE1", "dismissed", "bob", reason="not manipulated")
    copy = tmp_path / "copy.mp4"
    ffmpeg("-i", str(real_clips["unrelated"]), "-vf", "scale=512:288", "-c:v", "libx264",
           "-crf", "30", "-an", str(copy))  # fmt: skip
    add_downloaded_video(settings, "vidREALCOPY", copy)
    _analyse(settings, analyser)
    video, [analysis], [match] = _video(settings, "vidREALCOPY")
    assert analysis.verdict == "fake", "the threshold-0 model would flag it"
    assert (match.bank, match.matched_youtube_id) == ("benign", "vidREALONE1")
    assert match.faces_compared, "its face crops were compared and recorded"
    assert (match.outcome, video.state) == ("suppressed", "analysed")

    # 4. Had the dismissed video scored far lower, the same frames scoring higher now
    #    (a face swap made from it?) reach a reviewer again.
    with sessions.begin() as session:
        session.execute(update(Video).where(Video.youtube_id == "vidREALONE1").values(score=-1.0))
    add_downloaded_video(settings, "vidREALCOP2", copy)
    _analyse(settings, analyser)
    video, _analyses, [match] = _video(settings, "vidREALCOP2")
    assert (match.bank, match.outcome, video.state) == ("benign", "recorded", "flagged")


def test_declared_synthetic_videos_are_queued_when_asked(
    tmp_path: Path, tiny_bundle_dir: Path, real_clips: dict[str, Path]
) -> None:
    settings = _settings(
        tmp_path, tiny_bundle_dir, FIND_SCORE_THRESHOLD="1", FIND_DECLARED_SYNTHETIC="review"
    )
    analyser = Analyser(settings)
    add_downloaded_video(settings, "vidDECLARED", real_clips["cut"], declared_synthetic=True)
    add_downloaded_video(settings, "vidNOTDECL1", real_clips["unrelated"], declared_synthetic=False)
    _analyse(settings, analyser)
    _analyse(settings, analyser)
    assert _video(settings, "vidDECLARED")[0].state == "flagged"
    assert _video(settings, "vidNOTDECL1")[0].state == "analysed"
