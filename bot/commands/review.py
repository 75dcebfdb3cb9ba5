"""``find-bot review``: list, inspect, decide on and export flagged videos.

Every action goes through :mod:`bot.review` (and :mod:`bot.review.reviewers`), the
same functions the web page calls, so CLI and web can never disagree on the
rules (compare-and-set decisions, append-only history, export format).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

from bot.commands.common import int_between, probability
from bot.errors import FindError
from bot.formats import format_score
from bot.terminal import echo, json_text, printable

#: bot.store.REVIEW_STATES, spelled out so `--help` does not import SQLAlchemy;
#: tests/review/test_cli.py keeps the two equal.
STATES = ("flagged", "confirmed", "dismissed")
#: bot.store.VideoSource's values, likewise (a test checks they agree).
SOURCES = ("youtube_upload", "youtube_search", "submitted_url", "submitted_file")
#: bot.review.queries.QUEUE_ORDERS, likewise.
ORDERS = ("score", "reach", "newest")
PARTIAL_NOTE = " (PARTIAL: too few frames decoded, the file is probably truncated)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review",
        help="review flagged videos: list, show, confirm, dismiss, reverse, reasons, export",
        description="Query the review queue, record decisions and export them.",
    )
    sub = parser.add_subparsers(dest="review_command", metavar="ACTION", required=True)

    lst = sub.add_parser(
        "list", help="list videos in the queue, highest score first (or by reach, or newest)"
    )
    lst.add_argument("--state", choices=STATES, default="flagged", help="default: flagged")
    lst.add_argument("--channel", metavar="ID", help="only this channel id (UC…)")
    lst.add_argument(
        "--source",
        choices=SOURCES,
        help="only videos from this source (YouTube upload or search, submitted URL or file)",
    )
    lst.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only videos published since DATE (ISO date/time, or an age such as 7d or 12h)",
    )
    lst.add_argument("--min-score", type=probability, metavar="X", help="only scores >= X (0..1)")
    lst.add_argument(
        "--limit", type=int_between(1, 500), default=50, metavar="N", help="rows (default 50)"
    )
    lst.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N rows")
    lst.add_argument(
        "--order",
        choices=ORDERS,
        default="score",
        help="score: highest first (default); reach: what is spreading first, score x "
        "ln(1 + views gained per day), unmeasured videos last; newest: newest first",
    )
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(handler=_list)

    show = sub.add_parser("show", help="a video's analysis, evidence and decision history")
    show.add_argument("video", metavar="VIDEO_ID")
    show.add_argument("--json", action="store_true", help="print the full record as JSON")
    show.set_defaults(handler=_show)

    for name, verb in (("confirm", "confirmed"), ("dismiss", "dismissed")):
        what = "a deepfake" if name == "confirm" else "not a deepfake"
        dec = sub.add_parser(
            name,
            help=f"mark a flagged video {verb} ({what})",
            description=(
                f"Mark VIDEO_ID {verb}. The decision is appended to the video's history with "
                "the reviewer and time. It only applies if the video is still flagged; if "
                "someone decided first the command fails (exit code 3) and says who. "
                "--force adds a superseding decision whatever the current state."
            ),
        )
        dec.add_argument("video", metavar="VIDEO_ID")
        _reviewer_args(dec)
        dec.add_argument(
            "--reason",
            required=True,
            metavar="POLICY",
            help="policy reason, one of FIND_POLICY_REASONS (`find-bot review reasons` lists them)",
        )
        dec.add_argument("--note", metavar="TEXT", help="free-text note (kept with the decision)")
        dec.add_argument(
            "--force",
            action="store_true",
            help="supersede an existing decision (the old one stays in the history); turning a "
            "confirmed video into dismissed or back is a reversal and needs --appeal-reason",
        )
        dec.add_argument("--appeal-reason", metavar="TEXT", help="why a decision is reversed")
        dec.set_defaults(handler=_decide, decision=verb)

    rev = sub.add_parser(
        "reverse",
        help="reverse a decision (appeal): confirmed becomes dismissed and back",
        description=(
            "Reverse VIDEO_ID's decision: a confirmed video becomes dismissed, a dismissed one "
            "confirmed. --appeal-reason (why) and --reason (the new policy reason) are "
            "required; the reversal is appended to the history and names the decision it "
            "overturns, and the video's hashes move to the other bank."
        ),
    )
    rev.add_argument("video", metavar="VIDEO_ID")
    _reviewer_args(rev)
    rev.add_argument("--reason", required=True, metavar="POLICY", help="the new policy reason")
    rev.add_argument("--appeal-reason", required=True, metavar="TEXT", help="why it is reversed")
    rev.add_argument("--note", metavar="TEXT", help="free-text note")
    rev.set_defaults(handler=_reverse)

    reasons = sub.add_parser("reasons", help="list the policy reasons a decision can give")
    reasons.set_defaults(handler=_reasons)

    exp = sub.add_parser(
        "export",
        help="export decisions: csv/jsonl reports, or a labelled crop dataset for training",
        description=(
            "csv/jsonl: one row per video (latest analysis and decision; jsonl adds the full "
            "history) to --output or stdout. dataset: confirmed (fake) and dismissed (real) "
            "videos with their face crops, as labels.jsonl + crops/ in a new --output "
            "directory, read by `find-bot train` (format 'review')."
        ),
    )
    exp.add_argument("--format", choices=("csv", "jsonl", "dataset"), required=True)
    exp.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="PATH",
        help="file (csv/jsonl; default stdout) or new directory (dataset)",
    )
    exp.add_argument(
        "--state",
        choices=STATES,
        action="append",
        help="states to report (repeatable; default all three; csv/jsonl only)",
    )
    exp.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only videos published since DATE (or an age such as 30d)",
    )
    exp.set_defaults(handler=_export)

    # Account commands under their old names; their home is `find-bot reviewers`.
    from bot.commands.reviewers import add_account_commands

    add_account_commands(sub, legacy=True)


# ------------------------------------------------------------------ argument types


def _reviewer_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reviewer",
        required=True,
        metavar="NAME",
        help="who decides: an existing reviewer account (`find-bot reviewers list`)",
    )
    parser.add_argument(
        "--allow-unknown-reviewer",
        action="store_true",
        help="record NAME even if no active reviewer account has it",
    )


def _decider(args: argparse.Namespace, sessions) -> str:  # type: ignore[no-untyped-def]
    """``--reviewer``, checked against the reviewer accounts unless told otherwise."""
    if args.allow_unknown_reviewer:
        return args.reviewer
    from bot.review.reviewers import check_decider

    return check_decider(sessions, args.reviewer)


def _since(text: str) -> datetime:
    """An ISO date/time (UTC when no zone), or an age back from now: ``7d``, ``12h``."""
    from bot.settings import parse_datetime, parse_duration
    from bot.store import utcnow

    text = text.strip()
    if text and text[-1].lower() in "smhd" and text[:-1].replace(".", "", 1).isdigit():
        return utcnow() - timedelta(seconds=parse_duration(text))
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ------------------------------------------------------------------ handlers


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bot.commands.common import open_database

    return open_database(args)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def _list(args: argparse.Namespace) -> int:
    from bot import review
    from bot.store import utcnow

    _settings, sessions = _open(args)
    flt = review.QueueFilter(
        state=args.state,
        channel=args.channel,
        source=args.source,
        since=args.since,
        min_score=args.min_score,
        limit=args.limit,
        offset=max(0, args.offset),
        order=args.order,
    )
    with sessions() as session:
        page = review.list_queue(session, flt)
    now = utcnow()
    if args.json:
        for item in page.items:
            echo(json_text(item.to_json(now)))
        return 0
    if not page.items:
        echo(f"no {args.state} videos match ({page.total} in total)")
        return 0
    echo(f"{'SCORE':>6} {'FACES':>5} {'AGE':>5} {'VIEWS/D':>7}  {'URL':<43}  CHANNEL / TITLE")
    for item in page.items:
        score = format_score(item.score)
        score += "*" if item.partial else ""
        faces = "-" if item.faces is None else str(item.faces)
        age = _age((now - item.age_since).total_seconds())
        channel = item.channel_title or item.channel_id or "?"
        if item.submitted_by:
            channel = f"{item.source} by {item.submitted_by}"
        # A local file has no URL: its key, said to be a file (the title is its name).
        url = item.url or item.youtube_id + (" (local file)" if item.local_file else "")
        title = printable(item.title or "")  # one row per video, whatever the title holds
        if item.known_label:
            title += f"  [{item.known_label}]"
        growth = _count(item.views_per_day)
        echo(
            f"{score:>6} {faces:>5} {age:>5} {growth:>7}  {url:<43}  {printable(channel)} / {title}"
        )
    shown = flt.offset + len(page.items)
    more = f"; --offset {shown} for more" if page.has_next else ""
    echo(f"{len(page.items)} of {page.total} {args.state} video(s){more}")
    if any(item.partial for item in page.items):
        echo("* partial analysis: too few frames decoded (the file is probably truncated)")
    return 0


def _count(value: float | None) -> str:
    """A count in a few characters: ``950``, ``12k``, ``3.4M`` (``-``: not measured)."""
    if value is None:
        return "-"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


def _source(video) -> str:
    """Where the video came from, and for a submission who sent it and why."""
    text = video.source
    if video.submitted_by:
        text += f" by {video.submitted_by}"
    if video.submission_note:
        text += f": {video.submission_note}"
    return text


def _why_lines(a) -> list[str]:  # type: ignore[no-untyped-def]
    """Why the analysis scored as it did: the decisive track, each member's score on it
    (named by what it learnt), and the tracks that scored higher but did not count."""
    from bot.review import why

    explained = why.explain(a)
    d = explained.decisive
    if d is None:
        if explained.small_only:
            return [
                f"{'why:':<11}no face large enough to judge (all below "
                f"{explained.min_face_px} px): scored, but not flagged on them"
            ]
        return []
    kind = "static" if d.static else "live"
    size = f", face {d.face_px} px" if d.face_px else ""
    lines = [f"{'why:':<11}track {d.track} gave the score {_fmt(d.score)} ({kind}{size})"]
    if d.members:
        scores = ", ".join(f"{printable(name)} {_fmt(value)}" for name, value in d.members)
        lines.append(f"{'members:':<11}{scores}")
    else:
        lines.append(f"{'members:':<11}not recorded for this analysis (made before FIND kept them)")
    for t in explained.set_aside:
        reason = (
            f"face {t.face_px} px, below {explained.min_face_px} px: too small to be evidence"
            if t.small
            else "a still picture in the scene"
        )
        lines.append(f"{'':<11}track {t.track} scored {_fmt(t.score)}, not counted: {reason}")
    return lines


def _channel(video) -> str | None:
    """``title (UC…)``, or None for a video with no channel (submitted), not ``(?)``."""
    if not video.channel_id and not video.channel_title:
        return None
    return f"{video.channel_title or ''} ({video.channel_id or '?'})".strip()


def _show(args: argparse.Namespace) -> int:
    from bot import review
    from bot.review import why

    settings, sessions = _open(args)
    with sessions() as session:
        video = review.get_video(session, args.video)
    if args.json:
        echo(json_text(video.to_json(), indent=2))
        return 0
    a = video.analysis
    rows = [
        ("video", f"{video.youtube_id}  {video.url or '(local file)'}"),
        ("title", video.title or ""),
        ("source", _source(video)),
        ("channel", _channel(video)),
        ("published", _when(video.published_at)),
        ("state", video.state),
        ("score", format_score(video.score)),
        ("declared", _declared(video.declared_synthetic)),
    ]
    if video.known_label:
        rows.append(("label", video.known_label))
    if video.views_text:
        rows.append(("views", f"{video.views_text} (counted {_when(video.views_at)})"))
    if a is not None:
        rows += [
            ("threshold", format_score(a.threshold)),
            ("verdict", a.verdict + (PARTIAL_NOTE if a.partial else "")),
            ("model", f"{a.bundle_id} {a.bundle_version}"),
            ("analysed", f"{_when(a.created_at)} by {a.worker or '?'} (analysis {a.id})"),
            (
                "frames",
                f"{a.frames_decoded}/{a.frames_requested} decoded, {a.faces} faces, "
                f"{a.tracks} tracks",
            ),
            ("timings", ", ".join(f"{k} {_secs(v)}" for k, v in a.timings.items()) or "-"),
        ]
    for key, value in rows:
        if value is not None:  # e.g. no channel: a submitted file or URL
            echo(f"{key + ':':<11}{printable(value)}")
    for m in video.matches:
        what = {
            "flagged": "flagged as a re-upload of",
            "suppressed": "not flagged again: matches",
            "recorded": "matches",
        }.get(m.outcome, m.outcome)
        faces = (
            f", faces {m.faces_matched}/{m.faces_compared}" if m.faces_compared is not None else ""
        )
        entry = f"{m.content_id}{' ' + m.matched_url if m.matched_url else ''}"
        echo(
            f"{'bank:':<11}{what} {m.bank}-bank entry {printable(entry)} "
            f"({printable(m.matched_title or 'untitled')}): "
            f"{m.frames_matched}/{m.frames_compared} frames ({m.query_share:.0%}) of this video, "
            f"{m.bank_share:.0%} of that one{faces}"
        )
    path = review.media_path(settings, video)
    if path is not None:
        echo(f"{'media:':<11}{printable(path)}")
    if a is not None:
        for line in _why_lines(a):
            echo(line)
        echo("\ntracks (the decisive one first, then live, strongest first):")
        for t in why.explain(a).tracks:
            span = f"{_secs(t.first_t)}..{_secs(t.last_t)}"
            static = ", static (a still picture in the scene)" if t.static else ""
            small = f", too small ({t.face_px} px): not counted" if t.small else ""
            faces = f"{t.faces} faces" + (f", face {t.face_px} px" if t.face_px else "")
            echo(f"  track {t.track}: score {_fmt(t.score)}, {faces}, {span}{static}{small}")
        echo("\nframes that drove the score:")
        for top in a.top_frames:
            echo(
                f"  track {top.get('track')} frame {top.get('frame')} at {_secs(top.get('t'))}: "
                f"score {_fmt(top.get('score'))}{' (static)' if top.get('static') else ''}"
            )
        if a.crops:
            echo("\nface crops:")
            for crop in a.crops:
                path = review.crop_path(settings, a, crop.index)
                where = str(path) if path else f"{crop.path} (missing)"
                echo(
                    f"  [{crop.index}] track {crop.track} at {_secs(crop.t)}, score "
                    f"{_fmt(crop.score)}: {printable(where)}"
                )
                if crop.upscaled_from:
                    echo(f"      upscaled from {crop.upscaled_from} px (a small face: blur)")
                extra = review.crop_path(settings, a, crop.index, "context")
                if extra is not None:
                    echo(f"      context: {printable(extra)}")
        if len(video.analyses) > 1:
            echo(
                f"\n{len(video.analyses) - 1} earlier analysis(es): "
                + ", ".join(
                    f"{x.id} ({x.bundle_version}, {_fmt(x.video_score)})"
                    for x in video.analyses[:-1]
                )
            )
    echo("\ndecisions:" if video.decisions else "\ndecisions: none yet")
    for d in video.decisions:
        note = f": {printable(d.note)}" if d.note else ""
        reason = f" [{printable(d.policy_reason)}]" if d.policy_reason else ""
        echo(
            f"  {_when(d.decided_at)}  {'REVERSED to ' if d.is_reversal else ''}{d.decision} by "
            f"{printable(d.reviewer)}{reason} (was {d.previous_state}){note}"
        )
        if d.reversal_reason:
            echo(f"      appeal: {printable(d.reversal_reason)}")
    return 0


def _declared(value: bool | None) -> str:
    if value is None:
        return "synthetic media: not reported by YouTube"
    return (
        "uploader declares synthetic or altered media" if value else "no synthetic media declared"
    )


def _decide(args: argparse.Namespace) -> int:
    from bot import review

    settings, sessions = _open(args)
    info = review.decide(
        sessions,
        args.video,
        args.decision,
        _decider(args, sessions),
        note=args.note,
        force=args.force,
        reason=args.reason,
        reasons=settings.policy_reasons,
        reversal_reason=args.appeal_reason,
    )
    _print_decision(args.video, info)
    return 0


def _print_decision(video: str, info) -> None:  # type: ignore[no-untyped-def]
    kind = "reversed to " if info.is_reversal else ""
    echo(
        printable(
            f"{video}: {kind}{info.decision} by {info.reviewer} at {_when(info.decided_at)} "
            f"[{info.policy_reason}] (was {info.previous_state})"
        )
    )


def _reverse(args: argparse.Namespace) -> int:
    from bot import review

    settings, sessions = _open(args)
    reviewer = _decider(args, sessions)
    with sessions() as session:
        state = review.get_video(session, args.video).state
    if state not in review.OPPOSITE:
        raise review.ReviewError(
            f"video {args.video} is {state}: only confirmed or dismissed videos can be reversed "
            "(decide a flagged one with `find-bot review confirm|dismiss`)"
        )
    info = review.decide(
        sessions,
        args.video,
        review.OPPOSITE[state],
        reviewer,
        note=args.note,
        expected_state=state,
        reason=args.reason,
        reasons=settings.policy_reasons,
        reversal_reason=args.appeal_reason,
    )
    _print_decision(args.video, info)
    return 0


def _reasons(args: argparse.Namespace) -> int:
    from bot.commands.common import settings_from_args

    for reason in settings_from_args(args).policy_reasons:
        echo(printable(reason))
    return 0


def _export(args: argparse.Namespace) -> int:
    from bot import review
    from bot.store import REVIEW_STATES

    settings, sessions = _open(args)
    with sessions() as session:
        if args.format == "dataset":
            if args.output is None:
                raise FindError("--format dataset needs --output DIR (a new directory)")
            summary = review.export_dataset(session, settings, args.output, since=args.since)
            echo(
                f"{printable(summary.directory)}: {summary.videos} video(s), "
                f"{summary.crops} crop(s) ({summary.fake} fake, {summary.real} real); "
                f"{summary.missing_crops} crop file(s) no longer on disk were left out"
            )
            return 0
        states = tuple(args.state or REVIEW_STATES)
        if args.output is None:
            count = review.export_report(session, sys.stdout, args.format, states, args.since)
        else:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            with args.output.open("w", encoding="utf-8", newline="") as out:
                count = review.export_report(session, out, args.format, states, args.since)
            echo(f"{printable(args.output)}: {count} video(s)", file=sys.stderr)
    return 0


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _secs(value: object) -> str:
    try:
        return f"{float(value):.2f}s"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"


def _fmt(value: object) -> str:
    return format_score(value)
