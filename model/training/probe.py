"""Probe members: a trained body with a new head, fitted on features in seconds.

Why this exists.  ``talking-heads/`` holds the only generated talking heads we
have: 30 clips from 15 generators.  Fine-tuning a network on 30 clips on two
CPU cores costs hours and memorises the clips; a *linear head* on a frozen
body's features costs seconds, cannot memorise much, and can be refitted once
per held-out generator, which is what tells us whether it learnt "generated"
or "this generator" (leave-one-generator-out).  UnivFD (Ojha et al. 2023) and
GenD showed that a frozen body with a small trained part transfers across
generators better than a fully fine-tuned one.

A probe member is an ordinary bundle member: the body's weights with its
``logit`` layer replaced (``model.adapt.install_heads``), so scanning, stacking,
``model adapt`` and ``model info`` treat it like any other.

The pieces, in pipeline order:

* :func:`face_features` — what a body's ``logit`` layer reads, per face, for
  cached crops (the scanner's framing, ``model.training.cache``);
* :func:`fit_head` — balanced, L2-regularised logistic regression in which every
  *video* weighs the same, however many faces it has;
* :func:`generator_folds` / :func:`cross_fit` — out-of-fold scores with whole
  people and whole generators held out together;
* :mod:`model.calibration`'s per-source threshold turns validation scores into
  a threshold that holds on every real source, not only the largest.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.training.cache import CacheItem


@dataclass
class FaceTable:
    """Features of every cached face of some videos, and which video each face belongs to."""

    features: np.ndarray  # [faces, D]
    video: np.ndarray  # [faces] index into ``videos``
    videos: list[CacheItem] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        """Per-video labels (1 = fake)."""
        return np.array([item.sample.label for item in self.videos], np.int64)

    def subset(self, keep: Sequence[int]) -> FaceTable:
        """The faces of videos ``keep`` (indices into ``videos``), re-indexed."""
        keep = list(keep)
        remap = {old: new for new, old in enumerate(keep)}
        mask = np.isin(self.video, keep)
        return FaceTable(
            self.features[mask],
            np.array([remap[v] for v in self.video[mask]], np.int64),
            [self.videos[i] for i in keep],
        )


def face_features(ensemble, member: int, items: Sequence[CacheItem]) -> FaceTable:
    """What member ``member``'s head reads for every face of ``items`` (videos without faces
    are left out: they have nothing to score)."""
    kept = [item for item in items if item.status == "ok" and item.faces]
    crops = [np.asarray(item.crops()) for item in kept]
    if not kept:
        return FaceTable(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), [])
    features = ensemble.member_features(member, np.concatenate(crops))
    video = np.concatenate([np.full(len(c), i, np.int64) for i, c in enumerate(crops)])
    return FaceTable(features.astype(np.float32), video, kept)


def fit_head(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    l2: float = 1e-2,
) -> tuple[np.ndarray, float]:
    """Logistic regression ``sigmoid(x . k + b)`` by weighted log loss plus ``l2 * |k|^2``.

    ``weights`` are per face; callers make every video (and each class) weigh the
    same.  Features are standardised for the fit and the kernel mapped back, so
    ``l2`` means the same for any body.  Returns the kernel (``[D]``) and bias in
    the raw feature units the member's ``logit`` layer reads.
    """
    from scipy.optimize import minimize

    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        kernel, bias = params[:-1], params[-1]
        logit = z @ kernel + bias
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))
        eps = 1e-12
        value = -(w * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum()
        g = w * (p - y)
        grad = np.append(z.T @ g + 2 * l2 * kernel, g.sum())
        return value + l2 * float(kernel @ kernel), grad

    start = np.zeros(z.shape[1] + 1)
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    kernel = result.x[:-1] / scale
    return kernel, float(result.x[-1] - kernel @ mean)


def video_weights(table: FaceTable, source_weight: dict[str, float] | None = None) -> np.ndarray:
    """Per-face weights: each video weighs the same, each class in each source weighs the same
    (times ``source_weight[dataset]``), and both classes weigh the same overall."""
    source_weight = source_weight or {}
    faces_per_video = np.bincount(table.video, minlength=len(table.videos)).astype(np.float64)
    per_video = 1.0 / np.maximum(faces_per_video, 1)
    strata: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, item in enumerate(table.videos):
        strata[(item.sample.dataset, item.sample.label)].append(i)
    video_weight = np.zeros(len(table.videos))
    for (dataset, _), members in strata.items():
        video_weight[members] = source_weight.get(dataset, 1.0) / len(members)
    labels = table.labels
    for label in (0, 1):
        total = video_weight[labels == label].sum()
        if total > 0:
            video_weight[labels == label] *= 0.5 / total
    return (video_weight * per_video)[table.video]


def face_labels(table: FaceTable) -> np.ndarray:
    return table.labels[table.video]


def generator_folds(items: Sequence[CacheItem], seed: int = 0) -> dict[str, list[int]]:
    """Leave-one-generator-out folds of ``talkingheads`` items, keyed by the generators held out.

    People and generators are merged with union-find (a person shown by two generators
    joins them; a real person beside their own fake joins that generator), so a fold
    holds out whole people *and* whole generators.  Real people who appear in no fake
    are dealt round-robin (in an order set by ``seed``) over the folds, so
    every fold also holds out some unrelated real people.
    """
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: str, b: str) -> None:
        ra, rb = sorted((find(a), find(b)))
        parent[rb] = ra

    for item in items:
        ids = item.sample.identities
        for other in ids[1:]:
            union(ids[0], other)
    fake_roots = {find(i.sample.identities[0]) for i in items if i.sample.label == 1}
    roots = sorted(fake_roots)
    folds: dict[str, list[int]] = defaultdict(list)
    name_of = {}
    for root in roots:
        fakes = [i for i in items if i.sample.label == 1]
        methods = sorted({i.sample.method for i in fakes if find(i.sample.identities[0]) == root})
        name_of[root] = " & ".join(methods)
    # Unrelated real people, in an order fixed by a hash of ``seed`` and the person, are
    # dealt round-robin: every fold then holds out some real people too.
    unrelated = sorted(
        {find(i.sample.identities[0]) for i in items} - fake_roots,
        key=lambda r: hashlib.sha256(f"{seed}:{r}".encode()).hexdigest(),
    )
    home = {root: root for root in roots}
    home.update({root: roots[n % len(roots)] for n, root in enumerate(unrelated)})
    for index, item in enumerate(items):
        folds[name_of[home[find(item.sample.identities[0])]]].append(index)
    return dict(folds)


def self_blends(
    items: Sequence[CacheItem], per_item: int, seed: int = 0, dataset: str = "self-blend"
) -> tuple[np.ndarray, list[CacheItem]]:
    """Seeded self-blends of up to ``per_item`` faces of each real item (``model.training.sbi``).

    For the stacking pool: without fakes that look like face swaps, a pool of talking heads
    and their real people would weigh a member that learnt blending seams down to nothing.
    Returns the blended crops and one stand-in item per blend (label fake, in ``dataset``:
    each blend weighs as one video, its dataset a stratum of :func:`video_weights`).
    """
    import dataclasses

    from model.training.landmarks import face_mesh
    from model.training.sbi import self_blend

    crops, stand_ins = [], []
    for n, item in enumerate(i for i in items if i.sample.label == 0 and i.faces):
        pixels = np.asarray(item.crops())
        rng = np.random.default_rng([seed, n])
        rows = rng.choice(len(item.faces), min(per_item, len(item.faces)), replace=False)
        for row in sorted(int(r) for r in rows):
            crop = np.ascontiguousarray(pixels[row])
            found = face_mesh()(crop)
            landmarks = found.points if found.trusted else None
            crops.append(self_blend(crop, item.faces[row].keypoints, rng, landmarks).image)
            sample = dataclasses.replace(
                item.sample, label=1, dataset=dataset, key=f"sbi:{item.sample.key}#{row}"
            )
            stand_ins.append(dataclasses.replace(item, sample=sample))
    return np.stack(crops), stand_ins


def blend_table(ensemble, member: int, crops: np.ndarray, stand_ins: list[CacheItem]) -> FaceTable:
    """Features of self-blended crops, one "video" per blend."""
    features = ensemble.member_features(member, crops)
    return FaceTable(features.astype(np.float32), np.arange(len(crops)), list(stand_ins))


def cross_fit(
    held: FaceTable,
    folds: dict[str, list[int]],
    always: FaceTable | None,
    *,
    l2: float,
    source_weight: dict[str, float] | None = None,
) -> np.ndarray:
    """Out-of-fold face logits for ``held``: for each fold, a head fitted on the other folds
    plus ``always`` (material never held out), applied to the fold's faces."""
    out = np.zeros(len(held.features))
    for indices in folds.values():
        train = held.subset([i for i in range(len(held.videos)) if i not in set(indices)])
        table = concat(train, always) if always is not None else train
        kernel, bias = fit_head(
            table.features, face_labels(table), video_weights(table, source_weight), l2=l2
        )
        mask = np.isin(held.video, indices)
        out[mask] = held.features[mask] @ kernel + bias
    return out


