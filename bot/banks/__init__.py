"""Banks of known videos, and re-upload matching against them.

Two banks, both in the database (``bank_entries`` + ``bank_hashes``):

* ``fake``: deepfakes a reviewer confirmed (or a team imported).  A new video
  whose frames are found in one is flagged at once, before the model runs,
  with the matched video as its evidence.
* ``benign``: false alarms a reviewer dismissed.  A new video found in one is
  recorded, and if the model flags it again the flag is suppressed, but only
  when it scores no higher than the dismissed video did (plus
  ``SUPPRESS_SCORE_MARGIN``): a face swap made *from* a dismissed real video
  has the same frames around a different face, and must still reach a
  reviewer.  (Face crops are compared too and recorded, but PDQ of a talking
  face changes too fast between frames for the evidence crops of two copies,
  taken at different moments, to decide anything.)

A reviewer's decision moves the video's hashes into the bank its state calls
for (:func:`record_decision`, inside the decision's transaction), so a
reversed decision moves it across.  Lookups go through an in-memory
:class:`~bot.banks.hashindex.HashIndex` per process (:class:`Matcher`), reloaded
when the bank tables change, so every worker sees a confirmation made on the
web page at its next video.

The package: :mod:`.entries` (what the banks hold, decisions into banks),
:mod:`.matching` (the :class:`Matcher`), :mod:`.exchange` (import and export files),
:mod:`.vpdq` (video hashing) and :mod:`.hashindex` (the in-memory index). The names
below are its API (``bot.banks.Matcher``, ``bot.banks.record_decision``, ...).
"""

from bot.banks.entries import (
    BANK_OF_DECISION,
    BANKS,
    BENIGN,
    FACE,
    FAKE,
    FRAME,
    BankError,
    EntryInfo,
    add_entry,
    content_id_for,
    face_features,
    find_entry,
    fingerprint_record,
    frame_features,
    latest_fingerprint,
    list_entries,
    record_decision,
    remove_entry,
)
from bot.banks.exchange import (
    CSV_FIELDS,
    JSONL_FORMAT,
    BankFileRejected,
    ImportedEntry,
    ImportLimits,
    ImportSummary,
    export_bank,
    import_entries,
    read_bank_file,
)
from bot.banks.matching import (
    SUPPRESS_SCORE_MARGIN,
    Match,
    Matcher,
)

__all__ = [
    "BANKS",
    "BANK_OF_DECISION",
    "BENIGN",
    "CSV_FIELDS",
    "FACE",
    "FAKE",
    "FRAME",
    "JSONL_FORMAT",
    "SUPPRESS_SCORE_MARGIN",
    "BankError",
    "BankFileRejected",
    "EntryInfo",
    "ImportLimits",
    "ImportSummary",
    "ImportedEntry",
    "Match",
    "Matcher",
    "add_entry",
    "content_id_for",
    "export_bank",
    "face_features",
    "find_entry",
    "fingerprint_record",
    "frame_features",
    "import_entries",
    "latest_fingerprint",
    "list_entries",
    "read_bank_file",
    "record_decision",
    "remove_entry",
]
