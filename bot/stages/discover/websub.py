"""WebSub push: YouTube tells a hub about every upload, the hub tells us within seconds.

Optional (``FIND_WEBSUB_CALLBACK_URL``), and only ever an accelerator: feeds
are still read, every ``FIND_WEBSUB_POLL_INTERVAL`` instead of every
``FIND_POLL_INTERVAL``, so a lost or refused notification is found later anyway.

Two halves:

* **subscriptions** (:func:`maintain_subscriptions`, run by each full discover
  pass): every watched, resolved channel is subscribed at the hub
  (``FIND_WEBSUB_HUB_URL``) with the topic YouTube publishes to, a callback URL
  of its own (``<FIND_WEBSUB_CALLBACK_URL>/<channel id>/<token>``, the token
  random per subscription, so nobody else can name the callback) and a secret
  of its own.
  Leases are renewed a day before they end (half-way for short ones); a
  subscription the hub never verified is asked for again after an hour; a
  channel no longer watched is unsubscribed.  The state is on the channel row
  and shown by ``find-bot status``.
* **the receiver** (:func:`create_app`, served by ``find-bot websub`` behind the
  operator's reverse proxy): answers the hub's verification of intent (echoes
  ``hub.challenge`` only at the callback URL of a request we have pending,
  with a lease between ``MIN_LEASE_S`` and ``MAX_LEASE_S``, and records the
  lease; a denial without the token is ignored as noise), and takes
  notifications at the subscription's callback URL: the body must be signed
  (``X-Hub-Signature``, HMAC of the body with that subscription's secret), be a
  YouTube Atom document of that very channel (:mod:`bot.youtube.atom`), and its entries
  recent (an old video's edit is notified too, and is not an upload) and not
  dated more than ``bot.youtube.atom.MAX_CLOCK_SKEW`` in the future.  New ids
  become video rows idempotently (:func:`bot.stages.discover.lookup.record_finds`), so a
  replayed notification changes nothing.  Anything else is refused with a
  4xx and a log line (``websub.refused``, at most one a minute per status
  code, the next saying how many were held back), never stored.

Secrets: each subscription's secret is HMAC-SHA256(``FIND_WEBSUB_SECRET``,
topic), derived when needed and never stored, logged or put in an error.  The
row keeps only a fingerprint of the key (``push_key_id``), so that changing
``FIND_WEBSUB_SECRET`` renews every subscription at the next pass.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import LogLimiter, log_event
from bot.settings import CHANNEL_ID_RE, Settings
from bot.stages.discover.lookup import Candidate, lookup_due, record_finds
from bot.store import Channel, utcnow
from bot.youtube.atom import FeedError, from_the_future, parse_youtube_atom

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("find.websub")

#: What YouTube publishes a channel's uploads to (the hub's topic).
TOPIC_TEMPLATE = "https://www.youtube.com/xml/feeds/videos.xml?channel_id={id}"
#: Lease asked for (the hub decides; Google's grants 5 days).
LEASE_REQUEST_S = 5 * 86400
#: Renew this long before the lease ends (half-way for leases shorter than twice this).
RENEW_BEFORE_S = 86400
#: A subscription the hub has not verified after this long is asked for again.
VERIFY_TIMEOUT_S = 3600
#: After the hub refused or failed a request, ask again after this long.
RETRY_FAILED_S = 3600
RETRY_DENIED_S = 86400
#: Subscription requests per pass at most: a thousand channels subscribe over a few passes.
MAX_REQUESTS_PER_PASS = 100
#: Notifications are ~1 KB; anything much bigger is not one.
MAX_NOTIFICATION_BYTES = 256 * 1024
#: Entries published longer ago than this are edits of old videos, not uploads.
MAX_ENTRY_AGE = timedelta(days=2)
#: Leases accepted from the hub's verification, in seconds.
MIN_LEASE_S, MAX_LEASE_S = 60, 30 * 86400
#: Signature algorithms a hub may use (Google's uses sha1).
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
               "sha512": hashlib.sha512}  # fmt: skip


def topic_url(channel_id: str) -> str:
    return TOPIC_TEMPLATE.format(id=channel_id)


def callback_url(settings: Settings, channel_id: str, token: str | None = None) -> str:
    """The subscription's callback: ``<base>/<channel id>/<token>`` (no token: made before
    tokens existed, still answered for notifications until it is renewed)."""
    base = f"{settings.websub_callback_url}/{channel_id}"
    return f"{base}/{token}" if token else base


def new_token() -> str:
    """An unguessable callback token (192 bits), new for every new subscription."""
    return secrets.token_urlsafe(24)


def token_ok(stored: str | None, given: str | None) -> bool:
    return bool(stored and given) and hmac.compare_digest(str(stored), str(given))


def _master(settings: Settings) -> bytes:
    secret = settings.require("websub_secret", "websub")
    return secret.reveal().encode()


def subscription_secret(settings: Settings, channel_id: str) -> str:
    """The secret the hub signs this channel's notifications with (derived, never stored)."""
    digest = hmac.new(_master(settings), b"find-websub:" + topic_url(channel_id).encode(), "sha256")
    return digest.hexdigest()


