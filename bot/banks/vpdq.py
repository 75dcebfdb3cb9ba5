"""vPDQ and PDQ: the perceptual hashes behind re-upload matching.

**Why not the ``vpdq`` package.**  Meta's ``vpdq`` (PyPI) is published as a
source archive only, and building it needs FFmpeg's development libraries
(``libavcodec-dev`` and six more, found through pkg-config and CMake).
``make install`` installs from PyPI alone, so ``pip install vpdq`` fails on a
bare machine.  The algorithm itself is small and fully specified by Meta
(ThreatExchange ``vpdq/README.md``): hash one frame per second with PDQ,
annotate each hash with its quality and timestamp, and compare two videos as
bags of hashes.  This module implements exactly that on top of ``pdqhash``
(Python bindings of Meta's reference PDQ, builds from PyPI) with the OpenCV
decoder FIND already uses, and keeps vPDQ's constants and serialisation, so
hashes exported from here read as ThreatExchange ``vpdq`` signals.  Two
deliberate differences: frames are resized to 256 px before PDQ (see
``HASH_SIDE``), and banked videos keep every frame (``dense``), see
:func:`hash_video`.

Defaults are vPDQ's: PDQ distance 31 (of 256 bits), frames of quality < 50
ignored, a match when 80 % of the query video's distinct frames are found in
the other video (ThreatExchange's ``VPDQ_QUERY_MATCH_THRESHOLD_PERCENT``);
the share of the other video that was matched is reported too but not
required, which is what lets a clip cut out of a longer video match it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: vPDQ's sampling rate: one frame hash per second of video.
SECONDS_PER_HASH = 1.0
#: vPDQ / ThreatExchange defaults.
DISTANCE_THRESHOLD = 31
QUALITY_THRESHOLD = 50
QUERY_MATCH_SHARE = 0.8
#: Every image is resized to this long side before PDQ (up or down).  PDQ reduces it to
#: 64x64 anyway, but its result still depends on the input resolution: on real clips the
#: same frame at 640x360 and at 426x240 (re-encoded) hashed 6-18 bits apart at full size
#: and 2-8 bits apart at 256 px, and a 720p frame hashes 5x faster (2 ms instead of 11).
#: Hashes made by other tools at full resolution are therefore ~10 bits further from
#: ours than from each other, still well inside the match distance of 31.
HASH_SIDE = 256
HEX_CHARS = 64
#: Dense (bank) hashing keeps a frame only when it differs from the last kept one by more
#: than this: a query frame within d of a dropped frame is within d + 15 of a kept one,
#: still under 31 for the re-encodes (distance ~6-10) matching is for.
PRUNE_DISTANCE = 15
#: Timestamps keep vPDQ's precision (milliseconds).
TIMESTAMP_DIGITS = 3


@dataclass(frozen=True)
class Feature:
    """One hashed frame (or face crop): PDQ as 64 hex digits, quality 0-100, seconds."""

    hash: str
    quality: int
    t: float = 0.0

    def to_vpdq(self) -> str:
        """ThreatExchange's compact serialisation: ``hex,quality,timestamp``."""
        return f"{self.hash},{self.quality},{self.t:.{TIMESTAMP_DIGITS}f}"

    @classmethod
    def from_vpdq(cls, text: str) -> Feature:
        parts = text.strip().split(",")
        if len(parts) != 3:
            raise ValueError(f"{text[:80]!r} is not a vPDQ feature (hex,quality,timestamp)")
        quality, t = int(parts[1]), float(parts[2])
        if not 0 <= quality <= 100:
            raise ValueError(f"quality {quality} is not between 0 and 100")
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"timestamp {parts[2].strip()[:20]!r} is not a time in seconds")
        return cls(check_hex(parts[0]), quality, t)


def check_hex(value: str) -> str:
    """A PDQ hash as 64 lowercase hex digits, or ``ValueError``."""
    value = value.strip().lower()
    if len(value) != HEX_CHARS:
        raise ValueError(f"{value[:80]!r} is not a PDQ hash (64 hex digits)")
    int(value, 16)  # ValueError when it is not hex
    return value


def pdq(image_rgb: np.ndarray) -> tuple[str, int]:
    """PDQ of an RGB image: (64 hex digits, quality 0-100), at ``HASH_SIDE`` px."""
    import pdqhash

    image = _normalise(np.ascontiguousarray(image_rgb[..., :3]), HASH_SIDE)
    bits, quality = pdqhash.compute(image)
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def _normalise(image: np.ndarray, side: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale == 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=interpolation))


