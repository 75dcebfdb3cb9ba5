"""Text from outside (titles, channel names, notes, file names, error texts) made safe to print.

A video title or an HTTP reason phrase is chosen by whoever uploads the video
or runs the media host.  Printed raw, an ESC or OSC sequence in it can rewrite
the reviewer's terminal (retitle the window, hide lines, fake a prompt, plant
a hyperlink), a CR or BS can overwrite what was printed before it, a newline
splits a table row or forges a log line, and BEL rings.  This module is the
one rule for everything FIND prints outside text to:

* the terminal: every command prints such text through :func:`printable` (a
  field inside a line) or :func:`echo` (a line), so each control character is
  shown as a visible escape (``\\x1b``) instead;
* JSON output: :func:`json_text` (``json.dumps`` escapes C0 controls, not C1
  ones or bidi overrides when non-ASCII is kept readable);
* CSV cells: :func:`spreadsheet_cell` (controls escaped, formulas neutralised);
* log lines: :mod:`bot.logs` quotes and escapes any value that :func:`has_controls`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")

#: C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode
#: bidirectional overrides and isolates that reorder what a line appears to say.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\t":
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape (a tab as a space).

    ``keep_newlines`` keeps ``\\n`` (for a block of lines built by us); any
    other control, CR included, is escaped.  Applying it twice changes nothing.
    """
    pattern = _CONTROLS_BUT_NEWLINE if keep_newlines else _CONTROLS
    return pattern.sub(_escape, str(text))


def has_controls(text: str) -> bool:
    """True when ``text`` holds a character :func:`printable` would escape (newline included)."""
    return _CONTROLS.search(text) is not None


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, **options: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with no raw control character.

    ``json.dumps`` escapes C0 controls but passes DEL, C1 controls (``\\x9b`` is
    a one-byte CSI) and bidi overrides through when non-ASCII stays readable;
    those can only sit inside JSON strings, where ``\\uXXXX`` is the same text.  A raw
    newline can only be ``indent``'s, between values: it stays.
    """
    return _CONTROLS_BUT_NEWLINE.sub(_json_escape, json.dumps(value, ensure_ascii=False, **options))


def echo(text: object = "", *, file: IO[str] | None = None) -> None:
    """``print`` for lines that may carry outside text: controls escaped, newlines kept."""
    print(printable(text, keep_newlines=True), file=file if file is not None else sys.stdout)


#: First characters that make a spreadsheet read a cell as a formula (or a DDE call).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that Excel, LibreOffice and Google Sheets show as text, never run.

    Control characters are escaped as in :func:`printable` (newlines kept: a
    quoted CSV cell may span lines), so a CSV written to a terminal cannot
    drive it either.  Strings starting with one of :data:`FORMULA_LEADS` get a
    leading ``'`` (OWASP's advice for CSV injection), and so do strings that
    already start with ``'`` before one, so that :func:`from_spreadsheet_cell`
    gives back exactly the text written.  Numbers and empty cells pass unchanged.
    """
    if not isinstance(value, str):
        return value
    if value.lstrip("'").startswith(FORMULA_LEADS):
        value = "'" + value
    return printable(value, keep_newlines=True)


def from_spreadsheet_cell(text: str) -> str:
    """Undo :func:`spreadsheet_cell`'s ``'`` (for files FIND exported and reads back)."""
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_LEADS):
        return text[1:]
    return text


def on_terminal(stream: IO[str] | None = None) -> bool:
    """Is ``stream`` (default stderr) a terminal?  Redirected output is not."""
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or a stand-in without isatty
        return False


def progress_bar(iterable: Iterable[T], *, enabled: bool = True, **options: Any) -> tqdm[T]:
    """A tqdm progress bar on stderr, only when stderr is a terminal (and ``enabled``).

    Its carriage-return frames are for eyes: in a redirected file, a log or ``--json``
    output they are garbage, so every command's bar goes through here.
    """
    from tqdm import tqdm

    show = enabled and on_terminal(sys.stderr)
    return tqdm(iterable, disable=not show, file=sys.stderr, **options)
