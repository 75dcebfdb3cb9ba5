"""WebSub push end to end: a local hub over real HTTP, the real receiver under uvicorn.

Subscriptions are verified (challenge), renewed before their lease ends and
dropped with the watchlist; signed notifications become rows within the
second, idempotently; unsigned, forged, foreign, oversized and stale ones are
refused and logged; no secret is ever stored or logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.service.status import collect_status, render_status
from bot.settings import Settings
from bot.stages.discover import discover_once
from bot.stages.discover.feeds import next_read_at
from bot.stages.discover.watchlist import sync_watchlist
from bot.stages.discover.websub import (
    LEASE_REQUEST_S,
    MAX_LEASE_S,
    VERIFY_TIMEOUT_S,
    callback_url,
    create_app,
    maintain_subscriptions,
    subscription_secret,
    topic_url,
)
from bot.store import Channel, Video, utcnow
from tests.fakes import youtube_feeds
from tests.fakes.websub_hub import FakeHub, PushReceiver, sign

MASTER = "push-master-secret-0123456789"


@dataclass
class Push:
    ing: object
    hub: FakeHub
    receiver: PushReceiver
    settings: Settings

    def env(self, **extra: str) -> Settings:
        return self.ing.settings(  # type: ignore[attr-defined]
            CHANNEL_FEEDS="true",
            WEBSUB_CALLBACK_URL=self.receiver.url,
            WEBSUB_SECRET=MASTER,
            WEBSUB_HUB_URL=self.hub.subscribe_url,
            **extra,
        )

    def sync(self, settings: Settings) -> None:
        with session_scope(settings) as session:
            sync_watchlist(settings, session)

    def channel_row(self, channel_id: str) -> Channel:
        with session_factory(self.settings)() as session:
            return session.scalars(select(Channel).where(Channel.youtube_id == channel_id)).one()

    def callback(self, channel_id: str) -> str:
        """The subscription's callback URL, with the token only the hub and we know."""
        return callback_url(self.settings, channel_id, self.channel_row(channel_id).push_token)

    def videos(self) -> dict[str, Video]:
        with session_factory(self.settings)() as session:
            return {v.youtube_id: v for v in session.scalars(select(Video))}

    def note(self, channel, video_id: str, *, age: timedelta = timedelta(0)) -> bytes:
        return youtube_feeds.push_notification(
            channel.id,
            video_id,
            title=f"upload {video_id}",
            channel_title=channel.title,
            published_at=utcnow() - age,
        )


