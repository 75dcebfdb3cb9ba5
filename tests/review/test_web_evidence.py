"""The video page's evidence (crops, frames, bank matches, the declaration), local
playback with range requests, and reversals with reasons, over HTTP."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.db import session_factory
from bot.review import reviewers
from bot.review.web import create_app
from bot.store import Analysis, BankMatch, Video
from tests.review.conftest import _face_jpeg, seed_video
from tests.review.test_web import HTML, PASSWORD, TestClient, _csrf, _login, _web_settings

REASON = "impersonation"


def _add_views(settings, seeded) -> None:
    """Frame images beside each crop, as the analyse stage writes them (and a heatmap, as
    analyses before issue 22 did: the page must not show it); the first crop is an upscale."""
    with session_factory(settings).begin() as session:
        analysis = session.get(Analysis, seeded.analysis_id)
        crops = []
        for i, crop in enumerate(analysis.crops):
            stem = crop["path"].removesuffix(".jpg")
            for key, suffix in (("heatmap", "-heat.jpg"), ("context", "-frame.jpg")):
                _face_jpeg(settings.media_dir / f"{stem}{suffix}", shift=i)
                crop = {**crop, key: f"{stem}{suffix}"}
            crops.append({**crop, "upscaled_from": 48} if i == 0 else crop)
        analysis.crops = crops


@pytest.fixture
def web(sqlite_settings, tmp_path: Path):
    from tests.model import synth

    s = _web_settings(sqlite_settings)
    seeded = seed_video(s, "vidEVIDENC1", score=0.93, title="x" * 300)
    _add_views(s, seeded)
    media = s.media_dir / "videos" / "vidEVIDENC1.mp4"
    media.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(synth.face_video(tmp_path / "v.mp4", n_frames=24), media)
    with session_factory(s).begin() as session:
        session.execute(
            update(Video)
            .where(Video.youtube_id == "vidEVIDENC1")
            .values(media_path="videos/vidEVIDENC1.mp4", declared_synthetic=True)
        )
        video_id = session.query(Video.id).filter(Video.youtube_id == "vidEVIDENC1").scalar()
        session.add(
            BankMatch(
                video_id=video_id, bank="benign", content_id="youtube:vidOLDREAL01",
                matched_youtube_id="vidOLDREAL01", matched_title="the dismissed one",
                query_share=0.9, bank_share=0.4, frames_matched=9, frames_compared=10,
                outcome="recorded",
            )
        )  # fmt: skip
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        _login(client)
        yield client, s, media


def test_video_page_shows_frames_matches_and_the_declaration(web) -> None:
    client, _s, _media = web
    page = client.get("/videos/vidEVIDENC1", headers=HTML)
    assert page.status_code == 200
    assert "media-src 'self'" in page.headers["content-security-policy"]
    # The decisive track's best crop is shown beside its frame; every crop links its frame.
    assert len(re.findall(r'src="(/crops/\d+/\d+/context)"', page.text)) == 1
    urls = sorted(set(re.findall(r'href="(/crops/\d+/\d+/context)"', page.text)))
    assert len(urls) == 3
    image = client.get(urls[0])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    assert client.get(urls[0].replace("context", "other")).status_code == 404
    # Heatmaps (a central blob on every crop) are not shown, even where an old analysis has one.
    assert "/heatmap" not in page.text and "Grad-CAM" not in page.text
    # A small face is marked as an upscale, the others are not.
    assert page.text.count("upscaled from 48 px</span>") == 1
    assert len(re.findall(r'<img[^>]*class="upscaled"', page.text)) == 1
    # The evidence comes before the player (a portrait video must not push it below the fold).
    assert page.text.index('id="evidence-card"') < page.text.index('id="player-card"')
    assert 'id="declared-synthetic"' in page.text and "Declared synthetic" in page.text
    assert "Matches a dismissed video" in page.text and "/videos/vidOLDREAL01" in page.text
    # Playback from the frames that drove the score.
    assert '<video id="player"' in page.text and 'src="/media/vidEVIDENC1"' in page.text
    seek = re.search(r'href="(/videos/vidEVIDENC1\?t=[\d.]+)#player-card"', page.text).group(1)
    t = seek.split("=")[1]
    assert f'src="/media/vidEVIDENC1#t={t}"' in client.get(seek, headers=HTML).text
    # The reason picker lists the configured policy reasons.
    assert '<select name="reason" required' in page.text and f">{REASON}</option>" in page.text


def test_media_is_played_with_range_requests_and_only_by_id(web) -> None:
    client, s, media = web
    size = media.stat().st_size
    full = client.get("/media/vidEVIDENC1")
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes" and len(full.content) == size
    part = client.get("/media/vidEVIDENC1", headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == media.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    for url in ("/media/nothere0001", "/media/..%2F..%2Fetc%2Fpasswd", "/media/a.b"):
        assert client.get(url).status_code == 404, url
    # A row pointing outside the media directory is never served.
    with session_factory(s).begin() as session:
        session.execute(
            update(Video).where(Video.youtube_id == "vidEVIDENC1").values(media_path="/etc/passwd")
        )
    assert client.get("/media/vidEVIDENC1").status_code == 404
    media.unlink()
    assert "player" not in client.get("/videos/vidEVIDENC1", headers=HTML).text
    client.cookies.clear()
    assert client.get("/media/vidEVIDENC1").status_code == 401


def test_reversal_needs_a_reason_and_shows_in_history_and_queue(web) -> None:
    client, _s, _media = web
    page = client.get("/videos/vidEVIDENC1", headers=HTML)
    token = _csrf(page.text)
    missing = client.post(
        "/videos/vidEVIDENC1/decision",
        data={"decision": "confirmed", "expected_state": "flagged", "csrf_token": token},
        headers=HTML,
    )
    assert missing.status_code == 400 and "needs a policy reason" in missing.text
    done = client.post(
        "/videos/vidEVIDENC1/decision",
        data={"decision": "confirmed", "reason": REASON, "expected_state": "flagged",
              "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    page = client.get("/videos/vidEVIDENC1", headers=HTML).text
    assert "Reverse this decision (appeal)" in page and 'id="reversal-reason"' in page
    no_reason = client.post(
        "/videos/vidEVIDENC1/decision",
        data={"decision": "dismissed", "reason": "not manipulated", "expected_state": "confirmed",
              "csrf_token": token},
        headers=HTML,
    )  # fmt: skip
    assert no_reason.status_code == 400 and "appeal" in no_reason.text
    reversed_ = client.post(
        "/videos/vidEVIDENC1/decision",
        data={"decision": "dismissed", "reason": "not manipulated", "expected_state": "confirmed",
              "reversal_reason": "uploader showed the source footage", "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert reversed_.status_code == 303
    history = client.get("/videos/vidEVIDENC1", headers=HTML).text
    history = history[history.index('id="history"') :]
    assert "reversed" in history and "Appeal: uploader showed the source footage" in history
    assert "Policy: not manipulated" in history and "Policy: impersonation" in history
    queue = client.get("/queue?state=dismissed", headers=HTML).text
    assert 'data-video="vidEVIDENC1"' in queue and "not manipulated" in queue
    assert "declared synthetic" in queue