def key_id(settings: Settings) -> str:
    """A fingerprint of FIND_WEBSUB_SECRET: tells whether a subscription used the current key."""
    return hashlib.sha256(b"find-websub-key-id:" + _master(settings)).hexdigest()[:16]


def signature_ok(secret: str, body: bytes, header: str | None) -> tuple[bool, str]:
    """Check ``X-Hub-Signature: <algorithm>=<hex HMAC of the body>``; (ok, why not)."""
    if not header or "=" not in header:
        return False, "unsigned (no X-Hub-Signature)"
    algorithm, _, given = header.partition("=")
    digest = _ALGORITHMS.get(algorithm.strip().lower())
    if digest is None:
        return False, f"unsupported signature algorithm {algorithm[:10]!r}"
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        return False, "bad signature"
    return True, ""


# ============================================================ subscriptions
@dataclass
class SubscriptionPass:
    """What one :func:`maintain_subscriptions` call asked the hub for."""

    requested: int = 0
    unsubscribed: int = 0
    errors: list[str] = field(default_factory=list)


def maintain_subscriptions(
    settings: Settings,
    sessions: sessionmaker[Session],
    now: datetime | None = None,
    *,
    http: httpx.Client | None = None,
) -> SubscriptionPass:
    """Subscribe, renew and unsubscribe at the hub so it pushes exactly the watched channels."""
    from bot.httpclient import make_http_client

    now = now or utcnow()
    result = SubscriptionPass()
    todo = _subscriptions_due(settings, sessions, now)[:MAX_REQUESTS_PER_PASS]
    if not todo:
        return result
    client = http or make_http_client(max_connections=2)
    try:
        for row_id, channel_id, mode in todo:
            _request(settings, sessions, client, row_id, channel_id, mode, now, result)
    finally:
        if http is None:
            client.close()
    return result


def _subscriptions_due(
    settings: Settings, sessions: sessionmaker[Session], now: datetime
) -> list[tuple[int, str, str]]:
    """(row id, channel id, "subscribe" | "unsubscribe") for every request worth sending now."""
    current = key_id(settings)
    due: list[tuple[int, str, str]] = []
    with sessions() as session:
        rows = session.scalars(select(Channel).where(Channel.youtube_id.is_not(None))).all()
        for row in rows:
            state, asked = row.push_state, row.push_requested_at
            if not row.active:
                if state in ("active", "subscribing"):
                    due.append((row.id, row.youtube_id, "unsubscribe"))
                continue
            if row.uploads_playlist_id is None:
                continue
            if state in (None, "unsubscribed", "unsubscribing"):
                wanted = True
            elif state == "failed":
                wanted = asked is None or now - asked >= timedelta(seconds=RETRY_FAILED_S)
            elif state == "denied":
                wanted = asked is None or now - asked >= timedelta(seconds=RETRY_DENIED_S)
            elif state == "subscribing":
                wanted = asked is None or now - asked >= timedelta(seconds=VERIFY_TIMEOUT_S)
            else:  # active (made before callback tokens existed: renewed with one now)
                wanted = (
                    row.push_key_id != current or row.push_token is None or _renewal_due(row, now)
                )
            if wanted:
                due.append((row.id, row.youtube_id, "subscribe"))
    return due


