"""Frame sampling: read a few evenly spread frames of a video, decoding as little as possible.

A deepfake verdict does not need every frame: 32 frames spread over the video
see every person who is on screen for more than a few seconds.  Which reader
is cheapest depends on the file (docs/detection.md, "Performance"), so
``sample_frames`` first lists the packets (no decoding) and then:

* long uploads with a keyframe in every sampling segment: decode just those
  keyframes (``_read_keyframes``);
* otherwise decode forward with PyAV, jumping to a keyframe when one lies
  before the next sample, and, when samples are several frames apart, letting
  the decoder skip the frames no other frame refers to (half of a typical
  H.264 file's B-frames: a sample may move by a frame or two);
* when PyAV cannot read the file, OpenCV's own reading and seeking.

A file that yields no frame at all is an error (``VideoDecodeError``), never
"no faces": a corrupt download, a truncated file or a codec the OpenCV wheel
cannot decode (AV1) must not be reported as a clean video.  A file that ends
before its container says it does (a cut download whose header, written first,
still promises every frame) is ``truncated``: whatever it still decodes is
only part of the video (``model.scoring`` calls the verdict partial).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.errors import FindError

#: File extensions treated as still images; everything else is tried as a video.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: File extensions picked up when a directory is scanned.
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"})

#: When the next wanted frame is at most this many frames ahead, decode forward
#: instead of seeking: a seek restarts decoding at the previous keyframe, which
#: costs more than a few sequential decodes.
_SEQUENTIAL_GAP = 8
#: OpenCV's FFmpeg backend seeks to this many frames before the target, then decodes forward.
_OPENCV_SEEK_BACK = 16
#: A sampled frame may move to a keyframe up to this fraction of the sampling interval
#: away: 0.5 keeps it inside its own segment, so each of the N equal segments of the
#: video still gives exactly one frame.
KEYFRAME_SNAP = 0.5
#: Let the decoder skip frames nothing refers to when samples are at least this many
#: frames apart: a skipped frame is never more than a frame or two from a decoded one.
SKIP_NONREF_INTERVAL = 4
#: A container that gives a duration but no frame count (Matroska, WebM) is truncated
#: when its last video packet ends more than this before that duration: the duration
#: covers the audio too, which may run a little longer than the picture.
TRUNCATION_TOLERANCE_S = 1.0


class VideoDecodeError(FindError):
    """A video or image could not be decoded (corrupt, truncated, unsupported codec)."""


@dataclass
class FrameSample:
    """Frames sampled from one file, with what was asked for and what was obtained."""

    frames: list[np.ndarray]  # RGB uint8, H x W x 3
    indices: list[int]  # frame index of each decoded frame in the video
    timestamps_s: list[float]  # position of each decoded frame, seconds
    requested: int  # number of frames asked for
    decoded: int  # number of frames actually decoded
    fps: float  # frames per second reported by the container (0.0 if unknown)
    total_frames: int  # frame count reported by the container (or counted)
    failed_indices: list[int] = field(default_factory=list)  # wanted but not decodable
    #: The container promises more than the file holds (``PacketIndex.truncated``).
    truncated: bool = False


def is_image_path(path: str | Path) -> bool:
    """True when the file extension says still image."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def sample_indices(total_frames: int, n: int) -> list[int]:
    """Pick ``n`` frame indices spread evenly over ``total_frames``.

    Each index is the centre of one of ``n`` equal segments, so the very first
    frame (often black or a title card) and the last one are avoided, and the
    spacing is even.  Short videos yield fewer, unique indices.
    """
    if total_frames <= 0 or n <= 0:
        return []
    n = min(n, total_frames)
    centres = (np.arange(n) + 0.5) * total_frames / n
    return sorted({min(total_frames - 1, int(c)) for c in centres})


def _to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    if frame_bgr.ndim == 2:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2RGB)
    if frame_bgr.shape[2] == 4:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; raise ``VideoDecodeError`` if it is unreadable."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode handles any path
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise VideoDecodeError(f"{path}: not a readable image (corrupt or unsupported format)")
    return _to_rgb(image)


