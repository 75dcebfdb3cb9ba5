"""Learning from the reviewers (issue 23): a guarded candidate, promotion, rollback.

Plumbing tests use a tiny real bundle whose score rises with a crop's grey level, so
reviewers' decisions can be made up with a known right answer; they run without shared
data.  The last tests use real DFDC face crops from ``../shared/data`` and the shipped
detector, and skip (saying why) when the data is absent.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bot import review
from bot.db import session_factory
from bot.settings import Settings, shared_data_dir
from bot.store import Video
from model.classifier import ArchSpec
from tests.records import analysis_of

TINY = ArchSpec("xception_compact", 64, 0.125, 1)
#: Enough channels to split by channel (model.adapt.MIN_GROUPS_FOR_GROUP_SPLIT).
CHANNELS = [f"UCadapt{i:02d}xxxxxxxxxxxxxx" for i in range(12)]
GREYS = list(range(130, 252, 1))


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def graded_bundle(tmp_path_factory) -> Path:
    """Two tiny members whose logits rise with a uniform crop's grey level (above 128)."""
    from model.bundle import write_bundle
    from model.classifier import build_classifier

    rng = np.random.default_rng(0)
    models = [build_classifier(TINY, seed=1), build_classifier(TINY, seed=2)]
    for model in models:
        layer = model.get_layer("logit")
        kernel, _ = layer.get_weights()
        layer.set_weights(
            [
                (np.abs(rng.normal(0, 1, kernel.shape)) * 250).astype(np.float32),
                np.array([-3.0], np.float32),
            ]
        )
    return write_bundle(
        tmp_path_factory.mktemp("graded") / "base",
        models,
        TINY,
        threshold=0.5,
        temperature=1.0,
        name="tiny-graded",
        version="1.0",
        training={"threshold_rule": {"rule": "false_alarm_budget", "max_false_alarm_rate": 0.05}},
        metrics={},
        weights_dtype="float32",
    )


@pytest.fixture(scope="module")
def grey_scores(graded_bundle) -> dict[int, float]:
    """The base bundle's score of a video made of crops of each grey level."""
    from model.bundle import load_bundle

    bundle = load_bundle(graded_bundle)
    crops = np.stack([_grey(g, 64) for g in GREYS])
    probs = bundle.ensemble().predict(crops)
    scores = dict(zip(GREYS, (float(p) for p in probs), strict=True))
    assert all(np.diff(probs) > 0), "the test bundle must score brighter crops higher"
    return scores


def _grey(level: int, size: int) -> np.ndarray:
    return np.full((size, size, 3), level, np.uint8)


def _write_jpeg(path: Path, level: int, size: int = 96) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), _grey(level, size), [cv2.IMWRITE_JPEG_QUALITY, 95])


