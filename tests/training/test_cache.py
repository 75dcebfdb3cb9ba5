"""The face-crop cache on a real face: one crop function, keypoints mapped, reused on re-runs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from model.faces import Face, crop_face
from model.training.cache import CacheConfig, CropCache, template_keypoints
from model.training.datasets import load_dataset


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    for label in ("real", "fake"):
        (root / label).mkdir()
    image = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(root / "real" / "astronaut.png"), image)
    cv2.imwrite(str(root / "fake" / "blank.png"), np.full((200, 200, 3), 127, np.uint8))
    return root


@pytest.mark.slow
def test_cache_crops_with_the_inference_crop_and_maps_keypoints(folder_dataset, tmp_path):
    samples = sorted(load_dataset(folder_dataset), key=lambda s: s.label)
    cache = CropCache(tmp_path, CacheConfig(crop_size=96, min_face_size=40))
    real, blank = cache.build(samples)
    assert blank.status == "no_face" and blank.faces == []
    assert real.status == "ok" and len(real.faces) == 1
    face = real.faces[0]
    assert face.largest and face.confidence > 0.95 and face.box is not None
    # The cached crop is exactly crop_face() of the detected face: one code path.
    detected = Face(box=face.box, confidence=face.confidence, keypoints={})
    expected = crop_face(astronaut(), detected, 96, 0.3)
    np.testing.assert_array_equal(real.crops()[0], expected)
    # Keypoints land inside the crop, eyes above the mouth, left eye left of right eye.
    kp = face.keypoints
    assert np.all((kp > 0) & (kp < 96))
    assert kp[0, 0] < kp[1, 0] and kp[0, 1] < kp[3, 1]

    # A second cache over the same folder reuses the stored item (no re-extraction).
    meta = sorted((tmp_path).rglob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in meta}
    again = CropCache(tmp_path, CacheConfig(crop_size=96, min_face_size=40)).build(samples)
    assert {p: p.stat().st_mtime_ns for p in meta} == stamps
    np.testing.assert_array_equal(again[0].crops(), real.crops())
    # Another crop size is another cache.
    assert CacheConfig(crop_size=64).digest() != CacheConfig(crop_size=96).digest()


def test_review_crops_are_resized_and_get_template_keypoints(tmp_path):
    from tests.training.synth import write_review_export

    export = write_review_export(tmp_path / "export", videos_per_class=1, crops_per_video=1)
    samples = load_dataset(export)
    items = CropCache(tmp_path / "cache", CacheConfig(crop_size=48)).build(samples)
    for item in items:
        assert item.status == "ok"
        assert item.crops().shape == (1, 48, 48, 3)
        np.testing.assert_allclose(item.faces[0].keypoints, template_keypoints(48, 0.3))


def test_two_writers_of_one_cache_item_never_rename_each_others_files(tmp_path):
    """Several processes fill one cache (parallel candidates, an evaluation beside them):
    with one shared ``.tmp`` name a writer renamed the other's file away mid-write."""
    import threading

    import numpy as np

    from model.training.cache import _atomic_save_npy

    target = tmp_path / "item.npy"
    errors: list[BaseException] = []

    def write(value: int) -> None:
        try:
            for _ in range(200):
                _atomic_save_npy(target, np.full((8, 8), value, np.uint8))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert np.load(target)[0, 0] in (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["item.npy"]  # no temporary left
