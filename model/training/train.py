"""``find-bot train``: datasets -> face-crop cache -> candidates -> calibrated ensemble bundle.

The recipe (each step's rule is documented in docs/training.md):

1. load every dataset and split it by identity (:mod:`model.training.splits`);
2. extract face crops once into the cache (:mod:`model.training.cache`) with the
   scanner's own crop function, then drop noisy crops (:mod:`model.training.curation`);
3. train ``candidates`` classifiers that differ by seed, with augmentation
   (:mod:`model.training.augment`), optional Self-Blended Images (:mod:`model.training.sbi`),
   BCE with label smoothing or focal loss, and balanced class weights;
4. keep the ``keep`` best by validation ROC AUC, fit the temperature and the
   threshold on their validation output (:mod:`model.calibration`);
5. write the bundle, and evaluate it on the held-out test split.

Everything a run produces lives in ``--out``: ``run.json`` (the config),
``splits.json``, ``cache/``, ``candidates/<i>/`` (CSV log, per-epoch backup
for ``--resume``, best weights, result) and ``bundle/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from bot.errors import FindError
from model.calibration import (
    calibrate_temperature,
    choose_threshold,
    ensemble_probabilities,
)
from model.classifier import COMPACT_XCEPTION, FULL_XCEPTION, ArchSpec
from model.training.augment import NO_AUGMENT, AugmentConfig
from model.training.cache import CacheConfig, CacheItem, CropCache
from model.training.curation import CropRef, CurationConfig, select_crops
from model.training.datasets import Sample, load_dataset
from model.training.metrics import aggregate_by_video, binary_metrics
from model.training.splits import SplitResult, split_samples

log = logging.getLogger(__name__)


class TrainingError(FindError):
    """Training cannot proceed with the given data or output folder."""


@dataclass
class TrainConfig:
    """Every knob of a training run (saved as ``run.json``; ``--resume`` checks it)."""

    datasets: list[str]
    out: str
    #: compact | full | auto (full Xception when a GPU is visible) | an
    #: ``model.classifier.ARCHITECTURES`` name such as efficientnet_lite0.
    arch: str = "auto"
    #: Start from ImageNet weights where the architecture has them (EfficientNet-Lite).
    pretrained: bool = True
    #: A bundle whose member of the same architecture, input size and mode each
    #: candidate starts from (continue training a shipped model); None: ImageNet/random.
    init_from: str | None = None
    input_size: int | None = None  # overrides of the chosen architecture
    width: float | None = None
    middle_blocks: int | None = None
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    loss: str = "bce"  # bce | focal
    label_smoothing: float = 0.1
    focal_gamma: float = 2.0
    class_weighting: bool = True
    sbi: bool = False
    #: Per-candidate training mode, comma-separated (supervised | sbi | mixed);
    #: empty: every candidate uses ``sbi`` mode if ``--sbi``, else supervised.
    candidate_modes: str = ""
    augment: bool = True
    candidates: int = 3
    keep: int = 2
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    frames_per_video: int = 32
    min_confidence: float = 0.95
    min_face_size: int = 64
    min_crops_per_video: int = 2
    pair_diff_threshold: float = 4.0
    target_recall: float = 0.9
    #: If set, the threshold keeps validation false alarms within this share
    #: instead of reaching ``target_recall`` (see ``choose_threshold``).
    max_false_alarm_rate: float | None = None
    steps_per_epoch: int | None = None
    cache_dir: str | None = None
    #: Cache crops at this size (>= the input size) and shrink them when read,
    #: so runs of different input sizes share one face-crop cache.
    cache_crop_size: int | None = None
    name: str = "find-custom"
    version: str = ""
    deterministic: bool = True
    tensorboard: bool = False
    verbose: int = 1
    #: Train only these candidates (comma-separated indices) and stop without a
    #: bundle: lets several processes or machines share one run folder.
    only_candidates: str = ""
    #: Candidates to put in the bundle (comma-separated), overriding the
    #: ranking by validation AUC; the manifest records the choice.
    ensemble: str = ""
    #: The data's terms, which apply to the weights too (recorded in the manifest).
    terms: str = ""
    #: The cheaper path at large inputs (:mod:`model.training.frozen`): freeze an
    #: EfficientNet-Lite up to and including ``blocks.<frozen_block>`` (-1: the default cut,
    #: the end of its fourth stage), store those blocks' activations once and train only the
    #: rest.  None: the whole network trains on every batch.
    frozen_block: int | None = None
    #: With ``frozen_block``: how many epochs of augmented / self-blended batches the stored
    #: pool holds (its variety: the pool is drawn once and read every epoch).
    pool_epochs: int = 3
    #: Datasets of real *and* fake videos from sources the run does not train on (such as
    #: the talking-heads clips for an SBI run), scored every epoch; the best epoch is the one
    #: that ranks their videos best (``select_video_auc``), not the one with the best
    #: validation AUC.  Why: the SBI validation AUC measures the blend the network is
    #: taught, and kept rising while transfer to other generators fell (docs/training.md).
    select_on: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.loss not in {"bce", "focal"}:
            raise TrainingError(f"--loss {self.loss!r}: use 'bce' or 'focal'")
        from model.classifier import ARCHITECTURES

        if self.arch not in {"auto", "compact", "full", *ARCHITECTURES}:
            raise TrainingError(
                f"--arch {self.arch!r}: use auto, compact, full or one of "
                f"{', '.join(sorted(ARCHITECTURES))}"
            )
        if not 0 <= self.label_smoothing < 0.5:
            raise TrainingError("--label-smoothing must be in [0, 0.5)")
        if self.candidates < 1 or self.keep < 1:
            raise TrainingError("--candidates and --keep must be at least 1")
        if self.epochs < 1 or self.batch_size < 2:
            raise TrainingError("--epochs must be >= 1 and --batch-size >= 2")
        if not self.datasets:
            raise TrainingError("give at least one dataset (--data PATH)")
        modes = self.modes()
        unknown = sorted(set(modes) - set(MODES))
        if unknown:
            raise TrainingError(
                f"--candidate-modes {','.join(unknown)}: use {', '.join(MODES)} (comma-separated)"
            )
        if self.frozen_block is not None:
            if not self.arch.startswith("efficientnet_lite"):
                raise TrainingError(
                    f"--frozen-until works with the EfficientNet-Lite architectures, not "
                    f"--arch {self.arch}; choose --arch efficientnet_lite0/1/2 or drop it"
                )
            if self.pool_epochs < 1:
                raise TrainingError("--pool-epochs must be at least 1")
        if self.init_from:
            init_member_choice(self.init_from)  # a malformed BUNDLE#I fails before any work
        for option, indices in (
            ("--only-candidates", self.only_indices()),
            ("--ensemble", self.ensemble_indices()),
        ):
            if any(not 0 <= i < self.candidates for i in indices):
                raise TrainingError(f"{option}: indices must be in 0..{self.candidates - 1}")

    def modes(self) -> list[str]:
        """The training mode of each candidate."""
        given = [m.strip() for m in self.candidate_modes.split(",") if m.strip()]
        if not given:
            return ["sbi" if self.sbi else "supervised"] * self.candidates
        if len(given) != self.candidates:
            raise TrainingError(
                f"--candidate-modes lists {len(given)} modes for {self.candidates} candidates"
            )
        return given

    def only_indices(self) -> list[int]:
        return _indices(self.only_candidates, "--only-candidates")

    def ensemble_indices(self) -> list[int]:
        return _indices(self.ensemble, "--ensemble")

    # Fields that may differ between a run and its --resume.
    RESUMABLE = frozenset(
        {
            "verbose",
            "epochs",
            "tensorboard",
            "version",
            "only_candidates",
            "ensemble",
            "terms",
            "max_false_alarm_rate",
        }
    )


#: Training modes: dataset labels only; real crops + their self-blends only;
#: dataset labels plus a self-blend of every real crop.
MODES = ("supervised", "sbi", "mixed")


def _indices(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise TrainingError(f"{option} {text!r}: expected comma-separated indices") from None


@dataclass
class TrainResult:
    bundle: Path
    spec: ArchSpec
    threshold: float
    temperature: float
    candidates: list[dict]
    kept: list[int]
    metrics: dict
    splits: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- setup


def resolve_arch(config: TrainConfig) -> ArchSpec:
    """The architecture: ``auto`` is full Xception on a GPU, the compact variant on CPU."""
    arch = config.arch
    if arch.startswith("efficientnet_lite"):
        from model.efficientnet_lite import VARIANTS

        return ArchSpec(name=arch, input_size=config.input_size or VARIANTS[arch].resolution)
    if arch == "auto":
        import tensorflow as tf

        arch = "full" if tf.config.list_physical_devices("GPU") else "compact"
    base = FULL_XCEPTION if arch == "full" else COMPACT_XCEPTION
    return ArchSpec(
        name=base.name,
        input_size=config.input_size or base.input_size,
        width=config.width or base.width,
        middle_blocks=base.middle_blocks if config.middle_blocks is None else config.middle_blocks,
    )


def _prepare_out(config: TrainConfig, resume: bool) -> Path:
    out = Path(config.out)
    run_file = out / "run.json"
    current = asdict(config)
    # A folder "holds a run" once training started; a run that failed while
    # preparing data can simply be started again (its crop cache is reused).
    if run_file.exists() and (out / "candidates").exists():
        if not resume:
            raise TrainingError(
                f"{out}: already holds a training run; pass --resume to continue it "
                "or choose another --out"
            )
        saved = json.loads(run_file.read_text())
        changed = sorted(
            k for k in current if k not in TrainConfig.RESUMABLE and saved.get(k) != current[k]
        )
        if changed:
            raise TrainingError(
                f"{out}: --resume with different settings ({', '.join(changed)}); "
                "use the original settings or a new --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(current, indent=2) + "\n")
    return out


def _seed_everything(seed: int, deterministic: bool) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _progress(verbose: int, desc: str):
    if verbose != 1:  # 0: silent, 2: Keras' one line per epoch, no bars
        return None
    from bot.terminal import progress_bar  # a bar only on a terminal

    return lambda seq: progress_bar(seq, desc=desc, unit="item")


# --------------------------------------------------------------------------- data


@dataclass
class PreparedData:
    split: SplitResult
    items: list[CacheItem]
    refs: dict[str, list[CropRef]]
    curation: dict[str, dict[str, int]]
    #: The ``--select-on`` crops (their own items: they are never split or trained on).
    select_items: list[CacheItem] = field(default_factory=list)
    select_refs: list[CropRef] = field(default_factory=list)


def prepare_data(config: TrainConfig, spec: ArchSpec, out: Path) -> PreparedData:
    """Load, split, cache and curate; writes ``splits.json``."""
    samples: list[Sample] = []
    for spec_text in config.datasets:
        samples.extend(load_dataset(spec_text))
    split = split_samples(
        samples,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    (out / "splits.json").write_text(
        json.dumps(
            {
                "report": split.report,
                **{name: [s.key for s in split[name]] for name in ("train", "val", "test")},
            },
            indent=1,
        )
        + "\n"
    )
    cache = CropCache(
        Path(config.cache_dir) if config.cache_dir else out / "cache",
        CacheConfig(
            crop_size=max(config.cache_crop_size or 0, spec.input_size),
            frames_per_video=config.frames_per_video,
            min_confidence=config.min_confidence,
            min_face_size=config.min_face_size,
        ),
    )
    ordered = [*split.train, *split.val, *split.test]
    items = cache.build(ordered, progress=_progress(config.verbose, "face crops"))
    curation = CurationConfig(
        min_crops_per_video=config.min_crops_per_video,
        pair_diff_threshold=config.pair_diff_threshold,
    )
    # Curate over all items at once (a fake's original may sit in any split),
    # then divide the kept crops by split.
    refs_all, stats = select_crops(items, curation)
    bounds = np.cumsum([0, len(split.train), len(split.val), len(split.test)])
    refs: dict[str, list[CropRef]] = {"train": [], "val": [], "test": []}
    for ref in refs_all:
        name = ("train", "val", "test")[int(np.searchsorted(bounds, ref.item, side="right")) - 1]
        refs[name].append(ref)
    curation_report = {"rules": curation.to_dict(), "stats": stats}
    select_items, select_refs = _selection_crops(config, samples, cache, curation)
    return PreparedData(
        split=split,
        items=items,
        refs=refs,
        curation=curation_report,
        select_items=select_items,
        select_refs=select_refs,
    )


def _selection_crops(
    config: TrainConfig, trained_on: list[Sample], cache: CropCache, curation: CurationConfig
) -> tuple[list[CacheItem], list[CropRef]]:
    """The ``--select-on`` videos' face crops, from the run's crop cache.

    A selection video that is also a training sample would make the choice of epoch
    reward memorising it, so an overlap is an error, not a warning.
    """
    if not config.select_on:
        return [], []
    samples: list[Sample] = []
    for spec_text in config.select_on:
        samples.extend(load_dataset(spec_text))
    shared = {s.key for s in samples} & {s.key for s in trained_on}
    if shared:
        raise TrainingError(
            f"--select-on: {len(shared)} video(s) are also training data (e.g. "
            f"{sorted(shared)[0]}); choose epochs on a source the run does not train on"
        )
    items = cache.build(samples, progress=_progress(config.verbose, "selection face crops"))
    refs, _ = select_crops(items, curation)
    labels = {r.label for r in refs}
    if labels != {0, 1}:
        raise TrainingError(
            f"--select-on {' '.join(config.select_on)}: its face crops have labels "
            f"{sorted(labels)}; choosing epochs needs real and fake videos, so give a dataset "
            "with both (such as talkingheads:DATA/talking-heads)"
        )
    return items, refs


def _check_data(config: TrainConfig, data: PreparedData) -> None:
    modes = set(config.modes())
    train_labels = {r.label for r in data.refs["train"]}
    supervised_labels = {r.label for r in mode_refs("supervised", data)}
    val_labels = {r.label for r in data.refs["val"]}
    if modes & {"sbi", "mixed"}:
        if 0 not in train_labels:
            raise TrainingError(
                "Self-Blended Images need real faces in the training split; none survived"
            )
        if 0 not in val_labels:
            raise TrainingError(
                "Self-Blended Images need real faces in the validation split; "
                + _real_val_advice(config, data.split)
            )
    for mode, labels in (("supervised", supervised_labels), ("mixed", train_labels)):
        if mode in modes and labels != {0, 1}:
            raise TrainingError(
                f"{mode} training needs both real and fake faces in the training split after "
                f"noise removal (it has labels {sorted(labels)}); add data, or use --sbi "
                "with real data only"
            )
    if modes != {"sbi"} and val_labels != {0, 1}:
        raise TrainingError(
            "the validation split needs both real and fake faces to pick candidates "
            f"(it has labels {sorted(val_labels)}); add data or raise --val-fraction"
        )


def _real_val_advice(config: TrainConfig, split: SplitResult) -> str:
    """What would really put real faces in validation (the split is re-run to find out)."""
    if any(not s.is_fake for s in split.val):
        videos = len({s.video_id for s in split.val if not s.is_fake})
        return (
            f"its {videos} real video(s) gave no usable face crops; add real footage with "
            "visible faces"
        )
    samples = split.all()
    fraction = round(config.val_fraction + 0.05, 2)
    while fraction + config.test_fraction < 0.95:
        trial = split_samples(
            samples, val_fraction=fraction, test_fraction=config.test_fraction, seed=config.seed
        )
        if any(not s.is_fake for s in trial.val) and any(not s.is_fake for s in trial.train):
            return (
                f"raise --val-fraction to {fraction:g} (now {config.val_fraction:g}), which puts "
                "real footage of other people or videos in it, or add real footage"
            )
        fraction = round(fraction + 0.05, 2)
    groups = len({s.identities[0] if s.identities else s.key for s in samples if not s.is_fake})
    return (
        f"the real footage is {groups} video(s) or person(s), too few to keep some for "
        "validation at any --val-fraction: add real footage of more people or videos"
    )


def mode_refs(mode: str, data: PreparedData) -> list[CropRef]:
    """The training crops a candidate of ``mode`` reads.

    A dataset given as ``PATH*N`` has its crops listed N times.
    Supervised training leaves out real-only footage (``real:`` datasets):
    with no fakes from the same source, the network would learn "this
    camera/resolution is real" instead of anything about manipulation.
    SBI and mixed modes pair every real crop with its own self-blend, so
    such footage is balanced by construction and welcome.
    """
    refs = [r for r in data.refs["train"] for _ in range(data.items[r.item].sample.repeat)]
    if mode == "supervised":
        return [r for r in refs if data.items[r.item].sample.dataset != "real"]
    if mode == "sbi":
        return [r for r in refs if r.label == 0]
    return refs


# --------------------------------------------------------------------------- candidates


def make_loss(config: TrainConfig):
    import keras

    if config.loss == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            gamma=config.focal_gamma, from_logits=True, label_smoothing=config.label_smoothing
        )
    return keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)


def _val_batches(config: TrainConfig, spec: ArchSpec, data: PreparedData):
    """Validation batches, the same for every candidate and for the ensemble.

    When every candidate is SBI-trained and validation has no real fakes,
    its real faces are self-blended (with a fixed seed) to have positives.
    """
    from model.training.batches import CropBatches

    val_refs = data.refs["val"]
    val_sbi = set(config.modes()) == {"sbi"} and not any(r.label == 1 for r in val_refs)
    return CropBatches(
        data.items,
        val_refs,
        batch_size=config.batch_size,
        seed=config.seed + 10_000,
        shuffle=False,
        sbi=val_sbi,
        size=spec.input_size,
        preprocess_fn=spec.preprocess,
    )


def collect_logits(models: list, batches) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits ``[n_models, N]``, labels and video ids over a non-shuffled ``CropBatches``.

    Streams batch by batch — a validation split of full-size crops does not
    fit in memory — and draws the same (seeded) SBI fakes on every call.
    The batches' own ``preprocess_fn`` normalises (one architecture per call).
    """
    preprocess = batches.preprocess_fn
    logits: list[list[np.ndarray]] = [[] for _ in models]
    labels: list[np.ndarray] = []
    videos: list[str] = []
    for i in range(len(batches)):
        crops, y, v = batches.batch_arrays(i)
        x = preprocess(crops)
        for m, model in enumerate(models):
            logits[m].append(np.asarray(model(x, training=False)).reshape(-1))
        labels.append(y)
        videos.extend(v)
    stacked = np.stack([np.concatenate(parts) for parts in logits])
    return stacked, np.concatenate(labels).astype(int), videos


