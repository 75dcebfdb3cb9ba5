"""Inputs the scan benchmarks share: the real clips of ``../shared/data`` and encoded test videos.

Videos are encoded with imageio-ffmpeg's FFmpeg (H.264 or VP9, long GOPs),
the shape of a YouTube download, which OpenCV's ``mp4v`` writer cannot make.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    """``../shared/data`` when it holds the DFDC and real clips, else None."""
    from bot.settings import shared_data_dir

    root = shared_data_dir()
    return root if (root / "dfdc-videos").is_dir() else None


def real_clips(root: Path) -> dict[str, list[Path]]:
    """Input class -> clips: the DFDC 1080p videos and each set of real-videos/."""
    classes = {"dfdc-1080p": sorted((root / "dfdc-videos").glob("*.mp4"))}
    for folder in sorted((root / "real-videos").iterdir()):
        if folder.is_dir():
            clips = sorted(p for p in folder.rglob("*") if p.suffix in (".mp4", ".mpg"))
            if clips:
                classes[f"real-{folder.name}"] = clips
    return classes


def encode(
    path: Path,
    frames_rgb: Iterable[np.ndarray],
    size: tuple[int, int] | None = None,
    fps: float = 30.0,
    codec: str = "libx264",
    gop: int = 250,
    faststart: bool = True,
) -> Path:
    """Encode RGB frames (any iterable: long videos are streamed) into ``path``, atomically.

    The shape of a YouTube download, which OpenCV's ``mp4v`` writer cannot
    make: H.264 (or VP9) with a keyframe exactly every ``gop`` frames (no
    scene-cut extras), the moov atom first unless ``faststart`` is off.
    ``size`` (width, height) defaults to the first frame's.  An existing file
    is kept: the benchmarks reuse what they encoded before.
    """
    import itertools

    import imageio_ffmpeg

    if path.exists():
        return path
    frames = iter(frames_rgb)
    if size is None:
        first = next(frames)
        size = (first.shape[1], first.shape[0])
        frames = itertools.chain([first], frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    params = ["-g", str(gop)]
    if codec == "libx264":
        params += ["-preset", "veryfast", "-crf", "23", "-sc_threshold", "0"]
        params += ["-movflags", "+faststart"] if faststart else []
    elif codec == "libvpx-vp9":
        params += ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "36"]
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        size,
        fps=fps,
        codec=codec,
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        output_params=params,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    tmp.rename(path)
    return path


def portrait_frames(photo_rgb: np.ndarray, n: int, size=(1280, 720), shake: float = 0.0, seed=0):
    """A portrait pinned on a plain wall, filmed for ``n`` frames.

    ``shake`` is a handheld camera: the view wanders by a random walk of up to
    ``shake`` pixels a frame (and zooms by up to 1 %), moving the picture
    without changing it.
    """
    import cv2

    width, height = size
    wall = np.full((height, width, 3), (182, 160, 132), np.uint8)
    photo = cv2.resize(photo_rgb, None, fx=0.55, fy=0.55, interpolation=cv2.INTER_AREA)
    ph, pw = photo.shape[:2]
    y0, x0 = (height - ph) // 2, (width - pw) // 2
    wall[y0 : y0 + ph, x0 : x0 + pw] = photo
    rng = np.random.default_rng(seed)
    dx = dy = 0.0
    for i in range(n):
        if shake:
            dx = float(np.clip(dx + rng.normal(0, shake), -40, 40))
            dy = float(np.clip(dy + rng.normal(0, shake), -25, 25))
        zoom = 1.0 + (0.01 * np.sin(i / 20.0) if shake else 0.0)
        tx, ty = dx + (1 - zoom) * width / 2, dy + (1 - zoom) * height / 2
        matrix = np.float32([[zoom, 0, tx], [0, zoom, ty]])
        yield cv2.warpAffine(wall, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
