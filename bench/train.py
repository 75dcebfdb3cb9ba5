"""Training speed at larger inputs: the plain trainer against the frozen-prefix path.

    .venv/bin/python bench/train.py            # Lite0 224 px, 6 steps each, and the split sweep
    .venv/bin/python bench/train.py --quick    # Lite0 224 px, 3 steps each (make bench)
    .venv/bin/python bench/train.py --smoke    # 96 px, batch 8, 1 step, eager: does it run
    .venv/bin/python bench/train.py --variant efficientnet_lite2 --size 260

Both paths train on the same batches: Self-Blended Images of synthetic real
faces, augmented, from :class:`model.training.batches.CropBatches` (the
trainer's own batches, five-keypoint masks instead of the face mesh).  The
plain path is what ``find-bot train`` does per step: ``train_on_batch`` of the
whole ImageNet-initialised EfficientNet-Lite.  The cheaper path
(:mod:`model.training.frozen`) runs the frozen stem and first blocks once over
the batches, stores their activations (float16, memory-mapped), then trains
only the late blocks and the head on them; a step there is reading the
stored batch plus ``train_on_batch`` of the suffix.  The two are timed
step by step in turn in one process (the median of each), so a load change
on the machine hits both.  Shown separately per image: preparing a batch
(augmentations, self-blends), which the plain trainer pays every epoch, and
the one-time pool pass (that preparation, the prefix, the float16 write),
which the cheaper path pays once per pool; the lines "over N epochs" add
them in.

One thread by default (``--threads``), as ``make train-lite`` runs each
candidate.  The last line is ``ratio: N.Nx``, the plain step's time over the
cheaper step's time, per image.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: import bot and model from this checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def face_export(root: Path, crops: int, size: int) -> Path:
    """A review-queue export of ``crops`` real face crops (the astronaut, moved and scaled)."""
    import cv2
    import numpy as np
    from skimage import data

    rng = np.random.default_rng(0)
    image = data.astronaut()
    lines = []
    for i in range(crops):
        side = int(rng.integers(200, 260))
        x, y = int(rng.integers(100, 160)), int(rng.integers(0, 40))
        crop = cv2.resize(image[y : y + side, x : x + side], (size, size))
        rel = f"crops/v{i:03d}/0.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        record = {"video_id": f"v{i:03d}", "label": "real", "crops": [rel]}
        lines.append(json.dumps({**record, "reviewer": "bench", "decided_at": "2026-01-01"}))
    (root / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return root


def sbi_batches(workdir: Path, spec, batch_size: int, count: int):
    """``count`` batches of real crops and their self-blends, augmented, at ``spec``'s size."""
    from model.training.augment import AugmentConfig
    from model.training.batches import CropBatches
    from model.training.cache import CacheConfig, CropCache
    from model.training.curation import CurationConfig, select_crops
    from model.training.datasets import load_dataset

    crops = count * max(1, batch_size // 2)
    export = face_export(workdir / "export", crops, spec.input_size)
    cache = CropCache(workdir / "cache", CacheConfig(crop_size=spec.input_size))
    items = cache.build(load_dataset(f"review:{export}"))
    refs, _ = select_crops(items, CurationConfig(min_crops_per_video=1))
    return CropBatches(
        items,
        refs,
        batch_size=batch_size,
        seed=0,
        shuffle=False,
        augment_config=AugmentConfig(),
        sbi=True,
        size=spec.input_size,
        preprocess_fn=spec.preprocess,
        landmarks=False,
    )


def build(spec, seed: int = 0):
    """The trainer's starting point: the architecture with ImageNet weights where installed."""
    from model.classifier import build_classifier
    from model.pretrained import PretrainedError, load_imagenet

    model = build_classifier(spec, seed=seed)
    try:
        load_imagenet(model, spec.architecture.pretrained)
        start = "ImageNet"
    except PretrainedError as exc:
        start = f"random ({exc})"
    return model, start


def trainer_loss():
    """The loss ``find-bot train`` uses by default (BCE, label smoothing 0.1)."""
    from model.training.train import TrainConfig, make_loss

    return make_loss(TrainConfig(datasets=[], out=""))


def measure(args: argparse.Namespace, workdir: Path) -> tuple[float, float]:
    """Time both paths on the same batches; print the table; return the ratio and the
    plain trainer's seconds per image."""
    import keras
    import numpy as np

    from model.classifier import ArchSpec
    from model.training import frozen

    spec = ArchSpec(args.variant, args.size)
    steps = args.steps
    warmup = 0 if args.smoke else 1  # the first step traces the graphs (smoke runs eagerly)
    batches = sbi_batches(workdir, spec, args.batch_size, steps + warmup)
    t0 = time.perf_counter()
    arrays = [batches.batch_arrays(i) for i in range(steps + warmup)]
    prepared = [(spec.preprocess(c), y[:, None], np.ones(len(y), np.float32)) for c, y, _ in arrays]
    images = sum(len(y) for _, y, _ in prepared)
    prep_s = (time.perf_counter() - t0) / images

    plain, start = build(spec)
    plain.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=trainer_loss(),
        metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
        run_eagerly=args.smoke,  # no graph tracing (a minute of CPU): smoke only checks it runs
    )
    model, _ = build(spec)
    block = args.split if args.split is not None else frozen.default_split(args.variant)
    split = frozen.split_model(model, block)
    split.prefix.run_eagerly = args.smoke
    split.prefix.predict_on_batch(prepared[0][0])  # trace it: a long pass pays that once
    t0 = time.perf_counter()
    pool = frozen.ActivationPool.build(workdir / "pool", split, batches)
    pool_s = (time.perf_counter() - t0) / len(pool)
    pool_batches = frozen.PoolBatches(pool, batch_size=args.batch_size, seed=0, shuffle=False)
    frozen.compile_suffix(
        split, trainer_loss(), args.learning_rate, steps + warmup, run_eagerly=args.smoke
    )
    trainable = sum(int(np.prod(w.shape)) for w in split.suffix.trainable_weights)
    total = sum(int(np.prod(w.shape)) for w in plain.trainable_weights)

    plain_s, cheap_s = [], []
    for i in range(steps + warmup):
        x, y, w = prepared[i]
        t0 = time.perf_counter()
        plain.train_on_batch(x, y, sample_weight=w)
        t_plain = (time.perf_counter() - t0) / len(y)
        t0 = time.perf_counter()
        a, y2, w2 = pool_batches[i]
        split.suffix.train_on_batch(a, y2, sample_weight=w2)
        t_cheap = (time.perf_counter() - t0) / len(y2)
        if i >= warmup:
            plain_s.append(t_plain)
            cheap_s.append(t_cheap)
    plain_per, cheap_per = statistics.median(plain_s), statistics.median(cheap_s)
    ratio = plain_per / cheap_per
    shape = split.activation_shape
    print(
        f"{args.variant} at {args.size} px ({start} start), batch {args.batch_size}, "
        f"{args.threads} thread(s), {steps} timed steps each after {warmup} untimed"
    )
    print(
        f"split after blocks.{block}: activations {'x'.join(map(str, shape))}, "
        f"{np.prod(shape) * 2 / 1024:.0f} KiB per image in float16; "
        f"trains {trainable:,} of {total:,} weights"
    )
    for name, per in (("plain trainer", plain_per), ("frozen prefix", cheap_per)):
        print(f"{name:<18} {1 / per:7.1f} img/s  ({per * args.batch_size:.2f} s/batch)")
    print(
        f"batch preparation  {prep_s * 1000:7.1f} ms/image (augment + self-blend: every epoch "
        "in the plain trainer, once in the pool)"
    )
    print(
        f"one-time pool pass {pool_s * 1000:7.1f} ms/image (batch preparation + prefix + "
        "float16 write, once per pool)"
    )
    for epochs in (1, 5, 20):
        per = cheap_per + pool_s / epochs
        print(
            f"  over {epochs:>2} epoch(s) of the pool, all costs: {1 / per:6.1f} img/s against "
            f"{1 / (plain_per + prep_s):6.1f} ({(plain_per + prep_s) / per:.1f}x)"
        )
    return ratio, plain_per


