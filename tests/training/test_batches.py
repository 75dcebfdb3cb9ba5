"""Training batches: SBI pairs, class weights, seeded shuffling, bounded memory maps."""

from __future__ import annotations

import numpy as np
import pytest

from model.training.batches import CropBatches, CropReader, balanced_class_weights
from model.training.cache import CacheConfig, CropCache
from model.training.curation import CurationConfig, select_crops
from model.training.datasets import load_dataset
from tests.training.synth import write_review_export


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    root = tmp_path_factory.mktemp("batches")
    export = write_review_export(root / "export", videos_per_class=3, crops_per_video=2)
    items = CropCache(root / "cache", CacheConfig(crop_size=64)).build(load_dataset(export))
    refs, _ = select_crops(items, CurationConfig(min_crops_per_video=1))
    return items, refs


def test_balanced_class_weights():
    # 1 fake, 3 reals: each class carries half of the total weight (4 / 2 = 2 per class).
    weights = balanced_class_weights([0, 0, 0, 1])
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}
    assert 3 * weights[0] == pytest.approx(1 * weights[1])


def test_sbi_batches_pair_each_real_crop_with_its_blend(cached):
    items, refs = cached
    batches = CropBatches(items, refs, batch_size=4, seed=0, shuffle=False, sbi=True)
    assert len(batches) == 3  # 6 real crops, 2 per batch (each doubled)
    crops, labels, videos = batches.batch_arrays(0)
    assert labels.tolist() == [0, 1, 0, 1]
    assert videos[1] == f"sbi:{videos[0]}"
    assert not np.array_equal(crops[0], crops[1])
    x, y, w = batches[0]
    assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert y.shape == (4, 1) and w.tolist() == [1.0] * 4


def test_shuffling_is_seeded_per_epoch(cached):
    items, refs = cached

    def first_videos(seed, epoch):
        batches = CropBatches(items, refs, batch_size=12, seed=seed, shuffle=True)
        batches.set_epoch(epoch)
        return batches.batch_arrays(0)[2]

    assert first_videos(1, 0) == first_videos(1, 0)
    assert first_videos(1, 0) != first_videos(1, 1)
    assert sorted(first_videos(1, 0)) == sorted(first_videos(2, 0))  # same crops, new order


def test_reader_with_few_open_maps_returns_the_right_crops(cached):
    items, refs = cached
    bounded, unbounded = CropReader(items, max_open=1), CropReader(items)
    for ref in refs + refs[::-1]:
        np.testing.assert_array_equal(bounded(ref), unbounded(ref))
    assert len(bounded._maps) == 1
