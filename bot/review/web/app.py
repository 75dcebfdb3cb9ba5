"""The review web page: a small server-rendered FastAPI app over :mod:`bot.review`.

Security model (see docs/review.md):

* **Who**: every page except ``/login`` and ``/healthz`` needs a reviewer.
  Either a password login (argon2 hashes in the ``reviewers`` table) or, when
  ``FIND_WEB_AUTH_HEADER`` is set, a header put there by an authenticating
  reverse proxy; in both cases the named reviewer must exist and be active,
  checked again on every request so deactivating someone locks them out at once.
* **Sessions**: Starlette's signed cookie (itsdangerous, key from
  ``FIND_WEB_SECRET_KEY``), ``HttpOnly``, ``SameSite=Strict``, ``Secure`` unless
  ``FIND_WEB_SECURE_COOKIES=false``; the session is cleared on login to stop
  fixation.  The cookie only carries a random token; the session itself lives
  in the database (:mod:`bot.review.web_sessions`), so logout, ``find-bot reviewers
  revoke``, a new password or deactivation end it on the server and a copied
  cookie is refused from then on.
* **CSRF**: every POST must carry the session's random token in a hidden
  field; anything else gets 403 before the handler runs.
* **Media**: crops (and their heatmaps and frames) are addressed by analysis
  id, index and view only and resolved by :func:`bot.review.crop_path`; the
  kept video file by video id only, through :func:`bot.review.media_path`
  (range requests, so the browser can seek); both refuse anything outside
  the media dir and need a reviewer, like every page.
"""

from __future__ import annotations

import hmac
import io
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from bot import __version__, review
from bot.db import is_unavailable, session_factory
from bot.formats import format_score
from bot.logs import LogLimiter, log_event
from bot.review import reviewers, web_sessions, why
from bot.review.queries import QUEUE_ORDERS
from bot.review.web.links import link_kind
from bot.settings import Settings, parse_datetime
from bot.store import REVIEW_STATES, VideoState, utcnow

log = logging.getLogger("find.web")

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
PAGE_SIZE = 25
SESSION_MAX_AGE_S = int(web_sessions.SESSION_MAX_AGE.total_seconds())
SESSION_COOKIE = "find_session"
YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
#: The queue form's fields, each a keyword of :func:`_queue_filter`: the video page, "next"
#: and the export carry them so a reviewer stays in the filter they chose.
QUEUE_PARAMS = ("state", "channel", "since", "min_score", "source", "order")
#: Export formats of the queue page (``bot.review.export_report``) and their media types.
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
CHANNEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
#: Failed logins allowed in LOGIN_WINDOW_S before answering 429: for one account from one
#: address (guessing), for one account from anywhere (guessing spread over addresses), and
#: from one address for any accounts (spraying one password over many names).
LOGIN_MAX_FAILURES = 10
LOGIN_MAX_ACCOUNT_FAILURES = 50
LOGIN_MAX_ADDRESS_FAILURES = 100
LOGIN_WINDOW_S = 15 * 60
#: What SQLAlchemy raises about the database; ``bot.db.is_unavailable`` (the daemon's own
#: test) tells an unreachable database (server down, file gone, pool exhausted: a 503
#: page, not a 500 with a traceback) from a bad query (a 500, logged).
DATABASE_ERRORS = (DBAPIError, PoolTimeout)
#: Seconds a client (or a load balancer) is asked to wait during a database outage.
RETRY_AFTER_S = 30
#: Headers on every response, error pages included.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; "
        "script-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class AuthRequired(Exception):
    """Raised by :func:`_reviewer_or_raise`; turned into a redirect or a 401."""


