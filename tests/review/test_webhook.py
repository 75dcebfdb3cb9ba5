"""The flagged-video webhook against a real local HTTP server started by the test."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.db import session_factory
from bot.review.webhook import notify_flagged
from bot.store import Video
from tests.conftest import make_settings
from tests.review.conftest import seed_video

TOKEN = "T0KEN-abc123-secret"


class Receiver:
    """Answers the queued status codes in turn (then 200) and records each JSON body."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.paths.append(self.path)
                assert self.headers["Content-Type"] == "application/json"
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/{TOKEN}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _logged(caplog) -> str:
    """The captured records as the daemon would write them, extra fields included."""
    from bot.logs import TextFormatter

    return "\n".join(TextFormatter().format(r) for r in caplog.records)


def _flagged(settings):
    seed_video(settings, "vidHOOK0001", score=0.93, title="Hooked", crops=1)
    with session_factory(settings)() as session:
        video = session.query(Video).filter_by(youtube_id="vidHOOK0001").one()
        analysis = video.latest_analysis
    return video, analysis  # detached: the daemon may call with rows from a closed session


def test_posts_json_and_retries_server_errors(sqlite_settings, receiver, caplog):
    s = make_settings(sqlite_settings.data_dir.parent, FIND_WEBHOOK_URL=receiver.url)
    video, analysis = _flagged(s)
    receiver.statuses = [500, 503]
    caplog.set_level(logging.INFO, logger="find.webhook")
    assert notify_flagged(s, video, analysis, backoff_s=0.01) is True
    assert len(receiver.bodies) == 3  # two failures, then delivered
    body = receiver.bodies[-1]
    assert body["event"] == "video.flagged" and body["video_id"] == "vidHOOK0001"
    assert body["url"] == "https://www.youtube.com/watch?v=vidHOOK0001"
    assert body["score"] == pytest.approx(0.93) and body["threshold"] == 0.5
    assert body["bundle"] == "find-xception 1.0.0" and body["analysis_id"] == analysis.id
    assert "Hooked" in body["text"] and body["url"] in body["text"]
    assert receiver.paths[-1] == f"/hooks/{TOKEN}"
    assert body["review_url"] is None
    assert TOKEN not in _logged(caplog) and "webhook.retrying" in _logged(caplog)


def test_links_to_the_review_page_when_configured(sqlite_settings, receiver):
    s = make_settings(
        sqlite_settings.data_dir.parent,
        FIND_WEBHOOK_URL=receiver.url,
        FIND_WEB_BASE_URL="https://find.example.org/",
    )
    video, analysis = _flagged(s)
    assert notify_flagged(s, video, analysis) is True
    body = receiver.bodies[-1]
    assert body["review_url"] == "https://find.example.org/videos/vidHOOK0001"
    assert body["text"].endswith("review: https://find.example.org/videos/vidHOOK0001")


def test_client_errors_are_not_retried_and_never_raise(sqlite_settings, receiver, caplog):
    s = make_settings(sqlite_settings.data_dir.parent, FIND_WEBHOOK_URL=receiver.url)
    video, analysis = _flagged(s)
    receiver.statuses = [404]
    caplog.set_level(logging.INFO, logger="find.webhook")
    assert notify_flagged(s, video, analysis, backoff_s=0.01) is False
    assert len(receiver.bodies) == 1
    assert "HTTP 404" in _logged(caplog) and TOKEN not in _logged(caplog)


def test_unreachable_receiver_gives_up_quietly(sqlite_settings, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    s = make_settings(
        sqlite_settings.data_dir.parent, FIND_WEBHOOK_URL=f"http://127.0.0.1:{port}/{TOKEN}"
    )
    video, analysis = _flagged(s)
    caplog.set_level(logging.INFO, logger="find.webhook")
    assert notify_flagged(s, video, analysis, attempts=3, backoff_s=0.01, timeout_s=2) is False
    assert _logged(caplog).count("webhook.retrying") == 2 and "webhook.failed" in _logged(caplog)
    assert TOKEN not in _logged(caplog) and str(port) not in _logged(caplog)


def test_off_without_a_url(sqlite_settings, receiver):
    video, analysis = _flagged(sqlite_settings)
    assert notify_flagged(sqlite_settings, video, analysis) is False
    assert notify_flagged(sqlite_settings, object(), None) is False  # never raises
    assert receiver.bodies == []


def test_a_submitted_video_alert_links_its_source_not_youtube() -> None:
    """A submission's alert names its source and URL; a local file has no URL to give."""
    from types import SimpleNamespace

    from bot.review.webhook import flagged_payload

    def video(**extra):
        return SimpleNamespace(
            youtube_id="sub-0123456789ab", score=0.9, title="clip", channel_title=None,
            channel_youtube_id=None, declared_synthetic=None, submitted_by="bob", **extra,
        )  # fmt: skip

    sent = flagged_payload(
        video(source="submitted_url", source_url="https://vimeo.com/1"), None, "https://find.x"
    )
    assert sent["url"] == "https://vimeo.com/1" and sent["source"] == "submitted_url"
    assert sent["submitted_by"] == "bob" and "https://vimeo.com/1" in sent["text"]
    local = flagged_payload(video(source="submitted_file", source_url=None), None)
    assert local["url"] is None and "youtube.com" not in local["text"]
