"""``find-bot model combine``: one ensemble from candidate bundles of any architecture.

The seed ensembled its two best models; FIND's candidates now differ in
architecture, input size and training (pretrained EfficientNet-Lite with
Self-Blended Images, the same with DFDC labels mixed in, the compact
Xceptions).  Averaging them would let a weak member drag the ensemble down,
so the combination is *fitted*, on validation only:

1. every member of every candidate bundle scores the validation split — the
   dataset's real and fake faces plus a self-blend of each real face (seeded,
   the same for every member), so a member earns weight by catching generic
   blending seams as well as the dataset's own fakes;
2. logistic stacking on the members' logits, weights >= 0, classes weighted
   equally (:func:`model.ensemble.fit_stacking`); members with weight 0 are
   left out of the bundle;
3. Platt recalibration of the stacked logit on the dataset's own validation
   faces (no self-blends), so a probability means what it says on footage
   like the data's (its class balance included);
4. the threshold by the false-alarm budget (or recall target) on validation
   videos, then the test split is measured once and recorded.

Everything is recorded in the manifest: every candidate with its
validation AUCs and weight, the rule, and the data.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.errors import FindError
from model.classifier import ArchSpec

log = logging.getLogger(__name__)


class CombineError(FindError):
    """The candidates given to ``model combine`` cannot be read as asked."""


@dataclass
class Candidate:
    """One model of a candidate bundle, and where it came from."""

    model: object
    spec: ArchSpec
    info: dict = field(default_factory=dict)


def parse_candidate(text: str | Path) -> tuple[str, list[int] | None]:
    """``BUNDLE`` (every member) or ``BUNDLE#I,J`` (those members, counted from 0)."""
    path, sep, picked = str(text).rpartition("#")
    if not sep:
        return str(text), None
    try:
        indices = sorted({int(part) for part in picked.split(",")})
    except ValueError:
        indices = []
    if not indices or min(indices) < 0:
        raise CombineError(f"{text}: after '#' give member numbers such as #2,3")
    return path, indices


def _picked(text: str | Path):
    """The bundle named by ``BUNDLE`` or ``BUNDLE#I,J`` and the member indices it stands for."""
    from model.bundle import load_bundle

    path, picked = parse_candidate(text)
    bundle = load_bundle(path)
    count = len(bundle.manifest["models"])
    if picked and picked[-1] >= count:
        raise CombineError(f"{text}: the bundle has members 0 to {count - 1}")
    return bundle, picked if picked is not None else list(range(count))


def _origin(bundle, index: int) -> tuple[str | None, dict]:
    """Member ``index``'s training mode and where its weights started: its own manifest
    entry's, else its bundle's training record (older bundles state them once for all)."""
    entry = bundle.manifest["models"][index]
    training = bundle.manifest.get("training") or {}
    modes = training.get("modes") or []
    mode = entry.get("mode") or (modes[index] if index < len(modes) else None)
    start = (
        entry.get("initial_weights")
        or training.get("initial_weights")
        or {"weights": "random (seeded)"}
    )
    return mode, start


def load_candidates(paths: list[str | Path]) -> tuple[list[Candidate], list[dict]]:
    """The members of every bundle at ``paths`` (``BUNDLE#I,J``: only those), and manifests.

    A member that was itself combined keeps its recorded candidate name and
    mode, so re-combining a shipped bundle's members says where they came from.
    """
    candidates, manifests = [], []
    for text in paths:
        bundle, chosen = _picked(text)
        manifests.append(bundle.manifest)
        members = bundle.ensemble().members
        trained_modes = (bundle.manifest.get("training") or {}).get("modes") or []
        for index in chosen:
            entry = bundle.manifest["models"][index]
            mode, start = _origin(bundle, index)
            candidates.append(
                Candidate(
                    members[index].model,
                    members[index].spec,
                    {
                        "candidate": entry.get("candidate")
                        or f"{bundle.id} {bundle.version} model {index}"
                        + (f" ({trained_modes[index]})" if index < len(trained_modes) else ""),
                        "mode": mode,
                        "initial_weights": start,
                    },
                )
            )
    return candidates, manifests


