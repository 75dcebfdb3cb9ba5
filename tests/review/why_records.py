"""A stage-clip-like analysis in the issue-31 record format: five people, the strongest a
blurry face too small to be evidence, per-member scores named by what each member learnt.

It mirrors what ``bot.stages.analyse.scores_record`` stores for the real clip
(``real-videos/misc``, docs/detection.md): track 3 scores highest but its face is
103 px, below the 160 px the default bundle reads, so track 2 decides the score.
"""

from __future__ import annotations

from bot.db import session_factory
from bot.settings import Settings
from bot.store import Analysis
from tests.review.conftest import Seeded, _face_jpeg, seed_video

MEMBERS = ["self-blended images", "DFDC-supervised", "DFDC + self-blends"]
MIN_FACE_PX = 160
#: track: (score, face px, static, members) in the clip's evidence order.
TRACKS = {
    2: (0.833, 180, False, [0.912, 0.604, 0.781]),
    1: (0.801, 190, False, [0.850, 0.552, 0.733]),
    0: (0.648, 307, False, [0.702, 0.411, 0.596]),
    3: (0.964, 103, False, [0.991, 0.702, 0.940]),
    4: (0.855, 113, False, [0.930, 0.650, 0.820]),
}
DECISIVE = 2


def _frame_jpeg(path, shift: int) -> None:
    """A whole-frame image (640x360) as the analyse stage stores beside each crop."""
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((640, 640)).crop((0, shift, 640, 360 + shift))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=80)


def seed_why_video(settings: Settings, youtube_id: str, *, title: str = "Stage clip") -> Seeded:
    """A flagged video whose analysis records members, face sizes and the decisive track,
    with three crops and their frames per track on disk."""
    seeded = seed_video(
        settings,
        youtube_id,
        score=TRACKS[DECISIVE][0],
        tracks=5,
        crops=0,
        title=title,
        threshold=0.794,
    )
    tracks, crops = [], []
    for number, (score, face_px, static, members) in TRACKS.items():
        frames = [
            {
                "frame": f * 6,
                "t": round(f * 0.4 + number * 0.1, 3),
                "score": round(max(0.0, score - 0.04 * ((f + number) % 4)), 6),
                "box": [10, 10, 80, 80],
            }
            for f in range(12)
        ]
        tracks.append(
            {
                "track": number,
                "score": score,
                "faces": len(frames),
                "static": static,
                "small": face_px < MIN_FACE_PX,
                "face_px": face_px,
                "members": members,
                "frames": frames,
            }
        )
        for k, frame in enumerate(sorted(frames, key=lambda f: -f["score"])[:3]):
            stem = f"crops/{youtube_id}/{seeded.analysis_id}-t{number}-f{frame['frame']}"
            _face_jpeg(settings.media_dir / f"{stem}.jpg", shift=number * 9 + k * 3)
            _frame_jpeg(settings.media_dir / f"{stem}-frame.jpg", shift=number * 20 + k)
            crops.append(
                {
                    "path": f"{stem}.jpg",
                    "track": number,
                    "frame": frame["frame"],
                    "t": frame["t"],
                    "score": frame["score"],
                    "heatmap": None,
                    "upscaled_from": face_px if face_px < 256 else None,
                    "context": f"{stem}-frame.jpg",
                }
            )
    top = sorted(
        (
            {
                "track": t["track"],
                "frame": f["frame"],
                "t": f["t"],
                "score": f["score"],
                "static": t["static"],
                "small": t["small"],
            }
            for t in tracks
            for f in t["frames"]
        ),
        key=lambda f: (f["static"], f["small"], -f["score"]),
    )[:10]
    with session_factory(settings).begin() as session:
        analysis = session.get(Analysis, seeded.analysis_id)
        analysis.scores = {
            "tracks": tracks,
            "top_frames": top,
            "members": MEMBERS,
            "min_face_px": MIN_FACE_PX,
            "decisive": DECISIVE,
            "small_only": False,
        }
        analysis.crops = crops
        analysis.faces = sum(t["faces"] for t in tracks)
    return seeded
