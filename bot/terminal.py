"""Text from outside (titles, channel names, notes, error texts) made safe to print.

A video title or an HTTP reason phrase is chosen by whoever uploads the video
or runs the media host.  Printed raw, an ESC or OSC sequence in it can rewrite
the reviewer's terminal (retitle the window, hide lines, fake a prompt, plant
a hyperlink), a CR or BS can overwrite what was printed before it, and BEL
rings.  Every command that prints such text to a terminal passes it through
:func:`printable` (or prints with :func:`echo`), so no control character ever
reaches the terminal: each is shown as a visible escape (``\\x1b``) instead.

JSON output is left to :func:`json.dumps`, which escapes C0 controls itself.
"""

from __future__ import annotations

import re
import sys
from typing import IO

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


def echo(text: object = "", *, file: IO[str] | None = None) -> None:
    """``print`` for lines that may carry outside text: controls escaped, newlines kept."""
    print(printable(text, keep_newlines=True), file=file if file is not None else sys.stdout)


#: First characters that make a spreadsheet read a cell as a formula (or a DDE call).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that Excel, LibreOffice and Google Sheets show as text, never run.

    Strings starting with one of :data:`FORMULA_LEADS` get a leading ``'``
    (OWASP's advice for CSV injection); numbers and empty cells pass unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value
