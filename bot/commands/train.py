"""``find-bot train`` and ``find-bot evaluate``: build and measure model bundles.

Handlers import TensorFlow and the training code lazily, so ``--help`` stays
instant.  See docs/training.md for dataset layouts and every rule.
"""

from __future__ import annotations

import argparse
import sys

from bot.formats import format_score
from bot.terminal import on_terminal, printable
from model.classifier import ARCH_NAMES, XCEPTION_NAMES

#: Architectures --arch names directly (the Xceptions come through compact/full).
ARCH_CHOICES = tuple(name for name in ARCH_NAMES if name not in XCEPTION_NAMES)

DATA_HELP = (
    "dataset as [FORMAT:]PATH, FORMAT one of folder, ffpp, celebdf, dfdc, review, faces, "
    "faces-real (the real crops of a faces set only), real, talkingheads "
    "(auto-detected when omitted); repeat to combine datasets; a *N suffix reads that "
    "set's training crops N times per epoch"
)


def _frozen_block(text: str) -> int:
    """``--frozen-until``: a block index, or ``auto`` (-1) for the default cut."""
    if text == "auto":
        return -1
    try:
        block = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a block index (e.g. 7) or auto") from None
    if block < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: block indices start at 0; or give auto")
    return block


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_evaluate(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a detector ensemble and write a model bundle",
        description=(
            "Train candidate Xception classifiers on face crops, keep the best by validation "
            "AUC, calibrate them and write a model bundle to OUT/bundle."
        ),
    )
    p.add_argument(
        "--data",
        dest="datasets",
        action="append",
        required=True,
        metavar="[FORMAT:]PATH",
        help=DATA_HELP,
    )
    p.add_argument("--out", required=True, help="run folder (cache, checkpoints, logs, bundle)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    g = p.add_argument_group("model")
    g.add_argument(
        "--arch",
        choices=("auto", "compact", "full", *ARCH_CHOICES),
        default="auto",
        help="full 299 px Xception, the CPU-friendly compact variant, auto "
        "(full when a GPU is visible), or an ImageNet-pretrained EfficientNet-Lite",
    )
    g.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_false",
        default=None,
        help="start EfficientNet-Lite from random weights instead of ImageNet",
    )
    g.add_argument(
        "--init-from",
        metavar="BUNDLE[#I]",
        help="start each candidate from the member of BUNDLE with its architecture and mode "
        "(fine-tune a shipped bundle further), or from member I (BUNDLE#2: a body under a "
        "probe head), instead of ImageNet or random weights",
    )
    g.add_argument("--input-size", type=int, help="override the architecture's crop size")
    g.add_argument("--width", type=float, help="override the channel width factor")
    g.add_argument("--middle-blocks", type=int, help="override the middle-flow depth")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--learning-rate", type=float, default=1e-3)
    g.add_argument("--steps-per-epoch", type=int, help="cap batches per epoch")
    g.add_argument("--loss", choices=("bce", "focal"), default="bce")
    g.add_argument("--label-smoothing", type=float, default=0.1)
    g.add_argument("--focal-gamma", type=float, default=2.0)
    g.add_argument(
        "--no-class-weights",
        dest="class_weighting",
        action="store_false",
        help="do not weight classes inversely to their frequency",
    )
    g.add_argument(
        "--no-augment", dest="augment", action="store_false", help="disable augmentations"
    )
    g.add_argument(
        "--sbi",
        action="store_true",
        help="Self-Blended Images: train on real faces and synthetic blends of them",
    )
    g.add_argument(
        "--candidate-modes",
        metavar="MODE,...",
        help="training mode of each candidate, comma-separated: supervised (dataset labels), "
        "sbi (real faces and their self-blends), mixed (both); default: all sbi with --sbi, "
        "else all supervised",
    )
    g.add_argument(
        "--frozen-until",
        dest="frozen_block",
        type=_frozen_block,
        metavar="BLOCK|auto",
        help="EfficientNet-Lite only, the cheaper path at large inputs: freeze the network up "
        "to and including blocks.BLOCK (auto: the end of its fourth stage), store those "
        "blocks' activations once beside the crop cache and train only the rest (4-5x faster "
        "a step at 224 px on CPU; docs/training.md)",
    )
    g.add_argument(
        "--pool-epochs",
        type=int,
        default=3,
        help="with --frozen-until: epochs of augmented batches the stored pool holds "
        "(default 3); a training epoch reads --steps-per-epoch batches of it, or all of it",
    )
    g.add_argument(
        "--select-on",
        action="append",
        metavar="DATASET",
        help="choose the best epoch by how well it ranks these real and fake videos (never "
        "trained on; repeatable), e.g. talkingheads:DATA/talking-heads for an SBI run, "
        "instead of by validation AUC",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--no-deterministic",
        dest="deterministic",
        action="store_false",
        help="allow non-deterministic (faster) GPU kernels",
    )
    g = p.add_argument_group("ensemble and calibration")
    g.add_argument("--candidates", type=int, default=3, help="candidates to train")
    g.add_argument("--keep", type=int, default=2, help="best candidates kept in the bundle")
    g.add_argument(
        "--ensemble",
        metavar="I,J",
        help="candidates to put in the bundle instead of the --keep best by validation AUC "
        "(e.g. after comparing false alarms on held-out real footage)",
    )
    g.add_argument(
        "--only-candidates",
        metavar="I,J",
        help="train only these candidates and stop (several processes can share one --out, "
        "each with --resume); a final --resume without it writes the bundle",
    )
    g.add_argument(
        "--target-recall",
        type=float,
        default=0.9,
        help="threshold rule: highest precision with at least this recall on validation videos",
    )
    g.add_argument(
        "--max-false-alarm-rate",
        type=float,
        metavar="SHARE",
        help="threshold rule instead: flag as much as possible while at most this share of "
        "real validation videos is flagged (a usable queue for a weak model)",
    )
    g = p.add_argument_group("data preparation")
    g.add_argument("--val-fraction", type=float, default=0.15)
    g.add_argument("--test-fraction", type=float, default=0.15)
    g.add_argument(
        "--frames",
        dest="frames_per_video",
        type=int,
        default=32,
        metavar="N",
        help="frames sampled per video",
    )
    g.add_argument("--min-confidence", type=float, default=0.95)
    g.add_argument("--min-face-size", type=int, default=64)
    g.add_argument("--min-crops-per-video", type=int, default=2)
    g.add_argument(
        "--pair-diff-threshold",
        type=float,
        default=4.0,
        help="label-noise rule: drop fake crops closer than this to their original (0: off)",
    )
    g.add_argument("--cache-dir", help="face-crop cache (default: OUT/cache)")
    g.add_argument(
        "--cache-crop-size",
        type=int,
        metavar="PX",
        help="cache crops at this size (>= the input size) and shrink them on reading, so "
        "runs of different input sizes share one cache",
    )
    g = p.add_argument_group("output")
    g.add_argument("--name", default="find-custom", help="bundle name")
    g.add_argument("--version", dest="version", default="", help="bundle version (default: date)")
    g.add_argument(
        "--terms",
        metavar="TEXT",
        help="the training data's terms, which apply to the weights (kept in the manifest)",
    )
    g.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    g.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bars")
    p.set_defaults(handler=run_train)


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure a model bundle on a labelled dataset",
        description=(
            "Frame- and video-level accuracy, precision, recall, F1, ROC AUC, log loss and "
            "confusion matrix; writes report.json and PNG plots."
        ),
    )
    p.add_argument("bundle", help="model bundle directory (or its manifest.json)")
    p.add_argument("dataset", help=DATA_HELP.split(";")[0])
    p.add_argument("--out", default="evaluation", help="report folder (default: ./evaluation)")
    p.add_argument(
        "--split",
        choices=("all", "train", "val", "test"),
        default="all",
        help="evaluate one split, made as 'train' makes it (same --seed and fractions)",
    )
    p.add_argument(
        "--splits",
        dest="splits_file",
        metavar="SPLITS_JSON",
        help="with --split: take the split from a training run's splits.json (exact even "
        "when training combined several datasets)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--frames", type=int, default=32, metavar="N", help="frames sampled per video")
    p.add_argument("--threshold", type=float, help="override the bundle's threshold")
    p.add_argument("--cache-dir", help="face-crop cache (default: OUT/cache)")
    p.add_argument(
        "--record",
        metavar="NAME",
        help="also store the summary in the bundle's manifest under evaluations.NAME",
    )
    p.add_argument(
        "--against",
        metavar="REPORT_JSON",
        help="also compare with another evaluation of the same dataset (the report.json it "
        "wrote): each AUC's difference with a paired bootstrap 95 %% interval",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_evaluate)


