"""``find-bot web``: serve the review web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import logging

from bot.errors import SettingsError

MIN_SECRET_CHARS = 32


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "web",
        help="serve the review web page",
        description=(
            "Serve the reviewer web page on FIND_WEB_HOST:FIND_WEB_PORT. Needs "
            "FIND_WEB_SECRET_KEY (signs session cookies) unless FIND_WEB_AUTH_HEADER names a "
            "header set by an authenticating reverse proxy. Put it behind TLS: cookies are "
            "Secure unless FIND_WEB_SECURE_COOKIES=false. X-Forwarded-For is believed only from "
            "FIND_WEB_TRUSTED_PROXIES. SIGTERM stops it gracefully with exit status 0."
        ),
    )
    parser.add_argument("--host", help="listen address (default: FIND_WEB_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: FIND_WEB_PORT)")
    parser.set_defaults(handler=_web)


def check_web_settings(settings, host: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Refuse to start with a missing or weak session key (password mode), or with
    proxy-header logins on an address others can reach without a proxy confirmed."""
    from bot.httpserver import is_loopback

    host = host or settings.web_host
    if settings.web_auth_header:
        if not is_loopback(host) and not settings.web_trusted_proxies:
            raise SettingsError(
                f"FIND_WEB_AUTH_HEADER={settings.web_auth_header} on the non-loopback address "
                f"{host}: anyone who reaches it could send that header and be any reviewer; "
                "listen on 127.0.0.1 behind the proxy, or set FIND_WEB_TRUSTED_PROXIES to the "
                "proxy's address (and let only it reach this port)"
            )
        return
    key = settings.require("web_secret_key", "web")
    if len(key.reveal()) < MIN_SECRET_CHARS:
        raise SettingsError(
            f"FIND_WEB_SECRET_KEY is shorter than {MIN_SECRET_CHARS} characters: generate one "
            "with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )


def _web(args: argparse.Namespace) -> int:
    from bot import db
    from bot.commands.common import settings_from_args
    from bot.httpserver import serve, uvicorn_config
    from bot.logs import log_event
    from bot.review.web import create_app

    settings = settings_from_args(args, service=True)
    host, port = args.host or settings.web_host, args.port or settings.web_port
    check_web_settings(settings, host)
    db.check_schema(settings)
    app = create_app(settings)
    log_event(
        logging.getLogger("find.web"),
        "web.start",
        host=host,
        port=port,
        auth="header" if settings.web_auth_header else "password",
        secure_cookies=settings.web_secure_cookies,
        trusted_proxies=",".join(settings.web_trusted_proxies) or "none",
    )
    config = uvicorn_config(app, host=host, port=port, trusted_proxies=settings.web_trusted_proxies)
    serve(config, logging.getLogger("find.web"), "web.stopped")
    return 0