def concat(*tables: FaceTable) -> FaceTable:
    """One table of several (videos re-indexed)."""
    features, video, videos = [], [], []
    for table in tables:
        features.append(table.features)
        video.append(table.video + len(videos))
        videos.extend(table.videos)
    return FaceTable(np.concatenate(features), np.concatenate(video), videos)


def video_scores(table: FaceTable, face_scores: np.ndarray, min_face_px: int) -> np.ndarray:
    """The scanner's video score per video (``model.training.evaluate``'s track rule;
    ``min_face_px``: the bundle's, as the scanner uses it)."""
    from model.training.evaluate import _video_score

    return np.array(
        [
            _video_score([(item, face_scores[table.video == i])], min_face_px)
            for i, item in enumerate(table.videos)
        ]
    )


# --------------------------------------------------------------------------- the recipe

#: Where each part of the shared data serves (docs/training.md § 10, "2026-12-07").
#: ``fit``: the heads learn from it; ``val``: stacking weights and the threshold;
#: the talking-heads clips serve both, out of fold (a clip is scored by heads that
#: never saw its person or its generator).
TALKING_HEADS = "talking-heads"
DFDC_TRAIN_STRIDE = 25  # 1 in 25 DFDC training crops: ~1,200, enough to keep DFDC in view
DFDC_VAL_STRIDE = 5  # 1 in 5 validation crops: ~930 faces, ~320 real "videos"
BLENDS_PER_ITEM = 4  # self-blends per held-out real clip or portrait in the stacking pool


