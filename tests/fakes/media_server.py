"""A local HTTP server that serves real video files, for yt-dlp's generic extractor.

Point ``FIND_MEDIA_URL_TEMPLATE`` at ``{url}/{id}.mp4`` and register files with
:meth:`MediaState.add`.  Failures are scripted per file, the way real CDNs
misbehave: an HTTP status for the next N requests (403, 429, 404...), or a
truncated body (``Content-Length`` promises more than is sent before the
connection closes).  ``Range`` requests are honoured, as yt-dlp resumes with them.

Also here: :func:`make_mp4`, which writes a small real H.264 mp4 with the
ffmpeg that imageio-ffmpeg ships (OpenCV's ``mp4v`` writer as a fallback).
"""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.http import FakeHTTPServer, LocalServer


@dataclass
class MediaState:
    files: dict[str, Path] = field(default_factory=dict)
    #: name -> list of scripted behaviours, consumed one per request: int status or "truncate".
    script: dict[str, list[int | str]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, path: Path) -> None:
        """Serve ``path`` as ``/<name>`` (e.g. ``abc123.mp4``)."""
        with self.lock:
            self.files[name] = Path(path)

    def fail(self, name: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests for ``name`` with ``status``."""
        with self.lock:
            self.script.setdefault(name, []).extend([status] * times)

    def truncate(self, name: str, times: int = 1) -> None:
        """Cut the next ``times`` responses for ``name`` off halfway through the body."""
        with self.lock:
            self.script.setdefault(name, []).extend(["truncate"] * times)

    def next_behaviour(self, name: str) -> int | str | None:
        with self.lock:
            queue = self.script.get(name)
            return queue.pop(0) if queue else None

    def count(self, name: str) -> int:
        with self.lock:
            return sum(1 for _method, n, _status in self.requests if n == name)


_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


class _Handler(BaseHTTPRequestHandler):
    server: FakeHTTPServer
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        state = self.server.state
        name = unquote(urlsplit(self.path).path.lstrip("/"))
        behaviour = state.next_behaviour(name)
        path = state.files.get(name)
        if isinstance(behaviour, int):
            status = behaviour
        elif path is None or not path.exists():
            status = 404
        else:
            status = 200
        if status != 200:
            with state.lock:
                state.requests.append((self.command, name, status))
            self._error(status)
            return
        assert path is not None
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        match = _RANGE_RE.fullmatch(self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            start = int(match.group(1) or 0)
            end = min(end, int(match.group(2))) if match.group(2) else end
            status = 206
        chunk = data[start : end + 1]
        with state.lock:
            state.requests.append((self.command, name, status))
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        if behaviour == "truncate":
            self.send_header("Connection", "close")
        self.end_headers()
        if not body:
            return
        if behaviour == "truncate":
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)

    def _error(self, status: int) -> None:
        text = f"error {status}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MediaServer(LocalServer):
    """Serves :class:`MediaState` on 127.0.0.1 (a free port) in a thread."""

    state: MediaState

    def __init__(self, state: MediaState | None = None) -> None:
        super().__init__(state or MediaState(), _Handler, "fake-media")

    @property
    def url_template(self) -> str:
        """Value for ``FIND_MEDIA_URL_TEMPLATE``."""
        return self.url + "/{id}.mp4"


def make_mp4(
    path: Path, *, seconds: float = 2.0, size: tuple[int, int] = (160, 120), fps: int = 10
) -> Path:
    """Write a small real mp4 (H.264 when ffmpeg is available) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        subprocess.run(
            [
                ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc=size={size[0]}x{size[1]}:rate={fps}:duration={seconds}",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                str(path),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return path
    except (ImportError, OSError, subprocess.SubprocessError):
        pass
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(int(seconds * fps)):
        frame = np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
        writer.write(frame)
    writer.release()
    return path
