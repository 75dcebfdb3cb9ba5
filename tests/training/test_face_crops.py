"""Tight face-crop datasets (DFDC's): loading, re-framing like the scanner, padding fill."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.faces import FaceDetector, crop_face
from model.training.augment import fill_padding
from model.training.cache import CacheConfig, CropCache, keypoints_in_crop
from model.training.datasets import DatasetError, detect_format, load_dataset
from tests.model import synth


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _tight_astronaut(side_factor: float = 0.9, size: int = 224) -> np.ndarray:
    """The astronaut's face cut as DFDC cuts faces: a square ~0.9x the face box."""
    photo = synth.astronaut()
    [faces] = FaceDetector().detect([photo])
    x, y, w, h = faces[0].box
    side = round(max(w, h) * side_factor)
    cx, cy = x + w // 2, y + h // 2
    crop = photo[cy - side // 2 : cy + side // 2, cx - side // 2 : cx + side // 2]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)


def test_face_crop_layout_keeps_its_split_groups_and_originals(tmp_path):
    image = np.full((32, 32, 3), 128, np.uint8)
    for rel in (
        "train/real/g1/g1.jpg",
        "train/fake/g1/f1.jpg",
        "train/fake/g1/f2.jpg",
        "val/real/g2/g2.jpg",
        "test/fake/g3/f3.jpg",  # its real crop is absent: no original
    ):
        _write(tmp_path / rel, image)
    assert detect_format(tmp_path) == "faces"
    samples = {s.key: s for s in load_dataset(tmp_path)}
    fake = samples["faces:train/fake/g1/f1.jpg"]
    assert (fake.split, fake.label, fake.media) == ("train", 1, "face")
    assert fake.identities == samples["faces:train/real/g1/g1.jpg"].identities == ("faces:g1",)
    assert fake.original == "faces:train/real/g1/g1.jpg"
    assert samples["faces:test/fake/g3/f3.jpg"].original is None
    assert samples["faces:val/real/g2/g2.jpg"].split == "val"
    # faces-real: the same real samples (same keys: one crop cache), none of the fakes.
    reals = {s.key: s for s in load_dataset(f"faces-real:{tmp_path}")}
    assert reals == {k: s for k, s in samples.items() if s.label == 0} and len(reals) == 2


def test_real_footage_is_real_training_material_grouped_by_folder(tmp_path):
    image = np.full((32, 32, 3), 128, np.uint8)
    _write(tmp_path / "alice/1.jpg", image)
    _write(tmp_path / "alice/2.jpg", image)
    _write(tmp_path / "bob/1.jpg", image)
    samples = load_dataset(f"real:{tmp_path}")
    assert {s.label for s in samples} == {0}
    assert {s.split for s in samples} == {None}  # dealt by identity into train or val
    assert {s.held_out for s in samples} == {("val",)}  # never test
    assert len({s.identities for s in samples}) == 2  # alice's two photos share a group
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no images or videos"):
        load_dataset(f"real:{tmp_path / 'empty'}")


def test_tight_crop_is_reframed_as_the_scanner_frames_the_full_photo(tmp_path):
    """The cached crop of a tight face equals the scanner's crop where the source has pixels."""
    _write(tmp_path / "faces/test/real/astro/astro.png", _tight_astronaut())
    config = CacheConfig(crop_size=128, min_confidence=0.9, min_face_size=40)
    cache = CropCache(tmp_path / "cache", config)
    [item] = cache.build(load_dataset(tmp_path / "faces"))
    assert item.status == "ok" and len(item.faces) == 1
    face = item.faces[0]
    assert face.confidence is not None and face.confidence > 0.9  # detected, not the fallback
    crop = np.asarray(item.crops()[0])
    x0, y0, x1, y1 = face.valid
    # The source image fills the middle of the crop; the margin beyond it is black.
    assert 0 < x0 < 128 * 0.25 and 128 * 0.75 < x1 < 128
    assert crop[:, : x0 - 1].max() == 0 and crop[: y0 - 1].max() == 0

    # The face sits where the scanner puts it: eyes, nose and mouth within 6% of
    # the crop side of their place in the scanner's crop of the whole photo.
    photo = synth.astronaut()
    [faces] = FaceDetector().detect([photo])
    scanner_keypoints = keypoints_in_crop(faces[0], 128, 0.3)
    offsets = np.linalg.norm(face.keypoints - scanner_keypoints, axis=1)
    assert offsets.max() < 0.06 * 128, f"keypoints moved by {offsets.round(1)} px"
    # ... and so does its content: closer to the scanner's crop than to a shifted one.
    scanner = crop_face(photo, faces[0], 128).astype(float)
    inner = (slice(y0 + 2, y1 - 2), slice(x0 + 2, x1 - 2))
    difference = np.abs(crop[inner] - scanner[inner]).mean()
    shifted = np.roll(scanner, 16, axis=(0, 1))
    assert difference < np.abs(crop[inner] - shifted[inner]).mean() * 0.7


def test_fill_padding_changes_only_the_padding():
    rng = np.random.default_rng(0)
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[10:54, 12:52] = rng.integers(30, 220, size=(44, 40, 3), dtype=np.uint8)
    valid = (12, 10, 52, 54)
    kinds = set()
    for seed in range(12):
        out = fill_padding(crop, valid, np.random.default_rng(seed))
        assert np.array_equal(out[10:54, 12:52], crop[10:54, 12:52])
        kinds.add(bool(out[:10].any()))
    assert kinds == {True, False}  # sometimes black as in evaluation, mostly filled
    # Nothing to fill when the source covers the crop.
    assert fill_padding(crop, (0, 0, 64, 64), rng) is crop
