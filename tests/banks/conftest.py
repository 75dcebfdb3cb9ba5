"""Real talking-face clips from ../shared/data/real-videos, re-encoded by ffmpeg for matching.

The clips are never copied into the repository: the fixtures build what the
tests need (a long "confirmed fake" made of three clips, a piece cut out of
it, re-encoded smaller) in pytest's temporary directory, and skip with the
reason when the data is absent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.daemon.helpers import write_tiny_bundle

REAL_VIDEOS = SHARED_DATA / "real-videos"
#: Three ~10 s clips of different people and sets, and a fourth one for "unrelated".
LONG_PARTS = (
    "voxceleb2/vox2_id07414/00104.mp4",
    "misc/lin_manuel_miranda/short_hamilton_clip.mp4",
    "voxceleb2/vox2_id06811/681100216.mp4",
)
UNRELATED = "voxceleb2/pcavs_00098/00098.mp4"


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args]
    subprocess.run(cmd, check=True, timeout=300)


@pytest.fixture(scope="session")
def real_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``long``: 3 clips joined (~31 s, 640x360 H.264 at 25 fps); ``cut``: 10 s of it from
    12.36 s (not on a whole second), resized to 426x240 and re-encoded at a lower quality;
    ``cut30``: the same piece converted to 30 fps; ``unrelated``: another person."""
    missing = [p for p in (*LONG_PARTS, UNRELATED) if not (REAL_VIDEOS / p).is_file()]
    if missing:
        pytest.skip(f"real clips missing under {REAL_VIDEOS} ({missing[0]}): see ../shared/data")
    root = tmp_path_factory.mktemp("clips")
    inputs: list[str] = []
    for part in LONG_PARTS:
        inputs += ["-i", str(REAL_VIDEOS / part)]
    scale = "".join(
        f"[{i}:v]scale=640:360:force_original_aspect_ratio=decrease,"
        f"pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25[v{i}];"
        for i in range(len(LONG_PARTS))
    )
    joined = "".join(f"[v{i}]" for i in range(len(LONG_PARTS)))
    long = root / "long.mp4"
    ffmpeg(
        *inputs,
        "-filter_complex",
        f"{scale}{joined}concat=n={len(LONG_PARTS)}:v=1:a=0[out]",
        "-map",
        "[out]",
        "-c:v",
        "libx264",
        "-crf",
        "20",
        "-pix_fmt",
        "yuv420p",
        str(long),
    )
    cut = root / "cut.mp4"
    ffmpeg(
        "-ss", "12.36", "-t", "10", "-i", str(long), "-vf", "scale=426:240",
        "-c:v", "libx264", "-crf", "32", "-pix_fmt", "yuv420p", "-an", str(cut),
    )  # fmt: skip
    cut30 = root / "cut30.mp4"
    ffmpeg(
        "-ss", "12.36", "-t", "10", "-i", str(long), "-vf", "scale=480:270,fps=30",
        "-c:v", "libx264", "-crf", "28", "-pix_fmt", "yuv420p", "-an", str(cut30),
    )  # fmt: skip
    unrelated = root / "unrelated.mp4"
    ffmpeg(
        "-i", str(REAL_VIDEOS / UNRELATED), "-vf", "scale=640:360,setsar=1",
        "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p", "-an", str(unrelated),
    )  # fmt: skip
    return {"long": long, "cut": cut, "cut30": cut30, "unrelated": unrelated}


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained bundle: the analyse stage's plumbing, not its judgement."""
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", "tiny-bank-test")


def fake_hashes(seed: int, n: int = 12) -> list:
    """Distinct random PDQ features (quality 100), one per second."""
    import numpy as np

    from bot.banks import vpdq

    rng = np.random.default_rng(seed)
    return [
        vpdq.Feature(rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex(), 100, float(i))
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def _restore_logging():
    """``bot.cli.main`` configures the root logger onto capsys's stream; undo it after the test
    (a later test would otherwise log into a closed stream)."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
