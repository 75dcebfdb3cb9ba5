"""The one settings object, read from the environment and an optional ``.env`` file.

Every knob lives here, is documented line by line in ``config.example.env``
and is validated at start-up: a malformed value stops the program with one
line naming the variable, never a traceback deep inside a worker hours later.
Secrets are wrapped in :class:`Secret` so ``repr``, logs and error messages
never show them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.errors import SettingsError

PREFIX = "FIND_"
CHANNEL_ID_RE = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
HANDLE_RE = re.compile(r"^@[A-Za-z0-9._-]{3,100}$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MEDIA_RETENTION_POLICIES = ("keep-flagged", "keep-all", "delete-all")
DECLARED_SYNTHETIC_USES = ("context", "review")
#: What a reviewer's decision may give as its policy reason (FIND_POLICY_REASONS).
DEFAULT_POLICY_REASONS = (
    "impersonation",
    "non-consensual intimate imagery",
    "fraud or scam",
    "election or civic misinformation",
    "harassment",
    "other deceptive manipulation",
    "not manipulated",
    "labelled parody or satire",
    "declared synthetic, allowed",
    "other",
)
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: ``FIND_CHANNELS=none``: watch nothing, on purpose (a reload refuses to empty the
#: watchlist without it, see bot/service/reload.py).
NO_CHANNELS = "none"
SECRET_SETTINGS = frozenset({"youtube_api_key", "web_secret_key", "webhook_url", "websub_secret"})
#: HMAC keys shorter than this are refused: the push secret signs what the hub sends us.
MIN_SECRET_LENGTH = 16
#: The shape Google documents and issues API keys in: 39 characters, ``AIza`` then 35 of
#: letters, digits, ``-`` and ``_``.  A key cut mid-value (an editor's half-saved ``.env``
#: before a SIGHUP) fails this at once, instead of at the next API call.
API_KEY_RE = re.compile(r"AIza[0-9A-Za-z_-]{35}")


class Secret:
    """A string that never shows itself in ``repr``/``str`` (and so not in logs)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value; call only where it is handed to the service that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def default_data_dir() -> Path:
    """Where state lives when nothing is configured: XDG data home, like other daemons."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "find-bot"


def project_root() -> Path:
    """The repository (or installed source) root: the folder holding ``bot/`` and ``model/``."""
    return Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """Where real face data lives: ``$FIND_SHARED_DATA`` or ``../shared/data``.

    The data is never copied into the project; training, the demo and tests
    read it in place.
    """
    override = os.environ.get("FIND_SHARED_DATA")
    if override:
        return Path(override).expanduser()
    return project_root().parent / "shared" / "data"


def default_bundle_path() -> Path:
    return project_root() / "model" / "bundles" / "default"


@dataclass(frozen=True, repr=False)
class Settings:
    """Validated configuration.  Build it with :func:`load_settings`."""

    data_dir: Path
    database_url: str
    media_dir: Path
    youtube_api_key: Secret | None = None
    youtube_api_endpoint: str | None = None
    media_url_template: str = "https://www.youtube.com/watch?v={id}"
    #: Every worker sees the same FIND_MEDIA_DIR (a shared mount): analyse any downloaded
    #: video. False: only those downloaded to this host's media store (``bot.mediahost``).
    media_shared: bool = False
    #: Read channels through their public Atom feeds first (no quota); False = uploads
    #: playlist only (1 unit per channel per poll), as before feeds existed.
    channel_feeds: bool = True
    feed_url_template: str = "https://www.youtube.com/feeds/videos.xml?channel_id={id}"
    channels: tuple[str, ...] = ()
    search_queries: tuple[str, ...] = ()
    #: True when the settings say ``FIND_CHANNELS=none``: an empty watchlist is intended.
    watch_nothing: bool = False
    poll_interval_s: int = 900
    quota_daily_budget: int = 10_000
    enrich_wait_s: int = 3 * 3600
    #: Percent of the daily budget reserved for search.list (when queries are configured);
    #: the rest is the channels' (resolution, videos.list lookups, playlist reads).
    search_share: int = 50
    #: Units a day (of the channels' share) the scheduler may spend refreshing the view
    #: counts of flagged videos, 50 per videos.list unit (bot.youtube.views); 0: never.
    views_budget: int = 100
    max_duration_s: int = 3600
    min_published_at: datetime | None = None
    skip_live: bool = True
    max_height: int = 720
    max_filesize_bytes: int = 500 * 1024**2
    download_minutes: float | None = None
    min_free_disk_bytes: int = 1024**3
    download_retries: int = 3
    frames_per_video: int = 32
    score_threshold: float | None = None
    model_bundle: Path = field(default_factory=default_bundle_path)
    #: Run the guarded adaptation (``find-bot model adapt``) this often in the daemon's
    #: active scheduler; None: only by hand.
    adapt_interval_s: int | None = None
    media_retention: str = "keep-flagged"
    flagged_media_days: int = 90
    row_retention_days: int = 0
    #: Re-upload matching (bot.banks): PDQ distance, share of the new video's frames
    #: that must be in a bank video, and the frame quality below which frames are ignored.
    match_distance: int = 31
    match_share: float = 0.8
    match_quality: int = 50
    #: ``context``: the uploader's synthetic-media declaration is shown; ``review``: it
    #: also puts the video in the review queue whatever its score.
    declared_synthetic: str = "context"
    policy_reasons: tuple[str, ...] = DEFAULT_POLICY_REASONS
    lease_s: int = 300
    max_attempts: int = 5
    shutdown_grace_s: int = 30
    download_workers: int = 1
    analyse_workers: int = 1
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    metrics_port: int | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_secret_key: Secret | None = None
    web_auth_header: str | None = None
    #: Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed;
    #: empty: none, not even loopback (a local client could claim any address).
    web_trusted_proxies: tuple[str, ...] = ()
    web_secure_cookies: bool = True
    webhook_url: Secret | None = None
    web_base_url: str | None = None
    #: WebSub push (optional): the public URL the hub calls back (find-bot websub behind it).
    websub_callback_url: str | None = None
    websub_secret: Secret | None = None
    websub_hub_url: str = "https://pubsubhubbub.appspot.com/subscribe"
    websub_host: str = "127.0.0.1"
    websub_port: int = 8081
    #: How often a channel with a live push subscription is still read through its feed.
    websub_poll_interval_s: int = 3600
    log_level: str = "INFO"
    log_format: str = "text"

    @property
    def redacted_database_url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return redact_url(self.database_url)

    def require(self, name: str, command: str) -> Any:
        """Return setting ``name`` or stop with a line saying which variable ``command`` needs."""
        value = getattr(self, name)
        if value in (None, "", ()):
            raise SettingsError(
                f"{PREFIX}{name.upper()} is not set, and `find-bot {command}` needs it: "
                "set it in the environment or in .env (see config.example.env)"
            )
        return value

    def media_file(self, media_path: str | None) -> Path | None:
        """The file a stored ``Video.media_path`` names: absolute as stored, relative under
        ``media_dir`` (tests and older rows store relative paths); None when there is none.

        The one place a stored path becomes a file, for every stage and command.
        """
        if not media_path:
            return None
        path = Path(media_path)
        return path if path.is_absolute() else self.media_dir / path

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.summary().items())
        return f"Settings({shown})"

    def summary(self) -> dict[str, Any]:
        """All settings with secrets masked, for `status` and start-up logs."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "database_url":
                value = self.redacted_database_url
            elif isinstance(value, Path | datetime):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Secret):
                value = "**********"
            out[f.name] = value
        return out


