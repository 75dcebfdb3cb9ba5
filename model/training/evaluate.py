"""``find-bot evaluate BUNDLE DATASET``: how good is a bundle on labelled data?

Two levels, because they answer different questions:

* **frame level** — one score per sampled frame: the largest face of the
  frame (as in training), scored by the bundle's calibrated ensemble.  It
  measures the classifier itself.
* **video level** — one score per video by the scanner's own rule
  (:mod:`model.scoring`): faces linked into tracks with
  :func:`model.tracks.build_tracks`, a track scores the mean of its top-k
  faces, a video its strongest live track (a still picture in the scene decides
  only when no live face is there).  It measures what moderators will see.
  The images of one sub-folder are taken as consecutive frames of one video;
  review-queue crops have no positions, so all crops of one video form one
  track.

Faces are detected with the scanner's detector settings (confidence 0.9,
40 px), cropped with the bundle's margin, and cached like training crops.
Files that fail to decode or show no face are listed in the report and left
out of the metrics (the scanner reports them as ``error`` / ``no_face``,
never as real or fake).

Outputs in ``--out``: ``report.json``, ``roc.png``, ``confusion.png``,
``histogram.png``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.errors import FindError
from model.training.cache import CacheConfig, CacheItem, CropCache
from model.training.datasets import Sample, load_dataset
from model.training.metrics import (
    auc_difference,
    auc_interval,
    binary_metrics,
    by_source,
    score_curves,
)

log = logging.getLogger(__name__)

#: The scanner's detector settings (``model.faces.FaceDetector`` defaults).
SCAN_MIN_CONFIDENCE = 0.9
SCAN_MIN_FACE_SIZE = 40


class EvaluationError(FindError):
    """The dataset yields nothing to evaluate, or a report to compare with is unusable."""


@dataclass
class Scores:
    """Per-level labels and scores of an evaluation, before metrics."""

    frame_labels: list[int]
    frame_scores: list[float]
    video_ids: list[str]
    video_labels: list[int]
    video_scores: list[float]
    #: Per video, ``real/<source>`` or ``fake/<source>``: the dataset's method (a
    #: generator, a manipulation, a folder's sub-folder) or else the dataset's name.
    video_sources: list[str]
    #: Per frame, the video it belongs to: the frame AUC's interval resamples whole videos.
    frame_video_ids: list[str] | None = None


def select_samples(
    dataset: str,
    split: str,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    splits_file: str | Path | None = None,
) -> list[Sample]:
    """The dataset's samples, or one split of it.

    With ``splits_file`` (a training run's ``splits.json``) the split is
    exactly the one training used, even when it trained on several datasets
    at once; otherwise the split is recomputed from ``seed`` and fractions,
    which matches training only when it used this dataset alone.
    """
    samples = load_dataset(dataset)
    if split == "all":
        return samples
    if splits_file is not None:
        try:
            keys = set(json.loads(Path(splits_file).read_text())[split])
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise EvaluationError(
                f"{splits_file}: not a training run's splits.json ({exc})"
            ) from exc
        return [s for s in samples if s.key in keys]
    from model.training.splits import split_samples

    result = split_samples(
        samples, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    return result[split]


def _video_score(
    members: list[tuple[CacheItem, np.ndarray]], min_face_px: int = 0, margin: float = 0.3
) -> float:
    """The scanner's video score (``model.scoring``): the strongest track's top-k mean.

    ``members`` are the cache items of one video with their per-face
    probabilities: one item for a video file, or the images of one
    sub-folder, taken as consecutive frames in key order.  As in the scanner,
    faces whose crop square is under ``min_face_px`` source pixels never count
    while the track has larger ones, and a track with none (``small``) gives the
    score only when every track is small; tracks the gap rule split are joined again
    (``merge_split_tracks``); a track of still pictures never outranks a live face
    (the cache marked them on the frames: ``CachedFace.static``).  The choice among
    tracks is the scanner's own (``decisive_index``, ``evidence_rank``).
    """
    from model.faces import Face, crop_box
    from model.scoring import TOP_K, counted_faces, decisive_index, evidence_rank, top_k_mean
    from model.tracks import build_tracks, merge_split_tracks

    detections: list[list[Face]] = []
    cached_of: dict[int, tuple[float, bool]] = {}  # id(face) -> (probability, static)
    for item, probabilities in sorted(members, key=lambda m: m[0].sample.key):
        positions = {frame: p for p, frame in enumerate(item.sampled_frames or [])}
        frames: list[list[Face]] = [[] for _ in positions]
        for row, cached in enumerate(item.faces):
            face = Face(box=cached.box, confidence=cached.confidence or 1.0, keypoints={})
            frames[positions[cached.frame_index]].append(face)
            cached_of[id(face)] = (float(probabilities[row]), cached.static)
        detections.extend(frames)
    summaries = []
    for track in merge_split_tracks(build_tracks(detections)):
        # A face without a box (a whole-image crop) is as large as can be: it always counts.
        sides = np.array([np.inf if f.box is None else crop_box(f, margin)[2] for f in track.faces])
        counted, small = counted_faces(sides, min_face_px)
        static = [cached_of[id(face)][1] for face in track.faces]
        summaries.append(
            {
                "score": top_k_mean([cached_of[id(track.faces[i])][0] for i in counted], TOP_K),
                "small": small,
                "static": 2 * sum(static) > len(static),  # the track the cache judged
            }
        )
    decisive = decisive_index(summaries)
    if decisive is None:  # every face too small: still ranked, as the scanner does
        decisive = min(range(len(summaries)), key=lambda n: evidence_rank(summaries[n]))
    return summaries[decisive]["score"]


def _predict_in_chunks(items: list[CacheItem], ensemble, chunk: int = 256):
    """Each item's face probabilities, predicted ``chunk`` crops at a time.

    A dataset of single crops (DFDC faces) would otherwise run the network on
    batches of one, several times slower per crop.
    """
    pending: list[tuple[CacheItem, np.ndarray]] = []
    waiting = 0

    def flush():
        nonlocal waiting
        crops = np.concatenate([c for _, c in pending])
        probabilities = ensemble.predict(crops)
        out, start = [], 0
        for _, c in pending:
            out.append(probabilities[start : start + len(c)])
            start += len(c)
        pending.clear()
        waiting = 0
        return out

    for item in items:
        crops = np.asarray(item.crops())
        pending.append((item, crops))
        waiting += len(crops)
        if waiting >= chunk:
            yield from flush()
    if pending:
        yield from flush()


def score_items(items: list[CacheItem], ensemble, min_face_px: int | None = None) -> Scores:
    """Run the ensemble over every cached face and aggregate per frame and per video
    (faces under ``min_face_px``, default the ensemble's input size, never decide)."""
    from model.scoring import TOP_K, top_k_mean

    frame_labels: list[int] = []
    frame_scores: list[float] = []
    frame_video_ids: list[str] = []
    members: dict[str, list[tuple[CacheItem, np.ndarray]]] = defaultdict(list)
    video_label: dict[str, int] = {}
    video_source: dict[str, str] = {}
    usable = [item for item in items if item.status == "ok" and item.faces]
    for item, probabilities in zip(usable, _predict_in_chunks(usable, ensemble), strict=True):
        sample = item.sample
        for row, face in enumerate(item.faces):
            if face.largest:
                frame_labels.append(sample.label)
                frame_scores.append(float(probabilities[row]))
                frame_video_ids.append(sample.video_id)
        video_label[sample.video_id] = sample.label
        video_source[sample.video_id] = source_name(sample)
        members[sample.video_id].append((item, probabilities))
    videos: dict[str, float] = {}
    for video_id, group in members.items():
        if group[0][0].sample.media == "crop":  # no positions: one track per video
            videos[video_id] = top_k_mean(np.concatenate([p for _, p in group]), TOP_K)
        else:
            videos[video_id] = _video_score(
                group, ensemble.input_size if min_face_px is None else min_face_px
            )
    ids = sorted(videos)
    return Scores(
        frame_labels=frame_labels,
        frame_scores=frame_scores,
        video_ids=ids,
        video_labels=[video_label[v] for v in ids],
        video_scores=[videos[v] for v in ids],
        video_sources=[video_source[v] for v in ids],
        frame_video_ids=frame_video_ids,
    )


def source_name(sample: Sample) -> str:
    """``real/<source>`` or ``fake/<source>``: what a per-source breakdown groups by."""
    return f"{'fake' if sample.label else 'real'}/{sample.method or sample.dataset}"


def build_report(scores: Scores, threshold: float) -> dict:
    """Frame- and video-level metrics at ``threshold`` (the evaluation's JSON core)."""
    frame = binary_metrics(scores.frame_labels, scores.frame_scores, threshold)
    frame["roc_auc_ci95"] = auc_interval(
        scores.frame_labels, scores.frame_scores, groups=scores.frame_video_ids
    )
    video = binary_metrics(scores.video_labels, scores.video_scores, threshold)
    video["roc_auc_ci95"] = auc_interval(scores.video_labels, scores.video_scores)
    return {
        "threshold": threshold,
        "frame_level": frame,
        "video_level": video,
        "video_by_source": by_source(
            scores.video_labels, scores.video_scores, scores.video_sources, threshold
        ),
        # ROC points and score histograms per level: what the docs' plots are drawn from
        "curves": {
            "frame_level": score_curves(scores.frame_labels, scores.frame_scores),
            "video_level": score_curves(scores.video_labels, scores.video_scores),
        },
        "videos": [
            {"video_id": v, "label": int(y), "score": round(float(s), 6), "source": source}
            for v, y, s, source in zip(
                scores.video_ids,
                scores.video_labels,
                scores.video_scores,
                scores.video_sources,
                strict=True,
            )
        ],
    }


def compare_reports(report: dict, baseline: dict) -> dict:
    """``report``'s video ranking against ``baseline``'s on the videos both scored: AUC,
    baseline AUC, difference and its paired bootstrap interval, for all videos and for
    each fake source against every real video (``auc_difference``).

    Why: whether a candidate beats the shipped bundle is decided on small sets (79 xval
    videos); the AUCs' own intervals overlap for any two sensible detectors, the paired
    difference says whether the gap is more than the draw of those videos.
    """
    here = {v["video_id"]: v for v in report.get("videos") or []}
    there = {}
    for video in baseline.get("videos") or []:
        if not isinstance(video, dict) or not {"video_id", "label", "score"} <= video.keys():
            raise EvaluationError("the baseline report's videos lack video_id, label or score")
        number = video["score"]
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise EvaluationError(
                f"{video['video_id']}: the baseline report's score {number!r} is not a number"
            )
        there[video["video_id"]] = video
    shared = sorted(here.keys() & there.keys())
    if not shared:
        raise EvaluationError(
            "the baseline report scored none of these videos; compare evaluations of the "
            "same dataset"
        )
    for video_id in shared:
        if int(there[video_id]["label"]) != int(here[video_id]["label"]):
            raise EvaluationError(
                f"{video_id}: labelled {there[video_id]['label']} in the baseline report and "
                f"{here[video_id]['label']} here; compare evaluations of the same dataset"
            )
    labels = np.array([here[v]["label"] for v in shared])
    scores = np.array([here[v]["score"] for v in shared], dtype=np.float64)
    base = np.array([float(there[v]["score"]) for v in shared])
    sources = np.array([here[v].get("source", "") for v in shared], dtype=object)
    by_source = {}
    for name in sorted({s for s, y in zip(sources, labels, strict=True) if y == 1}):
        keep = (labels == 0) | (sources == name)
        by_source[name] = auc_difference(labels[keep], scores[keep], base[keep])
    return {
        "bundle": baseline.get("bundle"),
        "videos": len(shared),
        "only_here": len(here) - len(shared),
        "only_in_baseline": len(there) - len(shared),
        "video_level": auc_difference(labels, scores, base),
        "video_by_source": by_source,
    }


def write_plots(out: Path, scores: Scores, threshold: float) -> list[str]:
    from model.training.plots import confusion_plot, histogram_plot, roc_plot

    levels = {
        "frame": (np.asarray(scores.frame_labels), np.asarray(scores.frame_scores)),
        "video": (np.asarray(scores.video_labels), np.asarray(scores.video_scores)),
    }
    matrices = {
        name: binary_metrics(labels, values, threshold)["confusion"]
        for name, (labels, values) in levels.items()
    }
    paths = [
        roc_plot(out / "roc.png", levels),
        confusion_plot(out / "confusion.png", matrices),
        histogram_plot(out / "histogram.png", levels, threshold),
    ]
    return [p.name for p in paths]


def evaluate(
    bundle_path: str | Path,
    dataset: str,
    out: str | Path,
    *,
    split: str = "all",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    frames: int = 32,
    threshold: float | None = None,
    cache_dir: str | Path | None = None,
    splits_file: str | Path | None = None,
    verbose: int = 1,
    record: str | None = None,
    against: str | Path | None = None,
) -> dict:
    """Evaluate a bundle on a dataset; write the report and plots to ``out``; return the report.

    With ``record``, the summary is also stored in the bundle's manifest under that name;
    with ``against`` (another evaluation's report.json), the report also holds the paired
    comparison with it (``compare_reports``, key ``against``).
    """
    from model.bundle import load_bundle

    baseline = read_report(against) if against is not None else None
    bundle = load_bundle(bundle_path)
    samples = select_samples(
        dataset,
        split,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        splits_file=splits_file,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = CropCache(
        Path(cache_dir) if cache_dir else out / "cache",
        CacheConfig(
            crop_size=bundle.input_size,
            margin=bundle.crop_margin,
            frames_per_video=frames,
            min_confidence=SCAN_MIN_CONFIDENCE,
            min_face_size=SCAN_MIN_FACE_SIZE,
        ),
    )
    progress = None
    if verbose:
        from bot.terminal import progress_bar  # a bar only on a terminal

        progress = lambda seq: progress_bar(seq, desc="face crops", unit="item")  # noqa: E731
    items = cache.build(samples, progress=progress)
    scores = score_items(items, bundle.ensemble(), bundle.min_face_px)
    if not scores.frame_labels:
        raise EvaluationError(
            f"{dataset}: no face found in any of its {len(samples)} files (split {split!r}); "
            "check the dataset and --split"
        )
    chosen = bundle.threshold if threshold is None else float(threshold)
    report = {
        "bundle": {"path": str(bundle.path), "name": bundle.id, "version": bundle.version},
        "dataset": str(dataset),
        "split": split,
        "samples": len(samples),
        "skipped": [
            {"key": i.sample.key, "status": i.status, "error": i.error}
            for i in items
            if i.status != "ok" or not i.faces
        ],
        **build_report(scores, chosen),
    }
    report["plots"] = write_plots(out, scores, chosen)
    if baseline is not None:
        report["against"] = {"report": str(against), **compare_reports(report, baseline)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if record:
        record_evaluation(bundle.path, record, report)
    return report


def read_report(path: str | Path) -> dict:
    """An evaluation's report.json (``--against``), read before the evaluation runs so a
    wrong path fails in a second, not after the crops are cut."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvaluationError(
            f"{path}: no such report; give the report.json an earlier find-bot evaluate wrote"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(
            f"{path}: cannot read it as an evaluation report ({type(exc).__name__}); give the "
            "report.json an earlier find-bot evaluate wrote"
        ) from None
    if not isinstance(report, dict) or not isinstance(report.get("videos"), list):
        raise EvaluationError(
            f"{path}: not an evaluation report (no per-video scores); give the report.json "
            "an earlier find-bot evaluate wrote"
        )
    return report


def record_evaluation(bundle_path: str | Path, name: str, report: dict) -> None:
    """Keep an evaluation's summary in the bundle manifest under ``evaluations.<name>``.

    The numbers a bundle is judged by then travel with it (``find-bot model
    info`` shows them): the dataset, split, threshold and both levels'
    metrics, and the ROC points and score histograms of both levels (``curves``, what
    ``make docs-figures`` plots), without the per-video scores.
    """
    from model.bundle import read_manifest, update_manifest

    summary = {
        key: report[key]
        for key in ("dataset", "split", "samples", "threshold", "frame_level", "video_level")
    }
    if "video_by_source" in report:
        summary["video_by_source"] = report["video_by_source"]
    if "curves" in report:
        summary["curves"] = report["curves"]
    summary["skipped"] = len(report["skipped"])
    evaluations = dict(read_manifest(bundle_path).get("evaluations") or {})
    evaluations[name] = summary
    update_manifest(bundle_path, {"evaluations": evaluations})