def _count_frames(path: Path) -> int:
    """Count frames by grabbing them all: the fallback when the container does not say."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    count = 0
    try:
        while cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def sample_frames(
    path: str | Path, n: int = 32, on_frame: Callable[[np.ndarray], None] | None = None
) -> FrameSample:
    """Decode ``n`` frames spread evenly over the video at ``path`` (see the module note).

    Frames that fail to decode (a truncated tail, a seek past a wrong frame
    count) are skipped and listed in ``failed_indices``; the caller sees
    ``decoded < requested``.  Raises ``VideoDecodeError`` when nothing decodes.

    ``on_frame`` is called with each frame as soon as it is decoded (from the
    decoding thread), so a caller can start on the first frames while the
    rest decode.  A reader that gives up half-way (the file then read another
    way) will have announced frames the result does not hold: the returned
    ``frames`` are the truth, compare by identity.
    """
    import cv2

    path = Path(path)
    if n < 1:
        raise ValueError(f"frames to sample must be >= 1, got {n}")
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoDecodeError(f"{path}: not a readable video (OpenCV cannot open it)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or fps < 0:
            fps = 0.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if total <= 0:  # some streams (live webm) carry no frame count: count them once
            cap.release()
            total = _count_frames(path)
            cap = cv2.VideoCapture(str(path))
        wanted = sample_indices(total, n)
        packets = packet_index(path)
        keys = None if packets is None else packets.keyframe_positions()
        snapped = snap_to_keyframes(wanted, keys, total)
        emit = on_frame or _ignore
        read = _read_keyframes(path, snapped, fps, emit) if snapped else None
        if read is None and packets is not None:
            read = _read_forward(path, wanted, packets, fps, emit)
        if read is None:
            keyframes = None if packets is None else packets.keyframes
            read = _read_indices(cap, wanted, fps, keyframes, emit)
        frames, indices, stamps, failed = read
    finally:
        cap.release()
    if not frames:
        raise VideoDecodeError(
            f"{path}: decoded 0 of {n} frames (corrupt, truncated, not a video, "
            "or a codec this OpenCV build cannot decode such as AV1)"
        )
    return FrameSample(
        frames=frames,
        indices=indices,
        timestamps_s=stamps,
        requested=n,
        decoded=len(frames),
        fps=fps,
        total_frames=total,
        failed_indices=failed,
        truncated=packets is not None and packets.truncated(),
    )


@dataclass(frozen=True)
class PacketIndex:
    """Every video packet's pts in display order, and which are keyframes: read from the
    container without decoding anything, it maps a decoded frame's pts to its index."""

    pts: list[int]
    keyframes: list[int]  # display indices of the keyframes
    #: Frames the container's index promises (``nb_frames``; 0 when it does not say), and
    #: the video packets the file holds (empty ones too: an AVI's repeated frames).
    promised_frames: int = 0
    held_frames: int = 0
    #: The duration the container promises, and where the last video packet ends, seconds.
    promised_s: float = 0.0
    held_s: float = 0.0

    def keyframe_positions(self) -> list[tuple[int, int]]:
        return [(index, self.pts[index]) for index in self.keyframes]

    def truncated(self) -> bool:
        """Does the container promise more than the file holds?  A download cut off after
        the header (a faststart MP4's moov atom, an AVI's, a WebM's duration) still lists
        every frame; only the packets before the cut are there."""
        if self.promised_frames > 0:
            return self.held_frames < self.promised_frames
        return self.promised_s > 0 and self.held_s < self.promised_s - TRUNCATION_TOLERANCE_S


def packet_index(path: str | Path) -> PacketIndex | None:
    """The ``PacketIndex`` of the first video stream; None when PyAV is missing or fails.

    A seek restarts decoding at the keyframe before the target, so where a
    video has few keyframes (DFDC clips: 2 in 300 frames; YouTube uploads: one
    every few seconds) seeking to each sampled frame decodes the same group of
    pictures again and again, and reading forward is several times cheaper.
    """
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency; OpenCV alone still works
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stamps: list[tuple[int, bool]] = []
            end: int | None = None  # where the last packet ends, in the stream's time base
            held = 0
            for packet in container.demux(stream):
                held += packet.pts is not None
                if packet.pts is not None and packet.size:
                    stamps.append((packet.pts, bool(packet.is_keyframe)))
                    stop = packet.pts + (packet.duration or 0)
                    end = stop if end is None else max(end, stop)
            base = stream.time_base
            start = stream.start_time or 0
            if stream.duration and base:
                promised_s = float(stream.duration * base)
            else:
                promised_s = (container.duration or 0) / 1_000_000  # av.time_base units
            held_s = float((end - start) * base) if end is not None and base else 0.0
            promised_frames = int(stream.frames or 0)
    except Exception:  # any demuxer trouble: fall back to OpenCV's own seeking
        return None
    stamps.sort()
    return PacketIndex(
        pts=[pts for pts, _key in stamps],
        keyframes=[i for i, (_, key) in enumerate(stamps) if key],
        promised_frames=promised_frames,
        held_frames=held,
        promised_s=promised_s,
        held_s=held_s,
    )


