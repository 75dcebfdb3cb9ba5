"""Why, at a glance (issue 31 item 1): the video page and ``review show`` lead with the
decisive track, name what each detector said about it, and say which faces did not count."""

from __future__ import annotations

import re

import pytest

from bot.db import session_factory
from bot.review import reviewers
from bot.review.web import create_app
from tests.review.conftest import seed_video
from tests.review.test_cli import cli  # noqa: F401 - the CLI fixture
from tests.review.test_web import HTML, PASSWORD, TestClient, _login, _web_settings
from tests.review.why_records import DECISIVE, MEMBERS, TRACKS, seed_why_video


@pytest.fixture
def web(sqlite_settings):
    s = _web_settings(sqlite_settings)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        _login(client)
        yield client, s


def _section(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</section>", start)]


def test_the_page_leads_with_the_decisive_track_and_its_member_scores(web):
    client, s = web
    seeded = seed_why_video(s, "vidSTAGE001")
    page = client.get("/videos/vidSTAGE001", headers=HTML).text
    # The decisive track comes first, before the decision, the plot and the track list
    # (where they sit on screen: tests/review/test_video_layout.py).
    first = page.index('id="evidence-card"')
    assert all(first < page.index(f'id="{i}"') for i in ("decide", "plot-card", "tracks"))
    why = _section(page, "evidence-card")
    assert f"Why: track {DECISIVE} gave the score, <b>0.833</b>" in why
    # Its crops in a grid (its three, no other track's) beside the frame they came from.
    grid = why[why.index('id="crops"') : why.index('id="why-marks"')]
    crops = re.findall(rf'src="/crops/{seeded.analysis_id}/(\d+)"', grid)
    assert len(crops) == 3
    assert re.search(
        r'<figure class="why-frame">\s*<a href="[^"]+/context"><img class="context"', why
    )
    # Per-member scores, named by what each member learnt, never by file.
    members = _section(page, "evidence-card")
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>.*?<td class="num">([\d.]+)</td>', members)
    assert rows == list(zip(MEMBERS, ["0.912", "0.604", "0.781"], strict=True))
    assert "model_0" not in page and "model 0" not in page
    assert '<span class="badge live"' in why and "face 180 px" in why
    # The strongest track is a blurry small face: shown, said not to count, never decisive.
    note = page[page.index('id="set-aside-3"') :].split("</p>")[0]
    assert "scored 0.964 but did not count" in note and "103 px" in note
    assert "too small to be evidence" in note and "160 px" in note
    assert 'id="set-aside-4"' in page and 'id="set-aside-1"' not in page
    assert "too small: 103 px" in _section(page, "tracks-card")
    # The plot: inline SVG, one line per track, the decisive one bold, uncounted ones dashed.
    svg = page[page.index('<svg id="score-plot"') : page.index("</svg>")]
    lines = re.findall(r'<polyline class="([^"]+)"', svg)
    assert len(lines) == len(TRACKS)
    assert f"line t{DECISIVE} decisive" in lines
    assert sum("not-counted" in c for c in lines) == 2 and "threshold 0.794" in svg
    assert "<script" not in svg and "style=" not in svg  # the CSP allows neither


def test_an_analysis_recorded_before_members_were_kept_still_reads(web):
    """Old rows have no member scores, face sizes or decisive track: the page says so and
    takes the strongest live track as decisive (the rule they were scored by)."""
    client, s = web
    seed_video(s, "vidOLDROW01", score=0.9, tracks=3, static_tracks=(0,))
    page = client.get("/videos/vidOLDROW01", headers=HTML)
    assert page.status_code == 200
    why = _section(page.text, "evidence-card")
    assert "Why: track 1 gave the score" in why
    assert "Per-member scores were not recorded for this analysis" in why
    assert 'id="set-aside-0"' in page.text and "still picture in the scene" in page.text


def test_review_show_prints_the_member_scores_of_the_decisive_track(cli, settings):  # noqa: F811
    seed_why_video(settings, "vidSTAGE002")
    code, out, _ = cli("review", "show", "vidSTAGE002")
    assert code == 0
    lines = out.splitlines()
    assert "why:       track 2 gave the score 0.833 (live, face 180 px)" in lines
    assert (
        "members:   self-blended images 0.912, DFDC-supervised 0.604, DFDC + self-blends 0.781"
        in lines
    )
    assert any(
        "track 3 scored 0.964, not counted: face 103 px, below 160 px: too small" in line
        for line in lines
    )
    track_3 = next(line for line in lines if line.strip().startswith("track 3:"))
    assert "too small (103 px): not counted" in track_3


def test_a_video_without_a_face_says_there_was_nothing_to_judge(web):
    client, s = web
    seed_video(s, "vidNOFACE01", score=0.0, tracks=0, crops=0)
    page = client.get("/videos/vidNOFACE01", headers=HTML)
    assert page.status_code == 200
    assert 'id="no-tracks"' in page.text and "Face tracks (0)" in page.text
