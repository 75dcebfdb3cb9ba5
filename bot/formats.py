"""How FIND shows scores to people: one format, everywhere.

A reviewer compares a video's score with the threshold on the queue page, in
``review show``, in ``scan``'s header and in ``model info``; when one says
0.794, another 0.793501 and a third 0.7935005095051014 they look like three
different thresholds.  Every score, threshold and probability meant for a
person goes through :func:`format_score`: three decimals, the precision the
models' calibration supports.  Machine output (``--json``, JSONL exports,
manifests) keeps the full value.
"""

from __future__ import annotations

#: Decimals of every score and threshold shown to a person.
SCORE_DECIMALS = 3


def format_score(value: object, missing: str = "-") -> str:
    """``0.794`` for a score, threshold or rate; ``missing`` when there is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return missing
    return f"{value:.{SCORE_DECIMALS}f}"