def sweep(args: argparse.Namespace, workdir: Path, plain_per: float) -> None:
    """Per split point (each stage's end): stored bytes, suffix step and prefix pass speed,
    and the suffix step's speed over ``plain_per`` (the plain trainer, measured before)."""
    import keras
    import numpy as np

    from model.classifier import ArchSpec
    from model.training import frozen

    spec = ArchSpec(args.variant, args.size)
    batches = sbi_batches(workdir / "sweep", spec, args.batch_size, 2)
    x, y, _ = batches.batch_arrays(0)
    x, y = spec.preprocess(x), y[:, None]
    print(
        f"\n{'split after':<14} {'KiB/image':>9} {'suffix img/s':>12} {'prefix img/s':>12} "
        f"{'vs plain':>8}"
    )
    for block in frozen.stage_ends(args.variant)[:-1]:
        model, _ = build(spec)
        split = frozen.split_model(model, block)
        split.suffix.compile(optimizer=keras.optimizers.Adam(1e-4), loss=trainer_loss())
        acts = np.asarray(split.prefix.predict_on_batch(x), np.float16).astype(np.float32)
        split.suffix.train_on_batch(acts, y)  # both graphs traced: the timed steps are not
        suffix_t, prefix_t = [], []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            split.suffix.train_on_batch(acts, y)
            suffix_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            split.prefix.predict_on_batch(x)
            prefix_t.append(time.perf_counter() - t0)
        kib = np.prod(split.activation_shape) * 2 / 1024
        n = len(y)
        print(
            f"blocks.{block:<7} {kib:>9.0f} {n / statistics.median(suffix_t):>12.1f} "
            f"{n / statistics.median(prefix_t):>12.1f} "
            f"{plain_per * n / statistics.median(suffix_t):>7.1f}x"
        )
        keras.backend.clear_session()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="3 steps each, no split sweep")
    size.add_argument(
        "--smoke", action="store_true", help="96 px, batch 8, 1 step each, eager (not timed)"
    )
    parser.add_argument("--variant", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, help="input size (default 224; smoke 96)")
    parser.add_argument("--batch-size", type=int, help="default 32; smoke 8")
    parser.add_argument("--steps", type=int, help="timed steps per path (default 6; quick 3)")
    parser.add_argument("--split", type=int, help="freeze blocks 0..SPLIT (default: 4th stage)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1)")
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    args = parser.parse_args(argv)
    args.size = args.size or (96 if args.smoke else 224)
    args.batch_size = args.batch_size or (8 if args.smoke else 32)
    args.steps = args.steps or (1 if args.smoke else 3 if args.quick else 6)
    if args.batch_size < 2 or args.steps < 1 or args.size < 32:
        parser.error("--batch-size must be >= 2, --steps >= 1 and --size >= 32")

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each split's new graph is a "retracing" warning
    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    except RuntimeError:  # TensorFlow already running in this process (the test suite)
        print("threads: TensorFlow was already initialised; --threads not applied")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="find-bench-train-") as tmp:
        ratio, plain_per = measure(args, Path(tmp))
        if not (args.quick or args.smoke):
            sweep(args, Path(tmp), plain_per)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(f"ratio: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
