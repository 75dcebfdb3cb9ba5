"""Optional Prometheus endpoint (``FIND_METRICS_PORT``), bound to 127.0.0.1.

Two kinds of numbers:

* pipeline-wide gauges (videos per state, quota used today) are read from the
  database at scrape time, so every daemon reports the same truth and nothing
  drifts after a restart;
* per-process counters and histograms (stage latency, outcomes, errors by
  kind) are recorded by the worker threads of this process.  Sum them across
  processes in PromQL.

Nothing here is imported unless metrics are used; ``observe_stage`` is cheap
and safe to call when no server runs (it records into a private registry).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.logs import log_event
from bot.outage import OUTAGE
from bot.settings import Settings

log = logging.getLogger("find.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

STAGE_SECONDS = Histogram(
    "find_stage_seconds",
    "Time spent in a stage handler per video (download, analyse), by outcome",
    ["stage", "outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
STAGE_ERRORS = Counter(
    "find_stage_errors",
    "Stage failures by stage and kind (network, removed, decode, internal, ...)",
    ["stage", "kind"],
    registry=REGISTRY,
)


def observe_stage(stage: str, outcome: str, kind: str | None, seconds: float) -> None:
    """Record one stage run (the daemon's worker threads call this)."""
    STAGE_SECONDS.labels(stage=stage, outcome=outcome).observe(seconds)
    if outcome != "ok":
        STAGE_ERRORS.labels(stage=stage, kind=kind or "unknown").inc()


class DatabaseCollector(Collector):
    """Pipeline gauges read from the database on each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> list[Any]:
        return []  # no database query at registration time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from bot.service.status import collect_status

        try:
            status = collect_status(self.settings)
        except Exception as exc:  # a scrape must not crash the daemon; report the failure
            if OUTAGE.failed(exc, where="metrics"):  # told once there; find_database_up says 0
                log.debug("metrics.scrape_failed", extra={"error": repr(exc)[:300]})
            else:
                log_event(log, "metrics.scrape_failed", logging.WARNING, error=repr(exc)[:300])
            up = GaugeMetricFamily("find_database_up", "1 if the database answered the scrape")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("find_database_up", "1 if the database answered the scrape")
        up.add_metric([], 1)
        yield up
        videos = GaugeMetricFamily("find_videos", "Videos per pipeline state", labels=["state"])
        for state, count in status["states"].items():
            videos.add_metric([state], count)
        yield videos
        queue = GaugeMetricFamily(
            "find_queue_videos", "Work queue per stage and condition", labels=["stage", "condition"]
        )
        for stage, row in status["stages"].items():
            for condition in ("ready", "in_progress", "backing_off"):
                queue.add_metric([stage, condition], row[condition])
        yield queue
        used = GaugeMetricFamily("find_quota_used_units", "YouTube API units used today (Pacific)")
        used.add_metric([], status["quota"]["used"])
        yield used
        budget = GaugeMetricFamily("find_quota_budget_units", "Daily YouTube API unit budget")
        budget.add_metric([], status["quota"]["budget"])
        yield budget
        rates = {
            "find_drift_videos_analysed": "Videos analysed in the last 7 days per channel/source",
            "find_drift_videos_flagged": "Of those, flagged for review, per channel/source",
            "find_drift_flag_rate": "Flagged / analysed over the last 7 days per channel/source",
            "find_drift_decisions": "Review decisions in the last 7 days per channel/source",
            "find_drift_dismiss_rate": "Dismissed / decisions over the last 7 days per "
            "channel/source (a high value: the channel floods the queue with false alarms)",
        }
        fields = {
            "find_drift_videos_analysed": "analysed",
            "find_drift_videos_flagged": "flagged",
            "find_drift_flag_rate": "flag_rate",
            "find_drift_decisions": "decisions",
            "find_drift_dismiss_rate": "dismiss_rate",
        }
        for metric, help_text in rates.items():
            family = GaugeMetricFamily(metric, help_text, labels=["group"])
            for row in status["drift"]:
                if row[fields[metric]] is not None:
                    family.add_metric([row["group"]], row[fields[metric]])
            yield family
        active = status["model"].get("active") or {}
        if active.get("version"):
            info = GaugeMetricFamily(
                "find_active_bundle",
                "1 for the bundle analyses use now (adapted: 1 if promoted by model adapt)",
                labels=["name", "version", "adapted"],
            )
            info.add_metric(
                [str(active["name"]), str(active["version"]), str(bool(active["adapted"])).lower()],
                1,
            )
            yield info
        workers = GaugeMetricFamily("find_workers_alive", "Daemon processes seen recently")
        workers.add_metric([], sum(1 for w in status["workers"] if w["alive"]))
        yield workers


class MetricsServer:
    """The HTTP endpoint; :meth:`shutdown` closes it (daemon shutdown and tests)."""

    def __init__(self, httpd: Any, thread: threading.Thread, collector: Collector) -> None:
        self.httpd, self.thread, self.collector = httpd, thread, collector

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        REGISTRY.unregister(self.collector)


def start_metrics_server(settings: Settings, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``/metrics`` on ``settings.metrics_port`` (loopback only: put a proxy in front)."""
    from prometheus_client import start_http_server

    collector = DatabaseCollector(settings)
    REGISTRY.register(collector)
    try:
        httpd, thread = start_http_server(settings.metrics_port or 0, addr=host, registry=REGISTRY)
    except OSError:
        REGISTRY.unregister(collector)
        raise
    log_event(log, "metrics.listening", host=host, port=httpd.server_address[1])
    return MetricsServer(httpd, thread, collector)