@dataclass
class Recipe:
    """What :func:`build` needs: the base bundle, which members keep their heads and which
    bodies get a probe head, and the data."""

    base: Path
    data: Path
    photos_train: Path
    photos_val: Path
    out: Path
    cache_dir: Path
    keep: list[int]
    probe: list[int]
    l2: float = 1.0
    budget: float = 0.05
    dfdc_weight: float = 0.5
    #: DFDC validation's weight in the stacking pool, beside the talking heads and the
    #: self-blends and portraits (1: a source like the others; 0: stacking on transfer alone).
    dfdc_stack_weight: float = 1.0
    name: str = "find-default"
    version: str = ""
    terms: str = ""
    #: The smallest crop square that may decide (``ModelBundle.min_face_px``); None: the
    #: base bundle's.  Video scores here (stacking pool, threshold, LOGO) use it too.
    min_face_px: int | None = None
    #: Self-blends of each real face of the fit set added to it as fakes (0: none).  Without
    #: them the fit set's fakes are the talking heads and DFDC's swaps only, and its crisp
    #: real footage (GRID/LRS2/MEAD, portraits) is never fake: a head can then learn "crisp
    #: studio face = real" instead of what was done to a face.
    fit_blends: int = 0


def _items(cache, spec: str, split: str | None = None, stride: int = 1) -> list[CacheItem]:
    from model.training.datasets import load_dataset

    samples = load_dataset(spec)
    if split is not None:
        samples = [s for s in samples if s.split == split][::stride]
    return cache.build(samples)


def _stored_features(path: Path, ensemble, member: int, items: list[CacheItem]) -> FaceTable:
    """:func:`face_features`, kept on disk: refitting heads with other settings (``--l2``,
    ``--budget``) then costs seconds, not another pass of the bodies."""
    kept = [item for item in items if item.status == "ok" and item.faces]
    keys = np.array([item.sample.key for item in kept])
    if path.is_file():
        stored = np.load(path)
        if np.array_equal(stored["keys"], keys):
            return FaceTable(stored["features"], stored["video"], kept)
    table = face_features(ensemble, member, kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=table.features, video=table.video, keys=keys)
    return table