def _renewal_due(row: Channel, now: datetime) -> bool:
    if row.push_expires_at is None or row.push_requested_at is None:
        return True
    lease = (row.push_expires_at - row.push_requested_at).total_seconds()
    margin = min(RENEW_BEFORE_S, lease / 2)
    return row.push_expires_at - now <= timedelta(seconds=margin)


def _request(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: httpx.Client,
    row_id: int,
    channel_id: str,
    mode: str,
    now: datetime,
    result: SubscriptionPass,
) -> None:
    """One (un)subscription request; the pending state is written *before* it goes out,
    so a hub that verifies at once finds the request it is verifying."""
    import httpx

    pending = "subscribing" if mode == "subscribe" else "unsubscribing"
    with sessions.begin() as session:
        row = session.get(Channel, row_id)
        if row is None:
            return
        previous, previous_token = row.push_state, row.push_token
        if mode == "subscribe" and not (
            previous == "active" and row.push_token and row.push_key_id == key_id(settings)
        ):
            # A new subscription gets a new callback URL: whatever the hub still holds for
            # an older one (another key, a denied or dropped subscription) is answered 410.
            row.push_token = new_token()
        token = row.push_token
        row.push_state = pending
        row.push_requested_at = now
        row.push_key_id = key_id(settings)
    form = {
        "hub.callback": callback_url(settings, channel_id, token),
        "hub.mode": mode,
        "hub.topic": topic_url(channel_id),
        "hub.verify": "async",
    }
    if mode == "subscribe":
        form["hub.lease_seconds"] = str(LEASE_REQUEST_S)
        form["hub.secret"] = subscription_secret(settings, channel_id)
    error: str | None = None
    try:
        response = client.post(settings.websub_hub_url, data=form)
        if response.status_code not in (202, 204):
            error = (
                f"the hub answered HTTP {response.status_code} to {mode} "
                f"({response.text[:200].strip()!r})"
            )
    except httpx.HTTPError as exc:
        error = f"the hub could not be reached for {mode} ({type(exc).__name__}: {exc})"
    with sessions.begin() as session:
        row = session.get(Channel, row_id)
        if row is None:
            return
        if error is None:
            row.push_error = None
            if mode == "subscribe":
                result.requested += 1
            else:
                result.unsubscribed += 1
            log_event(log, f"websub.{mode}_requested", channel=channel_id)
            return
        if mode == "unsubscribe":  # tried again at the next pass
            row.push_state = previous
        elif previous == "active" and row.push_expires_at and row.push_expires_at > now:
            row.push_state = "active"  # a failed renewal leaves the live lease live
            row.push_token = previous_token  # ... at the callback URL the hub knows
        else:
            row.push_state = "failed"
        row.push_error = error[:1000]
    result.errors.append(f"push subscription of {channel_id}: {error}")
    log_event(log, "websub.request_failed", logging.WARNING, channel=channel_id, error=error)


