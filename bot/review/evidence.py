"""The evidence files a reviewer looks at, served strictly from inside the media directory.

Face crops, their Grad-CAM heatmaps and frames, and the kept video file are looked up
from the database rows, never from a path in the request, and each resolved path is
checked to lie inside ``FIND_MEDIA_DIR``. Also the score-over-time plot of an analysis.
"""

from __future__ import annotations

import io
from pathlib import Path

from bot.formats import format_score
from bot.review.queries import AnalysisInfo, VideoDetail
from bot.settings import Settings

#: Video files the page may play, by suffix.
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
}

#: What can be shown of an evidence face: the crop, its Grad-CAM overlay, its frame.
CROP_VIEWS = ("crop", "heatmap", "context")


def crop_path(
    settings: Settings, analysis: AnalysisInfo, index: int, view: str = "crop"
) -> Path | None:
    """The file of crop ``index`` of ``analysis`` (or its heatmap or frame), or ``None`` if it
    must not be served.

    Crops are addressed by (analysis id, index, view), never by a path from the
    request; the stored relative path is still resolved and checked to lie
    inside the media directory, so a corrupt or hostile row cannot make the
    server read other files.
    """
    if not 0 <= index < len(analysis.crops) or view not in CROP_VIEWS:
        return None
    crop = analysis.crops[index]
    relative = {"crop": crop.path, "heatmap": crop.heatmap, "context": crop.context}[view]
    return evidence_image(settings, relative)


def evidence_image(settings: Settings, relative: str | None) -> Path | None:
    """The image file stored at ``relative`` (a crop record's path) if it may be served: a
    JPEG or PNG inside the media directory that still exists (retention deletes crops)."""
    target = _inside_media(settings, relative)
    if target is None or target.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        return None
    return target if target.is_file() else None


def _inside_media(settings: Settings, relative: str | None) -> Path | None:
    """``relative`` resolved under the media directory, or ``None`` if it would leave it."""
    path = settings.media_file(relative)
    if path is None:
        return None
    root, target = settings.media_dir.resolve(), path.resolve()
    return target if root in target.parents else None


def media_path(settings: Settings, video: VideoDetail) -> Path | None:
    """The kept video file of ``video`` for local playback, or ``None``.

    Looked up by the video's own row, never a path from the request: the file
    must still exist (retention has not deleted it), lie inside the media
    directory and be a format browsers play.
    """
    if video.media_deleted:
        return None
    target = _inside_media(settings, video.media_path)
    if target is None or target.suffix.lower() not in MEDIA_TYPES:
        return None
    return target if target.is_file() else None


def score_series(analysis: AnalysisInfo) -> list[tuple[int, list[float], list[float]]]:
    """(track, times, scores) per face track, time-ordered, for the plot."""
    series = []
    for track in analysis.scores.get("tracks", []) or []:
        points = sorted(
            (float(f["t"]), float(f["score"]))
            for f in track.get("frames") or []
            if f.get("t") is not None and f.get("score") is not None
        )
        if points:
            series.append(
                (
                    int(track.get("track", len(series))),
                    [p[0] for p in points],
                    [p[1] for p in points],
                )
            )
    return series


