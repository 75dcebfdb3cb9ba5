"""``find-bot bank``: the banks of confirmed fakes and dismissed false alarms.

Reviewers fill the banks by deciding; these commands let an operator look at
them, add a video by hand (one from the database, or a local file such as a
known fake from another platform), remove an entry, and share banks with
other teams as JSON lines or a ThreatExchange-style CSV (see bot/banks/exchange.py).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from bot.terminal import echo, json_text, printable

BANK_NAMES = ("fake", "benign")  # bot.banks.BANKS, spelled out so --help stays light


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bank",
        help="re-upload banks: list, add, remove, export, import",
        description=(
            "Banks of known videos, matched against every new video before analysis: 'fake' "
            "(confirmed deepfakes: a match is flagged at once) and 'benign' (dismissed false "
            "alarms: a match is not flagged again). Decisions fill them automatically."
        ),
    )
    sub = parser.add_subparsers(dest="bank_command", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="list bank entries")
    lst.add_argument("--bank", choices=BANK_NAMES, help="only this bank")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(handler=_list)

    add = sub.add_parser("add", help="add a video from the database or a local file")
    src = add.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="VIDEO_ID", help="a video FIND has analysed")
    src.add_argument("--file", type=Path, metavar="PATH", help="a local video file to hash")
    add.add_argument("--bank", choices=BANK_NAMES, required=True)
    add.add_argument("--content-id", metavar="ID", help="name to share it under (default: derived)")
    add.add_argument("--title", metavar="TEXT")
    add.add_argument("--note", metavar="TEXT")
    add.add_argument("--by", metavar="NAME", help="who adds it")
    add.set_defaults(handler=_add)

    rm = sub.add_parser("remove", help="remove an entry (by content id, video id or entry id)")
    rm.add_argument("entry", metavar="ENTRY")
    rm.set_defaults(handler=_remove)

    exp = sub.add_parser("export", help="write the banks to share them")
    exp.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    exp.add_argument("--bank", choices=BANK_NAMES, help="only this bank")
    exp.add_argument("--output", "-o", type=Path, metavar="FILE", help="default: stdout")
    exp.set_defaults(handler=_export)

    imp = sub.add_parser("import", help="add the entries of an exported file (JSON lines or CSV)")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--bank", choices=BANK_NAMES, help="for entries whose file does not say")
    imp.add_argument("--source", metavar="NAME", help="where it came from (default: file name)")
    imp.set_defaults(handler=_import)


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bot.commands.common import open_database

    return open_database(args)


def _list(args: argparse.Namespace) -> int:
    from bot import banks

    _settings, sessions = _open(args)
    with sessions() as session:
        entries = banks.list_entries(session, args.bank)
    if args.json:
        for entry in entries:
            echo(json_text(entry.to_json()))
        return 0
    if not entries:
        print("the banks are empty" if not args.bank else f"the {args.bank} bank is empty")
        return 0
    print(f"{'ID':>5} {'BANK':<7} {'FRAMES':>6} {'FACES':>5}  {'ADDED':<16}  CONTENT / TITLE")
    for e in entries:
        what = f"{e.content_id} / {e.title or ''} ({e.source})"  # one row, whatever they hold
        echo(
            f"{e.id:>5} {e.bank:<7} {e.frames:>6} {e.faces:>5}  "
            f"{e.created_at:%Y-%m-%d %H:%M}  {printable(what)}"
        )
    counts = {b: sum(1 for e in entries if e.bank == b) for b in BANK_NAMES}
    print(
        f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: "
        + ", ".join(f"{n} {b}" for b, n in counts.items())
    )
    return 0


def _add(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot import banks
    from bot.banks import vpdq
    from bot.store import BankEntry, Video

    settings, sessions = _open(args)
    with sessions.begin() as session:
        if args.video:
            video = session.scalars(select(Video).where(Video.youtube_id == args.video)).first()
            if video is None:
                raise banks.BankError(f"no video {args.video!r} in the database: check the id")
            fingerprint = banks.latest_fingerprint(session, video.id)
            faces = banks.face_features(fingerprint.faces or []) if fingerprint else []
            path = settings.media_file(video.media_path)
            if path is not None and path.is_file():  # every frame, as banks keep them
                frames = vpdq.hash_video(path, dense=True).features
            elif fingerprint is not None and (fingerprint.bank_frames or fingerprint.frames):
                frames = banks.frame_features(fingerprint.bank_frames or fingerprint.frames)
            else:
                raise banks.BankError(
                    f"video {args.video} has no hashes and its file is gone: add the file "
                    "with --file PATH"
                )
            content_id = args.content_id or banks.content_id_for(video.youtube_id)
            youtube_id, video_id, title = video.youtube_id, video.id, args.title or video.title
        else:
            path = args.file
            if not path.is_file():
                raise banks.BankError(f"{path}: no such file")
            frames, faces = vpdq.hash_video(path, dense=True).features, []
            if not frames:
                raise banks.BankError(f"{path}: no frame could be decoded; is it a video?")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            content_id = args.content_id or f"file:{digest}"
            youtube_id = video_id = None
            title = args.title or path.name
        existing = session.scalars(
            select(BankEntry).where(BankEntry.content_id == content_id)
        ).first()
        if existing is not None:
            raise banks.BankError(
                f"{content_id} is already in the {existing.bank} bank: "
                f"`find-bot bank remove {content_id}` first to move it"
            )
        entry = banks.add_entry(
            session,
            bank=args.bank,
            content_id=content_id,
            frames=frames,
            faces=faces,
            youtube_id=youtube_id,
            video_id=video_id,
            title=title,
            source="cli",
            added_by=args.by,
            note=args.note,
        )
        echo(
            f"{printable(content_id)}: added to the {entry.bank} bank ({len(frames)} frame hashes)"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from bot import banks

    _settings, sessions = _open(args)
    with sessions.begin() as session:
        info = banks.remove_entry(session, args.entry)
    echo(f"{printable(info.content_id)}: removed from the {info.bank} bank")
    return 0


def _export(args: argparse.Namespace) -> int:
    from bot import banks

    _settings, sessions = _open(args)
    with sessions() as session:
        if args.output is None:
            banks.export_bank(session, sys.stdout, args.format, args.bank)
            return 0
        tmp = args.output.with_name(args.output.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as out:
            count = banks.export_bank(session, out, args.format, args.bank)
        tmp.replace(args.output)
    echo(f"{printable(args.output)}: {count} entr{'y' if count == 1 else 'ies'}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    from bot import banks

    _settings, sessions = _open(args)
    if not args.file.is_file():
        raise banks.BankError(f"{args.file}: no such file")
    try:
        entries = banks.read_bank_file(args.file, args.bank)  # checks everything before writing
    except banks.BankFileRejected as exc:
        for problem in exc.problems:  # one line per bad line, then the one-line refusal
            echo(printable(problem), file=sys.stderr)
        raise
    with sessions.begin() as session:
        summary = banks.import_entries(
            session, entries, f"import:{args.source or args.file.name}"[:200]
        )
    echo(
        f"{printable(args.file)}: {summary.added} entr{'y' if summary.added == 1 else 'ies'} added "
        f"({summary.hashes} hashes), {summary.skipped} already in a bank and skipped"
    )
    return 0