# ================================================================ receiver
class Receiver:
    """The logic behind the callback URL, apart from HTTP (so it reads like the protocol)."""

    def __init__(self, settings: Settings, *, clock: Any = utcnow) -> None:
        from bot.db import session_factory

        self.settings = settings
        self.sessions = session_factory(settings)
        self.clock = clock
        #: Anyone can send requests to the callback: refusals are logged once a minute
        #: per status code, with the number held back since.
        self.limiter = LogLimiter()

    # ---------------------------------------------------- verification
    def verify(
        self, channel_id: str, params: dict[str, str], token: str | None = None
    ) -> tuple[int, str]:
        """The hub's GET: (status, body).  The challenge is echoed only for a request we
        have pending, at that request's callback URL (``token``), with a sane lease."""
        mode = params.get("hub.mode", "")
        topic = params.get("hub.topic", "")
        challenge = params.get("hub.challenge", "")
        if not CHANNEL_ID_RE.match(channel_id) or topic != topic_url(channel_id):
            return self.refuse(404, channel_id, "verification for an unknown topic", mode=mode)
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.scalars(select(Channel).where(Channel.youtube_id == channel_id)).first()
            ours = row is not None and token_ok(row.push_token, token)
            if mode == "denied":
                if row is None or not ours or row.push_state not in ("subscribing", "active"):
                    # Anyone can send this: without the callback's token it is noise.
                    self.limiter.log(
                        log,
                        "websub.ignored",
                        logging.INFO,
                        key="denied",
                        channel=channel_id[:40],
                        reason="denial without this subscription's callback token",
                    )
                    return 200, ""
                reason = params.get("hub.reason", "")[:200]
                row.push_state = "denied"
                row.push_error = f"the hub denied the subscription ({reason or 'no reason'})"
                log_event(log, "websub.denied", logging.WARNING, channel=channel_id)
                return 200, ""
            if not challenge or len(challenge) > 1000:
                return self.refuse(400, channel_id, "verification without a usable challenge")
            if mode == "subscribe":
                if row is None or not ours or not row.active or row.push_state != "subscribing":
                    return self.refuse(404, channel_id, "subscription we did not ask for")
                lease = _lease_s(params.get("hub.lease_seconds"))
                if lease is None:
                    return self.refuse(
                        404,
                        channel_id,
                        f"verification with a lease outside {MIN_LEASE_S}..{MAX_LEASE_S} s",
                        lease=str(params.get("hub.lease_seconds"))[:20],
                    )
                row.push_state = "active"
                row.push_requested_at = row.push_requested_at or now
                row.push_expires_at = now + timedelta(seconds=lease)
                row.push_error = None
                log_event(log, "websub.verified", channel=channel_id, lease_s=lease)
                return 200, challenge
            if mode == "unsubscribe":
                # (a subscription made before callback tokens: its token-less callback)
                legacy = row is not None and row.push_token is None and token is None
                if row is None or not (ours or legacy) or row.push_state != "unsubscribing":
                    return self.refuse(404, channel_id, "unsubscription we did not ask for")
                row.push_state = "unsubscribed"
                row.push_expires_at = None
                row.push_token = None  # anything still sent to the old callback: 410
                log_event(log, "websub.unsubscribed", channel=channel_id)
                return 200, challenge
        return self.refuse(400, channel_id, "verification with an unknown hub.mode", mode=mode)

    # ---------------------------------------------------- notification
    def notify(
        self, channel_id: str, body: bytes, signature: str | None, token: str | None = None
    ) -> tuple[int, str]:
        """The hub's POST: check the callback, the signature and the document, store new
        uploads."""
        if not CHANNEL_ID_RE.match(channel_id):
            return self.refuse(404, channel_id, "notification for no channel")
        with self.sessions() as session:
            row = session.scalars(select(Channel).where(Channel.youtube_id == channel_id)).first()
            subscribed = row is not None and row.push_state in ("active", "subscribing")
            watched = row is not None and row.active
            # The subscription's own callback; a token-less one only while the row has none
            # (a subscription made before tokens existed, until its renewal).
            current = row is not None and (
                token_ok(row.push_token, token) if row.push_token else token is None
            )
        if not subscribed:
            # 410 tells a hub to drop a subscription we no longer want.
            return self.refuse(410, channel_id, "notification without a subscription")
        if not current:
            return self.refuse(410, channel_id, "notification at an old or unknown callback URL")
        ok, why = signature_ok(subscription_secret(self.settings, channel_id), body, signature)
        if not ok:
            return self.refuse(403, channel_id, f"forged or corrupted notification: {why}")
        what = f"push notification for {channel_id}"
        try:
            entries = parse_youtube_atom(body, channel_id, what=what)
        except FeedError as exc:
            return self.refuse(400, channel_id, str(exc))
        now = self.clock()
        future = [e for e in entries if from_the_future(e, now)]
        recent = [
            e
            for e in entries
            if e.published_at and e not in future and now - e.published_at <= MAX_ENTRY_AGE
        ]
        inserted: set[str] = set()
        if watched and recent:
            inserted = record_finds(
                self.settings,
                self.sessions,
                [
                    Candidate(
                        video_id=e.video_id,
                        via=f"push:{channel_id}",
                        published_at=e.published_at,
                        title=e.title,
                        channel_id=channel_id,
                        channel_title=e.channel_title,
                    )
                    for e in recent
                ],
                now,
                lookup_due=lookup_due(self.settings, now),
            )
        with self.sessions.begin() as session:
            row = session.scalars(select(Channel).where(Channel.youtube_id == channel_id)).first()
            if row is not None:
                row.push_notified_at = now
        log_event(
            log,
            "websub.notified",
            channel=channel_id,
            entries=len(entries),
            old=len(entries) - len(recent) - len(future),
            future=len(future),
            new=len(inserted),
        )
        return 204, ""

    def refuse(self, status: int, channel_id: str, reason: str, **fields: Any) -> tuple[int, str]:
        """Answer ``status``; log it unless this status was logged in the last minute."""
        self.limiter.log(
            log,
            "websub.refused",
            logging.WARNING,
            key=status,
            channel=channel_id[:40],
            status=status,
            reason=reason[:300],
            **fields,
        )
        return status, ""