def _setup_logging(quiet: bool) -> None:
    from bot.logs import configure_logging

    configure_logging("WARNING" if quiet else "INFO")


def run_train(args: argparse.Namespace) -> int:
    from model.training.metrics import format_summary
    from model.training.train import config_from_args, train

    _setup_logging(args.quiet)
    # Keras' bars (verbose 1) only on a terminal: one line per epoch into a file or a log.
    args.verbose = 2 if args.quiet or not on_terminal(sys.stdout) else 1
    config = config_from_args(args)
    result = train(config, resume=args.resume)
    if result is None:
        print(
            f"trained candidates {config.only_candidates} in {config.out}; "
            "run again with --resume and without --only-candidates to write the bundle"
        )
        return 0
    print(f"bundle: {printable(result.bundle)}")
    print(f"threshold {format_score(result.threshold)}, temperature {result.temperature:.3f}")
    for candidate in result.candidates:
        mark = "kept" if candidate["index"] in result.kept else "    "
        print(
            f"  candidate {candidate['index']} ({candidate.get('mode', 'supervised')}) "
            f"seed {candidate['seed']}: "
            f"val AUC {candidate['val_auc']} {mark}"
        )
    for split in ("validation", "test"):
        if split in result.metrics:
            print(f"\n{split}:\n{format_summary(result.metrics[split])}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from model.training.evaluate import evaluate
    from model.training.metrics import format_by_source, format_summary

    _setup_logging(args.quiet)
    report = evaluate(
        args.bundle,
        args.dataset,
        args.out,
        split=args.split,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        frames=args.frames,
        threshold=args.threshold,
        cache_dir=args.cache_dir,
        splits_file=args.splits_file,
        verbose=0 if args.quiet else 1,
        record=args.record,
        against=args.against,
    )
    print(format_summary(report))
    if len(report["video_by_source"]) > 1:  # source names are folder names: escaped one by one
        sources = {printable(name): row for name, row in report["video_by_source"].items()}
        print(format_by_source(sources))
    if "against" in report:
        _print_comparison(report["against"])
    if report["skipped"]:
        print(
            f"{len(report['skipped'])} files skipped (no face or unreadable), see report.json",
            file=sys.stderr,
        )
    print(printable(f"report: {args.out}/report.json (plots: {', '.join(report['plots'])})"))
    return 0


def _print_comparison(comparison: dict) -> None:
    """``--against``: which evaluation, on how many videos, then the table."""
    from model.training.metrics import format_comparison

    bundle = comparison.get("bundle") or {}
    named = " ".join(str(bundle.get(k)) for k in ("name", "version") if isinstance(bundle, dict))
    missing = [
        f"{comparison[key]} {words}"
        for key, words in (("only_here", "only here"), ("only_in_baseline", "only there"))
        if comparison.get(key)
    ]
    print(
        printable(
            f"against {named or 'the baseline'} ({comparison['report']}): "
            f"{comparison['videos']} videos in both" + "".join(f", {m}" for m in missing)
        )
    )
    sources = {printable(n): row for n, row in comparison["video_by_source"].items()}
    print(format_comparison({**comparison, "video_by_source": sources}))


def register_combine(model_sub: argparse._SubParsersAction) -> None:
    """``find-bot model combine`` (here, beside train: the one CLI home of training code)."""
    p = model_sub.add_parser(
        "combine",
        help="fit one ensemble from candidate bundles of any architecture",
        description=(
            "Score validation faces (and a self-blend of each real one) with every model of "
            "the given bundles, fit logistic stacking weights (>= 0; weight-0 models are left "
            "out), recalibrate, choose the threshold, measure the test split and write "
            "OUT/bundle. See docs/training.md."
        ),
    )
    p.add_argument(
        "bundles",
        nargs="+",
        metavar="BUNDLE",
        help="candidate bundle directories; BUNDLE#I,J takes only its members I and J (from 0)",
    )
    p.add_argument("--data", dest="datasets", action="append", required=True, help=DATA_HELP)
    p.add_argument("--out", required=True, help="output folder (the bundle goes to OUT/bundle)")
    p.add_argument("--name", default="find-ensemble", help="bundle name")
    p.add_argument("--version", default="", help="bundle version (default: today's date)")
    p.add_argument("--cache-dir", help="face-crop cache (default: OUT/cache)")
    p.add_argument("--cache-crop-size", type=int, metavar="PX", help="cached crop side")
    p.add_argument(
        "--max-false-alarm-rate",
        type=float,
        default=0.05,
        metavar="SHARE",
        help="threshold: flag at most this share of real validation videos (default 0.05)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--terms", default="", help="the data's terms (recorded in the manifest)")
    p.set_defaults(handler=_combine)


def _combine(args: argparse.Namespace) -> int:
    from bot.commands.model import _fmt
    from model.training.combine import combine

    _setup_logging(False)
    path, summary = combine(
        args.bundles,
        args.datasets,
        args.out,
        name=args.name,
        version=args.version,
        cache_dir=args.cache_dir,
        cache_crop_size=args.cache_crop_size,
        max_false_alarm_rate=args.max_false_alarm_rate,
        seed=args.seed,
        terms=args.terms,
    )
    for i, c in enumerate(summary["candidates"]):
        mark = "kept" if i in summary["kept"] else "left out"
        print(
            f"  {printable(c['candidate'])}: val AUC {_fmt(c['val_auc'])}, with self-blends "
            f"{_fmt(c['val_auc_with_self_blends'])}, weight {c['stacking_weight']:.3f} ({mark})"
        )
    print(f"bundle: {printable(path)}  threshold {format_score(summary['threshold'])}")
    return 0
