"""``find-bot scan``: score local videos and images for deepfake faces, no database needed."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from bot.commands.common import int_between, probability
from bot.errors import FindError
from bot.formats import format_score
from bot.terminal import printable, progress_bar


class NoBundleError(FindError):
    """No model bundle is configured or the configured one does not exist."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="score videos/images for deepfake faces",
        description=(
            "Score each video or image (directories are searched recursively) and print a "
            "verdict per file: fake, real, no_face or error. A verdict reached on a truncated "
            "file (it ends before its container says) or on fewer than half of the sampled "
            "frames is marked partial and warned about. Exit code 0 when every file was "
            "fully scored, 1 when any failed or was partial (the others are still reported)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="video, image or directory")
    parser.add_argument(
        "--frames",
        type=int_between(1, 1024),
        metavar="N",
        help="frames sampled per video (default: FIND_FRAMES_PER_VIDEO or 32)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        metavar="DIR",
        help="model bundle directory (default: FIND_MODEL_BUNDLE or model/bundles/default)",
    )
    parser.add_argument(
        "--threshold",
        type=probability,
        metavar="P",
        help="threshold on the video score (default: FIND_SCORE_THRESHOLD, else the bundle's)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument(
        "--save-crops",
        type=Path,
        metavar="DIR",
        help="write the face crops that drove each score as JPEG files under DIR",
    )
    parser.set_defaults(handler=_scan)


def resolve_bundle_path(flag: Path | None, configured: Path | None) -> Path:
    """The bundle to use: ``--bundle`` wins over settings; fail with how to get one."""
    path = flag or configured
    if path is None or not Path(path).expanduser().exists():
        where = f" at {path}" if path is not None else ""
        raise NoBundleError(
            f"no model bundle{where}: pass --bundle DIR or set FIND_MODEL_BUNDLE to a bundle "
            "directory, or train one with `find-bot train` (see docs/detection.md)"
        )
    return Path(path).expanduser()


def crop_directory(root: Path, media_path: str) -> Path:
    """Per-file folder for evidence crops: the file stem plus a hash of its full path."""
    digest = hashlib.sha1(str(Path(media_path).resolve()).encode()).hexdigest()[:8]
    return root / f"{Path(media_path).stem}-{digest}"


def save_crops(result, root: Path) -> list[Path]:
    """Write ``result.evidence_crops`` as JPEG files; return their paths."""
    import cv2

    if not result.evidence_crops:
        return []
    folder = crop_directory(root, result.path)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for track_id, frame_index, crop in result.evidence_crops:
        target = folder / f"track{track_id}_frame{frame_index:06d}.jpg"
        bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(target), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise FindError(f"{target}: cannot write crop (is {root} writable?)")
        written.append(target)
    return written


_HEADER = f"{'VERDICT':<8} {'SCORE':>6} {'FACES':>5} {'TRACKS':>6} {'FRAMES':>7} {'TIME':>6}  PATH"


def format_row(result) -> str:
    score = format_score(result.score)
    frames = f"{result.frames_decoded}/{result.frames_requested}"
    seconds = result.timings.get("total_s", 0.0)
    verdict = result.verdict + ("*" if result.partial else "")
    row = (
        f"{verdict:<8} {score:>6} {result.faces:>5} {len(result.tracks):>6} "
        f"{frames:>7} {seconds:>5.1f}s  {printable(result.path)}"  # a newline in a name: one row
    )
    if result.partial:
        row += "\n         * partial: too few frames decoded, not a full verdict"
    static = sum(1 for t in result.tracks if t.get("static"))
    if result.static_only:
        row += "\n         only still pictures of faces (no live face): scored like an image"
    elif static:
        row += f"\n         {static} static track(s) (pictures in the scene) not counted"
    small = sum(1 for t in result.tracks if t.get("small") and not t.get("static"))
    if result.small_only:
        row += (
            f"\n         every face that could decide is smaller than {result.min_face_px} px: "
            "too small to judge, ranked by its score but not flagged"
        )
    elif small:
        row += (
            f"\n         {small} track(s) with faces smaller than {result.min_face_px} px "
            "(too small to be evidence) not counted"
        )
    if result.error:
        row += f"\n         {printable(result.error)}"
    return row


def _scan(args: argparse.Namespace) -> int:
    from bot.commands.common import settings_from_args

    settings = settings_from_args(args)
    from model.versions import active_bundle

    bundle_path = resolve_bundle_path(
        args.bundle, active_bundle(settings.data_dir, settings.model_bundle)
    )
    frames = args.frames or settings.frames_per_video
    threshold = args.threshold if args.threshold is not None else settings.score_threshold

    # TensorFlow's start-up chatter and FFmpeg's demuxer complaints were kept off the
    # terminal by bot.cli.main (bot.logs.quiet_native_logging): a file that fails to
    # decode is reported in its own row with a clear message.
    from model.frames import iter_media_paths

    # Check the inputs before TensorFlow and the model load (seconds): a typo answers at once.
    paths = list(iter_media_paths(args.paths))
    if not paths:
        raise FindError(f"no video or image files found in {', '.join(args.paths)}")
    missing = [p for p in paths if not p.is_file()]
    for path in missing:
        print(f"find-bot: error: {printable(path)}: no such file", file=sys.stderr)
    paths = [p for p in paths if p.is_file()]
    if not paths:
        return 1

    from bot.logs import import_tensorflow_quietly

    import_tensorflow_quietly()  # its absl banner ignores every quieting variable

    from tqdm import tqdm

    from model.bundle import load_bundle
    from model.scoring import VideoScorer

    bundle = load_bundle(bundle_path)
    scorer = VideoScorer(bundle, frames=frames, threshold=threshold)
    bundle.ensemble()  # load the weights now: a bad bundle fails before any file

    if not args.json:
        print(
            f"model {bundle.id} {bundle.version}, threshold {format_score(scorer.threshold)}, "
            f"{frames} frames"
        )
        print(_HEADER, flush=True)
    counts: dict[str, int] = {}
    # A bar only for eyes: never in --json or redirected output (bot.terminal.progress_bar).
    progress = progress_bar(
        paths, enabled=len(paths) > 1 and not args.json, unit="file", leave=False
    )
    for path in progress:
        progress.set_postfix_str(printable(path.name[:40]))
        result = scorer.score_path(path)
        counts[result.verdict] = counts.get(result.verdict, 0) + 1
        if result.partial:
            counts["partial"] = counts.get("partial", 0) + 1
            tqdm.write(partial_warning(result), file=sys.stderr)
        if args.save_crops is not None:
            save_crops(result, args.save_crops)
        if args.json:
            tqdm.write(json.dumps(result.to_dict(), allow_nan=False), file=sys.stdout)
        else:
            tqdm.write(format_row(result), file=sys.stdout)
        sys.stdout.flush()  # each verdict as soon as it is known, even into a pipe
    progress.close()
    if not args.json:
        summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("fake", "real", "no_face", "error"))
        if counts.get("partial"):
            summary += f" ({counts['partial']} partial)"
        print(f"{len(paths)} file(s): {summary}")
    return 1 if missing or counts.get("error") or counts.get("partial") else 0


def partial_warning(result) -> str:
    """The one-line stderr warning for a verdict reached on part of the video only."""
    tried = result.frames_decoded + result.frames_failed
    why = (
        "the file ends before its container says: truncated"
        if result.truncated
        else "truncated or damaged file?"
    )
    return (
        f"find-bot: warning: {printable(result.path)}: only {result.frames_decoded} of {tried} "
        f"sampled frames decoded ({why}): the verdict is partial, not a full one"
    )
