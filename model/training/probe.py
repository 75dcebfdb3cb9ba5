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
    everything = np.concatenate(crops)
    features = []
    for start in range(0, len(everything), 256):
        features.append(ensemble.head_inputs(everything[start : start + 256])[member])
    video = np.concatenate([np.full(len(c), i, np.int64) for i, c in enumerate(crops)])
    return FaceTable(np.concatenate(features).astype(np.float32), video, kept)


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


def video_scores(table: FaceTable, face_scores: np.ndarray) -> np.ndarray:
    """The scanner's video score per video (``model.training.evaluate``'s track rule)."""
    from model.training.evaluate import _video_score

    return np.array(
        [
            _video_score([(item, face_scores[table.video == i])])
            for i, item in enumerate(table.videos)
        ]
    )
