"""Train only the late blocks of an EfficientNet-Lite, on stored activations of its early ones.

Why: at 224-260 px the plain trainer (:mod:`model.training.train`) runs the
whole network forward and backward for every image of every epoch, and on
2 CPU cores that is 6-8 images a second for Lite0 at 224 px.  Most of that
time is spent in the early, high-resolution blocks, whose ImageNet features
(edges, textures, colour) are the part a face-forgery detector needs to
change least.  So:

1. :func:`split_model` freezes the stem and the first blocks (up to and
   including ``blocks.<k>``), BatchNorm there in inference mode, and cuts the
   network at that block's output into a *prefix* and a *suffix* that share
   the full model's layers (training the suffix trains the full model);
2. :class:`ActivationPool` runs the prefix **once** over a fixed pool of
   augmented / self-blended crops (a :class:`model.training.batches.CropBatches`
   or anything with its ``batch_arrays``) and stores the activations as
   float16 in a memory-mapped file in a cache folder outside the work tree;
3. :class:`PoolBatches` serves those activations as Keras batches, so the
   suffix trains (:func:`fit_suffix`) without ever running the prefix again.

The price is a fixed pool: its augmentations and self-blends are drawn once
(build the pool from several epochs of batches for variety) instead of anew
every epoch.  Optionally (``bn_only_before``) the first suffix blocks train
only their BatchNorm scales and shifts, the parameter-efficient fine-tuning
that generalises well across datasets.  ``bench/train.py`` measures the gain
against the plain trainer; docs/training.md § 10 has the numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.errors import FindError

log = logging.getLogger(__name__)

#: Bumped when the pool's files change meaning; part of the pool folder's name.
POOL_VERSION = 1
#: Progress (rows written, labels so far) is saved every this many batches, so an
#: interrupted build resumes there instead of starting again.
CHECKPOINT_EVERY = 20


class FrozenError(FindError):
    """A split point, or a stored activation pool, cannot be used."""


# --------------------------------------------------------------------------- the split


def block_count(model) -> int:
    """How many ``blocks.<i>`` an EfficientNet-Lite ``model`` has (16 for Lite0, 20 for Lite2)."""
    indices = {_block_of(layer.name) for layer in model.layers} - {None}
    return max(indices) + 1 if indices else 0


def stage_ends(variant: str) -> list[int]:
    """The last block index of each of ``variant``'s seven stages (split points that keep
    a whole stage on one side): Lite0 -> [0, 2, 4, 7, 10, 14, 15]."""
    from model.efficientnet_lite import STAGES, VARIANTS, stage_repeats

    depth = VARIANTS[variant].depth
    ends, total = [], 0
    for index, stage in enumerate(STAGES):
        total += stage_repeats(index, stage[0], depth)
        ends.append(total - 1)
    return ends


#: The default cut: after the fourth of the seven stages (Lite0: blocks.7, 14 x 14 x 80 at
#: 224 px).  Measured (``bench/train.py``, docs/training.md § 10): of the cuts that leave
#: more than the last block to train it stores the fewest bytes per image (half the 28 px
#: stage's), and the suffix trains 4-5x faster than the whole network while keeping 92 %
#: of Lite0's weights trainable (the early blocks hold few weights but most of the compute).
#: A later cut (blocks.10) is faster still and an earlier one (blocks.4) adapts more; which
#: learns best is for the training campaign to measure.
DEFAULT_STAGE = 3


def default_split(variant: str) -> int:
    """The block the cheaper path cuts after by default (:data:`DEFAULT_STAGE`'s end)."""
    return stage_ends(variant)[DEFAULT_STAGE]


def _block_of(layer_name: str) -> int | None:
    if not layer_name.startswith("blocks."):
        return None
    return int(layer_name.split(".")[1])


def block_output(model, block: int):
    """The tensor that leaves ``blocks.<block>`` (its residual add, or its projection BN)."""
    count = block_count(model)
    if not 0 <= block < count:
        raise FrozenError(f"split after block {block}: the model has blocks 0..{count - 1}")
    names = {layer.name for layer in model.layers}
    last = f"blocks.{block}.add" if f"blocks.{block}.add" in names else f"blocks.{block}.bn2"
    return model.get_layer(last).output


@dataclass
class SplitModel:
    """A model cut after ``blocks.<block>``: ``suffix(prefix(x))`` is ``full(x)``."""

    full: object  # keras.Model, the network that is trained and saved
    prefix: object  # keras.Model: image -> activations, frozen
    suffix: object  # keras.Model: activations -> logit, the same layer objects as ``full``
    block: int

    @property
    def activation_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.prefix.output.shape[1:])

    def fingerprint(self) -> str:
        """Hash of the prefix's weights: a pool stored under other weights is not reused."""
        digest = hashlib.sha256()
        for weight in self.prefix.weights:
            digest.update(weight.path.encode())
            digest.update(np.ascontiguousarray(np.asarray(weight.numpy())).tobytes())
        return digest.hexdigest()[:16]