@pytest.fixture
def push(sqlite_ingestion) -> Iterator[Push]:
    holder: dict[str, Settings] = {}
    with FakeHub() as hub:

        def make_app(url: str):  # type: ignore[no-untyped-def]
            holder["settings"] = sqlite_ingestion.settings(
                CHANNEL_FEEDS="true",
                WEBSUB_CALLBACK_URL=url,
                WEBSUB_SECRET=MASTER,
                WEBSUB_HUB_URL=hub.subscribe_url,
            )
            return create_app(holder["settings"])

        with PushReceiver(make_app) as receiver:
            yield Push(sqlite_ingestion, hub, receiver, holder["settings"])


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged, with the structured fields the text format would print."""
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def _subscribe(push: Push, channels) -> Settings:  # type: ignore[no-untyped-def]
    settings = push.env(CHANNELS=",".join(c.id for c in channels))
    push.sync(settings)
    report = discover_once(settings, push.ing.client(settings))  # type: ignore[attr-defined]
    assert report.push_subscribed == len(channels), report.errors
    push.hub.state.settle()
    return settings


def test_a_pushed_upload_is_a_row_within_the_second_and_replays_change_nothing(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    channel = push.ing.channel("Pushed")  # type: ignore[attr-defined]
    settings = _subscribe(push, [channel])
    [sub] = push.hub.state.verified(topic_url(channel.id))
    row = push.channel_row(channel.id)
    assert len(row.push_token) >= 32 and sub.secret
    assert sub.callback == f"{push.receiver.url}/{channel.id}/{row.push_token}"
    assert row.push_state == "active" and row.push_error is None
    assert row.push_expires_at - utcnow() > timedelta(seconds=LEASE_REQUEST_S - 60)
    # The subscribed channel's feed is now read every FIND_WEBSUB_POLL_INTERVAL (1 h).
    assert next_read_at(settings, utcnow(), push=True) - utcnow() > timedelta(minutes=45)

    video = push.ing.youtube.add_video(channel)  # type: ignore[attr-defined]
    body = push.note(channel, video.id)
    caplog.set_level(logging.INFO, logger="find")
    started = utcnow()
    assert push.hub.state.publish(topic_url(channel.id), body) == [204]
    row = push.videos()[video.id]
    assert row.state == "new" and row.discovered_via == f"push:{channel.id}"
    assert row.discovered_at - started < timedelta(seconds=1)
    assert push.channel_row(channel.id).push_notified_at is not None

    # The same notification again (a hub retry, or someone replaying it): still one row.
    assert push.hub.state.replay() == 204
    assert list(push.videos()) == [video.id]
    notified = [r for r in caplog.records if r.getMessage() == "websub.notified"]
    assert [(r.entries, r.new) for r in notified] == [(1, 1), (1, 0)]

    # The feed, read later, knows the video: nothing new, nothing twice.
    report = discover_once(settings, push.ing.client(settings), force_feeds=True)  # type: ignore[attr-defined]
    assert report.new_videos == 0 and list(push.videos()) == [video.id]

    # No secret anywhere: not the key, not the derived one, in the logs or the row.
    derived = subscription_secret(settings, channel.id)
    logged = _logged(caplog)
    assert MASTER not in logged and derived not in logged
    with session_factory(settings)() as session:
        values = " ".join(
            str(getattr(row, c.key))
            for row in session.scalars(select(Channel))
            for c in Channel.__table__.columns
        )
    assert MASTER not in values and derived not in values


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("unsigned", 403, "unsigned"),
        ("forged", 403, "bad signature"),
        ("other algorithm", 403, "unsupported signature algorithm"),
        ("foreign entry", 400, "belongs to channel"),
        ("entity bomb", 400, "declares a DTD"),
        ("oversized", 413, "size limit"),
    ],
)
def test_bad_notifications_are_refused_and_logged(
    push: Push, caplog: pytest.LogCaptureFixture, case: str, status: int, reason: str
) -> None:
    channel, other = push.ing.channel("Target"), push.ing.channel("Other")  # type: ignore[attr-defined]
    settings = _subscribe(push, [channel])
    secret = subscription_secret(settings, channel.id)
    callback = push.callback(channel.id)
    body = push.note(channel, "forgedvideo")
    signature: str | None = sign(secret, body)
    if case == "unsigned":
        signature = None
    elif case == "forged":
        signature = sign("a guess at the secret", body)
    elif case == "other algorithm":
        signature = "md5=" + "0" * 32
    elif case == "foreign entry":
        body = push.note(other, "foreignvide")
        body = body.replace(f"channel_id={other.id}".encode(), f"channel_id={channel.id}".encode())
        signature = sign(secret, body)
    elif case == "entity bomb":
        body = youtube_feeds.billion_laughs()
        signature = sign(secret, body)
    elif case == "oversized":
        body = b"<feed>" + b" " * (300 * 1024) + b"</feed>"
        signature = sign(secret, body)
    caplog.set_level(logging.WARNING, logger="find")
    assert push.hub.state.deliver(callback, body, signature=signature) == status
    assert push.videos() == {}
    refused = [r for r in caplog.records if r.getMessage() == "websub.refused"]
    assert len(refused) == 1 and reason in refused[0].reason, caplog.text
    assert secret not in _logged(caplog)


def test_old_videos_edits_and_tombstones_are_not_uploads(push: Push) -> None:
    channel = push.ing.channel()  # type: ignore[attr-defined]
    settings = _subscribe(push, [channel])
    secret = subscription_secret(settings, channel.id)
    callback = push.callback(channel.id)
    edit = push.note(channel, "oldvideo123", age=timedelta(days=30))  # a title edit
    assert push.hub.state.deliver(callback, edit, signature=sign(secret, edit)) == 204
    tombstone = youtube_feeds.deleted_notification(channel.id, "oldvideo123", utcnow())
    assert push.hub.state.deliver(callback, tombstone, signature=sign(secret, tombstone)) == 204
    assert push.videos() == {}


def test_the_receiver_echoes_only_challenges_it_asked_for(push: Push) -> None:
    channel = push.ing.channel()  # type: ignore[attr-defined]
    push.sync(push.env(CHANNELS=channel.id))
    stranger = "UC" + "z" * 22
    for channel_id in (channel.id, stranger):  # nothing was requested for either yet
        answer = httpx.get(
            f"{push.receiver.url}/{channel_id}",
            params={
                "hub.mode": "subscribe",
                "hub.topic": topic_url(channel_id),
                "hub.challenge": "echo-me",
                "hub.lease_seconds": "600",
            },
        )
        assert answer.status_code == 404 and "echo-me" not in answer.text
    # A notification for a channel without a subscription: 410 (the hub drops it).
    body = push.note(channel, "abcdefghijk")
    status = push.hub.state.deliver(
        f"{push.receiver.url}/{channel.id}", body, signature=sign("x" * 20, body)
    )
    assert status == 410 and push.videos() == {}


def test_leases_are_renewed_before_they_end_and_on_a_new_key(push: Push) -> None:
    channel = push.ing.channel()  # type: ignore[attr-defined]
    push.hub.state.grant_lease_s = 3 * 86400  # the hub grants less than asked for
    settings = _subscribe(push, [channel])
    sessions = session_factory(settings)
    expires = push.channel_row(channel.id).push_expires_at
    assert timedelta(days=2.9) < expires - utcnow() <= timedelta(days=3)
    requests = len(push.hub.state.requests)

    assert maintain_subscriptions(settings, sessions, utcnow() + timedelta(days=1)).requested == 0
    renewal_time = expires - timedelta(hours=23)  # inside the last day of the lease
    assert maintain_subscriptions(settings, sessions, renewal_time).requested == 1
    push.hub.state.settle()
    assert len(push.hub.state.requests) == requests + 1
    assert push.channel_row(channel.id).push_state == "active"

    # A new FIND_WEBSUB_SECRET: every subscription is renewed with the new secret at once.
    rotated = push.ing.settings(  # type: ignore[attr-defined]
        CHANNEL_FEEDS="true",
        CHANNELS=channel.id,
        WEBSUB_CALLBACK_URL=push.receiver.url,
        WEBSUB_SECRET="a-brand-new-secret-9876543210",
        WEBSUB_HUB_URL=push.hub.subscribe_url,
    )
    assert maintain_subscriptions(rotated, sessions).requested == 1
    push.hub.state.settle()
    # (a new subscription, at a new callback URL: the old one is answered 410 from now on)
    current = push.callback(channel.id)
    [sub] = [s for s in push.hub.state.verified(topic_url(channel.id)) if s.callback == current]
    assert (
        sub.secret
        == subscription_secret(rotated, channel.id)
        != subscription_secret(settings, channel.id)
    )


def test_hub_failures_and_missing_verifications_are_retried(push: Push) -> None:
    channel = push.ing.channel()  # type: ignore[attr-defined]
    settings = push.env(CHANNELS=channel.id)
    push.sync(settings)
    sessions = session_factory(settings)
    push.hub.state.refuse_with = 503
    report = discover_once(settings, push.ing.client(settings))  # type: ignore[attr-defined]
    assert report.push_subscribed == 0 and any("HTTP 503" in e for e in report.errors)
    row = push.channel_row(channel.id)
    assert row.push_state == "failed" and "HTTP 503" in row.push_error
    assert "refused or failed" in render_status(collect_status(settings))
    assert maintain_subscriptions(settings, sessions).requested == 0  # not at once: in an hour

    push.hub.state.refuse_with = None
    later = utcnow() + timedelta(hours=1, minutes=1)
    assert maintain_subscriptions(settings, sessions, later).requested == 1
    push.hub.state.settle()
    assert push.channel_row(channel.id).push_state == "active"

    # A callback the hub cannot reach: the request hangs in "subscribing", asked again later.
    other = push.ing.channel()  # type: ignore[attr-defined]
    unreachable = push.ing.settings(  # type: ignore[attr-defined]
        CHANNEL_FEEDS="true",
        CHANNELS=f"{channel.id},{other.id}",
        WEBSUB_CALLBACK_URL="http://127.0.0.1:9/websub",
        WEBSUB_SECRET=MASTER,
        WEBSUB_HUB_URL=push.hub.subscribe_url,
    )
    push.sync(unreachable)
    discover_once(unreachable, push.ing.client(unreachable))  # type: ignore[attr-defined]
    push.hub.state.settle()
    assert push.channel_row(other.id).push_state == "subscribing"
    retry = utcnow() + timedelta(seconds=VERIFY_TIMEOUT_S + 60)
    assert maintain_subscriptions(unreachable, sessions, retry).requested == 1


def test_denied_and_dropped_subscriptions(push: Push) -> None:
    kept, dropped = push.ing.channel("Kept"), push.ing.channel("Dropped")  # type: ignore[attr-defined]
    settings = _subscribe(push, [kept, dropped])
    assert len(push.hub.state.verified()) == 2

    # The channel leaves the watchlist: unsubscribed at the next pass, verified by the hub.
    smaller = push.env(CHANNELS=kept.id)
    push.sync(smaller)
    report = discover_once(smaller, push.ing.client(smaller))  # type: ignore[attr-defined]
    push.hub.state.settle()
    assert [r.mode for r in push.hub.state.requests][-1] == "unsubscribe" and not report.errors
    assert push.channel_row(dropped.id).push_state == "unsubscribed"
    assert [s.topic for s in push.hub.state.verified()] == [topic_url(kept.id)]

    # The hub withdraws a subscription: recorded, shown, asked again a day later.
    callback = push.callback(kept.id)
    assert push.hub.state.deny(topic_url(kept.id), callback, "too many subscriptions") == 200
    row = push.channel_row(kept.id)
    assert row.push_state == "denied" and "too many subscriptions" in row.push_error
    assert "denied" in render_status(collect_status(settings))


def test_find_bot_websub_says_what_it_needs(
    sqlite_ingestion, monkeypatch, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in sqlite_ingestion.env().items():
        monkeypatch.setenv(key, value)
    assert main(["websub"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "find-bot: error: FIND_WEBSUB_CALLBACK_URL is not set, and `find-bot websub` needs it: "
        "set it in the environment or in .env (see config.example.env)"
    ]
    monkeypatch.setenv("FIND_WEBSUB_CALLBACK_URL", "https://find.example.org/websub")
    assert main(["websub"]) == 2
    assert "FIND_WEBSUB_SECRET is not" in capsys.readouterr().err
    monkeypatch.setenv("FIND_WEBSUB_SECRET", "short")
    assert main(["websub"]) == 2
    err = capsys.readouterr().err
    assert "FIND_WEBSUB_SECRET: the value (hidden) is shorter than 16" in err
    assert "short" not in err.replace("shorter", "")


def _verify(url: str, mode: str, channel_id: str, **params: str) -> httpx.Response:
    query = {"hub.mode": mode, "hub.topic": topic_url(channel_id), **params}
    return httpx.get(url, params=query)


def test_forged_verifications_and_denials_change_nothing(push: Push) -> None:
    """Issue 21, item 13: only the callback URL's token (known to the hub and us) can verify
    or deny a subscription; verifications need a pending request and a sane lease."""
    channel = push.ing.channel()  # type: ignore[attr-defined]
    settings = _subscribe(push, [channel])
    secret = subscription_secret(settings, channel.id)
    token = push.channel_row(channel.id).push_token
    base = f"{push.receiver.url}/{channel.id}"
    # A forged denial, at the bare URL or with a guessed token: answered, and ignored.
    for url in (base, f"{base}/{'A' * len(token)}"):
        assert _verify(url, "denied", channel.id, **{"hub.reason": "forged"}).status_code == 200
        assert push.channel_row(channel.id).push_state == "active"
    # ... so genuine notifications are still taken.
    body = push.note(channel, "stillpushed")
    signature = sign(secret, body)
    assert push.hub.state.deliver(push.callback(channel.id), body, signature=signature) == 204
    assert "stillpushed" in push.videos()
    # Verifications nobody asked for: not echoed, whatever the token.
    for url in (base, push.callback(channel.id)):
        for mode in ("subscribe", "unsubscribe"):
            answer = _verify(
                url, mode, channel.id, **{"hub.challenge": "echo", "hub.lease_seconds": "600"}
            )
            assert answer.status_code == 404 and "echo" not in answer.text, (url, mode)
    assert push.channel_row(channel.id).push_state == "active"

    # A request pending (a renewal under way): still only its callback, and a sane lease.
    with session_scope(settings) as session:
        row = session.scalars(select(Channel).where(Channel.youtube_id == channel.id)).one()
        row.push_state = "subscribing"
    expires = push.channel_row(channel.id).push_expires_at
    for url, lease in (
        (base, "600"),
        (f"{base}/{'B' * len(token)}", "600"),
        (push.callback(channel.id), "99999999"),
        (push.callback(channel.id), str(MAX_LEASE_S + 1)),
        (push.callback(channel.id), "-5"),
        (push.callback(channel.id), ""),
    ):
        answer = _verify(
            url, "subscribe", channel.id, **{"hub.challenge": "echo", "hub.lease_seconds": lease}
        )
        assert answer.status_code == 404 and "echo" not in answer.text, (url, lease)
        row = push.channel_row(channel.id)
        assert row.push_state == "subscribing" and row.push_expires_at == expires
    answer = _verify(
        push.callback(channel.id),
        "subscribe",
        channel.id,
        **{"hub.challenge": "echo", "hub.lease_seconds": "600"},
    )
    assert answer.status_code == 200 and answer.text == "echo"
    assert push.channel_row(channel.id).push_state == "active"


def test_a_new_subscription_gets_a_new_callback_and_the_old_one_is_dropped(push: Push) -> None:
    """A renewal keeps the callback; a new key (a new subscription) gets a new token, and the
    hub's copy of the old subscription is answered 410 so it drops it."""
    channel = push.ing.channel()  # type: ignore[attr-defined]
    settings = _subscribe(push, [channel])
    sessions = session_factory(settings)
    old = push.callback(channel.id)
    expires = push.channel_row(channel.id).push_expires_at
    assert maintain_subscriptions(settings, sessions, expires - timedelta(hours=1)).requested == 1
    push.hub.state.settle()
    assert push.callback(channel.id) == old  # renewed in place
    rotated = push.ing.settings(  # type: ignore[attr-defined]
        CHANNEL_FEEDS="true",
        CHANNELS=channel.id,
        WEBSUB_CALLBACK_URL=push.receiver.url,
        WEBSUB_SECRET="a-brand-new-secret-9876543210",
        WEBSUB_HUB_URL=push.hub.subscribe_url,
    )
    assert maintain_subscriptions(rotated, sessions).requested == 1
    push.hub.state.settle()
    new = push.callback(channel.id)
    assert new != old and push.channel_row(channel.id).push_state == "active"
    body = push.note(channel, "afterrotate")
    old_secret = subscription_secret(settings, channel.id)
    assert push.hub.state.deliver(old, body, signature=sign(old_secret, body)) == 410
    # (the receiver under test still runs with the first key: it signs with that)
    assert push.hub.state.deliver(new, body, signature=sign(old_secret, body)) == 204


