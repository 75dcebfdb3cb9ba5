"""Augmentations: shape and dtype kept, each transform does what it says, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import astronaut

from model.training.augment import (
    NO_AUGMENT,
    AugmentConfig,
    augment,
    color_jitter,
    downscale,
    gaussian_blur,
    hflip,
    jpeg_recompress,
    sharpen,
)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.ascontiguousarray(astronaut()[50:178, 150:278])  # 128 x 128 face


def test_each_transform_keeps_shape_and_dtype(image):
    for out in (
        jpeg_recompress(image, 50),
        color_jitter(image, 1.2, 0.8),
        hflip(image),
        gaussian_blur(image, 1.0),
        downscale(image, 0.5),
        sharpen(image, 0.8, 1.2),
    ):
        assert out.shape == image.shape and out.dtype == np.uint8


def test_flip_mirrors_exactly(image):
    np.testing.assert_array_equal(hflip(image)[:, 0], image[:, -1])
    np.testing.assert_array_equal(hflip(hflip(image)), image)


def test_lower_jpeg_quality_loses_more(image):
    def error(q):
        return np.abs(jpeg_recompress(image, q).astype(int) - image.astype(int)).mean()

    assert 0 < error(95) < error(30)


def test_brightness_and_saturation_move_the_right_way(image):
    assert color_jitter(image, 1.0, 0.5).mean() < image.mean()
    grey = color_jitter(image, 0.0, 1.0).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 2  # saturation 0 is grey


def test_blur_and_downscale_remove_high_frequencies(image):
    def detail(x):
        return np.abs(np.diff(x.astype(int), axis=1)).mean()

    assert detail(gaussian_blur(image, 1.5)) < detail(image)
    assert detail(downscale(image, 0.4)) < detail(image)


def test_pipeline_is_seeded_and_can_be_disabled(image):
    config = AugmentConfig(p_jpeg=1, p_color=1, p_flip=0.5, p_blur=0.5, p_downscale=0.5)
    a = augment(image, np.random.default_rng(3), config)
    b = augment(image, np.random.default_rng(3), config)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, image)
    np.testing.assert_array_equal(augment(image, np.random.default_rng(3), NO_AUGMENT), image)


def test_sharpening_adds_detail_and_keeps_the_mean(image):
    """Crisp footage exists on both sides of the label: training sharpens reals and fakes alike."""

    def detail(x):
        return np.abs(np.diff(x.astype(int), axis=1)).mean()

    assert detail(sharpen(image, 0.3)) > detail(image)
    assert detail(sharpen(image, 1.0)) > detail(sharpen(image, 0.3))
    assert abs(sharpen(image, 1.0).mean() - image.mean()) < 2
    np.testing.assert_array_equal(sharpen(image, 0.0), image)
    assert AugmentConfig().p_sharpen > 0 and NO_AUGMENT.p_sharpen == 0