class LoginThrottle:
    """Counts failed logins so passwords cannot be guessed at speed.

    Per (account, address), per account and per address, each with its own
    limit: ten wrong passwords for one account lock that account for that
    address only, so colleagues behind the same NAT or proxy still log in.
    Memory is bounded: at most ``max_keys`` keys per scope, each holding no
    more timestamps than its limit.
    """

    def __init__(
        self,
        max_failures: int = LOGIN_MAX_FAILURES,
        window_s: float = LOGIN_WINDOW_S,
        *,
        max_account_failures: int = LOGIN_MAX_ACCOUNT_FAILURES,
        max_address_failures: int = LOGIN_MAX_ADDRESS_FAILURES,
        max_keys: int = 10_000,
        clock: Any = time.monotonic,
    ):
        self.window_s, self.max_keys, self.clock = window_s, max_keys, clock
        self.limits = {
            "account+address": max_failures,
            "account": max_account_failures,
            "address": max_address_failures,
        }
        self._failures: dict[str, dict[Any, list[float]]] = {scope: {} for scope in self.limits}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(account: str, address: str) -> dict[str, Any]:
        account = (account or "").strip()[:200]
        return {"account+address": (account, address), "account": account, "address": address}

    def attempt(self, account: str, address: str) -> str | None:
        """Count a login attempt as failed *before* its password is checked.

        Returns the scope over its limit (``account+address``, ``account``,
        ``address``), counting nothing, or None once the attempt is counted.
        Checking and counting under one lock is what makes the limit hold for
        parallel guesses: counted after the slow hash, 40 guesses sent at once
        all passed the check before any was counted (29 hashes instead of 10).
        :meth:`succeeded` or :meth:`forget` take the count back.
        """
        now = self.clock()
        cutoff = now - self.window_s
        keys = self._keys(account, address)
        with self._lock:
            for scope, key in keys.items():
                failures = self._failures[scope]
                recent = [t for t in failures.get(key, ()) if t > cutoff]
                if recent:
                    failures[key] = recent
                else:
                    failures.pop(key, None)
                if len(recent) >= self.limits[scope]:
                    return scope
            for scope, key in keys.items():
                failures = self._failures[scope]
                times = failures.pop(key, [])  # re-inserted last: dict order is recency
                failures[key] = [*times, now][-self.limits[scope] :]
                while len(failures) > self.max_keys:
                    del failures[next(iter(failures))]
        return None

    def forget(self, account: str, address: str) -> None:
        """Take back one counted attempt that was no wrong password (the check failed)."""
        with self._lock:
            for scope, key in self._keys(account, address).items():
                times = self._failures[scope].get(key)
                if times:
                    times.pop()

    def succeeded(self, account: str, address: str) -> None:
        """The password was right: uncount the attempt, forget this pair's failures."""
        self.forget(account, address)
        with self._lock:
            self._failures["account+address"].pop(
                self._keys(account, address)["account+address"], None
            )


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings``; ``find-bot web`` serves it with uvicorn.

    Without ``FIND_WEB_SECRET_KEY`` the app only starts in auth-header mode,
    where the session holds nothing but the CSRF token and a per-process
    random key is enough.
    """
    if settings.web_secret_key is not None:
        secret = settings.web_secret_key.reveal()
    elif settings.web_auth_header:
        secret = secrets.token_urlsafe(32)
    else:
        settings.require("web_secret_key", "web")
        raise AssertionError("unreachable")

    app = FastAPI(
        title="FIND review", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    app.state.sessions = session_factory(settings)
    app.state.throttle = LoginThrottle()
    app.state.log_limiter = LogLimiter()
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters.update(score=_fmt_score, dt=_fmt_dt, age=_fmt_age, seconds=_fmt_seconds)
    templates.env.filters.update(link_kind=link_kind)
    templates.env.globals.update(version=__version__, auth_header=settings.web_auth_header)

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="strict",
        https_only=settings.web_secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        return _with_security_headers(await call_next(request))

    # ------------------------------------------------------------ helpers
    def current_reviewer(request: Request) -> str | None:
        if settings.web_auth_header:
            claimed = (request.headers.get(settings.web_auth_header) or "").strip()
            if not claimed:
                return None
            with app.state.sessions() as session:
                return reviewers.active_reviewer(session, claimed)
        token = request.session.get("sid")
        if not token:
            return None
        with app.state.sessions() as session:
            name = web_sessions.session_reviewer(session, token)
        if name is None:
            # Logged out, revoked, deactivated, new password or expired: forget the cookie.
            request.session.clear()
        return name

    def require_reviewer(request: Request) -> str:
        name = current_reviewer(request)
        if name is None:
            raise AuthRequired()
        return name

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    def check_csrf(request: Request, submitted: str) -> None:
        expected = request.session.get("csrf")
        if not expected or not submitted or not hmac.compare_digest(expected, submitted):
            log_event(log, "web.csrf_rejected", logging.WARNING, path=request.url.path)
            raise StarletteHTTPException(
                403, "The form token is missing or wrong: reload the page."
            )

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("reviewer", current_reviewer(request))
        context["csrf_token"] = csrf_token(request)
        context["flash"] = request.session.pop("flash", None)
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    @app.exception_handler(AuthRequired)
    async def auth_required(request: Request, _exc: AuthRequired) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            if settings.web_auth_header:
                return HTMLResponse("Not authenticated by the proxy.", status_code=401)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        return Response("Not authenticated.", status_code=401, media_type="text/plain")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return templates.TemplateResponse(
                request,
                "error.html",
                {
                    "status": exc.status_code,
                    "message": exc.detail,
                    "reviewer": None,
                    "csrf_token": "",
                    "flash": None,
                },
                status_code=exc.status_code,
            )
        return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")

    def database_down(request: Request, exc: Exception) -> Response:
        """Any page while the database is unreachable: 503 and one line a minute, no traceback."""
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        app.state.log_limiter.log(
            log,
            "web.database_unavailable",
            key="database",
            path=request.url.path[:200],
            error=f"{type(exc).__name__}: {reason[0][:200] if reason else ''}",
        )
        message = "The database is unreachable; try again in a minute."
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        if "text/html" in request.headers.get("accept", ""):
            return templates.TemplateResponse(
                request,
                "error.html",
                {"status": 503, "message": message, "reviewer": None, "csrf_token": "",
                 "flash": None},
                status_code=503,
                headers=headers,
            )  # fmt: skip
        return Response(message, status_code=503, media_type="text/plain", headers=headers)

    async def database_error(request: Request, exc: Exception) -> Response:
        """A database error: 503 while the database is unreachable, else a bug (a bad
        query, a schema the code does not expect): logged with its traceback, a 500."""
        if is_unavailable(exc):
            return database_down(request, exc)
        log.error("web.database_error", extra={"path": request.url.path[:200]}, exc_info=exc)
        return await server_error(request, exc)

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, database_error)

    @app.exception_handler(RequestValidationError)
    async def malformed_parameter(request: Request, exc: RequestValidationError) -> Response:
        """A parameter FastAPI cannot convert (``/crops/x/0``, ``/queue?page=x``).

        FastAPI checks parameters before the route (and its login check) runs: anyone
        got its 422 JSON.  A stranger gets what every page gives a stranger; a reviewer
        a 404 for a path that names nothing, or a 400 page naming the parameter.
        """
        try:
            reviewer = await run_in_threadpool(current_reviewer, request)
        except DATABASE_ERRORS as error:
            return await database_error(request, error)
        if reviewer is None:
            return await auth_required(request, AuthRequired())
        errors = exc.errors()
        if any((error.get("loc") or ("",))[0] == "path" for error in errors):
            return await http_error(request, StarletteHTTPException(404, "No such page."))
        names = sorted({str(error["loc"][-1]) for error in errors if error.get("loc")})
        message = f"Malformed {', '.join(names) or 'request'}: correct the address."
        return await http_error(request, StarletteHTTPException(400, message))

    @app.exception_handler(Exception)
    async def server_error(request: Request, _exc: Exception) -> Response:
        """Any unexpected error: a 500 page (uvicorn logs the traceback).  Starlette sends
        it from outside every middleware, so it carries the security headers itself."""
        message = "Something went wrong on the server; it has been logged."
        plain = Response(message, status_code=500, media_type="text/plain")
        if "text/html" not in request.headers.get("accept", ""):
            return _with_security_headers(plain)
        try:
            page: Response = templates.TemplateResponse(
                request,
                "error.html",
                {"status": 500, "message": message, "reviewer": None, "csrf_token": "",
                 "flash": None},
                status_code=500,
            )  # fmt: skip
        except Exception:  # the error page itself failed: the plain answer
            page = plain
        return _with_security_headers(page)

    # -------------------------------------------------------------- routes
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """Ready to serve reviewers: 200 only while the database answers (for the proxy,
        a load balancer or a monitor; systemd's unit polls it too)."""
        try:
            with app.state.sessions() as session:
                session.execute(text("SELECT 1"))
        except DATABASE_ERRORS as exc:  # not ready, whatever the reason
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            app.state.log_limiter.log(
                log,
                "web.database_unavailable",
                key="database",
                path="/healthz",
                error=f"{type(exc).__name__}: {reason[0][:200] if reason else ''}",
            )
            return Response("database unreachable\n", status_code=503, media_type="text/plain")
        return Response("ok\n", media_type="text/plain")

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/queue") -> Response:
        return render(request, "login.html", next=_safe_next(next), error=None, reviewer=None)

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        name: str = Form(""),
        password: str = Form(""),
        next: str = Form("/queue"),
        csrf_token_field: str = Form("", alias="csrf_token"),
    ) -> Response:
        check_csrf(request, csrf_token_field)
        if settings.web_auth_header:
            raise StarletteHTTPException(404, "Logins are handled by the reverse proxy.")
        client = request.client.host if request.client else "?"
        scope = app.state.throttle.attempt(name, client)
        if scope is not None:
            log_event(log, "web.login_throttled", logging.WARNING, client=client, scope=scope)
            return render(
                request,
                "login.html",
                status_code=429,
                next=_safe_next(next),
                error="Too many failed logins; wait a few minutes.",
                reviewer=None,
            )
        try:
            reviewer = reviewers.authenticate(app.state.sessions, name, password)
        except Exception:
            app.state.throttle.forget(name, client)  # not a wrong password
            raise
        if reviewer is None:
            return render(
                request,
                "login.html",
                status_code=401,
                next=_safe_next(next),
                error="Wrong name or password.",
                reviewer=None,
            )
        app.state.throttle.succeeded(name, client)
        request.session.clear()  # new session token and CSRF token: no fixation
        request.session["sid"] = web_sessions.open_session(app.state.sessions, reviewer)
        request.session["csrf"] = secrets.token_urlsafe(32)
        log_event(log, "web.login", reviewer=reviewer, client=client)
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
        check_csrf(request, csrf_token_field)
        name = current_reviewer(request)
        if web_sessions.close_session(app.state.sessions, request.session.get("sid")):
            log_event(log, "web.logout", reviewer=name)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(
        request: Request,
        state: str = VideoState.FLAGGED.value,
        channel: str = "",
        since: str = "",
        min_score: str = "",
        page: int = 1,
        source: str = "",
        order: str = "",
    ) -> Response:
        reviewer = require_reviewer(request)
        form = {
            "state": state,
            "channel": channel,
            "since": since,
            "min_score": min_score,
            "source": source,
            "order": order,
        }
        error = None
        try:
            flt = _queue_filter(state, channel, since, min_score, page, source, order)
        except ValueError as exc:
            error = str(exc)
            flt = review.QueueFilter()
        with app.state.sessions() as session:
            result = review.list_queue(session, flt)
        base = {k: v for k, v in form.items() if v}
        pages = max(1, -(-result.total // PAGE_SIZE))
        context = "" if error else _queue_query(form)
        thresholds = Counter(i.threshold for i in result.items if i.threshold is not None)
        return render(
            request,
            "queue.html",
            status_code=400 if error else 200,
            reviewer=reviewer,
            page=result,
            form=form,
            error=error,
            states=REVIEW_STATES,
            sources=review.SOURCES,
            orders=QUEUE_ORDERS,
            # Shown once above the table; a row flagged against another one says so.
            threshold=thresholds.most_common(1)[0][0] if thresholds else None,
            thumbnails={
                i.youtube_id
                for i in result.items
                if i.thumbnail and review.evidence_image(settings, i.thumbnail.path)
            },
            queue_query=context,
            page_number=flt.offset // PAGE_SIZE + 1,
            pages=pages,
            prev_url=_url("/queue", base, page=flt.offset // PAGE_SIZE) if flt.offset else None,
            next_url=_url("/queue", base, page=flt.offset // PAGE_SIZE + 2)
            if result.has_next
            else None,
            now=utcnow(),
        )

    @app.get("/queue/next")
    def queue_next(request: Request, after: str = "") -> Response:
        """The video after ``after`` in the filter of the query string (the ``n`` key)."""
        require_reviewer(request)
        params, flt = queue_context(request.query_params)
        with app.state.sessions() as session:
            following = review.queue_after(session, flt, after, count=1)
        return RedirectResponse(next_url(request, params, following), status_code=303)

    def queue_context(values: Mapping[str, str]) -> tuple[dict[str, str], review.QueueFilter]:
        """The queue filter a video page was opened from (a bad one: the default queue)."""
        params = _queue_params(values)
        try:
            return params, _filter_of(params)
        except ValueError:
            return {}, review.QueueFilter()

    def next_url(request: Request, params: dict[str, str], following: list[str]) -> str:
        """The first of ``following`` (the ids after the current video, in the filter's
        order), opened in the same filter; when none is left, the queue, saying so."""
        query = _queue_query(params)
        if following:
            return f"/videos/{following[0]}" + (f"?{query}" if query else "")
        note = "No more videos in this filter."
        flash = request.session.get("flash")
        request.session["flash"] = f"{flash} {note}" if flash else note
        return "/queue" + (f"?{query}" if query else "")

    @app.get("/queue/export.{fmt}")
    def queue_export(request: Request, fmt: str) -> Response:
        """Every video of the queue's filter (all pages) as CSV or JSONL, like
        ``find-bot review export``: spreadsheet formulas neutralised, control characters
        escaped (:func:`bot.review.export_report`)."""
        reviewer = require_reviewer(request)
        if fmt not in EXPORT_TYPES:
            raise StarletteHTTPException(404, "Export as .csv or .jsonl.")
        params = _queue_params(request.query_params)
        try:
            flt = _filter_of(params)
        except ValueError as exc:
            raise StarletteHTTPException(400, f"{exc} Fix the filter and export again.") from None
        out = io.StringIO()
        with app.state.sessions() as session:
            count = review.export_report(session, out, fmt, queue_filter=flt)
        log_event(log, "web.exported", reviewer=reviewer, format=fmt, videos=count, **params)
        name = f"find-{flt.state}-{utcnow():%Y%m%d-%H%M}.{fmt}"
        return Response(
            out.getvalue(),
            media_type=EXPORT_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def video_or_404(youtube_id: str) -> review.VideoDetail:
        """The video's record, or a 404 for an id that is malformed or not in the database."""
        if not YOUTUBE_ID_RE.match(youtube_id):
            raise StarletteHTTPException(404, "No such video.")
        with app.state.sessions() as session:
            try:
                return review.get_video(session, youtube_id)
            except review.VideoNotFound:
                raise StarletteHTTPException(404, "No such video.") from None

    def video_page(
        request: Request,
        reviewer: str,
        youtube_id: str,
        *,
        status_code: int = 200,
        error: str | None = None,
        note: str = "",
        seek: float | None = None,
        queue_query: str = "",
    ) -> Response:
        video = video_or_404(youtube_id)
        # Crops removed by media retention are listed as gone, not shown as broken images.
        available = (
            {
                (c.index, view)
                for c in video.analysis.crops
                for view in review.CROP_VIEWS
                if review.crop_path(settings, video.analysis, c.index, view)
            }
            if video.analysis
            else set()
        )
        # Why it scored as it did (the decisive track first) and the plot that scales.
        explained = why.explain(video.analysis) if video.analysis else None
        plot_svg = why.score_plot(video.analysis, explained) if video.analysis else ""
        return render(
            request,
            "video.html",
            why=explained,
            plot_svg=plot_svg,
            status_code=status_code,
            reviewer=reviewer,
            video=video,
            error=error,
            note=note,
            now=utcnow(),
            available=available,
            decidable=video.state in review.DECIDABLE_STATES,
            reversible=video.state in review.OPPOSITE,
            opposite=review.OPPOSITE.get(video.state),
            reasons=settings.policy_reasons,
            playable=review.media_path(settings, video) is not None,
            seek=seek,
            # The filter it was opened from (``state=…&source=…``, "" for the default queue):
            # the back link, "next" and the decision form keep the reviewer in it.
            queue_query=queue_query,
        )

    @app.get("/videos/{youtube_id}", response_class=HTMLResponse)
    def video(request: Request, youtube_id: str, t: str = "") -> Response:
        try:  # ?t=12.5: the player starts at a frame that drove the score
            seek = max(0.0, min(float(t), 86_400.0)) if t else None
        except ValueError:
            seek = None
        reviewer = require_reviewer(request)
        params, _flt = queue_context(request.query_params)
        context = _queue_query(params)
        return video_page(request, reviewer, youtube_id, seek=seek, queue_query=context)

    @app.post("/videos/{youtube_id}/decision", response_class=HTMLResponse)
    def decision(
        request: Request,
        youtube_id: str,
        decision: str = Form(""),
        note: str = Form(""),
        reason: str = Form(""),
        reversal_reason: str = Form(""),
        expected_state: str = Form(""),
        queue: str = Form(""),
        csrf_token_field: str = Form("", alias="csrf_token"),
    ) -> Response:
        check_csrf(request, csrf_token_field)
        reviewer = require_reviewer(request)
        if not YOUTUBE_ID_RE.match(youtube_id):
            raise StarletteHTTPException(404, "No such video.")
        params, flt = queue_context(dict(parse_qsl(queue[:2000])))
        context = _queue_query(params)
        with app.state.sessions() as session:  # before the decision moves it out of the filter
            following = review.queue_after(session, flt, youtube_id)
        try:
            review.decide(
                app.state.sessions,
                youtube_id,
                decision,
                reviewer,
                note=note,
                expected_state=expected_state or VideoState.FLAGGED.value,
                reason=reason,
                reasons=settings.policy_reasons,
                reversal_reason=reversal_reason,
            )
        except review.DecisionConflict as exc:
            message = (
                f"Not saved: this video is {exc.summary}. The page now shows its current "
                "state; decide again to add a superseding decision."
            )
            return video_page(
                request,
                reviewer,
                youtube_id,
                status_code=409,
                error=message,
                note=note,
                queue_query=context,
            )
        except review.VideoNotFound:
            raise StarletteHTTPException(404, "No such video.") from None
        except review.ReviewError as exc:
            return video_page(
                request,
                reviewer,
                youtube_id,
                status_code=400,
                error=str(exc),
                note=note,
                queue_query=context,
            )
        request.session["flash"] = f"{youtube_id} {decision} by {reviewer}."
        with app.state.sessions() as session:  # skip those decided meanwhile by others
            following = review.still_queued(session, flt, following)
        return RedirectResponse(next_url(request, params, following), status_code=303)

    @app.get("/crops/{analysis_id}/{index}")
    def crop(request: Request, analysis_id: int, index: int) -> Response:
        return crop_view(request, analysis_id, index, "crop")

    @app.get("/crops/{analysis_id}/{index}/{view}")
    def crop_view(request: Request, analysis_id: int, index: int, view: str) -> Response:
        """A crop's Grad-CAM overlay (``heatmap``) or its whole frame (``context``)."""
        require_reviewer(request)
        with app.state.sessions() as session:
            analysis = review.get_analysis(session, analysis_id)
        path = review.crop_path(settings, analysis, index, view) if analysis is not None else None
        if path is None:
            raise StarletteHTTPException(404, "No such crop.")
        media_type = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        return FileResponse(
            path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"}
        )

    @app.get("/media/{youtube_id}")
    def media(request: Request, youtube_id: str) -> Response:
        """The kept video file, with range requests so the player can seek."""
        require_reviewer(request)
        video = video_or_404(youtube_id)
        path = review.media_path(settings, video)
        if path is None:
            raise StarletteHTTPException(404, "The video file is not kept (media retention).")
        return FileResponse(
            path,
            media_type=review.MEDIA_TYPES[path.suffix.lower()],
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @app.get("/plots/{analysis_id}.png")
    def plot(request: Request, analysis_id: int) -> Response:
        require_reviewer(request)
        with app.state.sessions() as session:
            analysis = review.get_analysis(session, analysis_id)
        if analysis is None:
            raise StarletteHTTPException(404, "No such analysis.")
        return Response(
            review.render_score_plot(analysis),
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    return app


# ------------------------------------------------------------------ helpers


def _queue_filter(
    state: str,
    channel: str,
    since: str,
    min_score: str,
    page: int,
    source: str = "",
    order: str = "",
) -> review.QueueFilter:
    """The queue form's values as a :class:`QueueFilter`; ``ValueError`` says what is wrong."""
    if state not in REVIEW_STATES:
        raise ValueError(f"Unknown state {state!r}.")
    if order and order not in QUEUE_ORDERS:
        raise ValueError(f"Unknown order {order!r}: use {', '.join(QUEUE_ORDERS)}.")
    if source and source not in review.SOURCES:
        raise ValueError(f"Unknown source {source!r}.")
    channel = channel.strip()
    if channel and not CHANNEL_RE.match(channel):
        raise ValueError("The channel must be a channel id (UC…).")
    since_dt = parse_datetime(since) if since.strip() else None
    score = None
    if min_score.strip():
        try:
            score = float(min_score)
        except ValueError:
            raise ValueError(f"Minimum score {min_score!r} is not a number.") from None
        if not 0 <= score <= 1:
            raise ValueError("The minimum score must be between 0 and 1.")
    page = max(1, min(page, 100_000))
    return review.QueueFilter(
        state=state,
        channel=channel or None,
        source=source or None,
        since=since_dt,
        min_score=score,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        order=order or QUEUE_ORDERS[0],
    )


def _filter_of(params: Mapping[str, str]) -> review.QueueFilter:
    """The filter of :func:`_queue_params`' output (first page); ``ValueError`` if invalid."""
    fields = {**dict.fromkeys(QUEUE_PARAMS, ""), "state": VideoState.FLAGGED.value, **params}
    return _queue_filter(page=1, **fields)


def _queue_params(values: Mapping[str, str]) -> dict[str, str]:
    """The queue filter's fields in ``values`` (a query string or form), without empty ones and
    without the default state, so the plain queue's links stay plain (``/videos/<id>``)."""
    params = {k: str(values.get(k) or "").strip()[:200] for k in QUEUE_PARAMS}
    if params.get("state") == VideoState.FLAGGED.value:
        params["state"] = ""
    if params.get("order") == QUEUE_ORDERS[0]:  # by score: the default
        params["order"] = ""
    return {k: v for k, v in params.items() if v}


def _queue_query(params: Mapping[str, str]) -> str:
    """``params`` (a queue filter) as a query string, "" for the default queue."""
    return urlencode(_queue_params(params))


def _with_security_headers(response: Response) -> Response:
    """``response`` with :data:`SECURITY_HEADERS` (those it sets itself win)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _url(path: str, params: dict[str, str], **extra: Any) -> str:
    return f"{path}?{urlencode({**params, **extra})}"


def _safe_next(target: str | None) -> str:
    """Only same-site paths: ``//evil`` or ``https://evil`` would make login an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/queue"
    return target


def _fmt_score(value: float | None) -> str:
    return format_score(value, missing="–")


def _fmt_dt(value: datetime | None) -> str:
    return "–" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt_age(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "–"
    delta = (now or utcnow()) - value
    if delta < timedelta(hours=1):
        return f"{max(0, int(delta.total_seconds() // 60))} min"
    if delta < timedelta(days=2):
        return f"{int(delta.total_seconds() // 3600)} h"
    return f"{delta.days} d"


def _fmt_seconds(value: Any) -> str:
    try:
        return f"{float(value):.2f} s"
    except (TypeError, ValueError):
        return "–"
