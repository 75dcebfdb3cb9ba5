"""Probe heads (model.training.probe): the fit weighs videos and sources, not faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.training.cache import CacheItem
from model.training.datasets import Sample
from model.training.probe import FaceTable, face_labels, fit_head, video_weights


def _item(n: int, label: int, dataset: str) -> CacheItem:
    sample = Sample(
        key=f"{dataset}:{n}", path=Path(f"/x/{n}"), label=label, media="video",
        video_id=f"{dataset}/{n}", identities=(f"{dataset}:{n}",), dataset=dataset,
    )  # fmt: skip
    return CacheItem(sample=sample, status="ok", crops_path=Path("/x"), faces=[])


def test_every_video_and_every_source_weighs_the_same_however_many_faces():
    # One long real video of 90 faces, one short one of 10, two fakes of 5 faces each,
    # and a big second source of reals: faces must not buy weight.
    videos = [_item(0, 0, "a"), _item(1, 0, "a"), _item(2, 1, "a"), _item(3, 1, "a")]
    videos += [_item(10 + i, 0, "b") for i in range(6)]
    faces = [90, 10, 5, 5] + [3] * 6
    table = FaceTable(
        np.zeros((sum(faces), 2), np.float32),
        np.concatenate([np.full(k, v) for v, k in enumerate(faces)]),
        videos,
    )
    w = video_weights(table)
    per_video = np.bincount(table.video, weights=w)
    assert np.isclose(per_video[0], per_video[1])  # long and short real video alike
    assert np.isclose(w.sum(), 1.0)
    labels = face_labels(table)
    assert np.isclose(w[labels == 1].sum(), 0.5)  # the classes balance
    # within the reals, sources a and b weigh the same (not 2 videos against 6)
    real_a = per_video[:2].sum()
    real_b = per_video[4:].sum()
    assert np.isclose(real_a, real_b)
    # a source weight halves one source's share
    half = np.bincount(table.video, weights=video_weights(table, {"b": 0.5}))
    assert np.isclose(half[4:].sum(), half[:2].sum() / 2)


def test_a_head_separates_what_its_features_separate_in_raw_units():
    rng = np.random.default_rng(0)
    real = rng.normal(0.0, 1.0, (200, 8)) * 50 + 100  # features far from unit scale
    fake = real + np.r_[80.0, np.zeros(7)]  # only feature 0 moves
    x = np.concatenate([real, fake]).astype(np.float32)
    y = np.r_[np.zeros(200), np.ones(200)]
    kernel, bias = fit_head(x, y, np.ones(400), l2=1e-3)
    logits = x @ kernel + bias
    assert (logits[y == 1] > 0).mean() > 0.75 and (logits[y == 0] < 0).mean() > 0.75
    assert abs(kernel[0]) > 5 * np.abs(kernel[1:]).max()  # the head found the feature


def test_self_blends_of_real_items_are_fakes_changed_only_around_the_face(tmp_path):
    import cv2
    from skimage.data import astronaut

    from model.training.cache import CachedFace, template_keypoints
    from model.training.probe import self_blends

    crop = cv2.resize(astronaut()[0:300, 110:410], (160, 160), interpolation=cv2.INTER_AREA)
    np.save(tmp_path / "crops.npy", crop[None])
    face = CachedFace(
        frame_index=0, box=None, confidence=None,
        keypoints=template_keypoints(160, 0.3), largest=True,
    )  # fmt: skip
    real = replace_item(_item(0, 0, "real"), tmp_path / "crops.npy", [face])
    fake = replace_item(_item(1, 1, "talkingheads"), tmp_path / "crops.npy", [face])
    crops, stand_ins = self_blends([real, fake], per_item=4)
    assert crops.shape == (1, 160, 160, 3)  # the real item's one face; fakes are not blended
    (blend,) = stand_ins
    assert blend.sample.label == 1 and blend.sample.dataset == "self-blend"
    assert blend.sample.key.startswith("sbi:real:0")
    assert not np.array_equal(crops[0], crop)
    assert np.array_equal(crops[0][:8, :8], crop[:8, :8])  # the corner lies outside the mask
    again, _ = self_blends([real, fake], per_item=4)
    assert np.array_equal(again, crops)  # seeded
    # The fit set's blends (--fit-blends) are a stratum of their own: another dataset name.
    from model.training.probe import FIT_BLENDS

    _, fit_blends = self_blends([real], per_item=4, dataset=FIT_BLENDS)
    assert {b.sample.dataset for b in fit_blends} == {FIT_BLENDS} and fit_blends[
        0
    ].sample.label == 1


def replace_item(item: CacheItem, crops_path: Path, faces: list) -> CacheItem:
    from dataclasses import replace

    return replace(item, crops_path=crops_path, faces=faces)


def test_a_probe_member_is_named_by_the_body_it_sits_on_even_when_probed_again():
    """Probing a bundle whose members are probes already (the shipped default as a base)
    keeps each body's name; a new body of the same training is told apart by its size."""
    from model.training.probe import _probe_name, _probed_body, body_mode

    legacy = {"mode": "probe", "description": "talking heads (self-blend, 224 px body)",
              "learnt": "generated talking heads: a linear head on the features of x",
              "probe": {"body_of": "find-lite0-224 model 0"}, "input_size": 224}  # fmt: skip
    recorded = {"mode": "probe", "description": "talking heads (DFDC body)",
                "probe": {"body_of": "x", "body_mode": "supervised"}, "input_size": 96}  # fmt: skip
    fresh = {"mode": "sbi", "input_size": 260}
    assert [body_mode(e) for e in (legacy, recorded, fresh)] == ["sbi", "supervised", "sbi"]
    manifest = {"models": [legacy, recorded, fresh]}
    assert _probe_name(manifest, 2, [0, 1, 2]) == "talking heads (self-blend, 260 px body)"
    assert _probe_name(manifest, 2, [1, 2]) == "talking heads (self-blend body)"
    # probed again: only the head is new; the body keeps its name, what it learnt, its origin
    assert _probed_body(manifest, 0, [0, 1, 2]) == (
        legacy["description"],
        legacy["learnt"],
        "find-lite0-224 model 0",
    )
    assert _probed_body(manifest, 2, [0, 1, 2])[0] == "talking heads (self-blend, 260 px body)"


