"""Benchmark ``find-bot scan``: seconds per video and per sampled frame, by stage.

Usage::

    .venv/bin/python bench/scan.py            # 60 s 720p video, 32 frames, 2 repeats
    .venv/bin/python bench/scan.py --quick    # 10 s video, 16 frames, 1 repeat

It writes a synthetic 720p video (one real face, scikit-image's astronaut,
moving over a smooth background; OpenCV's ``mp4v`` codec, the only MPEG
family encoder in the wheel) and two bundles with random weights (full
2 x Xception-299 and compact 2 x Xception-160/0.5/4) under ``bench/out/``.
The weights being random changes nothing about speed.

Every configuration runs in its own process, so the peak memory (max RSS)
printed is that of one scanning process, TensorFlow included.  Each process
scores the video once untimed (graph tracing, MTCNN warm-up) and then
``--repeats`` times.  The naive baseline decodes every frame, runs MTCNN on
each sampled frame at full resolution one frame at a time, and classifies
each crop with ``model.predict``; the ratio column is baseline / ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))  # run as a script: import bot and model from this checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_video(path: Path, seconds: int, fps: int = 30, size=(1280, 720)) -> Path:
    """A ``seconds`` long video with one astronaut face drifting across the frame."""
    import cv2
    import numpy as np
    from skimage import data

    if path.exists():
        return path
    width, height = size
    head = data.astronaut()[0:240, 120:330]
    head = cv2.resize(head, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    xs = np.linspace(60, 180, width, dtype=np.float32)
    ys = np.linspace(40, 120, height, dtype=np.float32)
    base = np.empty((height, width, 3), dtype=np.uint8)
    base[..., 0] = xs[None, :].astype(np.uint8)
    base[..., 1] = ys[:, None].astype(np.uint8)
    base[..., 2] = 150
    tmp = path.with_suffix(".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    n = seconds * fps
    hh, hw = head.shape[:2]
    for i in range(n):
        frame = base.copy()
        x = int(100 + (width - hw - 200) * i / n)
        y = int(150 + 60 * np.sin(i / 40))
        frame[y : y + hh, x : x + hw] = head
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.rename(path)
    return path


def make_bundle(kind: str) -> Path:
    from model.bundle import write_bundle
    from model.classifier import COMPACT_XCEPTION, FULL_XCEPTION, build_classifier

    spec = FULL_XCEPTION if kind == "full" else COMPACT_XCEPTION
    directory = OUT / f"bundle-{kind}"
    if (directory / "manifest.json").exists():
        return directory
    models = [build_classifier(spec, seed=s) for s in (1, 2)]
    return write_bundle(
        directory,
        models,
        spec,
        threshold=0.5,
        name=f"bench-{kind}",
        version="random",
        training={"data": "none: random weights, for timing only"},
        metrics={},
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_ours(video: Path, bundle_dir: Path, frames: int, repeats: int, precision: str) -> dict:
    from model.bundle import load_bundle
    from model.scoring import VideoScorer

    scorer = VideoScorer(load_bundle(bundle_dir), frames=frames, precision=precision)
    warm = scorer.score_path(video)  # traces tf.function graphs, warms MTCNN
    assert warm.verdict in ("fake", "real"), warm.to_dict()
    cpu = time.process_time()
    runs = [scorer.score_path(video) for _ in range(repeats)]
    cpu = (time.process_time() - cpu) / repeats
    stages = ("decode_s", "detect_s", "classify_s")
    result = {s: sum(r.timings[s] for r in runs) / repeats for s in stages}
    result["cpu_s"] = cpu
    result["total_s"] = sum(result[s] for s in stages)
    result["frames_decoded"] = runs[0].frames_decoded
    result["faces"] = runs[0].faces
    return result


def run_baseline(video: Path, bundle_dir: Path, frames: int, repeats: int, precision: str) -> dict:
    """Decode every frame; MTCNN per frame at full resolution; ``model.predict`` per crop."""
    import cv2
    import numpy as np

    from model.bundle import load_bundle
    from model.ensemble import resize_crops
    from model.faces import FaceDetector, crop_face
    from model.frames import sample_indices

    bundle = load_bundle(bundle_dir)
    ensemble = bundle.ensemble()
    detector = FaceDetector(max_side=100_000)  # no downscaling
    size = bundle.input_size

    def once() -> dict:
        t0 = time.perf_counter()
        cap = cv2.VideoCapture(str(video))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(sample_indices(total, frames))
        kept, index = [], 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                kept.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
        cap.release()
        t1 = time.perf_counter()
        detections = [detector.detect([frame])[0] for frame in kept]
        t2 = time.perf_counter()
        scores = []
        for frame, faces in zip(kept, detections, strict=True):
            for face in faces:
                crop = crop_face(frame, face, size)[None]
                logits = [
                    float(
                        m.model.predict(
                            m.spec.preprocess(resize_crops(crop, m.spec.input_size)), verbose=0
                        )[0, 0]
                    )
                    for m in ensemble.members
                ]
                scores.append(float(ensemble.combiner(np.array(logits)[:, None])[0]))
        t3 = time.perf_counter()
        return {"decode_s": t1 - t0, "detect_s": t2 - t1, "classify_s": t3 - t2}

    once()  # warm-up, like ours
    cpu = time.process_time()
    runs = [once() for _ in range(repeats)]
    cpu = (time.process_time() - cpu) / repeats
    result = {k: sum(r[k] for r in runs) / repeats for k in runs[0]}
    result["total_s"] = result["decode_s"] + result["detect_s"] + result["classify_s"]
    result["cpu_s"] = cpu
    return result


def worker(args: argparse.Namespace) -> None:
    bundle_dir = OUT / f"bundle-{args.bundle}"
    runner = run_baseline if args.worker == "baseline" else run_ours
    result = runner(Path(args.video), bundle_dir, args.frames, args.repeats, args.precision)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def spawn(
    kind: str, bundle: str, video: Path, frames: int, repeats: int, precision: str = "float32"
) -> dict:
    command = [
        sys.executable, __file__, "--worker", kind, "--bundle", bundle, "--video", str(video),
        "--frames", str(frames), "--repeats", str(repeats), "--precision", precision,
    ]  # fmt: skip
    env = {**os.environ, "OPENCV_FFMPEG_LOGLEVEL": "-8"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise SystemExit(f"{kind}/{bundle} worker failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s video, 16 frames, 1 repeat")
    parser.add_argument("--frames", type=int, help="frames sampled per video")
    parser.add_argument("--repeats", type=int, help="timed runs per configuration")
    parser.add_argument("--seconds", type=int, help="video length")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    parser.add_argument("--worker", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--bundle", choices=("full", "compact"), help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.frames = args.frames or (16 if args.quick else 32)
    args.repeats = args.repeats or (1 if args.quick else 2)
    seconds = args.seconds or (10 if args.quick else 60)
    if args.worker:
        worker(args)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    print(f"cpus: {os.cpu_count()}, preparing {seconds} s 720p video and bundles in {OUT} ...")
    video = make_video(OUT / f"video-{seconds}s-720p.mp4", seconds)
    for kind in ("full", "compact"):
        make_bundle(kind)

    rows = []
    for bundle in ("full", "compact"):
        ours = spawn("ours", bundle, video, args.frames, args.repeats)
        rows.append((f"{bundle} ensemble", ours))
        if bundle == "full":
            bf16 = spawn("ours", bundle, video, args.frames, args.repeats, "bfloat16")
            rows.append(("full ensemble, bfloat16", bf16))
        if not args.no_baseline:
            base = spawn("baseline", bundle, video, args.frames, args.repeats)
            rows.append((f"{bundle} naive baseline", base))
            rows.append((f"{bundle} speed-up (baseline/ours)", None, base, ours))

    frames = args.frames
    print(f"\n{seconds} s 1280x720 video, {frames} sampled frames, mean of {args.repeats} run(s)")
    header = (
        f"{'configuration':<34}{'decode':>8}{'detect':>8}{'classify':>9}{'total':>8}"
        f"{'s/frame':>9}{'cpu s':>8}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        name, result = row[0], row[1]
        if result is None:
            base, ours = row[2], row[3]
            ratios = [base[k] / max(ours[k], 1e-9) for k in ("decode_s", "detect_s", "classify_s")]
            total = base["total_s"] / ours["total_s"]
            cpu = base["cpu_s"] / ours["cpu_s"]
            print(
                f"{name:<34}{ratios[0]:>7.1f}x{ratios[1]:>7.1f}x{ratios[2]:>8.1f}x{total:>7.1f}x"
                f"{'':>9}{cpu:>7.1f}x"
            )
            continue
        print(
            f"{name:<34}{result['decode_s']:>8.2f}{result['detect_s']:>8.2f}"
            f"{result['classify_s']:>9.2f}{result['total_s']:>8.2f}"
            f"{result['total_s'] / frames:>9.3f}{result['cpu_s']:>8.2f}"
            f"{result['peak_rss_mb']:>9.0f}"
        )
    load = os.getloadavg()[0]
    print(f"\nload average at the end: {load:.1f} on {os.cpu_count()} cores ", end="")
    print("(other processes competing: timings are inflated)" if load > 2.5 else "")
    full = rows[0][1]
    verdict = "meets" if full["total_s"] < 6.0 and full["peak_rss_mb"] < 3072 else "MISSES"
    print(
        f"\ntarget (< 6 s per video at 32 frames, < 3 GB peak) with the full ensemble: {verdict}"
        + ("" if frames == 32 else f" (measured at {frames} frames)")
    )


if __name__ == "__main__":
    main()
