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
"""

from __future__ import annotations

import ipaddress
import logging
import signal
from collections.abc import Sequence
from typing import Any

from bot.logs import log_event

#: The signals that stop a server gracefully.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
        app,
        host=host,
        port=port,
        log_config=None,  # keep our one-line log format
        access_log=access_log,
        server_header=False,
        # An explicit list, so uvicorn's FORWARDED_ALLOW_IPS default (loopback) never applies.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
    )


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