def snap_to_keyframes(
    wanted: list[int], keys: list[tuple[int, int]] | None, total: int
) -> list[tuple[int, int]] | None:
    """The keyframe nearest each wanted frame, when every one has its own within
    ``KEYFRAME_SNAP`` of the sampling interval (inside its own segment); else
    None (read the wanted frames).

    A keyframe decodes alone, with nothing before it: when every segment of a
    video holds a keyframe (a long upload with a keyframe every few seconds,
    sampled every half minute), reading those keyframes instead costs one
    decoded frame per sample instead of up to a whole group of pictures, and
    each of the N equal segments still gives one frame.
    """
    import bisect

    if not keys or len(wanted) < 2 or total <= 0:
        return None
    tolerance = KEYFRAME_SNAP * total / len(wanted)
    indices = [index for index, _pts in keys]
    chosen: list[tuple[int, int]] = []
    for target in wanted:
        k = bisect.bisect_left(indices, target)
        # never frame 0 (often black or a title card, which the sampling avoids)
        near = [j for j in (k - 1, k) if 0 <= j < len(keys) and indices[j] > 0]
        if not near:
            return None
        best = min(near, key=lambda j: abs(indices[j] - target))
        if abs(indices[best] - target) >= tolerance or (chosen and chosen[-1][0] >= indices[best]):
            return None
        chosen.append(keys[best])
    return chosen


def _ignore(frame: np.ndarray) -> None:
    """The default ``on_frame``: nobody is waiting for frames one by one."""


def _read_keyframes(
    path: Path, keys: list[tuple[int, int]], fps: float, emit: Callable[[np.ndarray], None]
) -> tuple[list[np.ndarray], list[int], list[float], list[int]] | None:
    """Decode just the keyframes ``keys`` (index, pts) with PyAV, one seek each; None on
    any trouble (the caller reads with OpenCV instead).  No frame threading: it would
    decode a few frames past each keyframe before returning it."""
    import av

    frames: list[np.ndarray] = []
    indices: list[int] = []
    stamps: list[float] = []
    failed: list[int] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            base = stream.start_time or 0
            for index, pts in keys:
                container.seek(pts, stream=stream, backward=True, any_frame=False)
                frame = None
                for count, decoded in enumerate(container.decode(stream)):
                    if decoded.pts is not None and decoded.pts >= pts:
                        frame = decoded if decoded.pts == pts else None
                        break
                    if count >= 8:  # the seek landed far before the keyframe: give up on it
                        break
                if frame is None:
                    failed.append(index)
                    continue
                frames.append(_av_rgb(frame))
                emit(frames[-1])
                indices.append(index)
                seconds = float((pts - base) * stream.time_base) if stream.time_base else 0.0
                stamps.append(round(index / fps if fps > 0 else seconds, 3))
    except Exception:
        return None
    if not frames:
        return None
    return frames, indices, stamps, failed