def seed(settings: Settings, scores: dict[int, float], *, flipped: bool = False) -> dict:
    """One video per grey level: flagged ones decided, the rest analysed (presumed real).

    The truth: a video is fake when its grey level is at least the median flagged one,
    so the current threshold (0.5) flags many real videos: the learnt threshold must
    rise.  ``flipped`` makes the reviewers say the opposite.
    """
    flagged = [g for g in GREYS if scores[g] >= 0.5]
    cut = flagged[len(flagged) // 2]
    sessions = session_factory(settings)
    with sessions.begin() as session:
        for i, g in enumerate(GREYS):
            key = f"v{g:03d}xxxxxxx"[:11]
            video = Video(
                youtube_id=key,
                channel_youtube_id=CHANNELS[i % len(CHANNELS)],
                channel_title=f"Channel {i % len(CHANNELS)}",
                state="flagged" if scores[g] >= 0.5 else "analysed",
                score=scores[g],
                verdict="fake" if scores[g] >= 0.5 else "real",
            )
            session.add(video)
            session.flush()
            analysis = analysis_of(
                video,
                bundle_id="tiny-graded",
                bundle_version="1.0",
                frames_requested=32,
                frames_decoded=32,
                faces=2,
                scores={"tracks": [], "top_frames": []},
            )
            session.add(analysis)
            session.flush()
            crops = []
            for frame in (0, 1):
                rel = f"crops/{key}/{analysis.id}-t0-f{frame}.jpg"
                _write_jpeg(settings.media_dir / rel, g)
                crops.append({"path": rel, "track": 0, "frame": frame, "t": 0.0, "score": 0.5})
            analysis.crops = crops
    for g in flagged:
        key = f"v{g:03d}xxxxxxx"[:11]
        fake = (g >= cut) != flipped
        review.decide(
            sessions,
            key,
            "confirmed" if fake else "dismissed",
            "alice",
            reason="impersonation" if fake else "not manipulated",
        )
    return {"cut": cut, "flagged": flagged}


def synthetic_validation(root: Path, scores: dict[int, float], cut: int) -> Path:
    """A validation folder in the shipped layout: real below the cut, fake above."""
    for g in GREYS[::3]:
        label = "fake" if g >= cut else "real"
        _write_jpeg(root / label / f"g{g}" / "crop.jpg", g, 64)
    return root


def _with_base(settings: Settings, graded_bundle: Path, tmp_path: Path) -> Settings:
    import shutil

    base = tmp_path / "base-bundle"
    shutil.copytree(graded_bundle, base)
    return dataclasses.replace(settings, model_bundle=base)


@pytest.fixture
def sqlite_adapt_settings(sqlite_settings: Settings, graded_bundle: Path, tmp_path: Path):
    """SQLite with a copy of the base bundle (the database side runs on both backends in
    ``test_which_videos_teach``; the model side does not depend on the backend)."""
    return _with_base(sqlite_settings, graded_bundle, tmp_path)


# ------------------------------------------------------------- plumbing
def test_which_videos_teach(settings: Settings) -> None:
    """Final states after reversals; bank matches, declared-synthetic, undecided flags and
    videos without crops on disk left out; unreviewed analysed videos presumed real."""
    from bot.review.learning import gather

    sessions = session_factory(settings)
    rows = {
        "confirmedxx": dict(state="flagged"),
        "dismissedxx": dict(state="flagged"),
        "appealedxxx": dict(state="flagged"),
        "knownfakexx": dict(state="confirmed", verdict="known_fake", analysis=False),
        "declaredxxx": dict(state="flagged", declared_synthetic=True),
        "undecidedxx": dict(state="flagged"),
        "presumedxxx": dict(state="analysed"),
        "nocropsxxxx": dict(state="flagged", crops_on_disk=False),
    }
    with sessions.begin() as session:
        for key, row in rows.items():
            video = Video(
                youtube_id=key,
                channel_youtube_id=CHANNELS[0],
                state=row["state"],
                verdict=row.get("verdict", "fake"),
                declared_synthetic=row.get("declared_synthetic"),
            )
            session.add(video)
            session.flush()
            if row.get("analysis", True):
                rel = f"crops/{key}/1-t0-f0.jpg"
                if row.get("crops_on_disk", True):
                    _write_jpeg(settings.media_dir / rel, 200)
                crop = {"path": rel, "track": 0, "frame": 0, "t": 0.0, "score": 0.9}
                session.add(analysis_of(video, video_score=0.9, verdict="fake", crops=[crop]))
    for key, decision in (
        ("confirmedxx", "confirmed"),
        ("dismissedxx", "dismissed"),
        ("appealedxxx", "confirmed"),
        ("declaredxxx", "confirmed"),
        ("nocropsxxxx", "confirmed"),
    ):
        reason = "impersonation" if decision == "confirmed" else "not manipulated"
        review.decide(sessions, key, decision, "alice", reason=reason)
    review.decide(
        sessions,
        "appealedxxx",
        "dismissed",
        "bob",
        reason="not manipulated",
        expected_state="confirmed",
        reversal_reason="appeal upheld",
    )
    got = {e.key: (e.label, e.reviewed) for e in gather(settings)}
    assert got == {
        "confirmedxx": (1, True),
        "dismissedxx": (0, True),
        "appealedxxx": (0, True),  # confirmed, then dismissed on appeal: counts as dismissed
        "presumedxxx": (0, False),
    }


def test_a_shifted_threshold_is_learnt_promoted_and_rolled_back(
    sqlite_adapt_settings: Settings, grey_scores: dict[int, float], tmp_path: Path
) -> None:
    from bot.review.learning import run_adaptation
    from bot.service.status import collect_status, render_status
    from bot.stages.analyse import Analyser
    from model.bundle import load_bundle, read_manifest
    from model.versions import bundles_root, read_pointer, rollback

    seeded = seed(sqlite_adapt_settings, grey_scores)
    # A reversal counts as its final state: confirm the lowest real one, then reverse it.
    low = f"v{seeded['flagged'][0]:03d}xxxxxxx"[:11]
    sessions = session_factory(sqlite_adapt_settings)
    review.decide(
        sessions,
        low,
        "confirmed",
        "bob",
        reason="impersonation",
        expected_state="dismissed",
        reversal_reason="misread",
    )
    review.decide(
        sessions,
        low,
        "dismissed",
        "carol",
        reason="not manipulated",
        expected_state="confirmed",
        reversal_reason="appeal upheld",
    )
    from bot.review.learning import gather

    labels = {e.key: (e.label, e.reviewed) for e in gather(sqlite_adapt_settings)}
    assert labels[low] == (0, True)  # dismissed, confirmed on appeal, dismissed again
    assert len(labels) == len(GREYS)
    analyser = Analyser(sqlite_adapt_settings)
    assert analyser.bundle.version == "1.0"
    validation = synthetic_validation(tmp_path / "val", grey_scores, seeded["cut"])

    report = run_adaptation(sqlite_adapt_settings, validation_dir=validation)

    assert report.promoted, report.summary()
    check = report.sets["check"]
    assert check["current"]["false_alarm_rate"] > 0.2  # the shifted truth: too many flags
    assert check["candidate"]["false_alarm_rate"] <= 0.05
    assert check["candidate"]["threshold"] > 0.5
    assert check["candidate"]["threshold"] <= grey_scores[seeded["cut"]] + 1e-6
    assert set(report.sets) == {"check", "validation"}
    # The new version is on disk with its provenance; the base is untouched.
    root = bundles_root(sqlite_adapt_settings.data_dir)
    manifest = read_manifest(report.directory)
    record = manifest["training"]["adaptation"]
    assert manifest["version"].startswith("1.0+adapted.")
    assert record["from"]["version"] == "1.0"
    assert low in record["decisions"]["adapt_videos"] + record["decisions"]["check_videos"]
    assert record["heads"]["fine_tuned"] is False  # far below 50 reviewed videos per class
    assert read_manifest(sqlite_adapt_settings.model_bundle)["threshold"] == 0.5
    assert load_bundle(report.directory).threshold == pytest.approx(manifest["threshold"])
    pointer = read_pointer(root)
    assert pointer["history"][-1]["dir"] == report.directory.name
    # The running analyser takes the new bundle before its next video; status shows it.
    assert analyser.refresh_bundle()
    assert analyser.bundle.version == manifest["version"]
    assert analyser.threshold == pytest.approx(manifest["threshold"])
    status = collect_status(sqlite_adapt_settings)
    assert status["model"]["active"]["version"] == manifest["version"]
    assert status["model"]["active"]["adapted"] is True
    assert "adapted, promoted" in render_status(status)
    # Rollback returns to the base and keeps the adapted version on disk.
    gone, to = rollback(root, sqlite_adapt_settings.model_bundle)
    assert (gone, to) == (report.directory.name, "base")
    assert report.directory.is_dir()
    assert analyser.refresh_bundle()
    assert analyser.bundle.version == "1.0"
    assert collect_status(sqlite_adapt_settings)["model"]["active"]["adapted"] is False


def test_flipped_decisions_are_refused_with_the_numbers(
    sqlite_adapt_settings: Settings, grey_scores: dict[int, float], tmp_path: Path
) -> None:
    from bot.review.learning import run_adaptation
    from model.versions import bundles_root

    seeded = seed(sqlite_adapt_settings, grey_scores, flipped=True)
    validation = synthetic_validation(tmp_path / "val", grey_scores, seeded["cut"])

    report = run_adaptation(sqlite_adapt_settings, validation_dir=validation)
    assert not report.promoted, report.summary()
    assert any("contradict" in r for r in report.reasons), report.reasons
    assert "current" in report.table and "candidate" in report.table
    root = bundles_root(sqlite_adapt_settings.data_dir)
    assert not root.exists() or not any(root.iterdir())  # nothing written, nothing promoted


def test_cli_adapt_refuses_without_validation_and_rollback_says_nothing_to_do(
    sqlite_adapt_settings: Settings,
    grey_scores: dict[int, float],
    tmp_path: Path,
    monkeypatch,
    capsys,
) -> None:
    from bot.cli import main

    seed(sqlite_adapt_settings, grey_scores)
    monkeypatch.setenv("FIND_DATA_DIR", str(sqlite_adapt_settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", sqlite_adapt_settings.database_url)
    monkeypatch.setenv("FIND_MODEL_BUNDLE", str(sqlite_adapt_settings.model_bundle))
    monkeypatch.setenv("FIND_SHARED_DATA", str(tmp_path / "no-shared-data"))

    assert main(["model", "adapt", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: not promoted" in out and "validation check skipped" in out

    assert main(["model", "adapt"]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "--allow-without-validation" in out

    assert main(["model", "adapt", "--allow-without-validation", "--json"]) == 0

    def strict(constant: str):
        raise AssertionError(f"not JSON: {constant}")

    report = json.loads(capsys.readouterr().out, parse_constant=strict)
    assert report["promoted"] and report["bundle"]
    assert main(["model", "info"]) == 0  # follows the pointer to the adapted version
    info = capsys.readouterr().out
    assert "+adapted." in info and "adapted:" in info and "calibration and threshold only" in info
    assert main(["model", "rollback"]) == 0
    assert "active now: the base bundle" in capsys.readouterr().out
    assert main(["model", "rollback"]) == 2  # a FindError: one line on stderr
    assert "nothing to roll back" in capsys.readouterr().err


def test_too_few_decisions_is_one_clear_line(sqlite_adapt_settings: Settings) -> None:
    from bot.review.learning import AdaptRefused, run_adaptation

    with pytest.raises(AdaptRefused, match="not enough decided videos"):
        run_adaptation(sqlite_adapt_settings)


def test_adapt_interval_setting(tmp_path: Path) -> None:
    from bot.errors import SettingsError
    from tests.conftest import make_settings

    assert make_settings(tmp_path).adapt_interval_s is None
    assert make_settings(tmp_path, FIND_ADAPT_INTERVAL="1d").adapt_interval_s == 86400
    assert make_settings(tmp_path, FIND_ADAPT_INTERVAL="off").adapt_interval_s is None
    with pytest.raises(SettingsError, match="FIND_ADAPT_INTERVAL"):
        make_settings(tmp_path, FIND_ADAPT_INTERVAL="5m")


def test_scheduled_adaptation_is_a_leader_job_that_waits_for_analyses(
    sqlite_adapt_settings: Settings,
    grey_scores: dict[int, float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FIND_ADAPT_INTERVAL adds an `adapt` job to the scheduler (paused on a standby, like
    discover); the job waits while this process analyses a video, then promotes."""
    import threading
    import time

    from bot.service.periodic import PeriodicJobs
    from bot.service.workers import ModelGate
    from model.versions import POINTER, bundles_root

    settings = dataclasses.replace(sqlite_adapt_settings, adapt_interval_s=3600)
    seeded = seed(settings, grey_scores)
    shared = tmp_path / "shared"
    synthetic_validation(shared / "dfdc-faces" / "val", grey_scores, seeded["cut"])
    monkeypatch.setenv("FIND_SHARED_DATA", str(shared))
    gate, stop = ModelGate(), threading.Event()
    jobs = PeriodicJobs(lambda: settings, stop, model_gate=gate)
    jobs._start_scheduler(paused=True)  # how a standby starts: jobs held until it leads
    try:
        job = jobs.scheduler.get_job("adapt")
        assert job is not None and job.trigger.interval.total_seconds() == 3600
    finally:
        jobs.scheduler.shutdown(wait=False)
    pointer = bundles_root(settings.data_dir) / POINTER
    with gate.shared():  # a video is being analysed in this process
        worker = threading.Thread(target=jobs.run_adapt)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive() and not pointer.exists()
    worker.join(300)
    assert not worker.is_alive() and pointer.exists()


# ------------------------------------------------------------ real data
def _real_data() -> Path:
    root = shared_data_dir() / "dfdc-faces"
    if not (root / "val").is_dir() or not (root / "test").is_dir():
        pytest.skip(f"real face data not found at {root} (see ../shared/data/MANIFEST.md)")
    return root


def test_shared_data_resolves_next_to_the_checkout() -> None:
    """The worktree sees ../shared/data through bot.settings.shared_data_dir."""
    root = _real_data()
    assert (root / "val" / "real").is_dir()


def _dfdc_videos(settings: Settings, root: Path, per_class: int, seed: int = 0) -> list[tuple]:
    """Real DFDC test crops as analysed videos: (key, label, crop path), one crop each.

    The crops are re-framed as the scanner frames faces (``model.adapt.reframe_tight``)
    and stored as the analysis's evidence, exactly where the analyse stage puts them.
    """
    import cv2

    from model.adapt import reframe_tight

    rng = np.random.default_rng(seed)
    out = []
    for label, name in ((0, "real"), (1, "fake")):
        groups = sorted(p for p in (root / "test" / name).iterdir() if p.is_dir())
        for n, i in enumerate(sorted(rng.permutation(len(groups))[:per_class])):
            source = sorted(groups[i].glob("*.jpg"))[0]
            key = f"{name[0]}{n:03d}{groups[i].name}"[:11]
            rel = f"crops/{key}/1-t0-f0.jpg"
            (settings.media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            image = reframe_tight(source, 256, 0.3)
            cv2.imwrite(str(settings.media_dir / rel), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            out.append((key, label, rel))
    return out


def _seed_scored(
    settings: Settings,
    videos: list[tuple],
    scores: np.ndarray,
    threshold: float,
    *,
    flipped: bool = False,
) -> None:
    """Videos at or above ``threshold`` flagged and decided (true labels, or flipped)."""
    sessions = session_factory(settings)
    with sessions.begin() as session:
        for i, ((key, _label, rel), score) in enumerate(zip(videos, scores, strict=True)):
            flagged = score >= threshold
            video = Video(
                youtube_id=key,
                channel_youtube_id=CHANNELS[i % len(CHANNELS)],
                state="flagged" if flagged else "analysed",
                score=float(score),
                verdict="fake" if flagged else "real",
            )
            session.add(video)
            session.flush()
            crop = {"path": rel, "track": 0, "frame": 0, "t": 0.0, "score": float(score)}
            session.add(
                analysis_of(
                    video,
                    bundle_id="find-default",
                    bundle_version="test",
                    frames_requested=32,
                    frames_decoded=32,
                    scores={"tracks": [], "top_frames": []},
                    threshold=threshold,
                    crops=[crop],
                )
            )
    for (key, label, _rel), score in zip(videos, scores, strict=True):
        if score >= threshold:
            fake = bool(label) != flipped
            review.decide(
                sessions,
                key,
                "confirmed" if fake else "dismissed",
                "alice",
                reason="impersonation" if fake else "not manipulated",
            )


@pytest.fixture(scope="module")
def default_scored(tmp_path_factory):
    """The shipped detector, and its scores of re-framed real DFDC test crops."""
    import cv2

    from model.bundle import default_bundle_path, load_bundle

    root = _real_data()
    bundle = load_bundle(default_bundle_path())
    media = tmp_path_factory.mktemp("dfdc-media")
    holder = dataclasses.replace(
        __import__("tests.conftest", fromlist=["make_settings"]).make_settings(media),
    )
    videos = _dfdc_videos(holder, root, per_class=90)
    crops = np.stack(
        [
            cv2.resize(
                cv2.cvtColor(cv2.imread(str(holder.media_dir / rel)), cv2.COLOR_BGR2RGB),
                (bundle.input_size, bundle.input_size),
                interpolation=cv2.INTER_AREA,
            )
            for _k, _l, rel in videos
        ]
    )
    return bundle, holder.media_dir, videos, bundle.ensemble().predict(crops)


def _real_settings(sqlite_settings: Settings, media_dir: Path, tmp_path: Path) -> Settings:
    import shutil

    from model.bundle import default_bundle_path

    base = tmp_path / "default-copy"
    shutil.copytree(default_bundle_path(), base)
    return dataclasses.replace(sqlite_settings, model_bundle=base, media_dir=media_dir)


def test_real_crops_a_shifted_threshold_is_learnt(sqlite_settings, default_scored, tmp_path):
    """A deployment whose threshold is far too low: reviewers dismiss most flags; the
    candidate learns a higher threshold, meets the false-alarm budget on held-out
    decisions, keeps the validation AUC, and is promoted."""
    from bot.review.learning import run_adaptation
    from model.bundle import update_manifest

    _bundle, media_dir, videos, scores = default_scored
    labels = np.array([label for _k, label, _r in videos])
    low = float(np.quantile(scores[labels == 0], 0.4))  # 60 % of real videos flagged
    settings = _real_settings(sqlite_settings, media_dir, tmp_path)
    update_manifest(settings.model_bundle, {"threshold": low})
    _seed_scored(settings, videos, scores, low)

    report = run_adaptation(settings, validation_per_class=40)

    assert report.promoted, report.summary()
    check, val = report.sets["check"], report.sets["validation"]
    assert check["current"]["false_alarm_rate"] > 0.3
    assert check["candidate"]["threshold"] > low
    assert check["candidate"]["false_alarm_rate"] < check["current"]["false_alarm_rate"]
    assert val["candidate"]["false_alarm_rate"] < val["current"]["false_alarm_rate"]
    assert val["candidate"]["auc"] == pytest.approx(val["current"]["auc"], abs=1e-9)
    assert report.record["heads"]["fine_tuned"] is False


def test_real_crops_flipped_decisions_are_refused(sqlite_settings, default_scored, tmp_path):
    """Every decision flipped, enough of them to refit the heads: the candidate ranks the
    shipped validation set worse and the decisions contradict the model: refused."""
    from bot.review.learning import run_adaptation

    _bundle, media_dir, videos, scores = default_scored
    settings = _real_settings(sqlite_settings, media_dir, tmp_path)
    _seed_scored(settings, videos, scores, 0.0, flipped=True)  # everything reviewed

    report = run_adaptation(settings, validation_per_class=40)

    assert not report.promoted
    assert report.record["heads"]["fine_tuned"] is True
    val = report.sets["validation"]
    assert val["candidate"]["auc"] < val["current"]["auc"] - 0.01, report.table
    assert any(r.startswith("validation: AUC") for r in report.reasons), report.reasons
