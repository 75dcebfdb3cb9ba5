"""Why a video scored as it did, as a reviewer reads it: the decisive track first.

One home for what the video page and ``review show`` say about an analysis: which
face track gave the video's score, what each ensemble member said about it (named
by what it learnt, from the bundle manifest: ``self-blended images``,
``DFDC-supervised``), which tracks did not count and why (a still picture in the
scene, or a face too small to be evidence: ``model.scoring``), and each track's
evidence crops.

Analyses recorded before issue 31 have no per-member scores, no face sizes and no
``decisive`` track: the decisive track is then the strongest live one (the rule
they were scored by), and the page says the member scores were not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.review.evidence import score_plot_svg
from bot.review.queries import AnalysisInfo, CropInfo


@dataclass(frozen=True)
class TrackWhy:
    """One face track as the page shows it."""

    track: int | None
    score: float | None
    faces: int
    static: bool
    #: No face of the track is large enough to count (None: not recorded, older analysis).
    small: bool | None
    #: The median crop-square side of its faces in the video, source px (None: unknown).
    face_px: int | None
    first_t: float | None
    last_t: float | None
    #: (member name, its score on the faces that make the track's score), member order.
    members: list[tuple[str, float]] = field(default_factory=list)
    crops: list[CropInfo] = field(default_factory=list)
    decisive: bool = False

    @property
    def counted(self) -> bool:
        """Whether the track may decide the verdict (not a picture, not too small)."""
        return not self.static and not self.small

    @property
    def best_crop(self) -> CropInfo | None:
        return max(self.crops, key=lambda c: c.score or 0.0) if self.crops else None

    @property
    def top_member(self) -> tuple[str, float] | None:
        """The member that scored the track highest: which detector fired."""
        return max(self.members, key=lambda m: m[1]) if self.members else None


@dataclass(frozen=True)
class Why:
    """The decisive track, every track in evidence order, and what did not count."""

    decisive: TrackWhy | None
    tracks: list[TrackWhy]
    #: Tracks that scored at least the threshold (or above the decisive track) but were
    #: not counted: pictures in the scene, faces too small to be evidence.
    set_aside: list[TrackWhy]
    #: The crop-square side a face needed to count (None: not recorded).
    min_face_px: int | None
    #: Every face that could decide was too small: scored (ranked), never flagged on them.
    small_only: bool
    #: Member names as recorded (empty: per-member scores not recorded).
    members: list[str]

    def too_small(self, crop: CropInfo) -> bool:
        """A crop whose face was smaller in the video than the size that counts."""
        return bool(
            self.min_face_px and crop.upscaled_from and crop.upscaled_from < self.min_face_px
        )


def explain(analysis: AnalysisInfo) -> Why:
    """What decided ``analysis``'s score, read from its stored record (old ones too)."""
    scores: dict[str, Any] = analysis.scores or {}
    names = [str(n) for n in scores.get("members") or []]
    min_face_px = _int_or_none(scores.get("min_face_px"))
    raw = [t for t in scores.get("tracks") or [] if isinstance(t, dict)]
    decisive_id = scores.get("decisive")
    if "decisive" not in scores:  # older analyses: the strongest live track decided
        live = [t for t in raw if not t.get("static") and isinstance(t.get("score"), int | float)]
        decisive_id = max(live, key=lambda t: t["score"])["track"] if live else None
    tracks = [_track(t, names, analysis.crops, decisive_id) for t in raw]
    tracks.sort(key=lambda t: (not t.decisive, t.static, bool(t.small), -(t.score or 0.0)))
    decisive = next((t for t in tracks if t.decisive), None)
    floor = min(analysis.threshold, decisive.score) if decisive and decisive.score else None
    floor = analysis.threshold if floor is None else floor
    set_aside = [t for t in tracks if not t.counted and t.score is not None and t.score >= floor]
    return Why(
        decisive=decisive,
        tracks=tracks,
        set_aside=set_aside,
        min_face_px=min_face_px,
        small_only=bool(scores.get("small_only")),
        members=names,
    )


def _track(
    record: dict[str, Any], names: list[str], crops: list[CropInfo], decisive_id: Any
) -> TrackWhy:
    frames = record.get("frames") or []
    times = [f.get("t") for f in frames if isinstance(f.get("t"), int | float)]
    values = record.get("members") or []
    members = (
        [(name, float(v)) for name, v in zip(names, values, strict=True)]
        if names and len(values) == len(names)
        else []
    )
    number = record.get("track")
    return TrackWhy(
        track=number,
        score=record.get("score"),
        faces=int(record.get("faces", len(frames)) or 0),
        static=bool(record.get("static", False)),
        small=record.get("small") if "small" in record else None,
        face_px=_int_or_none(record.get("face_px")),
        first_t=min(times) if times else None,
        last_t=max(times) if times else None,
        members=members,
        crops=sorted((c for c in crops if c.track == number), key=lambda c: -(c.score or 0.0)),
        decisive=number is not None and number == decisive_id,
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def score_plot(analysis: AnalysisInfo, explained: Why | None = None) -> str:
    """The page's inline SVG score plot: the decisive track bold, uncounted ones dashed."""
    explained = explained or explain(analysis)
    return score_plot_svg(
        analysis,
        decisive=explained.decisive.track if explained.decisive else None,
        not_counted=frozenset(t.track for t in explained.tracks if not t.counted),
    )
