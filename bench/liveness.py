"""Measure live/static tracks, split-track merging and cheaper detection on real footage.

Usage::

    .venv/bin/python bench/liveness.py           # every clip, 20 portraits
    .venv/bin/python bench/liveness.py --quick   # a few clips, 4 portraits
    .venv/bin/python bench/liveness.py --smoke   # one real clip, one portrait: does it run

For each clip of ``../shared/data`` (the DFDC videos and every real-videos/
clip) and for portraits of real-photos/ filmed as still videos (a still camera
and a handheld one, H.264 720p), it samples 32 frames and prints, per track,
the aligned face and mouth residuals of ``model.liveness`` and whether the
track is static; the number of tracks before and after ``merge_split_tracks``;
and, for issue 19 item 4, the tracks found and CPU seconds of detection with
``FaceDetector.detect`` (every frame at full detection scale) against
``detect_video`` (probe frames whole, the others in windows around the probed
faces), and how many of the full-scale faces ``detect_video`` finds too.
The numbers are in docs/detection.md ("Live and static faces").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.media import encode, portrait_frames, real_clips, shared_data

OUT = Path(__file__).resolve().parent / "out" / "liveness"


def measure(path: Path, detector, label: str, frames: int = 32) -> dict:
    from model.frames import sample_frames
    from model.liveness import is_static, track_motion
    from model.tracks import build_tracks, iou, merge_split_tracks

    sample = sample_frames(path, frames)
    t0 = time.process_time()
    full = detector.detect(sample.frames)
    t1 = time.process_time()
    fast = detector.detect_video(sample.frames)
    t2 = time.process_time()
    before = build_tracks(fast)
    tracks = merge_split_tracks(before)
    rows = []
    for track in tracks:
        motion = track_motion(sample.frames, track.frame_positions, track.faces)
        rows.append(
            {
                "faces": len(track),
                "size": int(sorted(max(f.box[2:]) for f in track.faces)[len(track) // 2]),
                "motion": motion,
                "static": is_static(motion),
            }
        )
    # faces the full-scale detection found that detect_video found too, and how well they agree
    overlaps = [
        max((iou(a.box, b.box) for b in fast_faces), default=0.0)
        for full_faces, fast_faces in zip(full, fast, strict=True)
        for a in full_faces
    ]
    return {
        "label": label,
        "faces_full": len(overlaps),
        "faces_kept": sum(o >= 0.5 for o in overlaps),
        "box_iou": sorted(overlaps)[len(overlaps) // 2] if overlaps else None,
        "tracks_full": len(merge_split_tracks(build_tracks(full))),
        "before": len(before),
        "after": len(tracks),
        "detect_full_cpu": t1 - t0,
        "detect_fast_cpu": t2 - t1,
        "rows": rows,
    }


def report(result: dict) -> None:
    head = (
        f"{result['label'][:34]:<34} tracks {result['before']}->{result['after']} "
        f"(full-scale {result['tracks_full']})  detect cpu {result['detect_full_cpu']:.2f}"
        f" -> {result['detect_fast_cpu']:.2f} s, faces {result['faces_kept']}"
        f" of {result['faces_full']}"
    )
    print(head)
    for n, row in enumerate(result["rows"]):
        motion = row["motion"]
        if motion is None:
            text = "seen once"
        else:
            ratio = motion.mouth / max(motion.face, 1e-9)
            text = f"face {motion.face:.3f} mouth {motion.mouth:.3f} ratio {ratio:.2f}"
        flag = "STATIC" if row["static"] else "live"
        print(f"    track {n}: {row['faces']:2d} faces, {row['size']:4d} px, {text}  {flag}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few clips and portraits")
    parser.add_argument(
        "--smoke", action="store_true", help="one real clip and one portrait (what the tests run)"
    )
    parser.add_argument(
        "--portraits", type=int, help="portraits to film (default 20; quick 4; smoke 1)"
    )
    args = parser.parse_args(argv)
    root = shared_data()
    if root is None:
        raise SystemExit("bench/liveness.py needs ../shared/data (the DFDC and real clips)")
    from model.faces import FaceDetector

    detector = FaceDetector()
    results = []
    classes = real_clips(root)
    if args.smoke:  # the smallest real input: one clip of the first real-videos set
        classes = {name: clips[:1] for name, clips in classes.items() if name != "dfdc-1080p"}
        classes = dict(list(classes.items())[:1])
    for name, clips in classes.items():
        picked = clips[:2] if args.quick and name != "dfdc-1080p" else clips
        for clip in picked:
            result = measure(clip, detector, f"{name}/{clip.stem}")
            report(result)
            results.append((name, result))
    import cv2

    photos = sorted((root / "real-photos").rglob("*.jpg"))
    count = args.portraits or (1 if args.smoke else 4 if args.quick else 20)
    step = max(1, len(photos) // count)
    for photo_path in photos[::step][:count]:
        photo = cv2.cvtColor(cv2.imread(str(photo_path)), cv2.COLOR_BGR2RGB)
        for shake in (0.0, 1.5):
            kind = "handheld" if shake else "still"
            video = OUT / f"{photo_path.stem}-{kind}.mp4"
            encode(video, portrait_frames(photo, 150, shake=shake), (1280, 720), gop=60)
            result = measure(video, detector, f"portrait-{kind}/{photo_path.stem}")
            report(result)
            results.append((f"portrait-{kind}", result))

    print("\nsummary per input class (tracks with >= 2 faces)")
    summary: dict[str, list] = {}
    for name, result in results:
        entry = summary.setdefault(name, [0, 0, 0, 0, 0, 0.0, 0.0, 0, 0])
        judged = [r for r in result["rows"] if r["motion"] is not None]
        entry[0] += 1
        entry[1] += len(judged)
        entry[2] += sum(r["static"] for r in judged)
        entry[3] += result["before"] - result["after"]
        entry[4] += result["after"] - result["tracks_full"]
        entry[5] += result["detect_full_cpu"]
        entry[6] += result["detect_fast_cpu"]
        entry[7] += result["faces_full"]
        entry[8] += result["faces_kept"]
    print(
        f"{'class':<20}{'clips':>6}{'tracks':>7}{'static':>7}{'merged':>7}{'fast-full':>10}"
        f"{'det cpu full':>13}{'fast':>7}{'faces kept':>12}"
    )
    for name, entry in summary.items():
        clips, tracks, static, merged, diff, full, fast, faces, kept = entry
        print(
            f"{name:<20}{clips:>6}{tracks:>7}{static:>7}{merged:>7}{diff:>10}"
            f"{full / clips:>13.2f}{fast / clips:>7.2f}{f'{kept}/{faces}':>12}"
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
