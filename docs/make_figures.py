"""Regenerate the figures the docs show (``make docs-figures``; issue 31 item 7).

Plots, from the default bundle's manifest only (no data set needed): ``find-bot evaluate
--record`` keeps each evaluation's ROC points and score histograms there (``curves``,
:func:`model.training.metrics.score_curves`), so after ``make evaluate-default
evaluate-xval`` on a new bundle this script redraws them:

* ``docs/figures/roc.png``: ROC curves of the evaluations with both classes, the
  threshold's operating point marked;
* ``docs/figures/score-histograms.png``: the score distribution per source, real and fake
  faces apart, the threshold drawn.

Screenshots of the review page: a throw-away SQLite database in a temporary directory,
seeded with demo-like rows (public-domain test photo as the faces), the web app on
127.0.0.1, Chromium driven by Playwright (Debian's ``/usr/bin/chromium``), at 390 and
1280 px: ``docs/figures/queue-<w>.png`` and ``docs/figures/video-<w>.png``.

Every PNG is kept under :data:`MAX_BYTES` (screenshots are quantised to a palette).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: bot and model import

OUT = ROOT / "docs" / "figures"
BUNDLE = ROOT / "model" / "bundles" / "default"
CHROMIUM = Path(os.environ.get("FIND_TEST_CHROMIUM", "/usr/bin/chromium"))
WIDTHS = (390, 1280)
MAX_BYTES = 300_000
#: Evaluations drawn, in order, with how the docs name them.
SOURCES = {
    "dfdc-faces-test": "DFDC test faces",
    "xval": "xval (cross-dataset)",
    "dfdc-videos": "DFDC videos (6)",
    "real-videos-voxceleb2": "VoxCeleb2 (real)",
    "real-videos-grid": "GRID (real, trained on)",
    "real-videos-lrs2": "LRS2 (real, trained on)",
    "real-videos-mead": "MEAD (real, trained on)",
    "real-videos-misc": "stage clip (real)",
    "real-photos-heldout": "held-out portraits (real)",
}
#: Fewer faces of a class than this: no ROC curve (a 6-video set draws a staircase).
MIN_PER_CLASS = 10
PASSWORD = "docs figures only"


# ---------------------------------------------------------------------------- plots
def _evaluations(bundle: Path) -> tuple[dict[str, Any], float, str]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    name = f"{manifest.get('name', '?')} {manifest.get('version', '?')}"
    return dict(manifest.get("evaluations") or {}), float(manifest["threshold"]), name


def plot_roc(bundle: Path, out: Path) -> Path:
    """ROC curves of every recorded evaluation with both classes, frame and video level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluations, threshold, name = _evaluations(bundle)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    ax.plot([0, 1], [0, 1], color="#98a2b3", linestyle=":", linewidth=1, label="chance")
    drawn = 0
    for key, label in SOURCES.items():
        record = evaluations.get(key) or {}
        for level, word in (("frame_level", "faces"), ("video_level", "videos")):
            tpr = ((record.get("curves") or {}).get(level) or {}).get("roc_tpr") or []
            metrics = record.get(level) or {}
            if not tpr or min(metrics.get("positives", 0), metrics.get("negatives", 0)) < (
                MIN_PER_CLASS
            ):
                continue
            frame = ((record.get("curves") or {}).get("frame_level") or {}).get("roc_tpr")
            if level == "video_level" and tpr == frame:
                continue  # one crop per "video" (DFDC faces): the same curve twice
            fpr = [i / (len(tpr) - 1) for i in range(len(tpr))]  # the recorded rates
            auc = metrics.get("roc_auc")
            line = ax.plot(
                fpr,
                tpr,
                linewidth=1.8,
                label=f"{label}, {word} (n={metrics['n']}, AUC {auc:.3f})",
            )[0]
            ax.plot(
                [metrics["false_positive_rate"]],
                [metrics["recall"]],
                marker="o",
                color=line.get_color(),
                markersize=6,
            )
            drawn += 1
    if not drawn:
        raise SystemExit(
            f"{bundle}/manifest.json records no ROC points (evaluations.*.curves): run "
            "`make evaluate-default evaluate-xval` with this version of find-bot first"
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("real faces flagged (false-positive rate)")
    ax.set_ylabel("fakes caught (recall)")
    ax.set_title(f"{name}: ROC, dots at the threshold {threshold:.3f}", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7.5, frameon=True)
    fig.tight_layout()
    path = out / "roc.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_histograms(bundle: Path, out: Path) -> Path:
    """One panel per source: the share of its real and fake faces in each score bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluations, threshold, name = _evaluations(bundle)
    panels = [
        (label, evaluations[key])
        for key, label in SOURCES.items()
        if ((evaluations.get(key) or {}).get("curves") or {}).get("frame_level")
    ]
    if not panels:
        raise SystemExit(
            f"{bundle}/manifest.json records no score histograms (evaluations.*.curves): run "
            "`make evaluate-default evaluate-xval` with this version of find-bot first"
        )
    columns = 2
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(9, 2.2 * rows), dpi=90, squeeze=False)
    for ax, (label, record) in zip(axes.flat, panels, strict=False):
        histogram = record["curves"]["frame_level"]
        width = 1.0 / histogram["bins"]
        edges = [i * width for i in range(histogram["bins"] + 1)]
        for cls, colour in (("real", "#1f77b4"), ("fake", "#d62728")):
            counts = histogram[cls]
            total = sum(counts)
            if total:
                ax.bar(
                    edges[:-1],
                    [c / total for c in counts],
                    width=width,
                    align="edge",
                    alpha=0.55,
                    color=colour,
                    label=f"{cls} ({total})",
                )
        ax.axvline(threshold, color="#101828", linestyle="--", linewidth=1)
        level = record["frame_level"]
        notes = []
        if level.get("negatives"):
            notes.append(f"{level['false_positive_rate']:.0%} real flagged")
        if level.get("positives"):
            notes.append(f"{level['recall']:.0%} fakes caught")
        ax.set_title(f"{label}: " + " · ".join(notes), fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"{name}: fake score of each sampled face, share per class (dashed: threshold "
        f"{threshold:.3f})",
        fontsize=10,
    )
    fig.supxlabel("fake score", fontsize=9)
    fig.tight_layout()
    path = out / "score-histograms.png"
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- screenshots
def _face(path: Path, variant: int, size: int = 256) -> None:
    """A face crop: scikit-image's astronaut (NASA, public domain), framed and tinted per
    variant so the rows differ."""
    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data

    image = Image.fromarray(data.astronaut())
    x, y, side = 150 + 6 * (variant % 4), 20 + 5 * (variant % 3), 200 - 8 * (variant % 3)
    face = image.crop((x, y, x + side, y + side)).resize((size, size))
    if variant % 2:
        face = ImageOps.mirror(face)
    face = ImageEnhance.Color(face).enhance(0.6 + 0.2 * (variant % 4))
    face = ImageEnhance.Brightness(face).enhance(0.9 + 0.05 * (variant % 5))
    path.parent.mkdir(parents=True, exist_ok=True)
    face.save(path, "JPEG", quality=88)


def _frame(path: Path) -> None:
    """The whole frame with the face boxed, as the analysis stores it."""
    from PIL import Image, ImageDraw
    from skimage import data

    frame = Image.fromarray(data.astronaut()).resize((384, 384))
    ImageDraw.Draw(frame).rectangle((85, 5, 225, 150), outline=(255, 64, 64), width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.save(path, "JPEG", quality=85)


#: (key, title, channel title, how far its score is from the threshold to 1, tracks, source)
#: of the seeded queue: every row flagged, whatever the bundle's threshold.
DEMO_VIDEOS = [
    (
        "dQ7rJx2bK1a",
        "Finance minister: 'we will freeze all savings' (full speech)",
        "Daily Politics Clips",
        0.91,
        2,
        "youtube_upload",
    ),
    ("sub-3f9a1c0e7b21", "interview-reupload.mp4", None, 0.73, 1, "submitted_file"),
    (
        "Lm3vQe8Rt0w",
        "Celebrity endorses crypto giveaway LIVE",
        "Crypto News 24",
        0.57,
        3,
        "youtube_search",
    ),
    ("Xk2pW9sDf4g", "Morning news bulletin, 7 December", "Regional TV", 0.33, 1, "youtube_upload"),
    ("Qa8nB3vYh5j", "Concert backstage interview", "Music Weekly", 0.14, 2, "youtube_upload"),
    ("Zr5tC1mNp7k", "Lecture: intro to photosynthesis", "Open Campus", 0.04, 1, "youtube_upload"),
]


def seed(settings: Any, threshold: float, members: list[str], min_face_px: int) -> str:
    """Demo-like flagged videos with analyses in the record format of docs/contracts.md,
    with the bundle's member names and face-size limit; returns the top video's key."""
    from bot.db import session_factory
    from bot.review import reviewers
    from bot.store import Analysis, Video, utcnow

    sessions = session_factory(settings)
    now = utcnow()
    with sessions.begin() as session:
        for n, (key, title, channel, above, n_tracks, source) in enumerate(DEMO_VIDEOS):
            score = round(threshold + (1 - threshold) * above, 3)
            submitted = source.startswith("submitted")
            video = Video(
                youtube_id=key,
                channel_youtube_id=None if submitted else "UC" + f"{n}demo".ljust(22, "x"),
                channel_title=channel,
                title=title,
                published_at=None if submitted else now - timedelta(hours=3 + 7 * n),
                discovered_at=now - timedelta(hours=2 + 7 * n),
                duration_s=45 + 30 * n,
                state="flagged",
                score=score,
                verdict="fake",
                source=source,
                submitted_by="moderator" if submitted else None,
                media_path=None,
            )
            if not submitted and hasattr(Video, "views"):  # what is spreading (issue 31 item 4)
                video.views, video.views_at = 180_000 // (n + 1), now - timedelta(hours=1)
                video.views_per_day = 42_000.0 / (n + 1) ** 2
            session.add(video)
            session.flush()
            tracks, crops = [], []
            for t in range(n_tracks):
                track_score = max(0.05, score - 0.23 * t)
                frames = [
                    {
                        "frame": 15 * f,
                        "t": round(0.5 * f, 3),
                        # a smooth wander below the track's score, as real tracks do
                        "score": round(
                            min(0.999, track_score - 0.05 * (1 - math.cos(f / 2.5 + t))), 6
                        ),
                        "box": [120, 20, 320, 220],
                    }
                    for f in range(16)
                ]
                tracks.append(
                    {
                        "track": t,
                        "score": round(track_score, 6),
                        "faces": len(frames),
                        "static": t == 2,
                        "small": 212 - 40 * t < min_face_px,
                        "face_px": 212 - 40 * t,
                        "members": [
                            round(min(0.999, max(0.01, track_score + 0.01 - 0.1 * m)), 6)
                            for m in range(len(members))
                        ],
                        "frames": frames,
                    }
                )
                for rank, f in enumerate(sorted(frames, key=lambda f: -f["score"])[:3]):
                    crops.append({"track": t, **f, "variant": n + 3 * t + rank})
            analysis = Analysis(
                video_id=video.id,
                bundle_id="find-default",
                bundle_version="docs",
                frames_requested=32,
                frames_decoded=32,
                partial=False,
                faces=sum(t["faces"] for t in tracks),
                tracks=len(tracks),
                scores={
                    "tracks": tracks,
                    "top_frames": [],
                    "members": members,
                    "min_face_px": min_face_px,
                    "decisive": 0,
                },
                video_score=score,
                threshold=threshold,
                verdict="fake",
                timings={"decode_s": 0.4, "detect_s": 0.9, "classify_s": 0.3, "total_s": 1.6},
                crops=[],
                worker="docs",
            )
            session.add(analysis)
            session.flush()
            records = []
            for c in crops:
                stem = f"crops/{key}/{analysis.id}-t{c['track']}-f{c['frame']}"
                _face(settings.media_dir / f"{stem}.jpg", c["variant"])
                _frame(settings.media_dir / f"{stem}-frame.jpg")
                records.append(
                    {
                        "path": f"{stem}.jpg",
                        "track": c["track"],
                        "frame": c["frame"],
                        "t": c["t"],
                        "score": c["score"],
                        "heatmap": None,
                        "upscaled_from": None,
                        "context": f"{stem}-frame.jpg",
                    }
                )
            analysis.crops = records
    reviewers.add_reviewer(sessions, "reviewer", PASSWORD)
    return DEMO_VIDEOS[0][0]


@contextmanager
def serve(settings: Any) -> Iterator[str]:
    """The review app under uvicorn on a free 127.0.0.1 port, in a background thread."""
    import uvicorn

    from bot.review.web import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the review app did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _save_small(png: bytes, path: Path) -> Path:
    """``png`` written as a palette PNG, halved in height steps until under MAX_BYTES."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    while True:
        small = image.quantize(colors=192, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        small.save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES or image.height < 400:
            path.write_bytes(buffer.getvalue())
            return path
        image = image.crop((0, 0, image.width, int(image.height * 0.8)))


def screenshots(out: Path, bundle: Path) -> list[Path]:
    """Queue and video page at each of :data:`WIDTHS`, on seeded demo rows."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found: `make system-deps` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    from bot import db
    from bot.settings import load_settings

    paths = []
    with tempfile.TemporaryDirectory(prefix="find-docs-") as tmp:
        settings = load_settings(
            environ={
                "FIND_DATA_DIR": str(Path(tmp) / "data"),
                "FIND_WEB_SECRET_KEY": "docs-figures-" + "k" * 40,
                "FIND_WEB_SECURE_COOKIES": "false",
            }
        )
        db.upgrade(settings)
        from model.bundle import load_bundle, member_names, read_manifest

        manifest = read_manifest(bundle)
        threshold = _evaluations(bundle)[1]
        top = seed(settings, threshold, member_names(manifest), load_bundle(bundle).min_face_px)
        with serve(settings) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
            )
            try:
                for width in WIDTHS:
                    page = browser.new_context(
                        viewport={"width": width, "height": 900}, device_scale_factor=1
                    ).new_page()
                    page.goto(f"{base}/login")
                    page.fill("input[name=name]", "reviewer")
                    page.fill("input[name=password]", PASSWORD)
                    page.click("button[type=submit]")
                    page.wait_for_url(f"{base}/queue")
                    for name, url in (("queue", "/queue"), ("video", f"/videos/{top}")):
                        page.goto(base + url)
                        page.wait_for_load_state("networkidle")
                        shot = page.screenshot(full_page=True)
                        paths.append(_save_small(shot, out / f"{name}-{width}.png"))
                    page.context.close()
            finally:
                browser.close()
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="default: the shipped one")
    parser.add_argument("--out", type=Path, default=OUT, help="default: docs/figures")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--plots-only", action="store_true")
    only.add_argument("--screenshots-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if not args.screenshots_only:
        written += [plot_roc(args.bundle, args.out), plot_histograms(args.bundle, args.out)]
    if not args.plots_only:
        written += screenshots(args.out, args.bundle)
    for path in written:
        size = path.stat().st_size
        flag = "" if size <= MAX_BYTES else f"  (over {MAX_BYTES // 1000} KB!)"
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}  {size // 1000} KB{flag}")
    return 0 if all(p.stat().st_size <= MAX_BYTES for p in written) else 1


if __name__ == "__main__":
    raise SystemExit(main())