def redact_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


# ----------------------------------------------------------------- parsers
# Each parser gets the raw string and raises ValueError with a short reason;
# load_settings turns that into one line naming the variable.


def parse_int(raw: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{value} is above the maximum {maximum}")
    return value


def parse_duration(raw: str, *, minimum: float = 1) -> int:
    """Seconds, or a number with s/m/h/d (``900``, ``15m``, ``1h``)."""
    match = _DURATION_RE.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a duration (use seconds, or e.g. 15m, 2h, 1d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds < minimum:
        raise ValueError(f"{raw!r} is shorter than the minimum {minimum:g}s")
    return int(seconds)


def parse_size(raw: str, *, minimum: int = 0, why: str = "") -> int:
    """Bytes, or a number with K/M/G/T (binary multiples): ``500M``, ``2G``.

    ``minimum`` refuses sizes that cannot be meant (``FIND_MAX_FILESIZE=0`` would
    skip every download as too big); ``why`` says what such a value would do.
    """
    match = _SIZE_RE.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a size (use bytes, or e.g. 500M, 2G)")
    unit = (match.group(2) or "").lower()[:1]
    power = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}[unit]
    value = int(float(match.group(1)) * 1024**power)
    if value < minimum:
        shown = f"{minimum // 1024**2}M" if minimum % 1024**2 == 0 else f"{minimum} bytes"
        raise ValueError(f"{raw.strip()!r} is below the minimum {shown}{why}")
    return value


def parse_float(raw: str, *, minimum: float, maximum: float) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"{value} is outside {minimum:g}..{maximum:g}")
    return value


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")