def _av_rgb(frame) -> np.ndarray:
    """A PyAV frame as upright RGB: phone videos store a rotation that OpenCV applies
    when it reads and PyAV does not."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = round(getattr(frame, "rotation", 0) or 0) // 90 % 4
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb


class _SkipTooFar(Exception):
    """Skipping frames moved a sample out of its segment: read again without skipping."""


def _read_forward(
    path: Path,
    wanted: list[int],
    packets: PacketIndex,
    fps: float,
    emit: Callable[[np.ndarray], None],
) -> tuple[list[np.ndarray], list[int], list[float], list[int]] | None:
    """Decode forward with PyAV to each wanted frame (sorted); None on any trouble.

    Before each sample, jump to the last keyframe at or before it when that
    keyframe lies ahead of the decoder (nothing before a keyframe is needed).
    With samples ``SKIP_NONREF_INTERVAL`` frames apart or more, the decoder
    skips frames no other frame refers to (``skip_frame = NONREF``), and each
    sample is the decoded frame nearest to it, never one already taken and
    never outside its half-interval: on the DFDC 1080p clips that halves the
    decoding (docs/detection.md, "Performance").
    """
    interval = (wanted[-1] - wanted[0]) / (len(wanted) - 1) if len(wanted) > 1 else float("inf")
    tolerance = max(1.0, KEYFRAME_SNAP * interval)
    for skip in (True, False) if interval >= SKIP_NONREF_INTERVAL else (False,):
        try:
            return _decode_forward(path, wanted, packets, fps, skip, tolerance, emit)
        except _SkipTooFar:  # only raised when skipping: read again, every frame
            continue
        except Exception:  # any decoder trouble: the caller falls back to OpenCV
            return None
    return None


def _decode_forward(
    path: Path,
    wanted: list[int],
    packets: PacketIndex,
    fps: float,
    skip: bool,
    tolerance: float,
    emit: Callable[[np.ndarray], None],
) -> tuple[list[np.ndarray], list[int], list[float], list[int]] | None:
    import bisect

    import av

    index_of = {pts: i for i, pts in enumerate(packets.pts)}
    frames: list[np.ndarray] = []
    indices: list[int] = []
    failed = [index for index in wanted if index >= len(packets.pts)]
    targets = [index for index in wanted if index < len(packets.pts)]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if skip:
            stream.codec_context.skip_frame = "NONREF"
        position = 0  # index of the next frame the decoder returns
        previous: tuple[int, object] | None = None  # last decoded frame before the target
        decoded = None
        t = 0
        while t < len(targets):
            target = targets[t]
            k = bisect.bisect_right(packets.keyframes, target) - 1
            if decoded is None or (k >= 0 and packets.keyframes[k] > position):
                start = packets.keyframes[k] if k >= 0 else 0
                container.seek(packets.pts[start], stream=stream, backward=True, any_frame=False)
                decoded, position, previous = container.decode(stream), start, None
            # decode up to the first frame at or past the target
            current: tuple[int, object] | None = None
            for frame in decoded:
                index = index_of.get(frame.pts)
                if index is None:
                    raise ValueError(f"decoded a frame with unknown pts {frame.pts}")
                if index < position:  # before the keyframe we jumped to
                    continue
                position = index + 1
                if index >= target:
                    current = (index, frame)
                    break
                previous = (index, frame)
            taken = indices[-1] if indices else -1
            options = [c for c in (previous, current) if c is not None and c[0] > taken]
            if not options:  # the file ends before this sample (and all later ones)
                failed.extend(targets[t:])
                break
            index, frame = min(options, key=lambda c: (abs(c[0] - target), -c[0]))
            if abs(index - target) > tolerance:
                if skip:
                    raise _SkipTooFar
                failed.append(target)
            else:
                frames.append(_av_rgb(frame))
                emit(frames[-1])
                indices.append(index)
            previous = current  # the frame past this target may serve the next one
            t += 1
    if not frames:
        return None
    stamps = [round(i / fps, 3) if fps > 0 else 0.0 for i in indices]
    return frames, indices, stamps, sorted(failed)


def _read_indices(
    cap,
    wanted: list[int],
    fps: float,
    keyframes: list[int] | None = None,
    emit: Callable[[np.ndarray], None] = _ignore,
) -> tuple[list[np.ndarray], list[int], list[float], list[int]]:
    """Read the frames at ``wanted`` (sorted) from an open capture.

    Per target, decode forward from the current position unless the keyframe an
    OpenCV seek would start from (the last one at least 16 frames before the
    target) lies past it: then the seek decodes less.  Without keyframe
    positions, seek when the target is more than ``_SEQUENTIAL_GAP`` frames ahead.

    A frame whose position does not advance past the previous one is a repeat
    (OpenCV answers a seek past the end of a truncated file with the last good
    frame again, and ``read`` still says ok): it counts as failed, so a cut file
    reports how many distinct frames it really holds.
    """
    import bisect

    import cv2

    frames: list[np.ndarray] = []
    indices: list[int] = []
    stamps: list[float] = []
    failed: list[int] = []
    position = 0  # index of the frame the next read() returns
    last_index = -1  # index of the last frame returned
    for index in wanted:
        gap = index - position
        if keyframes is not None:
            # OpenCV seeks to ``index - 16`` and decodes forward from the keyframe before
            # that: seek only when that keyframe is past the current position.
            k = bisect.bisect_right(keyframes, index - _OPENCV_SEEK_BACK) - 1
            seek = gap < 0 or (k >= 0 and keyframes[k] > position)
        else:
            seek = gap < 0 or gap > _SEQUENTIAL_GAP
        if seek:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        else:
            ok = True
            for _ in range(gap):
                ok = cap.grab()
                if not ok:
                    break
            if not ok:
                failed.append(index)
                position = index
                continue
        ok, frame = cap.read()
        position = index + 1
        if not ok or frame is None:
            failed.append(index)
            continue
        reported = int(cap.get(cv2.CAP_PROP_POS_FRAMES) or 0) - 1  # the frame read() returned
        actual = reported if 0 <= reported < index else index
        if actual <= last_index:  # the same frame again: the file ends before ``index``
            failed.append(index)
            continue
        last_index = actual
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        stamp = actual / fps if fps > 0 else (msec / 1000.0 if msec and msec > 0 else 0.0)
        frames.append(_to_rgb(frame))
        emit(frames[-1])
        indices.append(actual)
        stamps.append(round(float(stamp), 3))
    return frames, indices, stamps, failed


def iter_media_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and directories into the media files to scan.

    Files given explicitly are always yielded (a wrong type is reported as an
    error by the scorer, not skipped silently); directories are walked
    recursively, in sorted order, for known video and image extensions.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
                    yield child
        else:
            yield path
