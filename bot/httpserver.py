"""Serving our two small HTTP apps (``find-bot web`` and ``find-bot websub``) with uvicorn.

One home for what both need and uvicorn does not do by default:

* **Forwarded headers** are believed only from the proxies named in
  ``FIND_WEB_TRUSTED_PROXIES``.  uvicorn's default trusts ``X-Forwarded-For``
  from loopback, so any local client (or anything a local proxy passes on
  unchanged) could claim a new address per request and dodge the login
  throttle; with no proxy named, the header is ignored.
* **SIGTERM and SIGINT end the process with exit 0** after uvicorn's graceful
  shutdown, as ``find-bot run`` does: recent uvicorn re-raises the signal it
  caught once it has shut down, so without this the process dies by signal
  (143) and systemd records a failure for an ordinary ``systemctl stop``.
* **Slow clients cannot hold a stop past systemd's timeout.**  uvicorn waits
  for every request in flight before it exits, with no limit by default, and
  a request whose body never arrives is in flight forever: one client that
  sent headers and half a body kept the process alive until systemd's
  ``TimeoutStopSec=30`` SIGKILLed it.  A request gets ``BODY_TIMEOUT_S`` to
  send its whole body (then 408 and the connection is closed), and after
  SIGTERM the requests still running get ``GRACEFUL_SHUTDOWN_S`` (downloads of
  big files included) before they are cancelled; both well inside the units'
  30 s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from bot.logs import LogLimiter, log_event

log = logging.getLogger("find.http")

#: The signals that stop a server gracefully.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Seconds the requests still in flight at SIGTERM get before they are cancelled.  The
#: shipped units allow TimeoutStopSec=30 (deploy/): this plus start-up of the shutdown must
#: stay well inside it.
GRACEFUL_SHUTDOWN_S = 10
#: Seconds from a request's start by which its whole body must have arrived.  Our bodies
#: are small forms and WebSub notifications (at most a few hundred kB): ten seconds is
#: plenty on any real link, and a client trickling bytes cannot hold a worker longer.
BODY_TIMEOUT_S = 10

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True when ``host`` (a listen address) is reachable only from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: assume the network can reach it


def uvicorn_config(
    app: Any,
    *,
    host: str,
    port: int,
    trusted_proxies: Sequence[str] = (),
    access_log: bool = True,
) -> Any:
    """The uvicorn configuration both servers use (our log format, no server header)."""
    import uvicorn

    return uvicorn.Config(
        RequestBounds(app),
        host=host,
        port=port,
        log_config=None,  # keep our one-line log format
        access_log=access_log,
        server_header=False,
        # An explicit list, so uvicorn's FORWARDED_ALLOW_IPS default (loopback) never applies.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


class BodyTimeout(Exception):
    """The client did not send its request body within :data:`BODY_TIMEOUT_S`."""


class RequestBounds:
    """ASGI middleware that keeps slow clients from holding a request, or a stop, for long.

    * **Body deadline**: uvicorn has no limit on how long a body may take, so a
      client that sends headers and part of a body holds the request for as long
      as it keeps the connection open.  Past ``seconds`` from the request's start
      the app's ``receive`` raises :class:`BodyTimeout`, whatever the app answers
      to that is dropped, and the client gets ``408`` with ``Connection: close``.
      Once the body is complete, ``receive`` is passed through untouched
      (responses that stream for minutes wait on it for a disconnect).
    * **Stop**: ``GRACEFUL_SHUTDOWN_S`` after SIGTERM uvicorn cancels the
      requests still running.  Left alone, each would log a ``CancelledError``
      traceback and a 500; here the client gets ``503`` (if nothing was sent
      yet) and the log one line.
    """

    def __init__(self, app: Any, seconds: float = BODY_TIMEOUT_S) -> None:
        self.app, self.seconds = app, seconds
        self.limiter = LogLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done = expired = started = False

        async def timed_receive() -> Message:
            nonlocal body_done, expired
            if body_done:
                return await receive()
            if expired:
                raise BodyTimeout()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                expired = True
                raise BodyTimeout() from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if expired and not started:
                return  # the app's answer to a body we gave up on: ours is the 408
            started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except asyncio.CancelledError:
            # Only uvicorn cancels a request task: the stop's grace period is over.
            self._log(scope, "http.cancelled_at_stop", seconds=GRACEFUL_SHUTDOWN_S)
            if not started:
                await _plain(send, 503, b"The server is stopping; try again in a minute.\n")
            return
        except Exception:
            if not expired or started:
                raise
        if expired and not started:
            self._log(scope, "http.body_timeout", seconds=self.seconds)
            await _plain(send, 408, b"The request body did not arrive in time.\n")

    def _log(self, scope: Scope, event: str, **fields: Any) -> None:
        """One line a minute per event: any client can cause these at will."""
        client = scope.get("client") or ("?", 0)
        path = str(scope.get("path", ""))[:200]
        self.limiter.log(log, event, key=event, client=client[0], path=path, **fields)


async def _plain(send: Send, status: int, body: bytes) -> None:
    """A short text answer that also closes the connection."""
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(config: Any, logger: logging.Logger, event: str) -> None:
    """Run uvicorn until SIGTERM/SIGINT; return normally (exit 0) after a graceful stop.

    uvicorn installs its own handlers while it runs and, when it is done,
    restores the previous ones and raises the caught signal again.  The
    previous handlers are ours, so that re-raise only records the signal.
    """
    import uvicorn

    caught: list[int] = []

    def note(signum: int, _frame: object) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    names = sorted({signal.Signals(s).name for s in caught})
    log_event(logger, event, signal=",".join(names) or "none")