def render_score_plot(analysis: AnalysisInfo, *, width_in: float = 10.0) -> bytes:
    """PNG of the fake score over time, one line per face track, with the threshold.

    Drawn with matplotlib's object API on the Agg canvas (no pyplot global
    state), so concurrent web requests can render at once.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    series = score_series(analysis)
    for track, times, scores in series:
        ax.plot(times, scores, marker="o", markersize=3, linewidth=1.5, label=f"track {track}")
    ax.axhline(
        analysis.threshold,
        color="#c0392b",
        linestyle="--",
        linewidth=1,
        label=f"threshold {format_score(analysis.threshold)}",
    )
    for top in analysis.top_frames:
        if top.get("t") is not None and top.get("score") is not None:
            ax.plot(
                [top["t"]],
                [top["score"]],
                marker="*",
                markersize=11,
                color="#c0392b",
                linestyle="none",
            )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time in video (s)")
    ax.set_ylabel("fake score")
    ax.grid(True, alpha=0.3)
    if not series:
        ax.text(0.5, 0.5, "no face tracks", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


#: The score plot's drawing box (SVG user units): the page scales it to the card's width.
PLOT_W, PLOT_H = 600, 330
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 54, 14, 16, 66


def score_plot_svg(
    analysis: AnalysisInfo, *, decisive: int | None = None, not_counted: frozenset = frozenset()
) -> str:
    """Inline SVG of the fake score over time, one line per face track, with the threshold.

    The page embeds it so it scales with the screen (a PNG of fixed size shrank to an
    unreadable 332 px on a phone): it has a ``viewBox`` and no fixed size, its text
    takes its size from the stylesheet (larger user units on narrow screens, so the
    labels stay readable), and colours come from classes (``t0``..``t7`` by track
    number): the CSP allows no inline style.  ``decisive`` is drawn bold,
    ``not_counted`` tracks (pictures, faces too small) dashed.  Only numbers reach the
    markup, so nothing needs escaping.
    """
    series = score_series(analysis)
    t_max = max((t for _n, times, _s in series for t in times), default=0.0)
    t_max = t_max if t_max > 0 else 1.0
    width = PLOT_W - PLOT_LEFT - PLOT_RIGHT
    height = PLOT_H - PLOT_TOP - PLOT_BOTTOM

    def x(t: float) -> float:
        return round(PLOT_LEFT + width * t / t_max, 1)

    def y(score: float) -> float:
        return round(PLOT_TOP + height * (1.0 - max(0.0, min(1.0, score))), 1)

    parts = [
        f'<svg id="score-plot" class="plot" viewBox="0 0 {PLOT_W} {PLOT_H}" role="img" '
        'aria-labelledby="score-plot-title" xmlns="http://www.w3.org/2000/svg">',
        '<title id="score-plot-title">Fake score over time, one line per face track, '
        f"threshold {format_score(analysis.threshold)}</title>",
    ]
    for value in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line class="grid" x1="{PLOT_LEFT}" x2="{PLOT_W - PLOT_RIGHT}" '
            f'y1="{y(value)}" y2="{y(value)}"/>'
        )
        if value in (0.0, 0.5, 1.0):
            parts.append(
                f'<text class="tick" x="{PLOT_LEFT - 8}" y="{y(value)}" text-anchor="end" '
                f'dominant-baseline="middle">{value:g}</text>'
            )
    for t in _ticks(t_max):
        parts.append(
            f'<text class="tick" x="{x(t)}" y="{PLOT_TOP + height + 8}" text-anchor="middle" '
            f'dominant-baseline="hanging">{t:g}</text>'
        )
    parts.append(
        f'<text class="axis" x="{PLOT_W - PLOT_RIGHT}" y="{PLOT_H - 2}" text-anchor="end">'
        "time (s)</text>"
    )
    threshold = y(analysis.threshold)
    parts.append(
        f'<line class="threshold" x1="{PLOT_LEFT}" x2="{PLOT_W - PLOT_RIGHT}" '
        f'y1="{threshold}" y2="{threshold}"/>'
        f'<text class="threshold-label" x="{PLOT_W - PLOT_RIGHT}" y="{threshold - 5}" '
        f'text-anchor="end">threshold {format_score(analysis.threshold)}</text>'
    )
    ordered = sorted(series, key=lambda s: s[0] == decisive)  # the decisive line on top
    for track, times, scores in ordered:
        classes = [f"line t{track % 8}"]
        if track == decisive:
            classes.append("decisive")
        if track in not_counted:
            classes.append("not-counted")
        points = " ".join(f"{x(t)},{y(s)}" for t, s in zip(times, scores, strict=True))
        parts.append(f'<polyline class="{" ".join(classes)}" points="{points}"/>')
        if len(times) == 1 or track == decisive:
            parts += [
                f'<circle class="dot t{track % 8}" cx="{x(t)}" cy="{y(s)}" r="3.5"/>'
                for t, s in zip(times, scores, strict=True)
            ]
    if not series:
        parts.append(
            f'<text class="axis" x="{PLOT_W / 2}" y="{PLOT_H / 2}" text-anchor="middle">'
            "no face tracks</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _ticks(t_max: float) -> list[float]:
    """Round time ticks (1, 2, 5 x 10^n s apart), at most six, from 0 to ``t_max``."""
    import math

    raw = t_max / 5
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = int(t_max / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]