def split_model(model, block: int, *, bn_only_before: int | None = None) -> SplitModel:
    """Freeze ``model`` up to and including ``blocks.<block>`` and cut it there.

    The stem and blocks 0..``block`` become non-trainable, which in Keras also
    runs their BatchNorm in inference mode (the ImageNet statistics stay).
    With ``bn_only_before``, the suffix's blocks before that index train only
    their BatchNorm layers; blocks from it on, the head and the logit train fully.
    """
    import keras
    from keras import layers

    cut = block_output(model, block)
    if bn_only_before is not None and not block < bn_only_before <= block_count(model):
        raise FrozenError(
            f"bn_only_before={bn_only_before}: give a block after the split ({block}) "
            f"and at most {block_count(model)}"
        )
    prefix = keras.Model(model.input, cut, name=f"{model.name}_prefix")
    frozen = {layer.name for layer in prefix.layers}
    for layer in model.layers:
        if layer.name in frozen:
            layer.trainable = False
            continue
        index = _block_of(layer.name)
        if bn_only_before is not None and index is not None and index < bn_only_before:
            layer.trainable = isinstance(layer, layers.BatchNormalization)
    suffix = keras.Model(cut, model.output, name=f"{model.name}_suffix")
    return SplitModel(full=model, prefix=prefix, suffix=suffix, block=block)


# --------------------------------------------------------------------------- the pool


class BatchSource(Protocol):
    """What a pool is built from: :class:`model.training.batches.CropBatches` fits."""

    preprocess_fn: Callable[[np.ndarray], np.ndarray]

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def batch_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, list[str]]: ...


def describe_batches(batches) -> dict:
    """What identifies a ``CropBatches``' crops, for the pool's folder name."""
    refs = hashlib.sha256()
    for ref in batches.refs:
        refs.update(f"{ref.video_id}|{ref.frame_index}|{ref.label};".encode())
    return {
        "refs": refs.hexdigest()[:16],
        "crops": len(batches.refs),
        "batch_size": batches.batch_size,
        "seed": batches.seed,
        "sbi": batches.sbi,
        "sbi_mix": batches.sbi_mix,
        "steps": batches.steps,
        "size": batches.size,
        "augment": batches.augment_config.to_dict(),
        "landmarks": batches.landmarks,
    }