#: The dataset name of the fit set's self-blends: a stratum of its own in :func:`video_weights`
#: (weighing as much as the talking heads' fakes), apart from the stacking pool's self-blends.
FIT_BLENDS = "fit-self-blend"


def _source_of(item: CacheItem) -> str:
    """The real source an item counts under in the per-source threshold."""
    sample = item.sample
    if sample.dataset == "talkingheads":
        return "talking-heads"
    if sample.dataset == "faces":
        return "dfdc"
    return f"{sample.dataset}:{Path(str(sample.key).split(':', 1)[1]).parts[0]}"


def build(recipe: Recipe, log=print) -> tuple[Path, dict]:
    """Fit the probe heads, the stacking and the per-source threshold; write the bundle."""
    import datetime as _dt

    from model.bundle import WRITTEN_FIELDS, load_bundle, read_manifest, write_bundle
    from model.calibration import per_source_threshold
    from model.classifier import build_classifier
    from model.ensemble import fit_stacking
    from model.training.cache import CacheConfig, CropCache
    from model.training.combine import recalibrate
    from model.training.evaluate import SCAN_MIN_CONFIDENCE, SCAN_MIN_FACE_SIZE
    from model.training.metrics import auc_interval, format_interval, roc_auc

    base = load_bundle(recipe.base)
    manifest = read_manifest(recipe.base)
    ensemble = base.ensemble()
    min_face_px = recipe.min_face_px or base.min_face_px
    cache = CropCache(
        recipe.cache_dir,
        CacheConfig(
            crop_size=base.input_size,
            margin=base.crop_margin,
            frames_per_video=32,
            min_confidence=SCAN_MIN_CONFIDENCE,
            min_face_size=SCAN_MIN_FACE_SIZE,
        ),
    )
    data = recipe.data
    log("face crops: talking heads, DFDC, real footage, portraits")
    heads_items = _items(cache, f"talkingheads:{data / TALKING_HEADS}")
    fit_items = (
        _items(cache, f"faces:{data / 'dfdc-faces'}", "train", DFDC_TRAIN_STRIDE)
        + [
            i
            for s in ("grid", "lrs2", "mead")
            for i in _items(cache, f"real:{data / 'real-videos' / s}")
        ]
        + _items(cache, f"real:{recipe.photos_train}")
    )
    val_items = _items(cache, f"faces:{data / 'dfdc-faces'}", "val", DFDC_VAL_STRIDE) + _items(
        cache, f"real:{recipe.photos_val}"
    )
    folds = generator_folds([i for i in heads_items if i.status == "ok" and i.faces])
    source_weight = {"faces": recipe.dfdc_weight}

    members = sorted(set(recipe.keep) | set(recipe.probe))
    columns: list[tuple[str, int]] = [("keep", m) for m in recipe.keep] + [
        ("probe", m) for m in recipe.probe
    ]
    val_logits, heads_logits, blend_logits, new_heads, logo = [], [], [], {}, {}
    tables = {}
    for m in members:
        log(f"features of member {m}")
        # The same body on the same crops has the same features, in whatever bundle.
        digest = f"{ensemble.body_digest(m)[:16]}-{cache.config.digest()[:8]}"
        tables[m] = {
            role: _stored_features(
                recipe.out / "features" / f"{digest}-{role}.npz", ensemble, m, items
            )
            for role, items in (("heads", heads_items), ("fit", fit_items), ("val", val_items))
        }
    if recipe.fit_blends:
        log(f"self-blends of the fit set's real faces ({recipe.fit_blends} per clip or portrait)")
        fit_crops, fit_stand_ins = self_blends(
            fit_items, per_item=recipe.fit_blends, seed=1, dataset=FIT_BLENDS
        )
        for m in members:
            extra = blend_table(ensemble, m, fit_crops, fit_stand_ins)
            tables[m]["fit"] = concat(tables[m]["fit"], extra)
    log("self-blends of held-out real faces (portraits, talking-heads people)")
    blend_crops, blend_items = self_blends(
        [i for i in val_items if i.sample.dataset == "real"]
        + [i for i in heads_items if i.sample.label == 0],
        per_item=BLENDS_PER_ITEM,
    )
    blends = {m: blend_table(ensemble, m, blend_crops, blend_items) for m in members}
    kept_heads = [
        (np.asarray(k, np.float64)[:, 0], float(b[0]))
        for k, b in (model.get_layer("logit").get_weights() for model in ensemble.models)
    ]
    for kind, m in columns:
        t = tables[m]
        if kind == "keep":
            kernel, bias = kept_heads[m]
            heads_logits.append(t["heads"].features @ kernel + bias)
            val_logits.append(t["val"].features @ kernel + bias)
            blend_logits.append(blends[m].features @ kernel + bias)
            continue
        # Out of fold for the talking heads (stacking, threshold, the LOGO report) ...
        oof = cross_fit(t["heads"], folds, t["fit"], l2=recipe.l2, source_weight=source_weight)
        heads_logits.append(oof)
        logo[m] = logo_report(t["heads"], oof, min_face_px)
        log(
            f"member {m} probe, leave one generator out: AUC {logo[m]['auc']:.3f} "
            f"(95 % interval {format_interval(logo[m]['auc_ci95'])})"
        )
        # ... and one head on everything for the bundle.
        everything = concat(t["heads"], t["fit"])
        kernel, bias = fit_head(
            everything.features,
            face_labels(everything),
            video_weights(everything, source_weight),
            l2=recipe.l2,
        )
        new_heads[m] = (kernel, bias)
        val_logits.append(t["val"].features @ kernel + bias)
        blend_logits.append(blends[m].features @ kernel + bias)

    # Stacking on validation: talking heads out of fold, DFDC validation, portraits and
    # self-blends of the held-out real faces; every source (and class within it) weighs
    # the same, so DFDC cannot outvote the rest.  The threshold is set on real videos.
    first = tables[members[0]]
    pool = concat(first["heads"], first["val"])
    logits = np.concatenate([np.stack(heads_logits), np.stack(val_logits)], axis=1)
    stacked = concat(pool, blends[members[0]])
    stack_logits = np.concatenate([logits, np.stack(blend_logits)], axis=1)
    stacking = fit_stacking(
        stack_logits,
        face_labels(stacked),
        sample_weight=video_weights(stacked, {"faces": recipe.dfdc_stack_weight}),
    )
    # Platt scaling on the DFDC validation faces alone (monotone: the ranking and the
    # per-source flags do not change), so a probability means what it says on footage like
    # DFDC's, its class balance included, as the 2026-12-06.2 bundle's did.
    dfdc = np.array([pool.videos[v].sample.dataset == "faces" for v in pool.video])
    stacking, platt = recalibrate(stacking, logits[:, dfdc], face_labels(pool)[dfdc])
    probs = stacking(logits)
    scores = video_scores(pool, probs, min_face_px)
    sources = np.array([_source_of(i) for i in pool.videos])
    threshold, rule = per_source_threshold(pool.labels, scores, sources, recipe.budget)
    log(f"threshold {threshold:.3f}: {rule}")
    validation = {
        name: {
            "videos": int(np.sum(sources == name)),
            "auc": roc_auc(pool.labels[sources == name], scores[sources == name])
            if len(set(pool.labels[sources == name])) == 2
            else None,
            "auc_ci95": auc_interval(pool.labels[sources == name], scores[sources == name]),
        }
        for name in sorted(set(sources))
    }
    for name, row in validation.items():
        if row["auc"] is not None:
            log(
                f"validation {name}: AUC {row['auc']:.3f} "
                f"(95 % interval {format_interval(row['auc_ci95'])})"
            )

    models, specs, info = [], [], []
    for j, (kind, m) in enumerate(columns):
        member = ensemble.members[m]
        model = build_classifier(member.spec)
        model.set_weights(member.model.get_weights())
        entry = {k: v for k, v in manifest["models"][m].items() if k not in WRITTEN_FIELDS}
        if kind == "probe":
            kernel, bias = new_heads[m]
            model.get_layer("logit").set_weights(
                [kernel.astype(np.float32)[:, None], np.array([bias], np.float32)]
            )
            description, learnt, body_of = _probed_body(manifest, m, recipe.probe)
            entry = {
                **entry,
                "mode": "probe",
                "description": description,
                "learnt": learnt,
                "probe": {
                    "body_of": body_of,
                    "body_mode": body_mode(manifest["models"][m]),
                    "l2": recipe.l2,
                    "leave_one_generator_out": logo[m],
                },
            }
        else:
            entry["learnt"] = describe_member(manifest["models"][m])
            entry["description"] = member_name(manifest, m)
        entry["stacking_weight"] = stacking.weights[j]
        models.append(model)
        specs.append(member.spec)
        info.append(entry)
    base_training = dict(manifest.get("training") or {})
    base_training.pop("fitted", None)  # a joined base was unfitted; this bundle is fitted
    training = {
        **base_training,
        "terms": recipe.terms or manifest.get("training", {}).get("terms"),
        "probe_recipe": {
            "base": [
                f"{j['bundle']} members {', '.join(map(str, j['members']))}"
                for j in base_training.get("joined", [])
            ]
            or f"{manifest.get('name')} {manifest.get('version')}",
            "kept_members": recipe.keep,
            "probed_members": recipe.probe,
            "fit": [
                "talking-heads (every generator; out of fold for stacking and threshold)",
                f"dfdc-faces/train (1 in {DFDC_TRAIN_STRIDE}, weight {recipe.dfdc_weight})",
                "real-videos grid, lrs2, mead",
                str(recipe.photos_train),
            ]
            + (
                [f"self-blends of those real faces ({recipe.fit_blends} per clip or portrait)"]
                if recipe.fit_blends
                else []
            ),
            "validation": [
                "talking-heads, out of fold (leave one generator out)",
                f"self-blends of the validation portraits and talking-heads people "
                f"({BLENDS_PER_ITEM} per clip or portrait; stacking only)",
                f"dfdc-faces/val (1 in {DFDC_VAL_STRIDE})",
                str(recipe.photos_val),
            ],
            "stacking_rule": (
                "logistic stacking of the members' logits (weights >= 0) on the validation "
                "pool, every source and class weighing the same, every video the same; then "
                "Platt scaling on the DFDC validation faces alone"
            ),
            "platt": platt,
            "dfdc_stack_weight": recipe.dfdc_stack_weight,
            "l2": recipe.l2,
        },
        "threshold_rule": rule,
    }
    metrics = {"validation_by_source": validation}
    path = write_bundle(
        recipe.out / "bundle",
        models,
        specs,
        threshold=float(np.clip(threshold, 0.0, 1.0)),
        name=recipe.name,
        version=recipe.version or _dt.date.today().isoformat(),
        training=training,
        metrics=metrics,
        combiner=stacking.to_dict(),
        member_info=info,
        min_face_px=min_face_px,
    )
    return path, {"threshold": threshold, "rule": rule, "logo": logo, "validation": validation}