@dataclass(frozen=True)
class VideoHash:
    """A video's vPDQ, plus what hashing it cost."""

    features: list[Feature]
    duration_s: float
    seconds: float


def hash_video(path: str | Path, *, dense: bool = False) -> VideoHash:
    """vPDQ of a video file.

    By default, vPDQ's sampling: the PDQ of the first frame at or after each
    whole second of the video's own timeline.  With ``dense``, every frame is
    hashed and a frame within ``PRUNE_DISTANCE`` of the last kept one is
    dropped (vPDQ's frame pruning): that is what banked videos store, because
    PDQ of a talking face changes by 20-60 bits in a tenth of a second, so a
    clip cut at any frame, re-uploaded at 1 hash per second, only finds its
    frames in a bank that kept (nearly) all of them.  Frames are decoded in
    order (``grab``) and only the hashed ones converted; a file OpenCV cannot
    open or decode yields no features (the analysis reports the decode error).
    """
    import cv2

    started = time.perf_counter()
    capture = cv2.VideoCapture(str(path))
    features: list[Feature] = []
    last_bits: np.ndarray | None = None
    t = 0.0
    try:
        if not capture.isOpened():
            return VideoHash([], 0.0, time.perf_counter() - started)
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        if not 0 < fps < 1000:
            fps = 25.0  # containers without a rate: assume a common one
        index = 0
        next_t = 0.0
        while capture.grab():
            msec = capture.get(cv2.CAP_PROP_POS_MSEC)
            t = msec / 1000.0 if msec and msec > 0 else index / fps
            wanted = dense or t >= next_t - 1e-6
            if wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    small = _normalise(frame, HASH_SIDE)  # convert 256 px, not 720p
                    digest, quality = pdq(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
                    bits = to_bits([digest])
                    if (
                        not dense
                        or last_bits is None
                        or int(distances(bits, last_bits)[0, 0]) > PRUNE_DISTANCE
                    ):
                        features.append(Feature(digest, quality, round(t, TIMESTAMP_DIGITS)))
                        last_bits = bits
                    while next_t <= t + 1e-6:
                        next_t += SECONDS_PER_HASH
            index += 1
        duration = max(t + 1.0 / fps, index / fps if index else 0.0)
    finally:
        capture.release()
    return VideoHash(features, duration, time.perf_counter() - started)


# --------------------------------------------------------------------- matching


def to_bits(hashes: Iterable[str]) -> np.ndarray:
    """Hex PDQ hashes as an ``(N, 32)`` uint8 array (one row per hash)."""
    rows = [bytes.fromhex(h) for h in hashes]
    if not rows:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 32)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between every row of ``a`` and every row of ``b``: ``(len a, len b)``."""
    wa = a.view(">u8").reshape(len(a), 4)
    wb = b.view(">u8").reshape(len(b), 4)
    return np.bitwise_count(wa[:, None, :] ^ wb[None, :, :]).sum(axis=2)


def usable(features: Iterable[Feature], min_quality: int = QUALITY_THRESHOLD) -> list[str]:
    """vPDQ's preparation: drop low-quality frames, then duplicates (a bag of distinct hashes)."""
    return list(dict.fromkeys(f.hash for f in features if f.quality >= min_quality))


@dataclass(frozen=True)
class Comparison:
    """How much of each of two videos is found in the other (vPDQ's two percentages)."""

    query_matched: int
    query_total: int
    other_matched: int
    other_total: int

    @property
    def query_share(self) -> float:
        return self.query_matched / self.query_total if self.query_total else 0.0

    @property
    def other_share(self) -> float:
        return self.other_matched / self.other_total if self.other_total else 0.0


def compare(
    query: Sequence[str], other: Sequence[str], distance: int = DISTANCE_THRESHOLD
) -> Comparison:
    """Brute-force vPDQ comparison of two bags of (already filtered) hashes.

    Fine for two videos; lookups against a whole bank go through
    :class:`bot.banks.hashindex.HashIndex` instead.
    """
    if not query or not other:
        return Comparison(0, len(query), 0, len(other))
    close = distances(to_bits(query), to_bits(other)) <= distance
    return Comparison(
        int(close.any(axis=1).sum()), len(query), int(close.any(axis=0).sum()), len(other)
    )
