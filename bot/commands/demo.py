"""``find-bot demo`` (``make demo``): FIND end to end on a throw-away database, no key, no network.

It makes a temporary data directory with its own SQLite database (nothing of
the user's settings or ``.env`` is read), submits sample videos through
``find-bot submit``'s code (the DFDC videos and a few real clips from the shared
data when present, synthetic talking-head clips otherwise), runs the analyse
stage until the queue is empty, creates the reviewer ``demo`` with a random
one-time password, and serves the review page on 127.0.0.1.  Ctrl-C stops
the server and removes the temporary directory (``--keep`` keeps it); nothing
outside it is written or removed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from bot.commands.common import int_between, probability
from bot.terminal import printable

#: Real-footage sets taken one clip each (never-trained-on sets first).
REAL_SETS = ("misc", "voxceleb2", "lrs2")
DEMO_REVIEWER = "demo"
#: File names of the generated clips (a real face, nothing swapped: known real).
SYNTHETIC_PREFIX = "synthetic-"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="try FIND end to end: sample videos, analysis, the review page (no key needed)",
        description=(
            "Start FIND on a throw-away SQLite database in a temporary directory, submit "
            "sample videos (../shared/data's dfdc-videos and a few real-videos clips when "
            "present, synthetic clips otherwise), analyse them, create the reviewer 'demo' "
            "with a one-time password and serve the review page on 127.0.0.1. Ctrl-C stops "
            "it and removes the temporary directory. No API key, no network."
        ),
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="shared data directory with dfdc-videos/ and real-videos/ "
        "(default: $FIND_SHARED_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--synthetic",
        type=int_between(1, 20),
        metavar="N",
        help="use N generated clips instead of the shared data (small and quick)",
    )
    parser.add_argument(
        "--threshold",
        type=probability,
        metavar="X",
        help=f"flag at this score (default {DEMO_THRESHOLD}, below the bundle's threshold so "
        "that a few samples are flagged)",
    )
    parser.add_argument(
        "--frames", type=int_between(1, 256), metavar="N", help="frames sampled per video"
    )
    parser.add_argument(
        "--port", type=int_between(0, 65535), default=8080, help="0: any free port (default 8080)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory after Ctrl-C"
    )
    parser.set_defaults(handler=_demo)


def shared_data(flag: Path | None) -> Path | None:
    """The shared data directory if it holds DFDC videos, else None (synthetic clips)."""
    from bot.settings import shared_data_dir

    folder = flag or shared_data_dir()
    return folder if (folder / "dfdc-videos").is_dir() else None


def sample_inputs(data: Path | None, synthetic: int | None, workdir: Path) -> list[str]:
    """What the demo submits: shared videos (all DFDC, one per real set) or generated clips."""
    from model.frames import VIDEO_EXTENSIONS

    if data is not None and not synthetic:
        picks = sorted(str(p) for p in (data / "dfdc-videos").glob("*.mp4"))
        for name in REAL_SETS:
            folder = data / "real-videos" / name
            clips = (
                sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
                if folder.is_dir()
                else []
            )
            picks += [str(clips[0])] if clips else []
        if picks:
            return picks
    from model.synthetic import DEMO_FACE_SCALE, face_video

    folder = workdir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    count = synthetic or 3
    return [
        str(
            face_video(
                folder / f"{SYNTHETIC_PREFIX}{i + 1}.mp4",
                n_frames=24,
                seed=i,
                face_scale=DEMO_FACE_SCALE,
            )
        )
        for i in range(count)
    ]


def sample_label(path: Path) -> str | None:
    """What a demo sample is known to be, ``fake`` or ``real`` (None: not known).

    DFDC clips carry their label in their folder's metadata.json (``{"x.mp4": {"label":
    "FAKE"}}``); everything under ``real-videos/`` is real footage; the generated clips
    move a photograph of a real face across a background, nothing swapped: real.  The
    review page shows it ("known real — demo label"), so a flagged real sample can be
    seen for the false alarm it is.
    """
    import json

    metadata = path.parent / "metadata.json"
    if metadata.is_file():
        try:
            entry = json.loads(metadata.read_text(encoding="utf-8")).get(path.name) or {}
        except (OSError, ValueError, AttributeError):
            entry = {}
        label = str(entry.get("label", "")).lower() if isinstance(entry, dict) else ""
        if label in ("fake", "real"):
            return label
    if "real-videos" in path.parts or path.name.startswith(SYNTHETIC_PREFIX):
        return "real"
    return None


def label_samples(sessions, outcomes, inputs: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Store each submitted sample's known label on its video (``videos.demo_label``)."""
    from bot.store import Video

    labels = {name: sample_label(Path(name)) for name in inputs}
    with sessions.begin() as session:
        for outcome in outcomes:
            label = labels.get(outcome.input)
            if outcome.key and label:
                video = session.query(Video).filter_by(youtube_id=outcome.key).one_or_none()
                if video is not None:
                    video.demo_label = label