#: Short names of the bodies a probe head sits on, by the body's training mode: reviewers
#: read them beside each member's score, on a phone too.
BODY_NAMES = {"sbi": "self-blend", "supervised": "DFDC", "mixed": "DFDC + SBI"}


def _probed_body(manifest: dict, index: int, probed: Sequence[int]) -> tuple[str, str, str]:
    """The name, what it learnt and the origin of a new probe head on member ``index``'s body.
    A member probed before keeps those of the body it sits on: only its head is new."""
    entry = manifest["models"][index]
    if entry.get("probe"):
        return entry["description"], entry["learnt"], entry["probe"]["body_of"]
    return (
        _probe_name(manifest, index, probed),
        f"generated talking heads: a linear head on the features of {describe_member(entry)}",
        entry.get("joined_from")
        or f"{manifest.get('name')} {manifest.get('version')} model {index}",
    )


def _probe_name(manifest: dict, index: int, probed: Sequence[int]) -> str:
    """``talking heads (self-blend body)``; with the body's input size when another probed
    body has the same training (two self-blend bodies at 160 and 224 px stay apart)."""
    modes = [body_mode(manifest["models"][m]) for m in probed]
    mode = body_mode(manifest["models"][index])
    body = BODY_NAMES.get(mode, mode)
    if modes.count(mode) > 1:
        body += f", {manifest['models'][index]['input_size']} px"
    return f"talking heads ({body} body)"