def test_fit_blends_are_a_stratum_of_their_own_weighing_as_much_as_the_talking_heads_fakes():
    """``--fit-blends``: self-blends of the fit set's real faces join it as fakes; they must not
    outweigh the talking heads' fakes however many there are (one per DFDC crop, four per clip)."""
    from model.training.probe import FIT_BLENDS

    talking = [_item(i, 1, "talkingheads") for i in range(3)] + [_item(9, 0, "talkingheads")]
    reals = [_item(20 + i, 0, "real") for i in range(4)]
    blends = [_item(40 + i, 1, FIT_BLENDS) for i in range(12)]
    videos = talking + reals + blends
    table = FaceTable(np.zeros((len(videos), 2), np.float32), np.arange(len(videos)), videos)
    w = video_weights(table)
    fakes_th, fakes_blend = w[:3].sum(), w[8:].sum()
    assert np.isclose(fakes_th, fakes_blend)  # 3 clips weigh what 12 blends weigh
    assert np.isclose(w[face_labels(table) == 1].sum(), 0.5)


def test_leave_one_generator_out_reports_each_generator_and_the_aucs_interval():
    """The campaign's transfer measure carries its resolution: 72 clips tell an AUC to about
    ±0.13, and a reader of the probe's report must see that beside the number."""
    from model.training.cache import CachedFace
    from model.training.metrics import auc_interval
    from model.training.probe import logo_report

    rng = np.random.default_rng(0)
    videos, logits, video = [], [], []
    for n in range(30):  # 10 real people, 10 clips of each of two generators
        label, method = (0, None) if n < 10 else (1, "hallo" if n < 20 else "sonic")
        sample = Sample(
            key=f"th:{n}", path=Path(f"/x/{n}.mp4"), label=label, media="video",
            video_id=f"th/{n}", identities=(f"p{n}",), dataset="talkingheads", method=method,
        )  # fmt: skip
        faces = [
            CachedFace(frame_index=f, box=(100, 100, 300, 300), confidence=0.99,
                       keypoints=np.zeros((5, 2)), largest=True)
            for f in range(3)
        ]  # fmt: skip
        videos.append(CacheItem(sample, "ok", Path("/x"), faces, sampled_frames=[0, 1, 2]))
        shift = {None: 0.0, "hallo": 1.5, "sonic": 0.0}[method]
        logits += list(rng.normal(shift, 1.0) + rng.normal(0, 0.1, 3))
        video += [n] * 3
    table = FaceTable(np.zeros((90, 1), np.float32), np.array(video), videos)
    report = logo_report(table, np.array(logits), min_face_px=100)
    assert report["clips"] == 30 and set(report["by_generator"]) == {"hallo", "sonic"}
    assert report["by_generator"]["hallo"] > 0.8 > report["by_generator"]["sonic"]
    low, high = report["auc_ci95"]
    assert low < report["auc"] < high and high - low > 0.2  # 30 clips: a wide interval
    probabilities = 1 / (1 + np.exp(-np.array(logits)))
    scores = probabilities.reshape(30, 3).mean(axis=1)  # the video rule: a track's top 5 faces
    assert report["auc_ci95"] == auc_interval(table.labels, scores)
