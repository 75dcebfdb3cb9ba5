"""Self-Blended Images on a real face (skimage's astronaut) with its MTCNN keypoints."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import astronaut

from model.training.sbi import BLEND_RATIOS, face_mask, face_polygon, keypoints_array, self_blend

#: MTCNN's keypoints for skimage.data.astronaut() (measured once with model.faces).
KEYPOINTS = {
    "left_eye": (204, 100),
    "right_eye": (245, 102),
    "nose": (224, 126),
    "mouth_left": (202, 139),
    "mouth_right": (244, 140),
}
FACE_BOX = (182, 64, 83, 107)  # x, y, w, h


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return astronaut()


def test_mask_is_soft_covers_the_face_and_nothing_far_away(image):
    rng = np.random.default_rng(0)
    mask = face_mask(image.shape[:2], keypoints_array(KEYPOINTS), rng)
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() == pytest.approx(1.0)
    for x, y in KEYPOINTS.values():  # eyes, nose, mouth are inside the blended region
        assert mask[y, x] > 0.9
    x, y, w, h = FACE_BOX
    outside = np.ones_like(mask, dtype=bool)
    outside[max(0, y - h) : y + 2 * h, max(0, x - w) : x + 2 * w] = False
    assert mask[outside].max() == 0.0  # nothing blended far from the face
    # Soft: a band of intermediate values forms the blending boundary.
    assert np.sum((mask > 0.05) & (mask < 0.95)) > 200


def test_polygon_spans_forehead_to_chin(image):
    polygon = face_polygon(keypoints_array(KEYPOINTS))
    eye_y = (KEYPOINTS["left_eye"][1] + KEYPOINTS["right_eye"][1]) / 2
    mouth_y = (KEYPOINTS["mouth_left"][1] + KEYPOINTS["mouth_right"][1]) / 2
    assert polygon[:, 1].min() < eye_y - 20  # forehead above the eyes
    assert polygon[:, 1].max() > mouth_y + 20  # chin below the mouth
    assert polygon[:, 0].min() < KEYPOINTS["left_eye"][0] < KEYPOINTS["right_eye"][0]
    assert KEYPOINTS["right_eye"][0] < polygon[:, 0].max()


def test_blend_keeps_pixels_outside_the_mask_and_changes_the_face(image):
    result = self_blend(image, KEYPOINTS, np.random.default_rng(1))
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    assert result.blend_ratio in BLEND_RATIOS
    assert result.mask.max() == pytest.approx(result.blend_ratio)
    untouched = result.mask == 0
    assert untouched.mean() > 0.8
    np.testing.assert_array_equal(result.image[untouched], image[untouched])
    inside = result.mask > 0.5 * result.blend_ratio
    diff = np.abs(result.image.astype(int) - image.astype(int))[inside]
    assert diff.mean() > 3  # the jittered source face really was blended in


def test_blend_is_deterministic_per_seed(image):
    a = self_blend(image, KEYPOINTS, np.random.default_rng(5))
    b = self_blend(image, KEYPOINTS, np.random.default_rng(5))
    c = self_blend(image, KEYPOINTS, np.random.default_rng(6))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_blend_rejects_bad_input(image):
    with pytest.raises(ValueError, match="uint8"):
        self_blend(image.astype(np.float32), KEYPOINTS, np.random.default_rng(0))
    with pytest.raises(ValueError, match="5 \\(x, y\\)"):
        self_blend(image, np.zeros((3, 2)), np.random.default_rng(0))
