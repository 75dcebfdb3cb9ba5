"""The queue as a work list, over HTTP (issue 31 item 3): a thumbnail per row, the threshold
once, local files shown as files, export of the current filter, and "next" after a decision."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import update

from bot import review
from bot.db import session_factory
from bot.review import reviewers
from bot.review.web import create_app
from bot.store import Video
from tests.review.conftest import CHANNEL_A, CHANNEL_B, seed_video
from tests.review.test_web import HTML, PASSWORD, TestClient, _csrf, _login, _web_settings

LOCAL = "sub-0123456789ab"


def _rows(html: str) -> dict[str, str]:
    """Each queue row's HTML by video id."""
    return dict(re.findall(r'<tr data-video="([^"]+)">(.*?)</tr>', html, re.S))


def _visible(html: str) -> str:
    """What a reader sees of ``html``: tags (and their attributes) removed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def worklist(settings):
    """Four flagged videos: three on channel A (one analysed with another threshold), one on
    channel B, and a flagged local file; alice logged in."""
    s = _web_settings(settings)
    seeded = {
        "vidA1xxxxxx": seed_video(s, "vidA1xxxxxx", score=0.95, tracks=2, crops=4),
        "vidA2xxxxxx": seed_video(s, "vidA2xxxxxx", score=0.85),
        "vidA3xxxxxx": seed_video(s, "vidA3xxxxxx", score=0.75, threshold=0.7),
        "vidB1xxxxxx": seed_video(s, "vidB1xxxxxx", score=0.9, channel=CHANNEL_B),
        LOCAL: seed_video(s, LOCAL, score=0.8, title="=HYPERLINK(evil) clip.mp4"),
    }
    sessions = session_factory(s)
    with sessions.begin() as session:
        session.execute(
            update(Video)
            .where(Video.youtube_id == LOCAL)
            .values(
                source="submitted_file",
                channel_youtube_id=None,
                channel_title=None,
                submitted_by="ana",
            )
        )
    reviewers.add_reviewer(sessions, "alice", PASSWORD)
    reviewers.add_reviewer(sessions, "bob", PASSWORD)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        assert _login(client).status_code == 303
        yield client, s, seeded


def test_each_row_shows_its_decisive_face_and_the_threshold_once(worklist):
    client, s, seeded = worklist
    page = client.get("/queue", headers=HTML)
    assert page.status_code == 200
    rows = _rows(page.text)
    assert list(rows) == ["vidA1xxxxxx", "vidB1xxxxxx", "vidA2xxxxxx", LOCAL, "vidA3xxxxxx"]
    # The threshold most rows were flagged against is shown once, above the table...
    assert re.search(r'id="queue-threshold"[^>]*>Threshold <b>0\.500</b>', page.text)
    assert page.text.count("0.500") == 1
    # ...and only the row analysed by another model says its own.
    assert [v for v, row in rows.items() if "threshold" in row] == ["vidA3xxxxxx"]
    assert "threshold 0.700" in _visible(rows["vidA3xxxxxx"])

    # The thumbnail is the strongest crop of the track that decided the score, served
    # through the authenticated crop route.
    top = seeded["vidA1xxxxxx"]
    thumb = re.search(r'<img src="(/crops/(\d+)/(\d+))"', rows["vidA1xxxxxx"])
    assert thumb and int(thumb.group(2)) == top.analysis_id
    with session_factory(s)() as session:
        analysis = review.get_analysis(session, top.analysis_id)
    best = max((c for c in analysis.crops if c.track == 0), key=lambda c: c.score)
    assert int(thumb.group(3)) == best.index
    image = client.get(thumb.group(1))
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    assert TestClient(client.app).get(thumb.group(1)).status_code == 401  # no session: no face
    assert all('<img src="/crops/' in row for row in rows.values())

    # A crop deleted by media retention is not shown as a broken image.
    for path in seeded["vidA2xxxxxx"].crop_paths:
        path.unlink()
    again = _rows(client.get("/queue", headers=HTML).text)
    assert "<img" not in again["vidA2xxxxxx"] and "no face crop kept" in again["vidA2xxxxxx"]


def test_a_local_file_is_shown_as_a_file(worklist):
    client, _s, _seeded = worklist
    row = _rows(client.get("/queue", headers=HTML).text)[LOCAL]
    seen = _visible(row)
    assert "clip.mp4" in seen and "local file" in seen and "submitted by ana" in seen
    assert LOCAL not in seen  # the key is in the link, not shown as if it were a URL
    assert "↗" not in seen and "(?)" not in seen and "Channel" not in row


def test_export_of_the_current_filter_as_csv_and_jsonl(worklist):
    client, _s, _seeded = worklist
    page = client.get(f"/queue?channel={CHANNEL_A}&min_score=0.8", headers=HTML).text
    link = re.search(r'id="export-csv" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link == f"/queue/export.csv?channel={CHANNEL_A}&min_score=0.8"
    exported = client.get(link)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith('attachment; filename="find-flagged')
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["youtube_id"] for r in rows] == ["vidA1xxxxxx", "vidA2xxxxxx"]  # all pages, in order

    local = client.get("/queue/export.csv?source=submitted_file")
    (row,) = csv.DictReader(io.StringIO(local.text))
    assert row["title"] == "'=HYPERLINK(evil) clip.mp4"  # a spreadsheet shows it, never runs it
    lines = client.get("/queue/export.jsonl?source=submitted_file").text.splitlines()
    assert [json.loads(line)["youtube_id"] for line in lines] == [LOCAL]

    assert client.get("/queue/export.csv?min_score=2").status_code == 400
    assert client.get("/queue/export.xlsx").status_code == 404
    assert TestClient(client.app).get("/queue/export.csv").status_code == 401


def _decide(client, video: str, decision: str, queue: str):
    page = client.get(f"/videos/{video}" + (f"?{queue}" if queue else ""), headers=HTML).text
    carried = re.search(r'name="queue" value="([^"]*)"', page).group(1).replace("&amp;", "&")
    assert carried == queue
    return client.post(
        f"/videos/{video}/decision",
        data={
            "decision": decision,
            "reason": "impersonation" if decision == "confirmed" else "not manipulated",
            "expected_state": "flagged",
            "queue": carried,
            "csrf_token": _csrf(page),
        },
        follow_redirects=False,
    )


def test_after_a_decision_the_next_video_of_the_same_filter_opens(worklist):
    client, s, _seeded = worklist
    queue = f"channel={CHANNEL_A}"
    # "Next" without deciding (the n key) walks the filter's order, score first.
    step = client.get(f"/queue/next?{queue}&after=vidA1xxxxxx", follow_redirects=False)
    assert step.status_code == 303 and step.headers["location"] == f"/videos/vidA2xxxxxx?{queue}"

    review.decide(session_factory(s), "vidA2xxxxxx", "dismissed", "bob", reason="not manipulated")
    done = _decide(client, "vidA1xxxxxx", "confirmed", queue)
    # The next undecided video of the same filter: vidA2 is decided (by bob), vidB1 scores
    # higher than vidA3 but is on another channel.
    assert done.status_code == 303 and done.headers["location"] == f"/videos/vidA3xxxxxx?{queue}"
    landed = client.get(done.headers["location"], headers=HTML).text
    assert "vidA1xxxxxx confirmed by alice" in landed
    assert f'id="queue-link" href="/queue?{queue}"' in landed  # the way back keeps the filter

    last = client.get(f"/queue/next?{queue}&after=vidA3xxxxxx", follow_redirects=False)
    assert last.headers["location"] == f"/queue?{queue}"  # nothing after it: the queue, saying so
    assert "No more videos in this filter." in client.get(last.headers["location"]).text

    # The default queue keeps plain links: /videos/<id>, next by score over all channels.
    plain = _decide(client, "vidB1xxxxxx", "confirmed", "")
    assert plain.headers["location"] == f"/videos/{LOCAL}"


def test_the_page_script_is_allowed_by_the_csp_and_nothing_inline(worklist):
    client, _s, _seeded = worklist
    page = client.get("/queue", headers=HTML)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts == [(' src="/static/keys.js" defer', "")]
    js = client.get("/static/keys.js")
    assert js.status_code == 200 and "keydown" in js.text


def test_the_thumbnail_is_the_best_crop_of_the_track_that_decided():
    from bot.review import CropInfo, decisive_crop

    crops = [
        CropInfo(index=i, path=f"c{i}.jpg", track=track, frame=i, t=0.0, score=score)
        for i, (track, score) in enumerate([(0, 0.9), (1, 0.7), (1, 0.95), (2, 0.99)])
    ]
    tracks = [{"track": 0, "score": 0.9}, {"track": 1, "score": 0.8}]
    # Since issue 31 the analysis names the deciding track: a larger score on a face too
    # small to count (track 2) does not make its crop the thumbnail.
    named = {"decisive": 1, "tracks": [*tracks, {"track": 2, "score": 0.99, "small": True}]}
    assert decisive_crop(named, crops).index == 2
    # Older analyses: the strongest live track decided; a picture in the scene did not.
    older = {"tracks": [*tracks, {"track": 2, "score": 0.99, "static": True}]}
    assert decisive_crop(older, crops).index == 0
    assert decisive_crop({}, crops).index == 0  # no track record: the first crop
    assert decisive_crop(named, []) is None
