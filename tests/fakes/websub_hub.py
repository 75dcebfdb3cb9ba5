"""A local WebSub hub, standing in for the one YouTube publishes to, and a real receiver.

The hub speaks the protocol over real HTTP: a subscriber POSTs
``hub.mode``/``hub.topic``/``hub.callback``/``hub.secret``/``hub.lease_seconds``
(form-encoded) and gets ``202 Accepted``; the hub then verifies the intent
asynchronously with a GET to the callback carrying a random ``hub.challenge``
and only counts the subscription if the challenge comes back.  ``publish``
POSTs a notification to every verified subscriber of a topic, signed like
Google's hub (``X-Hub-Signature: sha1=<HMAC of the body>``); ``deliver`` sends
anything (unsigned, badly signed, replayed) for the tests of what the receiver
refuses.

:class:`PushReceiver` runs the real ``bot.stages.discover.websub`` app under uvicorn on a free
port, in a thread, so the hub reaches it the way the internet would.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes.http import FakeHTTPServer, LocalServer


@dataclass
class Subscription:
    topic: str
    callback: str
    secret: str | None
    lease_s: int
    verified: bool = False
    challenge_answered: bool | None = None


@dataclass
class Delivery:
    """One POST to a subscriber, and what it answered."""

    callback: str
    body: bytes
    signature: str | None
    status: int


@dataclass
class HubRequest:
    mode: str
    topic: str
    callback: str
    lease_s: int | None
    had_secret: bool


class FakeHubState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: (topic, callback) -> subscription, verified or not
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self.requests: list[HubRequest] = []
        self.deliveries: list[Delivery] = []
        self.http = httpx.Client(timeout=10)
        #: Lease the hub grants (it may shorten what was asked for).
        self.grant_lease_s: int | None = None
        #: Status to answer the next subscription requests with (None: 202).
        self.refuse_with: int | None = None
        self._pending: list[threading.Thread] = []

    # ------------------------------------------------------------ protocol
    def handle_request(self, form: dict[str, str]) -> int:
        mode, topic, callback = (
            form.get("hub.mode"),
            form.get("hub.topic"),
            form.get("hub.callback"),
        )
        if mode not in ("subscribe", "unsubscribe") or not topic or not callback:
            return 400
        lease = int(form["hub.lease_seconds"]) if form.get("hub.lease_seconds") else None
        with self.lock:
            self.requests.append(HubRequest(mode, topic, callback, lease, "hub.secret" in form))
            if self.refuse_with is not None:
                return self.refuse_with
        granted = self.grant_lease_s or lease or 432000
        thread = threading.Thread(
            target=self._verify, args=(mode, topic, callback, form.get("hub.secret"), granted)
        )
        with self.lock:
            self._pending.append(thread)
        thread.start()
        return 202

    def _verify(self, mode: str, topic: str, callback: str, secret: str | None, lease: int) -> None:
        """Verification of intent: the subscriber must echo the challenge."""
        time.sleep(0.05)  # like a real hub: after the 202
        challenge = secrets.token_urlsafe(16)
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(lease)
        try:
            answer = self.http.get(callback, params=params)
            confirmed = answer.status_code // 100 == 2 and answer.text == challenge
        except httpx.HTTPError:
            confirmed = False
        with self.lock:
            key = (topic, callback)
            if mode == "subscribe" and confirmed:
                self.subscriptions[key] = Subscription(topic, callback, secret, lease, True, True)
            elif mode == "unsubscribe" and confirmed:
                self.subscriptions.pop(key, None)
            elif mode == "subscribe":
                self.subscriptions.setdefault(
                    key, Subscription(topic, callback, secret, lease, False, False)
                )

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for the verifications in flight."""
        with self.lock:
            pending, self._pending = self._pending, []
        for thread in pending:
            thread.join(timeout)

    def deny(self, topic: str, callback: str, reason: str = "topic not allowed") -> int:
        """Tell a subscriber its subscription was refused (hub.mode=denied)."""
        params = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": reason}
        return self.http.get(callback, params=params).status_code

    # ------------------------------------------------------- notifications
    def verified(self, topic: str | None = None) -> list[Subscription]:
        with self.lock:
            return [
                s
                for s in self.subscriptions.values()
                if s.verified and (topic is None or s.topic == topic)
            ]

    def publish(self, topic: str, body: bytes) -> list[int]:
        """Notify every verified subscriber of ``topic``, signed with its secret."""
        return [
            self.deliver(s.callback, body, signature=sign(s.secret, body) if s.secret else None)
            for s in self.verified(topic)
        ]

    def deliver(self, callback: str, body: bytes, *, signature: str | None) -> int:
        headers = {"Content-Type": "application/atom+xml"}
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        status = self.http.post(callback, content=body, headers=headers).status_code
        with self.lock:
            self.deliveries.append(Delivery(callback, body, signature, status))
        return status

    def replay(self) -> int:
        """Send the last delivery again, byte for byte (a replay attack, or a hub retry)."""
        with self.lock:
            last = self.deliveries[-1]
        return self.deliver(last.callback, last.body, signature=last.signature)


def sign(secret: str, body: bytes, algorithm: str = "sha1") -> str:
    return (
        f"{algorithm}=" + hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    )


class _Handler(BaseHTTPRequestHandler):
    server: FakeHTTPServer

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/subscribe":
            self._send(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        self._send(self.server.state.handle_request(form))

    def _send(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class FakeHub(LocalServer):
    state: FakeHubState

    def __init__(self) -> None:
        super().__init__(FakeHubState(), _Handler, "fake-websub-hub")

    @property
    def subscribe_url(self) -> str:
        return f"{self.url}/subscribe"

    def stop(self) -> None:
        self.state.settle()
        super().stop()
        self.state.http.close()


# ------------------------------------------------------------------ receiver
def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class PushReceiver:
    """The real ``bot.stages.discover.websub`` app under uvicorn in a thread (``url``: callback)."""

    make_app: Callable[[str], Any]
    sock: socket.socket = field(default_factory=free_socket)
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}/websub"

    def __enter__(self) -> Self:
        import uvicorn

        config = uvicorn.Config(self.make_app(self.url), log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the push receiver did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.sock.close()