def _lease_s(raw: str | None) -> int | None:
    """The lease a verification grants, or None when it is missing, malformed or not sane."""
    try:
        lease = int((raw or "").strip())
    except ValueError:
        return None
    return lease if MIN_LEASE_S <= lease <= MAX_LEASE_S else None


def create_app(settings: Settings, *, clock: Any = utcnow) -> Any:
    """The ASGI app behind ``FIND_WEBSUB_CALLBACK_URL`` (its path is the route prefix).

    Plain Starlette (it comes with FastAPI): two routes, no docs pages, nothing else.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    settings.require("websub_callback_url", "websub")
    receiver = Receiver(settings, clock=clock)
    prefix = urlsplit(settings.websub_callback_url).path.rstrip("/")

    async def verify(request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        token = request.path_params.get("token")
        params = dict(request.query_params)
        status, body = await run_in_threadpool(receiver.verify, channel_id, params, token)
        return PlainTextResponse(body, status_code=status)

    async def notify(request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_NOTIFICATION_BYTES:
                status, _ = receiver.refuse(413, channel_id, "notification over the size limit")
                return Response(status_code=status)
        status, text = await run_in_threadpool(
            receiver.notify,
            channel_id,
            bytes(body),
            request.headers.get("X-Hub-Signature"),
            request.path_params.get("token"),
        )
        return Response(text, status_code=status)

    routes = []
    for path in (prefix + "/{channel_id}/{token}", prefix + "/{channel_id}"):
        routes += [Route(path, verify, methods=["GET"]), Route(path, notify, methods=["POST"])]
    return Starlette(routes=routes)


def serve(settings: Settings) -> None:
    """Run the receiver until SIGTERM/SIGINT (uvicorn's graceful shutdown, then exit 0)."""
    from bot.httpserver import serve as serve_http
    from bot.httpserver import uvicorn_config

    app = create_app(settings)
    log_event(
        log,
        "websub.listening",
        host=settings.websub_host,
        port=settings.websub_port,
        callback=settings.websub_callback_url,
    )
    config = uvicorn_config(
        app,
        host=settings.websub_host,
        port=settings.websub_port,
        trusted_proxies=settings.web_trusted_proxies,
        access_log=False,
    )
    serve_http(config, log, "websub.stopped")
