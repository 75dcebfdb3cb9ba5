"""Batches of cached face crops for Keras: augmentation, SBI and class weights.

A ``keras.utils.PyDataset`` rather than ``tf.data``: crops come from
memory-mapped ``.npy`` files and the augmentations are OpenCV calls, both
plain Python, and a PyDataset lets Keras overlap them with the GPU step.
Every random choice is drawn from a generator seeded by ``(seed, epoch,
batch)``, so a run — and a resumed run — sees the same batches.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from model.classifier import preprocess
from model.training.augment import NO_AUGMENT, AugmentConfig, augment, fill_padding
from model.training.cache import CacheItem
from model.training.curation import CropRef
from model.training.sbi import self_blend


def effective_labels(refs: Sequence[CropRef], *, sbi: bool, sbi_mix: bool) -> list[int]:
    """The labels an epoch of ``CropBatches`` yields: SBI adds a fake per real crop."""
    if sbi:
        return [0, 1] * sum(1 for r in refs if r.label == 0)
    if sbi_mix:
        return [r.label for r in refs] + [1] * sum(1 for r in refs if r.label == 0)
    return [r.label for r in refs]


def balanced_class_weights(labels: Sequence[int]) -> dict[int, float]:
    """``n / (2 * n_c)`` per class: each class contributes half the loss, whatever its size."""
    labels = np.asarray(labels, dtype=int)
    n = len(labels)
    weights = {}
    for c in (0, 1):
        count = int(np.sum(labels == c))
        weights[c] = n / (2 * count) if count else 0.0
    return weights


class CropReader:
    """Random access to cached crops through a bounded set of memory maps.

    Each memory map holds a file descriptor (``mmap`` duplicates it), so
    keeping one per video of a large dataset would exhaust the process's
    descriptor limit; the least recently used maps are dropped instead.
    """

    def __init__(self, items: Sequence[CacheItem], max_open: int = 128):
        self.items = items
        self.max_open = max_open
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()

    def __call__(self, ref: CropRef) -> np.ndarray:
        crops = self._maps.get(ref.item)
        if crops is None:
            crops = self._maps[ref.item] = self.items[ref.item].crops()
            if len(self._maps) > self.max_open:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(ref.item)
        return np.array(crops[ref.row])


def _pydataset_base():
    import keras

    return keras.utils.PyDataset


class CropBatches(_pydataset_base()):  # type: ignore[misc]
    """Yields ``(preprocessed crops, labels, sample weights)`` batches.

    In SBI mode only real crops are read: each one appears twice in its
    batch, as itself (label 0) and self-blended (label 1), as in the paper —
    the pair differs only by the blend, so the model must learn the blend.
    In mixed mode (``sbi_mix``) every crop is read: dataset fakes once, real
    crops twice (as themselves and self-blended), so the network learns the
    dataset's manipulations *and* the generic blending seam in one training.
    A batch then holds about ``batch_size`` images (its real crops count twice).
    """

    def __init__(
        self,
        items: Sequence[CacheItem],
        refs: Sequence[CropRef],
        *,
        batch_size: int,
        seed: int,
        shuffle: bool,
        augment_config: AugmentConfig = NO_AUGMENT,
        sbi: bool = False,
        sbi_mix: bool = False,
        class_weights: dict[int, float] | None = None,
        steps: int | None = None,
        size: int | None = None,
        preprocess_fn: Callable[[np.ndarray], np.ndarray] = preprocess,
        landmarks: bool = True,
    ):
        super().__init__()
        #: The architecture's input normalisation (``ArchSpec.preprocess``).
        self.preprocess_fn = preprocess_fn
        #: Self-blend through face-mesh landmark hulls (the paper's masks); False:
        #: the five-keypoint polygon (tests without the face-mesh model).
        self.landmarks = landmarks
        self.reader = CropReader(items)
        if sbi and sbi_mix:
            raise ValueError("choose sbi (real crops only) or sbi_mix (all crops), not both")
        self.sbi = sbi
        self.sbi_mix = sbi_mix
        self.refs = [r for r in refs if r.label == 0] if sbi else list(refs)
        if not self.refs:
            raise ValueError("no crops to batch")
        self.batch_size = batch_size
        if sbi:
            self.per_batch = max(1, batch_size // 2)
        elif sbi_mix:
            real_share = sum(1 for r in self.refs if r.label == 0) / len(self.refs)
            self.per_batch = max(1, round(batch_size / (1.0 + real_share)))
        else:
            self.per_batch = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.augment_config = augment_config
        self.class_weights = class_weights or {0: 1.0, 1: 1.0}
        self.steps = steps
        self.size = size
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        order = np.arange(len(self.refs))
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        return order

    def __len__(self) -> int:
        full = math.ceil(len(self.refs) / self.per_batch)
        return min(full, self.steps) if self.steps else full

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch``: a resumed run sees the batches the original would have."""
        self.epoch = epoch
        self._order = self._make_order()

    def batch_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """uint8 crops, 0/1 labels and video ids of batch ``index`` (before preprocessing).

        A self-blended crop belongs to the synthetic video ``sbi:<video id>``.
        """
        # Validation (shuffle=False) uses the same SBI fakes every epoch.
        epoch = self.epoch if self.shuffle else 0
        rng = np.random.default_rng([self.seed, epoch, index])
        chosen = self._order[index * self.per_batch : (index + 1) * self.per_batch]
        images, labels, videos = [], [], []
        for i in chosen:
            ref = self.refs[int(i)]
            crop, keypoints, valid = self._read(ref)
            if valid is not None and rng.random() < self.augment_config.p_fill:
                crop = fill_padding(crop, valid, rng)
            if self.sbi or (self.sbi_mix and ref.label == 0):
                fake = self_blend(crop, keypoints, rng, self._landmarks(crop)).image
                images += [augment(crop, rng, self.augment_config)]
                images += [augment(fake, rng, self.augment_config)]
                labels += [0, 1]
                videos += [ref.video_id, f"sbi:{ref.video_id}"]
            else:
                images.append(augment(crop, rng, self.augment_config))
                labels.append(ref.label)
                videos.append(ref.video_id)
        return np.stack(images), np.asarray(labels, dtype=np.float32), videos

    def _landmarks(self, crop: np.ndarray) -> np.ndarray | None:
        """The crop's 468 face-mesh points, or None where the mesh does not trust them."""
        if not self.landmarks:
            return None
        from model.training.landmarks import face_mesh

        found = face_mesh()(crop)
        return found.points if found.trusted else None

    def _read(self, ref: CropRef) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """A crop at the model's input size, with its keypoints and valid rectangle.

        The cache may hold larger crops than the model reads (one cache serves
        runs of several input sizes); shrinking here is the same area
        resampling ``crop_face`` applies when it cuts a face at that size.
        """
        crop = self.reader(ref)
        if not self.size or crop.shape[0] == self.size:
            return crop, ref.keypoints, ref.valid
        import cv2

        scale = self.size / crop.shape[0]
        crop = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)
        valid = tuple(round(v * scale) for v in ref.valid) if ref.valid is not None else None
        return crop, ref.keypoints * scale, valid

    def __getitem__(self, index: int):
        images, labels, _ = self.batch_arrays(index)
        weights = np.array([self.class_weights[int(y)] for y in labels], dtype=np.float32)
        return self.preprocess_fn(images), labels[:, None], weights