def _best_checkpoint(path: Path, monitor: str = "val_auc"):
    """Save the weights whenever ``monitor`` (an AUC in the epoch's logs) is at least as
    good as before.

    Unlike ``ModelCheckpoint(save_best_only=True)``, ties go to the later
    epoch: early in a short run the BatchNorm statistics lag and every epoch
    scores the same AUC, and the later weights are the better trained ones.
    The best value is kept in the weights folder so ``--resume`` continues it.
    """
    import keras

    class BestCheckpoint(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best_file = path.with_name("best_val_auc.json")

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None or not math.isfinite(float(value)):
                return
            best = (
                json.loads(self.best_file.read_text())[monitor] if self.best_file.exists() else -1.0
            )
            if float(value) >= best:
                self.model.save_weights(path)
                self.best_file.write_text(json.dumps({monitor: float(value), "epoch": epoch}))

    return BestCheckpoint()


def _selection_score(selection: Selection):
    """Score the ``--select-on`` batches after every epoch, into the epoch's logs.

    ``select_auc`` ranks face crops, ``select_video_auc`` videos by the scanner's rule
    (mean of a video's top-k crop probabilities).  The callback must run before the
    checkpoint and the CSV log, which read them.
    """
    import keras

    from model.training.metrics import roc_auc

    class SelectionScore(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            batches = selection.batches
            logits = np.concatenate(
                [
                    np.asarray(self.model(batches[i][0], training=False)).reshape(-1)
                    for i in range(len(batches))
                ]
            )
            probabilities = 1.0 / (1.0 + np.exp(-logits))
            _, video_labels, video_scores = video_level(
                selection.videos, selection.labels, probabilities
            )
            frames = roc_auc(selection.labels, logits)
            videos = roc_auc(video_labels, video_scores)
            if logs is not None:
                logs["select_auc"], logs["select_video_auc"] = frames, videos
            log.info("epoch %d: selection set AUC %.3f, videos %.3f", epoch + 1, frames, videos)

    return SelectionScore()


@dataclass
class Selection:
    """The ``--select-on`` crops as a model of this run reads them, in a fixed order."""

    batches: object  # a non-shuffled CropBatches, or PoolBatches of their prefix activations
    labels: np.ndarray
    videos: list[str]


def _selection(config: TrainConfig, spec: ArchSpec, data: PreparedData) -> Selection | None:
    """Unaugmented batches of the selection crops, with their true labels (no self-blends)."""
    if not data.select_refs:
        return None
    from model.training.batches import CropBatches

    batches = CropBatches(
        data.select_items,
        data.select_refs,
        batch_size=config.batch_size,
        seed=0,
        shuffle=False,
        size=spec.input_size,
        preprocess_fn=spec.preprocess,
    )
    labels = np.array([r.label for r in data.select_refs], dtype=np.float32)
    return Selection(batches, labels, [r.video_id for r in data.select_refs])


def _epoch_sync(batches):
    """Tell the batches which epoch starts, so a run resumed at epoch k shuffles as epoch k."""
    import keras

    class EpochSync(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            batches.set_epoch(epoch)

    return EpochSync()


def precise_batchnorm(model, batches, max_batches: int = 50) -> None:
    """Re-estimate BatchNorm statistics as the exact mean over up to ``max_batches`` batches.

    Keras keeps an exponential moving average (momentum 0.99) of batch
    statistics, which lags far behind the weights after short trainings
    (a CPU run of a few hundred steps): the network is right in training
    mode and nearly constant in inference mode.  Setting the momentum of the
    k-th pass to k/(k+1) makes the moving statistics the plain average over
    the passes ("precise BN", Wu & Johnson 2021).  Batches are unaugmented.
    """
    from keras import layers

    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return
    saved = [layer.momentum for layer in norms]
    try:
        for k in range(min(max_batches, len(batches))):
            for layer in norms:
                layer.momentum = k / (k + 1)
            model(batches[k][0], training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum


def train_candidate(
    index: int,
    config: TrainConfig,
    spec: ArchSpec,
    data: PreparedData,
    out: Path,
):
    """Train (or resume, or reload) candidate ``index``; returns (model, result dict)."""
    from model.classifier import build_classifier
    from model.training.batches import CropBatches, balanced_class_weights, effective_labels
    from model.training.metrics import roc_auc

    mode = config.modes()[index]
    folder = out / "candidates" / f"{index}"
    folder.mkdir(parents=True, exist_ok=True)
    seed = config.seed + index
    final_file = folder / "final.weights.h5"
    result_file = folder / "result.json"
    model = build_classifier(spec, seed=seed)
    if config.pretrained and spec.architecture.pretrained:
        from model.pretrained import load_imagenet

        load_imagenet(model, spec.architecture.pretrained)
    if config.init_from:
        _warm_start(model, config.init_from, spec, mode)
    if result_file.exists() and final_file.exists():
        model.load_weights(final_file)
        result = json.loads(result_file.read_text())
        log.info("candidate %d: already trained (val AUC %s), reusing", index, result["val_auc"])
        return model, result

    _seed_everything(seed, config.deterministic)
    train_refs = mode_refs(mode, data)
    sbi, sbi_mix = mode == "sbi", mode == "mixed"
    class_weights = (
        balanced_class_weights(effective_labels(train_refs, sbi=sbi, sbi_mix=sbi_mix))
        if config.class_weighting and not sbi
        else {0: 1.0, 1: 1.0}
    )
    log.info("candidate %d: %s training on %d crops", index, mode, len(train_refs))
    train_batches = CropBatches(
        data.items,
        train_refs,
        batch_size=config.batch_size,
        seed=seed,
        shuffle=True,
        augment_config=AugmentConfig() if config.augment else NO_AUGMENT,
        sbi=sbi,
        sbi_mix=sbi_mix,
        class_weights=class_weights,
        steps=config.steps_per_epoch,
        size=spec.input_size,
        preprocess_fn=spec.preprocess,
    )
    val_batches = _val_batches(config, spec, data)
    selection = _selection(config, spec, data)
    if config.frozen_block is not None:
        history = _fit_frozen(
            model, config, spec, train_batches, val_batches, folder, out, selection
        )
    else:
        history = _fit(model, config, train_batches, val_batches, folder, selection)
    precise_batchnorm(
        model,
        CropBatches(
            data.items,
            train_refs,
            batch_size=config.batch_size,
            seed=seed,
            shuffle=True,
            sbi=sbi,
            sbi_mix=sbi_mix,
            size=spec.input_size,
            preprocess_fn=spec.preprocess,
        ),
    )
    model.save_weights(final_file)
    val_logits, val_labels, _ = collect_logits([model], _val_batches(config, spec, data))
    auc = roc_auc(val_labels, val_logits[0])
    result = {
        "index": index,
        "seed": seed,
        "mode": mode,
        "val_auc": auc,
        **_best_epoch(folder),
        # From the CSV log, which spans interrupted and resumed sessions.
        "epochs_run": len((folder / "log.csv").read_text().splitlines()) - 1,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return model, result


def _best_epoch(folder: Path) -> dict:
    """Which epoch was kept and by what (``best_val_auc.json``), for ``result.json``."""
    best_file = folder / "best_val_auc.json"
    if not best_file.exists():
        return {}
    best = json.loads(best_file.read_text())
    epoch = best.pop("epoch")
    (monitor, value), *_ = best.items()
    return {"kept_epoch": epoch + 1, "kept_by": {monitor: value}}


def compile_model(
    model, loss, learning_rate: float, decay_steps: int, *, run_eagerly: bool = False
) -> None:
    """How every candidate trains: Adam with cosine decay to 5 % over ``decay_steps``,
    ``loss`` on logits, ROC AUC as the metric (the best-epoch rule reads ``val_auc``)."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, decay_steps), alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=loss,
        metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
        run_eagerly=run_eagerly,
    )


def _fit(
    trained,
    config: TrainConfig,
    batches,
    val_batches,
    folder: Path,
    selection: Selection | None = None,
):
    """Compile and fit ``trained`` (the model, or its unfrozen suffix, which shares the
    model's layers) for ``config.epochs``, resumable; it is left holding the best epoch by
    validation AUC, or by the selection set's video AUC when there is one."""
    import keras

    weights_file = folder / "best.weights.h5"
    compile_model(trained, make_loss(config), config.learning_rate, len(batches) * config.epochs)
    scoring = [_selection_score(selection)] if selection else []
    monitor = "select_video_auc" if selection else "val_auc"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(folder / "backup")),
        *scoring,
        _best_checkpoint(weights_file, monitor),
        _epoch_sync(batches),
        keras.callbacks.CSVLogger(str(folder / "log.csv"), append=True),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(folder / "tensorboard")))
    history = trained.fit(
        batches,
        validation_data=val_batches,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    if weights_file.exists():
        trained.load_weights(weights_file)  # the best epoch by ``monitor``
    return history


def _fit_frozen(
    model,
    config: TrainConfig,
    spec: ArchSpec,
    batches,
    val_batches,
    folder,
    out,
    selection: Selection | None = None,
):
    """The cheaper path: run the frozen prefix once over a pool of ``config.pool_epochs``
    epochs of ``batches`` (and once over validation and the selection set), then train the
    suffix on the stored activations.  Pools live beside the crop cache, outside the work
    tree, and are reused by any run with the same prefix weights, cut and crops (an
    interrupted build resumes)."""
    from model.training.frozen import ActivationPool, PoolBatches, default_split, split_model

    block = default_split(spec.name) if config.frozen_block < 0 else config.frozen_block
    split = split_model(model, block)
    root = Path(config.cache_dir) if config.cache_dir else out / "cache"
    root = root / "activation-pools"
    log.info(
        "frozen up to blocks.%d: storing activations of %d epochs of %d batches",
        block,
        config.pool_epochs,
        len(batches),
    )
    pool = ActivationPool.build(
        root, split, batches, epochs=config.pool_epochs, progress=_pool_progress("training pool")
    )
    val_pool = ActivationPool.build(
        root, split, val_batches, epochs=1, progress=_pool_progress("validation pool")
    )
    train_pool = PoolBatches(
        pool,
        batch_size=batches.batch_size,
        seed=batches.seed,
        class_weights=batches.class_weights,
        steps=config.steps_per_epoch,
    )
    val_pool_batches = PoolBatches(val_pool, batch_size=batches.batch_size, seed=0, shuffle=False)
    if selection:
        select_pool = ActivationPool.build(
            root, split, selection.batches, epochs=1, progress=_pool_progress("selection pool")
        )
        selection = Selection(
            PoolBatches(select_pool, batch_size=batches.batch_size, seed=0, shuffle=False),
            select_pool.labels,
            select_pool.videos,
        )
    return _fit(split.suffix, config, train_pool, val_pool_batches, folder, selection)


def _pool_progress(what: str):
    """Log a pool build's progress every 10 %: it runs for minutes to an hour."""
    marks: set[int] = set()

    def report(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth not in marks:
            marks.add(tenth)
            log.info("%s: %d of %d batches stored", what, done, total)

    return report


# --------------------------------------------------------------------------- ensemble


def video_level(
    video_ids: list[str], labels: np.ndarray, probabilities: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Video scores by the scanner's rule for one track: mean of the top-k crop scores."""
    from model.scoring import TOP_K, top_k_mean

    return aggregate_by_video(
        video_ids, labels, probabilities, reduce=lambda s: top_k_mean(s, TOP_K)
    )


def level_metrics(
    video_ids: list[str], labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict:
    """Frame- and video-level metrics of calibrated probabilities."""
    _, video_labels, video_scores = video_level(video_ids, labels, probabilities)
    return {
        "frame_level": binary_metrics(labels, probabilities, threshold),
        "video_level": binary_metrics(video_labels, video_scores, threshold),
    }


def train(config: TrainConfig, resume: bool = False) -> TrainResult | None:
    """Run the whole recipe; returns where the bundle went and how it scored.

    With ``only_candidates`` just those candidates are trained and ``None``
    is returned: the run is finished (and its bundle written) by a later
    ``--resume`` without that option, once every candidate exists.
    """
    config.validate()
    config.version = config.version or _dt.date.today().isoformat()
    out = _prepare_out(config, resume)
    spec = resolve_arch(config)
    log.info("architecture %s", spec)
    data = prepare_data(config, spec, out)
    _check_data(config, data)

    only = config.only_indices()
    trained = [
        train_candidate(i, config, spec, data, out) for i in only or range(config.candidates)
    ]
    if only:
        return None
    models = [model for model, _ in trained]
    results = [result for _, result in trained]

    # Logits of every candidate once; single-model bundles and the ensemble reuse them.
    val = collect_logits(models, _val_batches(config, spec, data))
    test = None
    if data.refs["test"]:
        from model.training.batches import CropBatches

        test = collect_logits(
            models,
            CropBatches(
                data.items,
                data.refs["test"],
                batch_size=config.batch_size,
                seed=0,
                shuffle=False,
                size=spec.input_size,
                preprocess_fn=spec.preprocess,
            ),
        )
    for i, result in enumerate(results):
        bundle, _ = _write_bundle(
            out / "candidates" / f"{i}" / "bundle",
            [i],
            models,
            val,
            test,
            config,
            spec,
            data,
            results,
        )
        result["bundle"] = str(bundle)

    chosen = config.ensemble_indices()
    if chosen:
        kept = chosen
        rule = "chosen by hand (--ensemble); see the training docs for why"
    else:
        ranked = sorted(
            range(len(results)),
            key=lambda i: (
                -(results[i]["val_auc"] if results[i]["val_auc"] is not None else -1),
                i,
            ),
        )
        kept = ranked[: config.keep]
        rule = f"the {config.keep} highest validation ROC AUCs"
    bundle, summary = _write_bundle(
        out / "bundle", kept, models, val, test, config, spec, data, results, ensemble_rule=rule
    )
    return TrainResult(
        bundle=bundle,
        spec=spec,
        threshold=summary["threshold"],
        temperature=summary["temperature"],
        candidates=results,
        kept=kept,
        metrics=summary["metrics"],
        splits=data.split.report,
    )


def _write_bundle(
    path: Path,
    kept: list[int],
    models: list,
    val: tuple[np.ndarray, np.ndarray, list[str]],
    test: tuple[np.ndarray, np.ndarray, list[str]] | None,
    config: TrainConfig,
    spec: ArchSpec,
    data: PreparedData,
    results: list[dict],
    ensemble_rule: str = "a single candidate",
) -> tuple[Path, dict]:
    """Calibrate the models ``kept`` on validation, measure them, and write their bundle."""
    from model.bundle import write_bundle

    val_logits, val_labels, val_videos = val
    temperature, temperature_info = calibrate_temperature(val_logits[kept], val_labels)
    val_probs = ensemble_probabilities(val_logits[kept], temperature)
    _, val_video_labels, val_video_scores = video_level(val_videos, val_labels, val_probs)
    threshold, threshold_info = choose_threshold(
        val_video_labels, val_video_scores, config.target_recall, config.max_false_alarm_rate
    )
    metrics = {"validation": level_metrics(val_videos, val_labels, val_probs, threshold)}
    if test is not None:
        test_logits, test_labels, test_videos = test
        test_probs = ensemble_probabilities(test_logits[kept], temperature)
        metrics["test"] = level_metrics(test_videos, test_labels, test_probs, threshold)
    modes = config.modes()
    training = {
        # Every knob as given, except what the manifest states once, derived, below
        # (terms; whether SBI was used, which follows from the modes, not the --sbi flag).
        "config": {k: v for k, v in asdict(config).items() if k not in {"verbose", "sbi", "terms"}},
        "datasets": config.datasets,
        "terms": config.terms or None,
        "splits": data.split.report,
        "curation": data.curation,
        "augmentations": AugmentConfig().to_dict() if config.augment else None,
        "loss": {
            "kind": config.loss,
            "label_smoothing": config.label_smoothing,
            "focal_gamma": config.focal_gamma if config.loss == "focal" else None,
            "class_weighting": config.class_weighting,
        },
        "sbi": config.sbi or any(modes[i] != "supervised" for i in kept),
        "sbi_masks": "convex hulls of 468 MediaPipe face-mesh landmarks (Apache-2.0 model)",
        "initial_weights": _initial_weights(config, spec),
        "modes": [modes[i] for i in kept],
        "candidates": [
            {k: r.get(k) for k in ("index", "seed", "mode", "val_auc", "epochs_run")}
            for r in results
        ],
        "kept": kept,
        "ensemble_rule": ensemble_rule,
        "threshold_rule": threshold_info,
        "temperature": temperature,
        "temperature_rule": temperature_info,
    }
    bundle = write_bundle(
        path,
        [models[i] for i in kept],
        spec,
        threshold=float(np.clip(threshold, 0.0, 1.0)),
        temperature=temperature,
        name=config.name,
        version=config.version,
        training=training,
        metrics=metrics,
    )
    summary = {"threshold": threshold, "temperature": temperature, "metrics": metrics}
    return bundle, summary


def init_member_choice(text: str) -> tuple[str, int | None]:
    """``--init-from BUNDLE`` (the member found by architecture and mode) or ``BUNDLE#I``
    (member I, counted from 0: a body that sits under a probe head has mode ``probe``, so
    only its number can name it)."""
    path, sep, picked = str(text).rpartition("#")
    if not sep:
        return str(text), None
    if not picked.isdigit():
        raise TrainingError(f"--init-from {text}: after '#' give one member number, such as #2")
    return path, int(picked)


def _init_member(bundle: str, spec: ArchSpec, mode: str) -> tuple[int, ArchSpec, Path]:
    """The member of ``bundle`` a candidate of ``spec`` and ``mode`` continues from.

    Same architecture (and shape); the same training mode when the manifest
    records one (a DFDC-supervised member is a poor start for an SBI-only
    candidate), then the same input size; or the member ``BUNDLE#I`` names.
    A member trained at another input
    size is a valid start: every architecture here ends in global pooling, so
    its weights fit any input, and continuing a low-resolution model at a
    higher one is how a larger input is reached cheaply (the "FixRes" recipe).
    """
    from model.bundle import bundle_directory, member_specs, read_manifest

    path, picked = init_member_choice(bundle)
    manifest = read_manifest(path)
    matches = [
        (i, entry, member)
        for i, (entry, member) in enumerate(
            zip(manifest["models"], member_specs(manifest), strict=True)
        )
        if (member.name, member.width, member.middle_blocks)
        == (spec.name, spec.width, spec.middle_blocks)
        and picked in (None, i)
    ]
    if not matches:
        which = "no member is" if picked is None else f"member {picked} is not"
        raise TrainingError(
            f"--init-from {bundle}: {which} a {spec.name} of this shape; choose a bundle (or "
            "member) with one or train from the architecture's own start"
        )
    index, entry, member = max(
        matches,
        key=lambda m: (m[1].get("mode") == mode, m[2].input_size == spec.input_size, -m[0]),
    )
    return index, member, bundle_directory(path) / entry["file"]


def _warm_start(model, bundle: str, spec: ArchSpec, mode: str) -> None:
    from model.bundle import BundleError, load_weights_file

    index, member, path = _init_member(bundle, spec, mode)
    try:
        load_weights_file(model, path)
    except BundleError as exc:
        raise TrainingError(f"--init-from {bundle}: {exc}") from exc
    log.info(
        "%s candidate starts from %s member %d (trained at %d px, continues at %d px)",
        mode,
        bundle,
        index,
        member.input_size,
        spec.input_size,
    )


def _initial_weights(config: TrainConfig, spec: ArchSpec) -> dict:
    """Where the members' weights started (the manifest must say, with the licence)."""
    from model.bundle import read_manifest
    from model.pretrained import describe

    if config.init_from:
        # The weights' origin (and its licence) stays on top: continuing a model does not
        # change where its weights came from, only how far they were trained since.
        manifest = read_manifest(init_member_choice(config.init_from)[0])
        modes = sorted(set(config.modes()))
        members = {m: _init_member(config.init_from, spec, m)[0] for m in modes}
        first = manifest["models"][next(iter(members.values()))]
        origin = dict(first.get("initial_weights") or {"weights": "random (seeded)"})
        earlier = origin.pop("continued_from", None)
        origin["continued_from"] = {
            "bundle": f"{manifest['name']} {manifest['version']}",
            "member_by_mode": members,
            **({"which_continued": earlier} if earlier else {}),
        }
        return origin
    name = spec.architecture.pretrained
    if config.pretrained and name:
        return describe(name)
    return {"weights": "random (seeded)"}


def config_from_args(args) -> TrainConfig:
    """Build a ``TrainConfig`` from parsed CLI arguments (same field names)."""
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return TrainConfig(**values)