def parse_choice(raw: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
    return value


def parse_datetime(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{raw!r} is not an ISO date (e.g. 2026-01-31 or 2026-01-31T12:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_channel(raw: str) -> str:
    """Accept a channel id, an @handle, or a youtube.com channel/handle URL.

    Ids are checked here (``UC`` + 22 characters); handles are resolved to ids
    once, by the discover stage, and cached in the database.
    """
    value = raw.strip()
    url = re.match(r"^(?:https?://)?(?:www\.|m\.)?youtube\.com/(channel/|@)([^/?#]+)", value)
    if url:
        value = ("@" if url.group(1) == "@" else "") + url.group(2)
    if value.startswith("UC") or (url and url.group(1) == "channel/"):
        if not CHANNEL_ID_RE.match(value):
            raise ValueError(
                f"{raw!r} is not a channel id (expected UC followed by 22 letters, digits, - or _)"
            )
        return value
    if HANDLE_RE.match(value):
        return value
    raise ValueError(
        f"{raw!r} is not a channel id (UC + 22 characters), an @handle or a youtube.com channel URL"
    )


def parse_channels(raw: str) -> tuple[str, ...]:
    if raw.strip().lower() == NO_CHANNELS:
        return ()
    items = [item for item in re.split(r"[\s,]+", raw) if item]
    return tuple(dict.fromkeys(parse_channel(item) for item in items))


def parse_queries(raw: str) -> tuple[str, ...]:
    """Queries are separated by ``|`` because they may contain commas and spaces."""
    return tuple(dict.fromkeys(q.strip() for q in raw.split("|") if q.strip()))


def parse_database_url(raw: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError(
            f"{redact_url(raw)!r} is not a database URL "
            "(e.g. sqlite:////var/lib/find-bot/find.db or postgresql+psycopg://user@host/db)"
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"backend {url.get_backend_name()!r} is not supported (use sqlite or postgresql)"
        )
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship
    return url.render_as_string(hide_password=False)


def parse_proxies(raw: str) -> tuple[str, ...]:
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``), separated by commas."""
    proxies: list[str] = []
    for item in (i for i in re.split(r"[\s,]+", raw) if i):
        try:
            value = (
                str(ipaddress.ip_network(item, strict=False))
                if "/" in item
                else str(ipaddress.ip_address(item))
            )
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8); "
                "name the reverse proxy by address, not by host name"
            ) from None
        proxies.append(value)
    return tuple(dict.fromkeys(proxies))


def parse_url(raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{redact_url(value)!r} is not an http(s) URL")
    return value


def parse_percent(raw: str) -> int:
    """A whole percentage, ``50`` or ``50%``."""
    return parse_int(raw.strip().removesuffix("%"), minimum=0, maximum=100)


def parse_secret(raw: str) -> Secret:
    """An HMAC key: long enough to be one (the message never shows the value)."""
    value = raw.strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"the value (hidden) is shorter than {MIN_SECRET_LENGTH} characters")
    return Secret(value)


def parse_api_key(raw: str) -> Secret:
    """A Google API key, checked against its documented shape (:data:`API_KEY_RE`); the
    message never shows the value, only its length."""
    value = raw.strip()
    if not API_KEY_RE.fullmatch(value):
        raise ValueError(
            f"the value (hidden) is not a whole Google API key: it has {len(value)} "
            "characters, a key has 39 (AIza and 35 letters, digits, - or _); copy it again "
            "from the Google Cloud console (APIs & Services > Credentials)"
        )
    return Secret(value)


def parse_url_template(raw: str) -> str:
    """A URL with an ``{id}`` placeholder (a video or channel id)."""
    value = parse_url(raw)
    if "{id}" not in value:
        raise ValueError(f"{value!r} has no {{id}} placeholder")
    return value


def parse_share(raw: str) -> float:
    """A share above 0: ``0.8`` or ``80%``."""
    text = raw.strip()
    if text.endswith("%"):
        return parse_float(text.removesuffix("%"), minimum=1, maximum=100) / 100
    return parse_float(text, minimum=0.01, maximum=1)


def parse_policy_reasons(raw: str) -> tuple[str, ...]:
    """Reasons separated by ``|`` (they may contain commas): each at most 200 characters."""
    reasons = tuple(dict.fromkeys(r.strip() for r in raw.split("|") if r.strip()))
    if not reasons:
        raise ValueError("no reason given (separate reasons with |)")
    too_long = next((r for r in reasons if len(r) > 200), None)
    if too_long:
        raise ValueError(f"{too_long[:40]!r}... is longer than 200 characters")
    return reasons


def parse_adapt_interval(raw: str) -> int | None:
    """``off`` or a duration of at least an hour (each run scores hundreds of crops)."""
    if raw.strip().lower() in ("off", "none", "0"):
        return None
    return parse_duration(raw, minimum=3600)


def parse_media_url_template(raw: str) -> str:
    """The page yt-dlp downloads a video from; ``{id}`` becomes the YouTube video id."""
    value = parse_url(raw)
    if "{id}" not in value:
        raise ValueError(f"{value!r} has no {{id}} placeholder for the video id")
    return value


# name -> (parser, settings attribute)
_PARSERS: dict[str, Callable[[str], Any]] = {
    "youtube_api_key": parse_api_key,
    "youtube_api_endpoint": parse_url,
    "media_url_template": parse_media_url_template,
    "channels": parse_channels,
    "search_queries": parse_queries,
    "poll_interval_s": lambda raw: parse_duration(raw, minimum=10),
    "quota_daily_budget": lambda raw: parse_int(raw, minimum=1, maximum=10_000_000),
    "enrich_wait_s": lambda raw: parse_duration(raw, minimum=0),
    "search_share": parse_percent,
    "views_budget": lambda raw: parse_int(raw, minimum=0, maximum=10_000_000),
    "channel_feeds": parse_bool,
    "media_shared": parse_bool,
    "feed_url_template": parse_url_template,
    "max_duration_s": lambda raw: parse_duration(raw, minimum=1),
    "min_published_at": parse_datetime,
    "skip_live": parse_bool,
    "max_height": lambda raw: parse_int(raw, minimum=144, maximum=4320),
    "max_filesize_bytes": lambda raw: parse_size(
        raw, minimum=1024, why=": every video would be skipped as too big"
    ),
    "download_minutes": lambda raw: parse_float(raw, minimum=0.1, maximum=24 * 60),
    "min_free_disk_bytes": parse_size,
    "download_retries": lambda raw: parse_int(raw, minimum=0, maximum=20),
    "frames_per_video": lambda raw: parse_int(raw, minimum=1, maximum=1024),
    "score_threshold": lambda raw: parse_float(raw, minimum=0.0, maximum=1.0),
    "model_bundle": lambda raw: Path(raw.strip()).expanduser(),
    "adapt_interval_s": parse_adapt_interval,
    "media_retention": lambda raw: parse_choice(raw, MEDIA_RETENTION_POLICIES),
    "flagged_media_days": lambda raw: parse_int(raw, minimum=0),
    "row_retention_days": lambda raw: parse_int(raw, minimum=0),
    "match_distance": lambda raw: parse_int(raw, minimum=0, maximum=63),
    "match_share": parse_share,
    "match_quality": lambda raw: parse_int(raw, minimum=0, maximum=100),
    "declared_synthetic": lambda raw: parse_choice(raw, DECLARED_SYNTHETIC_USES),
    "policy_reasons": parse_policy_reasons,
    "lease_s": lambda raw: parse_duration(raw, minimum=5),
    "max_attempts": lambda raw: parse_int(raw, minimum=1, maximum=100),
    "shutdown_grace_s": lambda raw: parse_duration(raw, minimum=0),
    "download_workers": lambda raw: parse_int(raw, minimum=0, maximum=64),
    "analyse_workers": lambda raw: parse_int(raw, minimum=0, maximum=64),
    "worker_id": lambda raw: raw.strip(),
    "metrics_port": lambda raw: parse_int(raw, minimum=1, maximum=65535),
    "web_host": lambda raw: raw.strip(),
    "web_port": lambda raw: parse_int(raw, minimum=1, maximum=65535),
    "web_secret_key": lambda raw: Secret(raw.strip()) if raw.strip() else None,
    "web_auth_header": lambda raw: raw.strip() or None,
    "web_trusted_proxies": parse_proxies,
    "web_secure_cookies": parse_bool,
    "webhook_url": lambda raw: Secret(parse_url(raw)),
    "web_base_url": lambda raw: parse_url(raw).rstrip("/"),
    "websub_callback_url": lambda raw: parse_url(raw).rstrip("/"),
    "websub_secret": parse_secret,
    "websub_hub_url": parse_url,
    "websub_host": lambda raw: raw.strip(),
    "websub_port": lambda raw: parse_int(raw, minimum=1, maximum=65535),
    "websub_poll_interval_s": lambda raw: parse_duration(raw, minimum=60),
    "log_level": lambda raw: parse_choice(raw, LOG_LEVELS, upper=True),
    "log_format": lambda raw: parse_choice(raw, LOG_FORMATS),
}
#: Settings whose variable name differs from ``FIND_`` + attribute name.
_ENV_NAMES = {
    "poll_interval_s": "POLL_INTERVAL",
    "max_duration_s": "MAX_DURATION",
    "min_published_at": "MIN_PUBLISHED",
    "max_filesize_bytes": "MAX_FILESIZE",
    "min_free_disk_bytes": "MIN_FREE_DISK",
    "lease_s": "LEASE",
    "enrich_wait_s": "ENRICH_WAIT",
    "websub_poll_interval_s": "WEBSUB_POLL_INTERVAL",
    "shutdown_grace_s": "SHUTDOWN_GRACE",
    "adapt_interval_s": "ADAPT_INTERVAL",
}


def env_name(attribute: str) -> str:
    return PREFIX + _ENV_NAMES.get(attribute, attribute.upper())


def settings_file(env_file: str | Path | None = None) -> Path | None:
    """The settings file that ``env_file`` means, as an absolute path, or ``None`` for none.

    ``--env-file`` wins, then ``FIND_ENV_FILE``, then ``.env`` in the current
    directory if there is one.  The daemon resolves it once at start, so a
    reload re-reads the same file, and notices when it has gone missing.
    """
    if env_file is None:
        env_file = os.environ.get("FIND_ENV_FILE")
        if env_file is None and Path(".env").is_file():
            env_file = ".env"
    return None if env_file is None else Path(env_file).expanduser().absolute()


def read_environment(env_file: str | Path | None = None) -> dict[str, str]:
    """Merge the ``.env`` file (if any) under the process environment.

    The environment wins, as with systemd's ``Environment=`` overriding an
    ``EnvironmentFile=``.  An explicitly named file that does not exist is an error.
    """
    values: dict[str, str] = {}
    env_file = settings_file(env_file)
    if env_file is not None:
        path = Path(env_file)
        if not path.is_file():
            raise SettingsError(
                f"settings file {path} does not exist: create it from config.example.env"
            )
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update({k: v for k, v in os.environ.items() if k.startswith(PREFIX)})
    return values


def load_settings(
    env_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build validated :class:`Settings`; raise :class:`SettingsError` naming the bad variable."""
    raw = dict(environ) if environ is not None else read_environment(env_file)
    known = {env_name(name) for name in _PARSERS} | {
        "FIND_DATA_DIR",
        "FIND_DATABASE_URL",
        "FIND_MEDIA_DIR",
        "FIND_ENV_FILE",
        "FIND_TEST_POSTGRES_URL",
        "FIND_SHARED_DATA",
    }
    unknown = sorted(k for k in raw if k.startswith(PREFIX) and k not in known)
    if unknown:
        raise SettingsError(
            f"{unknown[0]} is not a FIND setting (typo?): see config.example.env for the names"
        )

    data_dir = Path(raw.get("FIND_DATA_DIR") or default_data_dir()).expanduser()
    values: dict[str, Any] = {"data_dir": data_dir}
    values["media_dir"] = Path(raw.get("FIND_MEDIA_DIR") or data_dir / "media").expanduser()
    db_raw = raw.get("FIND_DATABASE_URL") or f"sqlite:///{data_dir / 'find.db'}"
    try:
        values["database_url"] = parse_database_url(db_raw)
    except ValueError as exc:
        raise SettingsError(f"FIND_DATABASE_URL: {exc}") from None

    values["watch_nothing"] = (raw.get(env_name("channels")) or "").strip().lower() == NO_CHANNELS
    for name, parser in _PARSERS.items():
        variable = env_name(name)
        text = raw.get(variable)
        if text is None or text.strip() == "":
            continue
        try:
            values[name] = parser(text)
        except ValueError as exc:
            if name in SECRET_SETTINGS:  # never echo a secret back, even a malformed one
                reason = str(exc) if "(hidden)" in str(exc) else "the value (hidden) is malformed"
                raise SettingsError(f"{variable}: {reason}") from None
            raise SettingsError(f"{variable}: {exc}") from None
    if values.get("websub_callback_url") and not values.get("websub_secret"):
        raise SettingsError(
            f"{env_name('websub_callback_url')} is set but {env_name('websub_secret')} is not: "
            "push notifications are signed with it; set a random value of at least "
            f'{MIN_SECRET_LENGTH} characters (e.g. python -c "import secrets; '
            'print(secrets.token_urlsafe(32))")'
        )
    return Settings(**values)
