"""``find-bot model``: inspect model bundles."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="inspect model bundles")
    model_sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    info = model_sub.add_parser(
        "info",
        help="print a bundle's manifest and verify its files",
        description=(
            "Print the manifest of a model bundle and check its format version and the sha256 "
            "of every file. Exit code 0 when the bundle is valid, 1 when it is not."
        ),
    )
    info.add_argument(
        "bundle",
        nargs="?",
        type=Path,
        metavar="BUNDLE",
        help="bundle directory or its manifest.json (default: FIND_MODEL_BUNDLE)",
    )
    info.add_argument(
        "--json", action="store_true", help="print {bundle, verified, problems, manifest} as JSON"
    )
    info.set_defaults(handler=_info)


def _info(args: argparse.Namespace) -> int:
    from model.bundle import bundle_directory, read_manifest, verify_bundle

    path = args.bundle
    if path is None:
        from bot.commands.common import settings_from_args
        from bot.commands.scan import resolve_bundle_path

        path = resolve_bundle_path(None, settings_from_args(args).model_bundle)
    directory = bundle_directory(path)
    manifest = read_manifest(directory)  # BundleError (one line) if unreadable
    problems = verify_bundle(directory)
    if args.json:
        report = {"bundle": str(directory), "verified": not problems, "problems": problems}
        print(json.dumps({**report, "manifest": manifest}, indent=2))
        return 1 if problems else 0
    _print_summary(directory, manifest)
    print("manifest:")
    print(json.dumps(manifest, indent=2))
    if problems:
        print("verification: FAILED")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"verification: OK (format {manifest['format_version']}, "
        f"{len(manifest['models'])} model file(s), sha256 match)"
    )
    return 0


def _print_summary(directory: Path, manifest: dict) -> None:
    arch = manifest.get("architecture", {})
    rows = [
        ("bundle", str(directory)),
        ("name", f"{manifest.get('name')} {manifest.get('version')}"),
        ("created", manifest.get("created_at")),
        (
            "architecture",
            f"{arch.get('name')} input {arch.get('input_size')} "
            f"width {arch.get('width')} middle blocks {arch.get('middle_blocks')}",
        ),
        ("models", len(manifest.get("models", []))),
        ("threshold", manifest.get("threshold")),
        ("temperature", manifest.get("temperature")),
    ]
    training = manifest.get("training") or {}
    if training.get("terms"):
        rows.append(("terms", training["terms"]))
    for key, value in rows:
        print(f"{key + ':':<14}{value}")
    for name, result in (manifest.get("evaluations") or {}).items():
        frame, video = result.get("frame_level") or {}, result.get("video_level") or {}
        print(
            f"{'evaluation:':<14}{name}: frame AUC {_fmt(frame.get('roc_auc'))}, "
            f"frame acc {_fmt(frame.get('accuracy'))}, video flagged "
            f"{_fmt(_flagged(video))} of {video.get('n')}"
        )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _flagged(level: dict) -> float | None:
    cm, n = level.get("confusion"), level.get("n")
    return (cm["tp"] + cm["fp"]) / n if cm and n else None
