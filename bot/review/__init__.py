"""The review side: the one place the CLI and the web page query, decide and export.

Both front ends call this package's functions and nothing else touches review state,
so the rules live in one spot:

* **queries** (:mod:`.queries`: :func:`list_queue`, :func:`get_video`) return plain
  dataclasses, detached from any session, so a template or a JSON encoder can use them.
* **decisions** (:mod:`.decisions`: :func:`decide`) are compare-and-set and appended to
  the history; each names a policy reason, a reversal (appeal) needs a written one, and
  the video's hashes follow the decision into a bank.
* **evidence** (:mod:`.evidence`: :func:`crop_path`, :func:`media_path`,
  :func:`render_score_plot`) resolves face crops, heatmaps, frames and the kept video
  strictly inside the media directory and draws the score-over-time plot.
* **exports** (:mod:`.export`: :func:`export_report`, :func:`export_dataset`) write
  CSV/JSONL reports and the labelled crop dataset the training command reads.

Beside them: reviewer accounts (:mod:`.reviewers`), web sessions (:mod:`.web_sessions`),
the alert sent when a video is flagged (:mod:`.webhook`) and the web page (:mod:`.web`).
The names below are the package's API (``bot.review.decide`` and so on).
"""

from bot.review.decisions import (
    DECIDABLE_STATES,
    DECISIONS,
    MAX_NOTE_CHARS,
    OPPOSITE,
    DecisionConflict,
    decide,
)
from bot.review.evidence import (
    CROP_VIEWS,
    MEDIA_TYPES,
    crop_path,
    evidence_image,
    media_path,
    render_score_plot,
    score_series,
)
from bot.review.export import (
    LABELS,
    REPORT_FIELDS,
    DatasetSummary,
    export_dataset,
    export_report,
    report_rows,
)
from bot.review.queries import (
    MAX_PAGE_SIZE,
    SOURCES,
    AnalysisInfo,
    CropInfo,
    DecisionInfo,
    MatchInfo,
    QueueFilter,
    QueueItem,
    QueuePage,
    ReviewError,
    VideoDetail,
    VideoNotFound,
    decisive_crop,
    get_analysis,
    get_video,
    list_queue,
    queue_after,
    still_queued,
)

__all__ = [
    "CROP_VIEWS",
    "DECIDABLE_STATES",
    "DECISIONS",
    "LABELS",
    "MAX_NOTE_CHARS",
    "MAX_PAGE_SIZE",
    "MEDIA_TYPES",
    "OPPOSITE",
    "REPORT_FIELDS",
    "SOURCES",
    "AnalysisInfo",
    "CropInfo",
    "DatasetSummary",
    "DecisionConflict",
    "DecisionInfo",
    "MatchInfo",
    "QueueFilter",
    "QueueItem",
    "QueuePage",
    "ReviewError",
    "VideoDetail",
    "VideoNotFound",
    "crop_path",
    "decide",
    "decisive_crop",
    "evidence_image",
    "export_dataset",
    "export_report",
    "get_analysis",
    "get_video",
    "list_queue",
    "media_path",
    "queue_after",
    "render_score_plot",
    "report_rows",
    "score_series",
    "still_queued",
]