def join_bundles(paths: list[str | Path], out: str | Path, *, name: str = "find-joined") -> Path:
    """One bundle holding the members of several (``BUNDLE#I,J``: only those), unfitted.

    Why: a recipe that fits its own heads, stacking and threshold on top
    (:mod:`model.training.probe`) starts from bodies trained in different runs: a new
    Lite0 beside earlier Xceptions.  Each member keeps its manifest entry (mode, where its
    weights started, what it learnt) plus ``joined_from`` (the bundle and member it was);
    the joined bundle averages them at threshold 0.5 and says it is unfitted: a base for
    fitting, not a bundle to ship.
    """
    from model.bundle import WRITTEN_FIELDS, write_bundle

    models, specs, info, sources = [], [], [], []
    for text in paths:
        bundle, chosen = _picked(text)
        members = bundle.ensemble().members
        for index in chosen:
            entry = {
                k: v for k, v in bundle.manifest["models"][index].items() if k not in WRITTEN_FIELDS
            }
            entry["mode"], entry["initial_weights"] = _origin(bundle, index)
            entry["joined_from"] = entry.get("joined_from") or (
                f"{bundle.id} {bundle.version} model {index}"
            )
            models.append(members[index].model)
            specs.append(members[index].spec)
            info.append(entry)
        training = bundle.manifest.get("training") or {}
        sources.append(
            {"bundle": f"{bundle.id} {bundle.version}", "members": chosen, "training": training}
        )
    terms = next((s["training"].get("terms") for s in sources if s["training"].get("terms")), None)
    return write_bundle(
        Path(out),
        models,
        specs,
        threshold=0.5,
        name=name,
        version=_dt.date.today().isoformat(),
        training={"joined": sources, "terms": terms, "fitted": False},
        metrics={},
        member_info=info,
    )