def test_future_dated_entries_are_not_stored(push: Push, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 21, item 17: a signed entry dated years ahead is not believed; a few minutes of
    clock skew is."""
    channel = push.ing.channel()  # type: ignore[attr-defined]
    settings = _subscribe(push, [channel])
    secret = subscription_secret(settings, channel.id)
    caplog.set_level(logging.INFO, logger="find")
    for video_id, ahead in (
        ("fromfuture1", timedelta(days=3650)),
        ("smallskew01", timedelta(minutes=5)),
    ):
        body = push.note(channel, video_id, age=-ahead)
        assert (
            push.hub.state.deliver(push.callback(channel.id), body, signature=sign(secret, body))
            == 204
        )
    assert list(push.videos()) == ["smallskew01"]
    notified = [r for r in caplog.records if r.getMessage() == "websub.notified"]
    assert [(r.future, r.new) for r in notified] == [(1, 0), (0, 1)]


def test_refused_requests_do_not_flood_the_log(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21, item 17: a burst of refused requests is one log line, not one per request."""
    channel = push.ing.channel()  # type: ignore[attr-defined]
    _subscribe(push, [channel])
    body = push.note(channel, "unsignedvid")
    caplog.set_level(logging.INFO, logger="find")
    statuses = {
        push.hub.state.deliver(push.callback(channel.id), body, signature=None) for _ in range(200)
    }
    assert statuses == {403} and push.videos() == {}
    refused = [r for r in caplog.records if r.getMessage() == "websub.refused"]
    assert len(refused) == 1 and "unsigned" in refused[0].reason