def pool_folder(root: str | Path, split: SplitModel, source: dict, epochs: int) -> Path:
    """``root/<digest>``: one folder per (prefix weights, split, crops, epochs)."""
    key = {
        "version": POOL_VERSION,
        "model": split.full.name,
        "input": [int(d) for d in split.full.input.shape[1:]],
        "block": split.block,
        "weights": split.fingerprint(),
        "source": source,
        "epochs": epochs,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / digest


@dataclass
class ActivationPool:
    """Stored prefix activations (float16, memory-mapped), their labels and SBI groups.

    ``groups`` ties a self-blend to the real crop it was made from (same
    group id), so a shuffled batch still holds both halves of a pair, as
    :class:`model.training.batches.CropBatches` gives them.
    """

    folder: Path
    activations: np.ndarray  # (rows, h, w, c) float16, read-only memory map
    labels: np.ndarray  # (rows,) float32, 0 real / 1 fake
    groups: np.ndarray  # (rows,) int64
    videos: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def open(cls, folder: str | Path) -> ActivationPool:
        folder = Path(folder)
        meta_file = folder / "pool.json"
        if not meta_file.is_file():
            raise FrozenError(f"{folder}: no finished activation pool here (pool.json missing)")
        meta = json.loads(meta_file.read_text())
        rows, shape = int(meta["rows"]), tuple(meta["shape"])
        activations = np.memmap(
            folder / "activations.f16", dtype=np.float16, mode="r", shape=(rows, *shape)
        )
        return cls(
            folder=folder,
            activations=activations,
            labels=np.load(folder / "labels.npy"),
            groups=np.load(folder / "groups.npy"),
            videos=json.loads((folder / "videos.json").read_text()),
        )

    @classmethod
    def build(
        cls,
        root: str | Path,
        split: SplitModel,
        batches: BatchSource,
        *,
        epochs: int = 1,
        source: dict | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ActivationPool:
        """Run the prefix once over ``epochs`` epochs of ``batches`` and store what it gives.

        Reuses a finished pool of the same prefix weights, split and crops;
        resumes an interrupted build at its last checkpoint.  ``source``
        identifies the crops (default: :func:`describe_batches`).
        """
        source = source if source is not None else describe_batches(batches)
        folder = pool_folder(root, split, source, epochs)
        if (folder / "pool.json").is_file():
            log.info("activation pool %s: reusing", folder)
            return cls.open(folder)
        folder.mkdir(parents=True, exist_ok=True)
        shape = split.activation_shape
        row_bytes = int(np.prod(shape)) * 2
        data_file = folder / "activations.f16"
        state = _load_progress(folder)
        labels, groups, videos = state["labels"], state["groups"], state["videos"]
        done = state["batches"]
        with open(data_file, "ab" if data_file.exists() else "wb") as out:
            out.truncate(len(labels) * row_bytes)  # drop rows written after the checkpoint
            out.seek(len(labels) * row_bytes)
            total = epochs * len(batches)
            for step in range(done, total):
                epoch, index = divmod(step, len(batches))
                batches.set_epoch(epoch)
                crops, y, v = batches.batch_arrays(index)
                x = batches.preprocess_fn(crops)
                # predict_on_batch: one traced graph for the whole pass (BatchNorm in
                # inference mode), far faster than eager calls over thousands of batches.
                acts = np.asarray(split.prefix.predict_on_batch(x), dtype=np.float16)
                out.write(np.ascontiguousarray(acts).tobytes())
                for video, label in zip(v, y, strict=True):
                    self_blend = video.startswith("sbi:") and videos and videos[-1] == video[4:]
                    groups.append(groups[-1] if self_blend else (groups[-1] + 1 if groups else 0))
                    labels.append(float(label))
                    videos.append(video)
                if (step + 1) % CHECKPOINT_EVERY == 0 or step + 1 == total:
                    out.flush()
                    os.fsync(out.fileno())
                    _save_progress(folder, step + 1, labels, groups, videos)
                if progress:
                    progress(step + 1, total)
        meta = {"version": POOL_VERSION, "rows": len(labels), "shape": list(shape)}
        meta.update(block=split.block, epochs=epochs, source=source)
        _atomic_write(folder / "pool.json", json.dumps(meta, indent=1) + "\n")
        (folder / "progress.json").unlink(missing_ok=True)
        return cls.open(folder)


def _load_progress(folder: Path) -> dict:
    progress = folder / "progress.json"
    if not progress.is_file():
        return {"batches": 0, "labels": [], "groups": [], "videos": []}
    state = json.loads(progress.read_text())
    rows = state["rows"]
    return {
        "batches": state["batches"],
        "labels": np.load(folder / "labels.npy")[:rows].tolist(),
        "groups": np.load(folder / "groups.npy")[:rows].tolist(),
        "videos": json.loads((folder / "videos.json").read_text())[:rows],
    }


def _save_progress(
    folder: Path, batches: int, labels: list[float], groups: list[int], videos: list[str]
) -> None:
    np.save(folder / "labels.npy", np.asarray(labels, dtype=np.float32))
    np.save(folder / "groups.npy", np.asarray(groups, dtype=np.int64))
    _atomic_write(folder / "videos.json", json.dumps(videos))
    _atomic_write(folder / "progress.json", json.dumps({"batches": batches, "rows": len(labels)}))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- training


def _pydataset_base():
    import keras

    return keras.utils.PyDataset


class PoolBatches(_pydataset_base()):  # type: ignore[misc]
    """``(activations as float32, labels, sample weights)`` batches of a pool, shuffled by
    group each epoch from ``(seed, epoch)``, so a resumed run sees the same batches."""

    def __init__(
        self,
        pool: ActivationPool,
        *,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        class_weights: dict[int, float] | None = None,
        steps: int | None = None,
    ):
        super().__init__()
        self.pool = pool
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.class_weights = class_weights or {0: 1.0, 1: 1.0}
        self.steps = steps
        # Rows of each group, in order (a real crop, then its self-blend).
        starts = np.flatnonzero(np.r_[True, pool.groups[1:] != pool.groups[:-1]])
        self._groups = np.split(np.arange(len(pool)), starts[1:])
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        groups = np.arange(len(self._groups))
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(groups)
        return np.concatenate([self._groups[g] for g in groups])

    def __len__(self) -> int:
        full = -(-len(self.pool) // self.batch_size)
        return min(full, self.steps) if self.steps else full

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._order = self._make_order()

    def __getitem__(self, index: int):
        rows = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        x = np.asarray(self.pool.activations[rows], dtype=np.float32)
        labels = self.pool.labels[rows]
        weights = np.array([self.class_weights[int(y)] for y in labels], dtype=np.float32)
        return x, labels[:, None], weights


def compile_suffix(
    split: SplitModel, loss, learning_rate: float, decay_steps: int, *, run_eagerly: bool = False
) -> None:
    """Compile the suffix as the trainer compiles a model
    (:func:`model.training.train.compile_model`)."""
    from model.training.train import compile_model

    compile_model(split.suffix, loss, learning_rate, decay_steps, run_eagerly=run_eagerly)


def fit_suffix(
    split: SplitModel,
    pool: ActivationPool,
    *,
    loss,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 2e-4,
    seed: int = 0,
    steps_per_epoch: int | None = None,
    class_weights: dict[int, float] | None = None,
    validation_data=None,
    callbacks: Sequence = (),
    verbose: int = 0,
):
    """Train the unfrozen part on ``pool``; ``split.full`` then holds the trained network."""
    batches = PoolBatches(
        pool,
        batch_size=batch_size,
        seed=seed,
        class_weights=class_weights,
        steps=steps_per_epoch,
    )
    compile_suffix(split, loss, learning_rate, len(batches) * epochs)
    return split.suffix.fit(
        batches,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=list(callbacks),
        verbose=verbose,
    )