def body_mode(entry: dict) -> str:
    """How the body under a member was trained (``sbi``, ``supervised``, ``mixed``): its own
    mode, or for a probe member the mode of the body it was probed from (recorded as
    ``probe.body_mode``; read from the name of probes written before that field)."""
    probe = entry.get("probe")
    if not probe:
        return str(entry.get("mode"))
    if probe.get("body_mode"):
        return str(probe["body_mode"])
    inside = str(entry.get("description", "")).partition("(")[2].partition(" body)")[0]
    named = inside.split(",")[0]
    return next((m for m, name in BODY_NAMES.items() if name == named), str(entry.get("mode")))


def member_name(manifest: dict, index: int) -> str:
    """The short name reviewers see for member ``index`` (``model.bundle.member_names``)."""
    from model.bundle import member_names

    return member_names(manifest)[index].rstrip(" #0123456789")


def describe_member(entry: dict) -> str:
    """What a member learnt, in words a reviewer reads (``mode`` as training recorded it)."""
    mode = entry.get("mode")
    arch = entry.get("architecture", {}).get("name", "?")
    learnt = {
        "sbi": "self-blended images (blending seams of real faces)",
        "supervised": "DFDC face swaps (supervised)",
        "mixed": "DFDC face swaps and self-blended images",
    }.get(mode, entry.get("learnt") or mode or "?")
    return f"{arch} trained on {learnt}"


