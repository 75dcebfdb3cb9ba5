"""Keep part of a folder of real footage out of training, by identity, on disk.

`find-bot train` deals ``real:`` footage into its training and validation
splits, so a set handed to it can no longer measure false alarms.  Some sets
are wanted for both: ``../shared/data/real-photos`` is the only crisp,
uncompressed footage we have (every other real face is compressed video), so
training needs some of it to learn that sharpness is not a sign of
manipulation, and the false-alarm check needs the rest.

This module divides such a folder into two trees of symbolic links, one
person (top-level folder) never in both, chosen by a hash of the folder name:
the same names always land on the same side, whatever else is in the folder.
The trees are cheap to rebuild and live outside the repository
(``make train-lite`` puts them under ``RUNS``).

    python -m model.training.holdout SRC --train DIR --held-out DIR [--fraction 0.5]
        [--val DIR [--val-share 0.5]]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path


def held_out(name: str, fraction: float) -> bool:
    """Whether the identity ``name`` is kept out of training (stable across runs)."""
    digest = hashlib.sha256(f"holdout:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def for_validation(name: str, share: float) -> bool:
    """Whether a held-out identity ``name`` serves validation (thresholds), not the report."""
    digest = hashlib.sha256(f"validation:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split_folder(
    source: Path,
    train: Path,
    heldout: Path,
    fraction: float = 0.5,
    *,
    val: Path | None = None,
    val_share: float = 0.5,
) -> tuple[list[str], list[str]]:
    """Link each person's files (top-level folder of ``source``) into ``train`` or ``heldout``.

    With ``val``, a share ``val_share`` of the held-out people goes there instead: people
    never trained on whose scores may set a threshold, so that the held-out tree stays
    free of anything tuned on it.  Targets are rebuilt from scratch (they hold only
    folders and links), so a changed ``fraction`` never leaves a stale identity on the
    wrong side.  Returns the identity names trained on and held out (validation included).
    """
    source = source.resolve()
    if not source.is_dir():
        raise SystemExit(f"{source}: not a folder of real footage; give the folder to divide")
    if not 0 < fraction < 1:
        raise SystemExit(f"--fraction {fraction}: must be between 0 and 1 (exclusive)")
    for target in (train, heldout) + ((val,) if val is not None else ()):
        if target.exists():
            if any(p.is_file() and not p.is_symlink() for p in target.rglob("*")):
                raise SystemExit(
                    f"{target}: holds files that are not links; choose an empty folder"
                )
            shutil.rmtree(target)
        target.mkdir(parents=True)
    sides: dict[bool, list[str]] = {False: [], True: []}
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue  # the set's own notes (e.g. london_info.csv) are nobody's face
        out = held_out(entry.name, fraction)
        # Real folders of linked files: directory links are not followed by every walker.
        for file in sorted(entry.rglob("*")):
            if file.is_file():
                side = heldout if out else train
                if out and val is not None and for_validation(entry.name, val_share):
                    side = val
                link = side / entry.name / file.relative_to(entry)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(file)
        sides[out].append(entry.name)
    return sides[False], sides[True]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with one sub-folder per person")
    parser.add_argument("--train", type=Path, required=True, help="links for training")
    parser.add_argument("--held-out", type=Path, required=True, help="links never trained on")
    parser.add_argument("--fraction", type=float, default=0.5, help="share held out")
    parser.add_argument(
        "--val", type=Path, help="links for validation: part of the held-out people (thresholds)"
    )
    parser.add_argument("--val-share", type=float, default=0.5, help="share of held-out for --val")
    args = parser.parse_args(argv)
    train, kept = split_folder(
        args.source,
        args.train,
        args.held_out,
        args.fraction,
        val=args.val,
        val_share=args.val_share,
    )
    if args.val is None:
        print(f"{args.source}: {len(train)} identities for training, {len(kept)} held out")
    else:
        used = sum(1 for p in args.val.iterdir() if p.is_dir())
        print(
            f"{args.source}: {len(train)} identities for training, {used} for validation, "
            f"{len(kept) - used} held out"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