def member_logits(
    candidates: list[Candidate], items, refs, *, seed: int, self_blends: bool, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits ``[members, N]``, labels and video ids of ``refs`` (plus self-blends if asked)."""
    from model.training.batches import CropBatches
    from model.training.train import collect_logits

    rows, labels, videos = [], None, None
    for candidate in candidates:
        batches = CropBatches(
            items,
            refs,
            batch_size=batch_size,
            seed=seed,
            shuffle=False,
            sbi_mix=self_blends,
            size=candidate.spec.input_size,
            preprocess_fn=candidate.spec.preprocess,
        )
        logits, y, v = collect_logits([candidate.model], batches)
        rows.append(logits[0])
        if labels is None:
            labels, videos = y, v
        elif not np.array_equal(labels, y):  # pragma: no cover - same refs, same order
            raise RuntimeError("members saw different validation labels")
    assert labels is not None and videos is not None
    return np.stack(rows), labels, videos


def recalibrate(combiner, logits: np.ndarray, labels: np.ndarray):
    """Platt-scale a stacking combiner on ``labels``: ``sigmoid(a * (b0 + w.z) + c)``, a > 0."""
    from model.ensemble import StackingCombiner, fit_stacking

    stacked = combiner.bias + np.asarray(combiner.weights) @ logits
    platt = fit_stacking(stacked[None, :], labels, l2=0.0, balanced=False)
    scale = platt.weights[0]
    return StackingCombiner(
        tuple(scale * w for w in combiner.weights), scale * combiner.bias + platt.bias
    ), {"scale": scale, "offset": platt.bias}


def combine(
    bundles: list[str | Path],
    datasets: list[str],
    out: str | Path,
    *,
    name: str,
    version: str = "",
    cache_dir: str | None = None,
    cache_crop_size: int | None = None,
    max_false_alarm_rate: float | None = 0.05,
    target_recall: float = 0.9,
    seed: int = 0,
    terms: str = "",
) -> tuple[Path, dict]:
    """Fit the ensemble of ``bundles``' members on ``datasets``' validation split; write it."""
    from model.bundle import write_bundle
    from model.calibration import choose_threshold
    from model.ensemble import StackingCombiner, fit_stacking
    from model.training.metrics import roc_auc
    from model.training.train import (
        TrainConfig,
        level_metrics,
        prepare_data,
        video_level,
    )

    candidates, manifests = load_candidates(bundles)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        datasets=datasets,
        out=str(out),
        cache_dir=cache_dir,
        cache_crop_size=cache_crop_size,
        seed=seed,
        verbose=2,
    )
    largest = max(c.spec.input_size for c in candidates)
    data = prepare_data(config, ArchSpec("efficientnet_lite0", largest), out)
    val_refs, test_refs = data.refs["val"], data.refs["test"]
    if {r.label for r in val_refs} != {0, 1}:
        raise ValueError("the validation split needs real and fake faces to fit an ensemble")

    broad = member_logits(candidates, data.items, val_refs, seed=seed + 10_000, self_blends=True)
    # The plain validation faces are the broad pass without its self-blends (one pass, not two).
    own = np.array([not v.startswith("sbi:") for v in broad[2]])
    plain = (broad[0][:, own], broad[1][own], [v for v, k in zip(broad[2], own, strict=True) if k])
    stacking = fit_stacking(broad[0], broad[1])
    report = []
    for i, candidate in enumerate(candidates):
        report.append(
            {
                **candidate.info,
                "architecture": candidate.spec.to_dict(),
                "val_auc": roc_auc(plain[1], plain[0][i]),
                "val_auc_with_self_blends": roc_auc(broad[1], broad[0][i]),
                "stacking_weight": stacking.weights[i],
            }
        )
        log.info("candidate %s: %s", i, report[-1])
    kept = [i for i, w in enumerate(stacking.weights) if w > 0]
    kept_stacking = StackingCombiner(tuple(stacking.weights[i] for i in kept), stacking.bias)
    combiner, platt = recalibrate(kept_stacking, plain[0][kept], plain[1])
    for entry in report:  # the weight the bundle uses (after Platt), as each member records it
        entry["fitted_weight"] = entry["stacking_weight"]
        entry["stacking_weight"] = platt["scale"] * entry["fitted_weight"]

    val_probs = combiner(plain[0][kept])
    _, video_labels, video_scores = video_level(plain[2], plain[1], val_probs)
    threshold, threshold_rule = choose_threshold(
        video_labels, video_scores, target_recall, max_false_alarm_rate
    )
    metrics = {"validation": level_metrics(plain[2], plain[1], val_probs, threshold)}
    metrics["validation_with_self_blends"] = {
        "roc_auc": roc_auc(broad[1], combiner(broad[0][kept]))
    }
    if test_refs:
        kept_candidates = [candidates[i] for i in kept]
        test = member_logits(kept_candidates, data.items, test_refs, seed=0, self_blends=False)
        metrics["test"] = level_metrics(test[2], test[1], combiner(test[0]), threshold)
    training = {
        "datasets": datasets,
        "terms": terms or None,
        "splits": data.split.report,
        "curation": data.curation,
        "ensemble_rule": (
            "logistic stacking of the members' logits (weights >= 0, classes balanced) on "
            "validation faces plus a self-blend of each real validation face; members with "
            "weight 0 left out; then Platt recalibration on the validation faces alone"
        ),
        "platt": platt,
        "threshold_rule": threshold_rule,
        "candidates": report,
        "kept": kept,
        "source_bundles": [
            {"name": m.get("name"), "version": m.get("version"), "training": m.get("training")}
            for m in manifests
        ],
    }
    member_info = [
        {**candidates[i].info, "stacking_weight": combiner.weights[j]} for j, i in enumerate(kept)
    ]
    path = write_bundle(
        out / "bundle",
        [candidates[i].model for i in kept],
        [candidates[i].spec for i in kept],
        threshold=float(np.clip(threshold, 0.0, 1.0)),
        name=name,
        version=version or _dt.date.today().isoformat(),
        training=training,
        metrics=metrics,
        combiner=combiner.to_dict(),
        member_info=member_info,
    )
    return path, {"candidates": report, "kept": kept, "metrics": metrics, "threshold": threshold}
