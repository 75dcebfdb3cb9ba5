"""``find-bot model``: inspect model bundles."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.formats import format_score
from bot.terminal import echo, printable


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="inspect model bundles")
    model_sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    info = model_sub.add_parser(
        "info",
        help="summarise a bundle and verify its files",
        description=(
            "Summarise a model bundle (members, combiner, threshold, measured quality, terms) "
            "and check its format version and the sha256 of every file. Exit code 0 when the "
            "bundle is valid, 1 when it is not."
        ),
    )
    info.add_argument(
        "bundle",
        nargs="?",
        type=Path,
        metavar="BUNDLE",
        help="bundle directory or its manifest.json (default: FIND_MODEL_BUNDLE, else the "
        "bundle shipped with FIND)",
    )
    info.add_argument(
        "--json", action="store_true", help="print {bundle, verified, problems, manifest} as JSON"
    )
    info.add_argument("--full", action="store_true", help="also print the whole manifest")
    from bot.commands.train import register_combine

    register_combine(model_sub)
    info.set_defaults(handler=_info)
    _register_adapt(model_sub)


def _register_adapt(model_sub: argparse._SubParsersAction) -> None:
    adapt = model_sub.add_parser(
        "adapt",
        help="learn from the reviewers' decisions: a guarded new bundle version",
        description=(
            "Refit the active bundle's calibration and threshold on the reviewed videos (and, "
            "with at least 50 reviewed videos of each class, its classifier heads), then "
            "compare it with the active bundle on held-out decisions and on the shipped "
            "validation set. It is promoted (a new version under FIND_DATA_DIR/bundles, the "
            "previous one kept) only if it is not worse; otherwise the numbers are printed "
            "side by side and the exit code is 1. See docs/adaptation.md."
        ),
    )
    adapt.add_argument(
        "--dry-run", action="store_true", help="build and measure the candidate; promote nothing"
    )
    adapt.add_argument(
        "--allow-without-validation",
        action="store_true",
        help="promote even when the shipped validation set (../shared/data/dfdc-faces/val) "
        "is absent, on the held-out decisions alone",
    )
    adapt.add_argument("--json", action="store_true", help="print the report as JSON")
    adapt.set_defaults(handler=_adapt)
    rollback = model_sub.add_parser(
        "rollback",
        help="return to the bundle version before the last adaptation",
        description=(
            "Make the previous bundle version active again (the adapted one stays on disk). "
            "Running daemons load it before their next video."
        ),
    )
    rollback.set_defaults(handler=_rollback)


def _adapt(args: argparse.Namespace) -> int:
    from bot.commands.common import open_database
    from bot.logs import quiet_native_logging
    from bot.review.learning import run_adaptation

    settings, _sessions = open_database(args)
    quiet_native_logging()
    report = run_adaptation(
        settings,
        dry_run=args.dry_run,
        allow_without_validation=args.allow_without_validation,
    )
    if args.json:
        from model.bundle import json_safe

        document = {
            "current": report.current,
            "candidate": report.candidate,
            "promoted": report.promoted,
            "dry_run": report.dry_run,
            "refused": report.reasons,
            "numbers": report.sets,  # an AUC of a one-class set is NaN: null in JSON
            "notes": report.notes,
            "bundle": str(report.directory) if report.directory else None,
        }
        print(json.dumps(json_safe(document), indent=2, allow_nan=False))
    else:
        echo(report.summary())  # names and notes from the bundles' manifests
    return 1 if report.reasons and not report.dry_run else 0


def _rollback(args: argparse.Namespace) -> int:
    from bot.commands.common import settings_from_args
    from model.versions import bundles_root, rollback

    settings = settings_from_args(args)
    gone, to = rollback(bundles_root(settings.data_dir), settings.model_bundle)
    now = "the base bundle " + str(settings.model_bundle) if to == "base" else to
    echo(printable(f"rolled back: {gone} is no longer active; active now: {now}"))
    return 0


def _info(args: argparse.Namespace) -> int:
    from model.bundle import bundle_directory, read_manifest, verify_bundle

    path = args.bundle
    if path is None:
        from bot.commands.common import settings_from_args
        from bot.commands.scan import resolve_bundle_path
        from model.versions import active_bundle

        settings = settings_from_args(args)
        path = resolve_bundle_path(None, active_bundle(settings.data_dir, settings.model_bundle))
    directory = bundle_directory(path)
    manifest = read_manifest(directory)  # BundleError (one line) if unreadable
    problems = verify_bundle(directory)
    if args.json:
        report = {"bundle": str(directory), "verified": not problems, "problems": problems}
        print(json.dumps({**report, "manifest": manifest}, indent=2))
        return 1 if problems else 0
    if args.full:
        print(json.dumps(manifest, indent=2))
    _print_summary(directory, manifest)
    if problems:
        print("verification: FAILED")
        for problem in problems:
            echo(f"  - {printable(problem)}")
        return 1
    print(
        f"verification: OK (format {manifest['format_version']}, "
        f"{len(manifest['models'])} model file(s), sha256 match)"
    )
    return 0


def _members(manifest: dict) -> list[str]:
    """One line per model: what it learnt (the name reviewers see beside its score),
    architecture, input size, where its weights started."""
    from model.bundle import member_names

    shared = manifest.get("architecture") or {}
    lines = []
    names = member_names(manifest)
    for entry, name in zip(manifest.get("models", []), names, strict=True):
        arch = entry.get("architecture") or shared
        origin = entry.get("initial_weights") or {}
        start = origin.get("weights")
        if start and origin.get("continued_from"):
            start += f", continued from {origin['continued_from'].get('bundle')}"
        weight = entry.get("stacking_weight")
        parts = [
            f"{name}: {arch.get('name')} {arch.get('input_size')} px",
            f"{entry.get('params', 0) / 1e6:.1f} M params",
            f"from {start}" if start else None,
            f"weight {weight:.3f}" if isinstance(weight, int | float) else None,
            entry.get("candidate"),
        ]
        lines.append(", ".join(p for p in parts if p))
    return lines


def _combiner(manifest: dict) -> str:
    combiner = manifest.get("combiner") or {
        "kind": "mean",
        "temperature": manifest.get("temperature", 1.0),
    }
    if combiner.get("kind") == "stacking":
        weights = ", ".join(f"{w:.3f}" for w in combiner.get("weights", []))
        return f"stacking (logistic regression on logits): weights {weights}, bias " + _fmt(
            combiner.get("bias")
        )
    return f"mean of probabilities, temperature {_fmt(combiner.get('temperature'))}"


def _print_summary(directory: Path, manifest: dict) -> None:
    training = manifest.get("training") or {}
    rows: list[tuple[str, object]] = [
        ("bundle", str(directory)),
        ("name", f"{manifest.get('name')} {manifest.get('version')}"),
        ("created", manifest.get("created_at")),
        ("crop", f"{manifest.get('input_size')} px"),
    ]
    for i, line in enumerate(_members(manifest)):
        rows.append((f"model {i}", line))
    rows += [("combiner", _combiner(manifest)), ("threshold", _fmt(manifest.get("threshold")))]
    test = ((manifest.get("metrics") or {}).get("test") or {}).get("frame_level")
    if test:
        rows.append(("test split", f"{_rates(test)} {_test_split_note(training, test)}"))
    adaptation = training.get("adaptation")
    if adaptation:
        heads = (
            "heads refitted"
            if (adaptation.get("heads") or {}).get("fine_tuned")
            else ("calibration and threshold only")
        )
        source = adaptation.get("from") or {}
        rows.append(
            (
                "adapted",
                f"from {source.get('version')} at {adaptation.get('promoted_at')} on reviewers' "
                f"decisions ({heads}; split by {adaptation.get('split_by')}; "
                f"see docs/adaptation.md)",
            )
        )
    if training.get("terms") or manifest.get("terms"):
        rows.append(("terms", training.get("terms") or manifest.get("terms")))
    for key, value in rows:
        echo(f"{key + ':':<14}{printable(value)}")  # a bundle may come from anyone
    evaluations = manifest.get("evaluations") or {}
    for name, result in evaluations.items():
        frame, video = result.get("frame_level") or {}, result.get("video_level") or {}
        level = video if video.get("n") else frame
        note = _evaluation_note(result)
        echo(f"{'evaluation:':<14}{printable(name)}: {_rates(level)}{printable(note)}")
        sources = result.get("video_by_source") or {}
        if len(sources) > 1:
            echo(f"{'':<14}  by source: {printable(_by_source(sources))}")
    if not manifest.get("metrics") and not evaluations:
        print(
            "warning:      this bundle records no metrics and no evaluations: its quality is "
            "unknown (measure it with `find-bot evaluate BUNDLE DATASET --record NAME`)"
        )


def _test_split_note(training: dict, test: dict) -> str:
    """What the build's own test number measures, so it is not mistaken for an evaluation's.

    The combine step scores the test split's crops that curation kept (near-identical
    fake/original pairs are dropped as label noise); ``find-bot evaluate`` later scores
    every crop of the split, so the two DFDC test results differ (0.714 and 0.709 AUC).
    """
    total = (((training.get("splits") or {}).get("splits") or {}).get("test") or {}).get("samples")
    n = test.get("n")
    if isinstance(n, int) and isinstance(total, int) and n < total:
        return (
            f"(the build's own measure, on the {n:,} of the split's {total:,} test crops "
            "that curation kept)"
        )
    return "(the build's own measure, on the test split)"


def _evaluation_note(result: dict) -> str:
    """`` (find-bot evaluate on all 6,770 crops of <dataset> test)``: what an evaluation scored."""
    samples, dataset, split = result.get("samples"), result.get("dataset"), result.get("split")
    if not isinstance(samples, int) or not dataset:
        return ""
    where = f"{dataset} {split}" if split and split != "all" else str(dataset)
    return f" (find-bot evaluate on all {samples:,} samples of {where})"


def _by_source(sources: dict) -> str:
    """``fake/hallo AUC 0.812, 3/6 flagged; real/vox 0/14 flagged``: what one pooled number
    hides (``find-bot evaluate`` records it per source)."""
    parts = []
    for name, row in sources.items():
        if not isinstance(row, dict):
            continue
        auc = (
            f"AUC {_fmt(row.get('auc_vs_real'))}{_interval(row.get('auc_vs_real_ci95'))}, "
            if row.get("label") == 1
            else ""
        )
        parts.append(f"{name} {auc}{row.get('flagged')}/{row.get('videos')} flagged")
    return "; ".join(parts)


def _rates(level: dict) -> str:
    """Recall and false-alarm rate (what a moderator needs), AUC and ECE where measured."""
    cm, parts = level.get("confusion") or {}, []
    positives = cm.get("tp", 0) + cm.get("fn", 0)
    negatives = cm.get("fp", 0) + cm.get("tn", 0)
    if level.get("roc_auc") is not None:
        parts.append(f"AUC {_fmt(level.get('roc_auc'))}{_interval(level.get('roc_auc_ci95'))}")
    if level.get("accuracy") is not None and positives and negatives:
        parts.append(f"accuracy {_fmt(level.get('accuracy'))}")
    if positives:
        parts.append(f"recall {_fmt(cm['tp'] / positives)} of {positives} fakes")
    if negatives:
        parts.append(f"false alarms {_fmt(cm['fp'] / negatives)} of {negatives} reals")
    if level.get("ece") is not None:
        parts.append(f"ECE {_fmt(level.get('ece'))}")
    return ", ".join(parts) or "n/a"


def _fmt(value) -> str:
    return format_score(value, missing="n/a")


def _interval(value) -> str:
    """`` (95 % CI 0.684-0.871)`` for a recorded AUC interval (``find-bot evaluate``'s
    bootstrap), nothing for an evaluation recorded without one or a malformed one."""
    numbers = isinstance(value, list) and len(value) == 2
    if not numbers or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        return ""
    return f" (95 % CI {_fmt(value[0])}-{_fmt(value[1])})"