#: The demo's own threshold.  The default bundle's is set so that at most 5 % of every real
#: source's videos are flagged (0.907 for 2026-12-07): on nine sample videos it flags none,
#: and a newcomer would see an empty queue.  Lower, the DFDC fakes are flagged and so may be
#: a real clip, labelled "known real": the demo shows what a false alarm looks like.
DEMO_THRESHOLD = 0.6


def demo_environment(root: Path, args: argparse.Namespace) -> dict[str, str]:
    """The demo's settings: everything under ``root``, nothing read from the user's setup."""
    env = {
        "FIND_DATA_DIR": str(root / "data"),
        "FIND_DATABASE_URL": f"sqlite:///{root / 'data' / 'find.db'}",
        "FIND_WEB_SECRET_KEY": secrets.token_urlsafe(48),
        "FIND_WEB_SECURE_COOKIES": "false",  # plain http on 127.0.0.1
        "FIND_MIN_FREE_DISK": "10M",
        "FIND_LOG_LEVEL": "WARNING",
    }
    threshold = DEMO_THRESHOLD if args.threshold is None else args.threshold
    env["FIND_SCORE_THRESHOLD"] = str(threshold)
    if args.frames:
        env["FIND_FRAMES_PER_VIDEO"] = str(args.frames)
    return env


def _demo(args: argparse.Namespace) -> int:
    from bot.commands.run import exit_process

    root = Path(tempfile.mkdtemp(prefix="find-demo-"))
    code = 1
    try:
        code = _run(args, root)
    except KeyboardInterrupt:  # Ctrl-C before the server was up
        say("demo interrupted")
        code = 130
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    # TensorFlow's thread pools keep a normal interpreter exit waiting (or abort it), as
    # in the daemon: everything is written and removed by now, so leave at once.
    exit_process(code)
    return code  # not reached


def _run(args: argparse.Namespace, root: Path) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from bot import db
    from bot.formats import format_score
    from bot.logs import configure_logging
    from bot.review import reviewers
    from bot.service.drain import drain
    from bot.settings import load_settings
    from bot.stages.submit import Submitter, submit

    settings = load_settings(environ=demo_environment(root, args))
    configure_logging(settings.log_level, settings.log_format)
    say(f"FIND demo in {root} (removed on Ctrl-C)")
    db.upgrade(settings)
    sessions = db.session_factory(settings)

    data = shared_data(args.data)
    inputs = sample_inputs(data, args.synthetic, root)
    origin = f"from {data}" if data is not None and not args.synthetic else "generated"
    say(f"submitting {len(inputs)} sample video(s) {origin}")
    outcomes = submit(settings, sessions, inputs, Submitter(DEMO_REVIEWER, note="FIND demo sample"))
    for outcome in outcomes:
        say(f"  {outcome.message}")
    label_samples(sessions, outcomes, inputs)

    say(
        f"flagging at {format_score(settings.score_threshold)}"
        + (
            " (the demo's threshold, lower than the bundle's so that a few samples are "
            "flagged; --threshold X sets another)"
            if args.threshold is None
            else ""
        )
    )
    say("loading the model and analysing (a minute or two on a small CPU)...")
    started = time.monotonic()
    # What `find-bot run --until-empty` does: one line per video (score, known label).
    report = drain(settings, sessions, say=lambda line: say(f"  {line}"))
    say(f"analysed {report.processed} video(s) in {time.monotonic() - started:.0f}s")
    if report.stopped:
        say(f"stopped early: {report.stopped}")

    password = secrets.token_urlsafe(12)
    reviewers.add_reviewer(sessions, DEMO_REVIEWER, password, reset=True)
    return _serve(settings, args.port, password)


def _serve(settings, port: int, password: str) -> int:
    import uvicorn

    from bot.review.web import create_app

    if port == 0:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/login"
    say(f"reviewer: {DEMO_REVIEWER}   one-time password: {password}")
    say(f"review page: {url}   (Ctrl-C stops the demo)")
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        server_header=False,
    )
    say("demo stopped")
    return 0


def say(line: str) -> None:
    """Progress on stdout, flushed at once (``make demo`` and tests read it as it comes).

    Lines quote sample file names and titles: one line each, controls escaped.
    """
    print(printable(line), flush=True)
    sys.stdout.flush()
