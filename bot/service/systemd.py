"""Talk to systemd's service manager: ``sd_notify`` over the ``NOTIFY_SOCKET`` datagram socket.

The protocol is a few ``KEY=VALUE`` lines in one datagram, so it is written
here in a few lines instead of pulling in ``libsystemd`` bindings.  Outside
systemd (no ``NOTIFY_SOCKET``) every call is a cheap no-op, so the daemon
runs the same way in a terminal, in a container and under ``Type=notify``.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("find.systemd")


def notify(*lines: str) -> bool:
    """Send ``lines`` (e.g. ``"READY=1"``, ``"STATUS=..."``) to systemd; ``False`` if not under it.

    Errors are logged and swallowed: a notification that cannot be delivered
    must never take the daemon down (systemd will notice the missing READY or
    watchdog ping on its own).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not lines:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    payload = "\n".join(line.replace("\n", " ") for line in lines).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload)
    except OSError as exc:
        log.warning("systemd.notify_failed", extra={"error": str(exc)})
        return False
    return True


def ready(status: str | None = None) -> bool:
    """Tell systemd start-up is complete (``Type=notify`` waits for this)."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")


def status(text: str) -> bool:
    """One line shown by ``systemctl status``."""
    return notify(f"STATUS={text}")


def reloading() -> bool:
    """Start of a config reload; :func:`ready` ends it (systemd >= 253 wants the timestamp)."""
    return notify(
        "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
    )


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    return notify("WATCHDOG=1")


def watchdog_interval_s() -> float | None:
    """How often to ping the watchdog (half of ``WatchdogSec``), or ``None`` when it is off.

    ``WATCHDOG_PID`` may name another process (a wrapper); then the pings are not ours to send.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 / 2 if value > 0 else None
