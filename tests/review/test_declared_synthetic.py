"""YouTube's status.containsSyntheticMedia: recorded from the lookup FIND already makes,
shown in `review show`, on the video page and in the webhook."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.review.webhook import flagged_payload
from bot.stages.discover import discover_once
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import QuotaEntry, Video


def test_the_declaration_is_recorded_without_extra_quota(sqlite_ingestion) -> None:
    channel = sqlite_ingestion.channel("Studio")
    declared = sqlite_ingestion.upload(channel, serve=False, synthetic=True)
    plain = sqlite_ingestion.upload(channel, serve=False)
    settings = sqlite_ingestion.settings(CHANNELS=channel.id)
    with session_scope(settings) as session:
        sync_watchlist(settings, session)
    report = discover_once(settings, sqlite_ingestion.client(settings))
    assert report.new_videos == 2 and not report.errors

    with session_factory(settings)() as session:
        rows = {v.youtube_id: v.declared_synthetic for v in session.scalars(select(Video))}
        ledger = [(e.method, e.units) for e in session.scalars(select(QuotaEntry))]
    assert rows == {declared.id: True, plain.id: False}
    # One videos.list call for both, asking for the status part it always asked for.
    [lookup] = sqlite_ingestion.youtube.calls("videos")
    assert "status" in lookup.params["part"].split(",")
    assert ledger.count(("videos.list", 1)) == 1


def test_webhook_carries_the_declaration() -> None:
    video = SimpleNamespace(
        youtube_id="vidSYNTH001", title="AI anchor", channel_youtube_id="UC" + "x" * 22,
        channel_title="News", score=0.2, declared_synthetic=True,
    )  # fmt: skip
    analysis = SimpleNamespace(id=1, threshold=0.5, faces=3, bundle_id="b", bundle_version="1")
    payload = flagged_payload(video, analysis)
    assert payload["declared_synthetic"] is True
    assert payload["reason"] == "declared_synthetic"  # queued for the declaration, not the score
    assert "uploader declared synthetic media" in payload["text"]
    match = SimpleNamespace(
        bank="fake", content_id="youtube:vidORIG0001", matched_youtube_id="vidORIG0001",
        matched_title="the original fake", query_share=0.9,
    )  # fmt: skip
    payload = flagged_payload(SimpleNamespace(**{**vars(video), "score": None}), None, None, match)
    assert payload["reason"] == "bank_match"
    assert payload["match"]["url"] == "https://www.youtube.com/watch?v=vidORIG0001"
    assert payload["text"].startswith("FIND flagged a re-upload of a confirmed deepfake")