def logo_report(table: FaceTable, oof_logits: np.ndarray, min_face_px: int) -> dict:
    """Per generator: its clips' out-of-fold video scores ranked against every real clip's
    (each also scored out of fold); the overall AUC of the out-of-fold video scores, with
    its 95 % bootstrap interval (72 clips resolve it to about ±0.13)."""
    from model.training.metrics import auc_interval, roc_auc

    scores = video_scores(table, 1.0 / (1.0 + np.exp(-oof_logits)), min_face_px)
    labels = table.labels
    methods = np.array([item.sample.method for item in table.videos])
    reals = scores[labels == 0]
    per = {}
    for method in sorted(set(methods[labels == 1])):
        fakes = scores[(labels == 1) & (methods == method)]
        per[method] = float(
            np.mean([(f > reals).mean() + 0.5 * (f == reals).mean() for f in fakes])
        )
    return {
        "auc": roc_auc(labels, scores),
        "auc_ci95": auc_interval(labels, scores),
        "by_generator": per,
        "clips": len(labels),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    from model.training.train import _indices

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "base",
        nargs="+",
        help="the bundle whose members' bodies are used; several (BUNDLE#I,J: those members) "
        "are joined into one first",
    )
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--photos-train", type=Path, required=True)
    parser.add_argument("--photos-val", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--keep", default="0", help="members kept with their own heads")
    parser.add_argument("--probe", default="0", help="members whose bodies get a probe head")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=0.05, help="false alarms per source")
    parser.add_argument("--dfdc-weight", type=float, default=0.5)
    parser.add_argument(
        "--dfdc-stack-weight",
        type=float,
        default=1.0,
        help="DFDC validation's weight in the stacking pool (0: stack on the other sources)",
    )
    parser.add_argument(
        "--fit-blends",
        type=int,
        default=0,
        metavar="N",
        help="add N self-blends of each real clip or portrait of the fit set to it as fakes",
    )
    parser.add_argument("--name", default="find-default")
    parser.add_argument("--version", default="")
    parser.add_argument("--terms", default="")
    parser.add_argument(
        "--min-face-px",
        type=int,
        help="smallest crop square (source px) that may decide; default: the base bundle's",
    )
    args = parser.parse_args(argv)

    base = Path(args.base[0])
    if len(args.base) > 1 or "#" in args.base[0]:
        from model.training.combine import join_bundles

        base = join_bundles(args.base, args.out / "base")
    recipe = Recipe(
        base=base,
        data=args.data,
        photos_train=args.photos_train,
        photos_val=args.photos_val,
        out=args.out,
        cache_dir=args.cache_dir,
        keep=_indices(args.keep, "--keep"),
        probe=_indices(args.probe, "--probe"),
        l2=args.l2,
        budget=args.budget,
        dfdc_weight=args.dfdc_weight,
        dfdc_stack_weight=args.dfdc_stack_weight,
        name=args.name,
        version=args.version,
        terms=args.terms,
        min_face_px=args.min_face_px,
        fit_blends=args.fit_blends,
    )
    path, report = build(recipe)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"{path}: threshold {report['threshold']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
