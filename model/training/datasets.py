"""Dataset adapters: turn a folder on disk into labelled, groupable samples.

Every adapter returns the same thing — a list of :class:`Sample` — so the
cache, the trainer and the evaluator never care which dataset they read.
What differs between datasets is how labels are found and, above all, how
samples are *grouped*: a group is everything that shows the same person or
comes from the same source video, and :mod:`model.training.splits` keeps a group in a
single split so nobody's face leaks from training into testing.

Supported layouts (see ``docs/training.md`` for the full description):

``folder``   ``real/`` + ``fake/`` holding images or videos (any depth)
``ffpp``     FaceForensics++ ``original_sequences`` / ``manipulated_sequences``
``celebdf``  Celeb-DF v2 with ``List_of_testing_videos.txt``
``dfdc``     DFDC parts, each with a ``metadata.json``
``review``   the review queue's labelled export (``labels.jsonl`` + ``crops/``)
``faces``    tight face crops in a fixed split: ``{train,val,test}/{real,fake}/<group>/*.jpg``
``real``     real footage only (videos and/or photos), for Self-Blended Images
``talkingheads`` real and generated talking-face clips listed in ``labels.csv`` (by person
             and generator)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.errors import FindError
from bot.settings import shared_data_dir

#: ``video``/``image``: a frame to detect faces in; ``crop``: an already framed face
#: (review export, used as is); ``face``: a *tight* face crop (e.g. DFDC's), which is
#: re-framed with the scanner's margin before use (see ``model.training.cache``).
Media = Literal["video", "image", "crop", "face"]
Split = Literal["train", "val", "test"]

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

FAKE, REAL = 1, 0


class DatasetError(FindError):
    """A dataset folder is missing, has the wrong layout, or holds malformed labels."""


@dataclass(frozen=True)
class Sample:
    """One labelled item: a video, a still image, or an already-cropped face.

    ``identities`` are the split keys: two samples sharing any identity end up
    in the same split.  ``video_id`` is what video-level metrics aggregate
    over (all crops of a review-queue video share one).  ``original`` names
    the ``key`` of the real sample a fake was made from, when the dataset
    says so; the label-noise filter compares a fake with its original.
    """

    key: str
    path: Path
    label: int
    media: Media
    video_id: str
    identities: tuple[str, ...]
    dataset: str
    split: Split | None = None
    original: str | None = None
    method: str = ""
    extra_paths: tuple[Path, ...] = field(default=())
    #: The held-out splits a sample without a fixed ``split`` may be dealt to (by identity,
    #: see :mod:`model.training.splits`); real-only footage goes to validation, never test.
    held_out: tuple[str, ...] = ("test", "val")
    #: How many times each training crop is read per epoch (``PATH*N``): a small set of a
    #: kind the rest lacks (crisp studio photos among compressed video) still gets seen.
    repeat: int = 1

    @property
    def is_fake(self) -> bool:
        return self.label == FAKE


# --------------------------------------------------------------------------- discovery


def has_shared_data() -> bool:
    """True when the shared data folder exists and holds at least one dataset."""
    root = shared_data_dir()
    return root.is_dir() and any(p.is_dir() for p in root.iterdir())


# --------------------------------------------------------------------------- helpers


def _media_files(root: Path, extensions: Iterable[str]) -> list[Path]:
    wanted = {e.lower() for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} folder not found; check the dataset path")
    return path


# --------------------------------------------------------------------------- folder


def load_folder(root: Path) -> list[Sample]:
    """Generic ``real/`` + ``fake/`` folder of images and/or videos.

    Grouping: a video is its own group.  Images are grouped by the folder
    that holds them (``real/alice/*.jpg`` is one group, so put the frames of
    one video or one person in one sub-folder); images lying directly in
    ``real/`` or ``fake/`` are each their own group.  A generic folder cannot
    say which fake was made from which real video, so put such pairs in a
    shared sub-folder name (``real/p07/`` and ``fake/p07/`` form one group).

    ``method`` is the top sub-folder of a video one level down or of an image two
    levels down (``fake/aniportrait/x.mp4``, ``fake/hallo/p07/0.jpg``): where a folder
    sorts its files by generator or source, evaluation reports each one apart.
    """
    root = Path(root)
    samples: list[Sample] = []
    for label_name, label in (("real", REAL), ("fake", FAKE)):
        folder = root / label_name
        if not folder.is_dir():
            raise DatasetError(
                f"{root}: expected sub-folders real/ and fake/ (missing {label_name}/); "
                "see docs/training.md for dataset layouts"
            )
        for path in _media_files(folder, VIDEO_EXTENSIONS | IMAGE_EXTENSIONS):
            rel = path.relative_to(folder)
            is_video = path.suffix.lower() in VIDEO_EXTENSIONS
            if is_video:
                video_id = f"{label_name}/{rel.with_suffix('').as_posix()}"
                identity = rel.with_suffix("").as_posix()
            elif len(rel.parts) > 1:
                # Images in a sub-folder: the sub-folder is the video/person.
                sub = Path(*rel.parts[:-1]).as_posix()
                video_id = f"{label_name}/{sub}"
                identity = sub
            else:
                video_id = f"{label_name}/{rel.stem}"
                identity = f"{label_name}/{rel.stem}"
            samples.append(
                Sample(
                    key=f"folder:{label_name}/{rel.as_posix()}",
                    path=path,
                    label=label,
                    media="video" if is_video else "image",
                    video_id=video_id,
                    identities=(f"folder:{identity}",),
                    dataset="folder",
                    method=rel.parts[0] if len(rel.parts) > (1 if is_video else 2) else "",
                )
            )
    if not samples:
        raise DatasetError(f"{root}: real/ and fake/ hold no images or videos")
    return samples


# --------------------------------------------------------------------------- FaceForensics++

_FFPP_ACTOR_ORIGINAL = re.compile(r"^(\d+)__")  # DeepFakeDetection: 01__exit_phone_room
_FFPP_ACTOR_FAKE = re.compile(r"^(\d+)_(\d+)__")  # 01_02__meeting_serious__YVGY8LOK


def _ffpp_ids(stem: str, actors: bool) -> tuple[str, ...]:
    """Identity keys of an FF++ video name.

    YouTube sequences: ``071`` (original) or ``071_054`` (target 071 wearing
    source 054's face) — both ids are the split group.  Actor sequences
    (DeepFakeDetection) prefix the actor ids the same way.
    """
    if actors:
        m = _FFPP_ACTOR_FAKE.match(stem) or _FFPP_ACTOR_ORIGINAL.match(stem)
        if not m:
            return (f"ffpp-actor-video:{stem}",)
        return tuple(f"ffpp-actor:{int(g):02d}" for g in m.groups())
    return tuple(f"ffpp:{part}" for part in stem.split("_") if part)


def _pick_compression(base: Path, compression: str) -> Path | None:
    """``base/<compression>/videos`` or, if that compression is absent, any other one."""
    preferred = base / compression / "videos"
    if preferred.is_dir():
        return preferred
    for candidate in ("c23", "c40", "c0", "raw"):
        path = base / candidate / "videos"
        if path.is_dir():
            return path
    return None


def _load_ffpp_splits(root: Path) -> dict[str, Split]:
    """Map FF++ id -> split from the official ``train/val/test.json`` pair lists.

    The JSON files may sit in ``root/splits/`` or ``root/`` (the FF++ repo keeps
    them in ``dataset/splits/``).  Each is a list of ``[a, b]`` pairs.
    """
    mapping: dict[str, Split] = {}
    for folder in (root / "splits", root):
        files = {s: folder / f"{s}.json" for s in ("train", "val", "test")}
        if not all(f.is_file() for f in files.values()):
            continue
        for split, file in files.items():
            try:
                pairs = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise DatasetError(f"{file}: not a readable FF++ split list ({exc})") from exc
            for pair in pairs:
                for vid in pair:
                    mapping[str(vid)] = split  # type: ignore[assignment]
        return mapping
    return mapping


def load_ffpp(root: Path, compression: str = "c23") -> list[Sample]:
    """FaceForensics++: originals and every manipulation method found on disk.

    Uses the official split JSONs when present (a pair ``[a, b]`` puts
    ``a``, ``b``, ``a_b`` and ``b_a`` in that split); otherwise the splitter
    groups ``a_b`` with both ``a`` and ``b``.
    """
    root = Path(root)
    originals = _require_dir(root / "original_sequences", "FF++ original_sequences")
    manipulated = _require_dir(root / "manipulated_sequences", "FF++ manipulated_sequences")
    official = _load_ffpp_splits(root)
    samples: list[Sample] = []

    def split_for(stem: str, actors: bool) -> Split | None:
        if actors or not official:
            return None
        splits = {official.get(part) for part in stem.split("_")}
        splits.discard(None)
        return splits.pop() if len(splits) == 1 else None

    for source in sorted(p for p in originals.iterdir() if p.is_dir()):
        actors = source.name == "actors"
        videos = _pick_compression(source, compression)
        if videos is None:
            continue
        for path in _media_files(videos, VIDEO_EXTENSIONS):
            samples.append(
                Sample(
                    key=f"ffpp:original/{source.name}/{path.stem}",
                    path=path,
                    label=REAL,
                    media="video",
                    video_id=f"original/{source.name}/{path.stem}",
                    identities=_ffpp_ids(path.stem, actors),
                    dataset="ffpp",
                    split=split_for(path.stem, actors),
                    method="original",
                )
            )
    for method in sorted(p for p in manipulated.iterdir() if p.is_dir()):
        actors = method.name == "DeepFakeDetection"
        videos = _pick_compression(method, compression)
        if videos is None:
            continue
        for path in _media_files(videos, VIDEO_EXTENSIONS):
            stem = path.stem
            if actors:
                original = None
            else:
                target = stem.split("_")[0]
                original = f"ffpp:original/youtube/{target}"
            samples.append(
                Sample(
                    key=f"ffpp:{method.name}/{stem}",
                    path=path,
                    label=FAKE,
                    media="video",
                    video_id=f"{method.name}/{stem}",
                    identities=_ffpp_ids(stem, actors),
                    dataset="ffpp",
                    split=split_for(stem, actors),
                    original=original,
                    method=method.name,
                )
            )
    if not samples:
        raise DatasetError(
            f"{root}: no FF++ videos under original_sequences/*/<c23|c40|c0>/videos "
            "or manipulated_sequences/*/<compression>/videos"
        )
    known = {s.key for s in samples}
    return [
        s if s.original is None or s.original in known else _replace(s, original=None)
        for s in samples
    ]


def _replace(sample: Sample, **changes: object) -> Sample:
    from dataclasses import replace

    return replace(sample, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Celeb-DF v2

_CELEB_REAL = re.compile(r"^id(\d+)_(\d+)$")  # id0_0000
_CELEB_FAKE = re.compile(r"^id(\d+)_id(\d+)_(\d+)$")  # id0_id16_0005


def load_celebdf(root: Path) -> list[Sample]:
    """Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/``.

    ``List_of_testing_videos.txt`` (lines ``<1 real|0 fake> <folder>/<file>``)
    fixes the official test split; labels come from the folder, and a list
    line that disagrees with its folder is reported as an error.  Identity:
    ``id<N>`` for celebrity videos (a fake ``id0_id16_0005`` carries both
    ``id0`` and ``id16``; its original is ``Celeb-real/id0_0005``), each
    YouTube-real video is its own identity.
    """
    root = Path(root)
    folders = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
    present = [name for name in folders if (root / name).is_dir()]
    if not present:
        raise DatasetError(
            f"{root}: expected Celeb-DF v2 folders Celeb-real/, YouTube-real/, Celeb-synthesis/"
        )
    tests: set[str] = set()
    listing = root / "List_of_testing_videos.txt"
    if listing.is_file():
        for lineno, line in enumerate(listing.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0] not in {"0", "1"}:
                raise DatasetError(
                    f"{listing}:{lineno}: expected '<0|1> <folder>/<video>', got {line!r}"
                )
            folder = parts[1].split("/")[0]
            listed_label = REAL if parts[0] == "1" else FAKE
            if folder in folders and folders[folder] != listed_label:
                raise DatasetError(f"{listing}:{lineno}: label {parts[0]} contradicts {folder}/")
            tests.add(parts[1])
    samples: list[Sample] = []
    for name in present:
        for path in _media_files(root / name, VIDEO_EXTENSIONS):
            rel = path.relative_to(root).as_posix()
            stem = path.stem
            original = None
            if m := _CELEB_FAKE.match(stem):
                identities = (f"celebdf:id{m[1]}", f"celebdf:id{m[2]}")
                original = f"celebdf:Celeb-real/id{m[1]}_{m[3]}"
            elif m := _CELEB_REAL.match(stem):
                identities = (f"celebdf:id{m[1]}",)
            else:
                identities = (f"celebdf:{name}/{stem}",)
            samples.append(
                Sample(
                    key=f"celebdf:{name}/{stem}",
                    path=path,
                    label=folders[name],
                    media="video",
                    video_id=f"{name}/{stem}",
                    identities=identities,
                    dataset="celebdf",
                    split="test" if rel in tests else None,
                    original=original,
                    method=name,
                )
            )
    if not samples:
        raise DatasetError(f"{root}: the Celeb-DF folders hold no videos")
    known = {s.key for s in samples}
    return [s if s.original in known else _replace(s, original=None) for s in samples]


# --------------------------------------------------------------------------- DFDC


def load_dfdc(root: Path) -> list[Sample]:
    """DFDC training parts: every ``metadata.json`` below ``root``.

    ``metadata.json`` maps ``file.mp4 -> {"label": "FAKE"|"REAL", "original":
    "src.mp4"|null, "split": ...}``.  A fake and its ``original`` share a split
    group.  DFDC's own ``split`` field is ``train`` everywhere, so it is ignored.
    """
    root = Path(root)
    metas = sorted(root.rglob("metadata.json"))
    if not metas:
        raise DatasetError(f"{root}: no DFDC metadata.json found (expected dfdc_train_part_*/)")
    samples: list[Sample] = []
    for meta in metas:
        try:
            entries = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{meta}: not a readable DFDC metadata.json ({exc})") from exc
        if not isinstance(entries, dict):
            raise DatasetError(f"{meta}: expected a JSON object keyed by video file name")
        for name, info in sorted(entries.items()):
            label_text = str(info.get("label", "")).upper() if isinstance(info, dict) else ""
            if label_text not in {"FAKE", "REAL"}:
                raise DatasetError(f"{meta}: entry {name!r} has no FAKE/REAL label")
            path = meta.parent / name
            if not path.is_file():
                continue  # parts are often downloaded partially; skip what is absent
            stem = Path(name).stem
            original = info.get("original")
            identities = [f"dfdc:{stem}"]
            if original:
                identities.append(f"dfdc:{Path(original).stem}")
            samples.append(
                Sample(
                    key=f"dfdc:{stem}",
                    path=path,
                    label=FAKE if label_text == "FAKE" else REAL,
                    media="video",
                    video_id=stem,
                    identities=tuple(identities),
                    dataset="dfdc",
                    original=f"dfdc:{Path(original).stem}" if original else None,
                    method=meta.parent.name,
                )
            )
    if not samples:
        raise DatasetError(f"{root}: metadata.json lists no video that exists on disk")
    known = {s.key for s in samples}
    return [s if s.original in known else _replace(s, original=None) for s in samples]


# --------------------------------------------------------------------------- review export


def load_review_export(root: Path) -> list[Sample]:
    """The review queue's labelled export: ``labels.jsonl`` + ``crops/``.

    One JSON object per line: ``{"video_id", "label": "fake"|"real", "crops":
    [relative paths], "reviewer", "decided_at"}``.  Crops are already cropped
    faces, so no detection is needed; every crop of a video shares its
    ``video_id`` group.  A later line for the same ``video_id`` overrides an
    earlier one (a re-review wins).
    """
    root = Path(root)
    labels = root / "labels.jsonl"
    if not labels.is_file():
        raise DatasetError(f"{root}: labels.jsonl not found; is this a review-queue export?")
    decisions: dict[str, tuple[int, list[str]]] = {}
    for lineno, line in enumerate(labels.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            video_id = str(row["video_id"])
            label_text = str(row["label"]).lower()
            crops = [str(c) for c in row["crops"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(
                f"{labels}:{lineno}: expected a JSON object with video_id, label, crops ({exc})"
            ) from exc
        if label_text not in {"fake", "real"}:
            raise DatasetError(f"{labels}:{lineno}: label must be 'fake' or 'real'")
        decisions[video_id] = (FAKE if label_text == "fake" else REAL, crops)
    samples: list[Sample] = []
    for video_id, (label, crops) in decisions.items():
        for rel in crops:
            path = (root / rel).resolve()
            if root.resolve() not in path.parents:
                raise DatasetError(f"{labels}: crop path {rel!r} points outside the export")
            if not path.is_file():
                continue
            samples.append(
                Sample(
                    key=f"review:{video_id}/{Path(rel).name}",
                    path=path,
                    label=label,
                    media="crop",
                    video_id=video_id,
                    identities=(f"review:{video_id}",),
                    dataset="review",
                )
            )
    if not samples:
        raise DatasetError(f"{labels}: no listed crop exists under {root}")
    return samples


# --------------------------------------------------------------------------- face crops

_SPLIT_NAMES: tuple[Split, ...] = ("train", "val", "test")


def load_face_crops(root: Path) -> list[Sample]:
    """Tight face crops in a fixed split: ``{train,val,test}/{real,fake}/<group>/<id>.jpg``.

    The layout of ``../shared/data/dfdc-faces``: one crop per source video,
    ``<group>`` the real video a fake was made from (so ``real/<g>`` and
    ``fake/<g>`` show one scene and person), splits fixed by whoever built
    the set and kept as given.  Each crop is its own "video" (one frame);
    the group is the split identity.  Crops are ``media="face"``: tighter
    than the scanner's framing, so the cache re-frames them (``model.training.cache``).
    """
    root = Path(root)
    splits = [s for s in _SPLIT_NAMES if (root / s).is_dir()]
    if not splits:
        raise DatasetError(
            f"{root}: expected split folders train/, val/, test/ holding real/ and fake/"
        )
    samples: list[Sample] = []
    for split in splits:
        for label_name, label in (("real", REAL), ("fake", FAKE)):
            folder = root / split / label_name
            if not folder.is_dir():
                continue
            for path in _media_files(folder, IMAGE_EXTENSIONS):
                rel = path.relative_to(folder)
                group = rel.parts[0] if len(rel.parts) > 1 else path.stem
                video_id = f"{label_name}/{rel.with_suffix('').as_posix()}"
                # A fake's original is the real crop of its group, when present:
                # the label-noise rule drops fakes identical to it (audio-only swaps).
                original = root / split / "real" / group / f"{group}{path.suffix}"
                samples.append(
                    Sample(
                        key=f"faces:{split}/{label_name}/{rel.as_posix()}",
                        path=path,
                        label=label,
                        media="face",
                        video_id=video_id,
                        identities=(f"faces:{group}",),
                        dataset="faces",
                        split=split,
                        original=(
                            f"faces:{split}/real/{group}/{original.name}"
                            if label == FAKE and original.is_file()
                            else None
                        ),
                    )
                )
    if not samples:
        raise DatasetError(f"{root}: the split folders hold no real/ or fake/ images")
    return samples


def load_real_face_crops(root: Path) -> list[Sample]:
    """The real crops of a ``faces`` set, in its fixed splits, without its fakes.

    Why: a Self-Blended-Images candidate learns only from real faces; with the set's
    fakes beside them its validation would rank candidates by how well they separate
    *this set's* fakes (DFDC's 2019 swaps), the guard that picked against transfer.
    Without them validation holds real faces and their seeded self-blends.
    """
    return [s for s in load_face_crops(root) if not s.is_fake]


# --------------------------------------------------------------------------- talking heads

#: Suffixes that label one person's clips by what was done with them (``Elon_Musk_musev``,
#: ``roop_car_woman_target``/``_swapped``); stripped so a person is one identity on both sides.
_PERSON_SUFFIXES = ("_swapped", "_target", "_musev", "_memo", "_portrait")


def person_of(identity: str) -> str:
    """The person behind a ``labels.csv`` identity (see :data:`_PERSON_SUFFIXES`)."""
    for suffix in _PERSON_SUFFIXES:
        if identity.endswith(suffix):
            return identity[: -len(suffix)]
    return identity


def _is_talking_heads(root: Path) -> bool:
    """A ``labels.csv`` naming each clip's person and method beside ``videos/``."""
    labels = root / "labels.csv"
    if not (labels.is_file() and (root / "videos").is_dir()):
        return False
    with labels.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    return {"name", "label", "method", "identity"} <= set(header)


def load_talking_heads(root: Path) -> list[Sample]:
    """``../shared/data/talking-heads``: real and generated talking-face clips with ``labels.csv``.

    Each clip is one sample whose identities are its *person* and, for a fake, its
    *generator*: the splitter's union-find then keeps a person and a generator each in one
    split (the set's README: split by identity and by generator, never by clip), and a
    real person shown beside their own fake (Theresa May, Andrew Ng, the roop targets) is
    never on the other side of it.  ``method`` is the generator (``real-…`` for reals), for
    leave-one-generator-out reports.
    """
    import csv

    root = Path(root)
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"{root}: labels.csv not found; expected the talking-heads layout")
    by_name: dict[str, dict[str, str]] = {}
    with labels.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_name[row["name"]] = row
    samples: list[Sample] = []
    for path in _media_files(root / "videos", VIDEO_EXTENSIONS):
        row = by_name.get(path.stem)
        if row is None:
            raise DatasetError(f"{path}: not listed in {labels}; the set is incomplete")
        label = FAKE if row["label"] == "fake" else REAL
        person = f"th:{person_of(row['identity'])}"
        identities = (person, f"th-method:{row['method']}") if label == FAKE else (person,)
        samples.append(
            Sample(
                key=f"talkingheads:{path.relative_to(root).as_posix()}",
                path=path,
                label=label,
                media="video",
                video_id=f"talkingheads/{path.stem}",
                identities=identities,
                dataset="talkingheads",
                method=row["method"],
            )
        )
    if not samples:
        raise DatasetError(f"{root}: videos/ holds no clips")
    return samples


# --------------------------------------------------------------------------- real-only footage


def load_real_footage(root: Path) -> list[Sample]:
    """Real footage only (videos and/or photos at any depth): the raw material of SBI.

    Everything is labelled real and dealt by identity into the training and
    validation splits (``--val-fraction``; never test): real-only footage teaches
    nothing about fakes by itself and is the source of Self-Blended Images
    (``--sbi`` / ``--candidate-modes``), whose candidates are compared on the
    self-blends of the validation reals.  To measure false alarms, give
    ``find-bot evaluate`` footage that training never saw.
    Grouping: a video is its own group; images are grouped by their folder
    (one person per folder, as in ``../shared/data/real-photos``).
    """
    root = Path(root)
    samples: list[Sample] = []
    for path in _media_files(root, VIDEO_EXTENSIONS | IMAGE_EXTENSIONS):
        rel = path.relative_to(root)
        is_video = path.suffix.lower() in VIDEO_EXTENSIONS
        if is_video or len(rel.parts) == 1:
            group = rel.with_suffix("").as_posix()
        else:
            group = Path(*rel.parts[:-1]).as_posix()
        samples.append(
            Sample(
                key=f"real:{root.name}/{rel.as_posix()}",
                path=path,
                label=REAL,
                media="video" if is_video else "image",
                video_id=f"{root.name}/{group}",
                identities=(f"real:{root.name}/{group}",),
                dataset="real",
                held_out=("val",),
            )
        )
    if not samples:
        raise DatasetError(f"{root}: no images or videos found")
    return samples


# --------------------------------------------------------------------------- dispatch

LOADERS: dict[str, Callable[[Path], list[Sample]]] = {
    "folder": load_folder,
    "ffpp": load_ffpp,
    "celebdf": load_celebdf,
    "dfdc": load_dfdc,
    "review": load_review_export,
    "faces": load_face_crops,
    "faces-real": load_real_face_crops,
    "real": load_real_footage,
    "talkingheads": load_talking_heads,
}


def detect_format(root: Path) -> str:
    """Guess a dataset's layout from the marker files each format is known by."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if (root / "labels.jsonl").is_file():
        return "review"
    if _is_talking_heads(root):
        return "talkingheads"
    if (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir():
        return "ffpp"
    if (root / "List_of_testing_videos.txt").is_file() or (root / "Celeb-synthesis").is_dir():
        return "celebdf"
    if (root / "real").is_dir() or (root / "fake").is_dir():
        return "folder"
    if (root / "metadata.json").is_file() or any(root.glob("*/metadata.json")):
        return "dfdc"
    if any((root / s / label).is_dir() for s in _SPLIT_NAMES for label in ("real", "fake")):
        return "faces"
    if _media_files(root, VIDEO_EXTENSIONS | IMAGE_EXTENSIONS):
        return "real"  # a plain folder of clips or photos: real footage (SBI material)
    raise DatasetError(
        f"{root}: unrecognised dataset layout and no videos or images in it; expected "
        "real/+fake/, FaceForensics++, Celeb-DF v2, DFDC (metadata.json), a review export "
        "(labels.jsonl) or a folder of real footage — "
        "see docs/training.md"
    )


_REPEAT = re.compile(r"^(?P<spec>.+)\*(?P<times>\d+)$")


def parse_repeat(spec: str) -> tuple[str, int]:
    """Split ``SPEC*N`` into the spec and N (1 when there is no suffix)."""
    match = _REPEAT.match(spec)
    if not match:
        return spec, 1
    times = int(match["times"])
    if not 1 <= times <= 1000:
        raise DatasetError(f"{spec}: the repeat count after '*' must be 1 to 1000")
    return match["spec"], times


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """Split a ``[FORMAT:]PATH[*N]`` command-line value into format and path."""
    spec, _ = parse_repeat(spec)
    head, sep, tail = spec.partition(":")
    if sep and head in LOADERS:
        return head, Path(tail).expanduser()
    return None, Path(spec).expanduser()


def load_dataset(spec: str | Path, fmt: str | None = None) -> list[Sample]:
    """Load a dataset given ``[FORMAT:]PATH[*N]``; the format is auto-detected if omitted.

    ``*N`` repeats the set's training crops N times per epoch (see ``Sample.repeat``).
    """
    _, repeat = parse_repeat(str(spec))
    parsed_fmt, root = parse_spec(str(spec))
    fmt = fmt or parsed_fmt or detect_format(root)
    if fmt not in LOADERS:
        raise DatasetError(f"{spec}: unknown dataset format {fmt!r}; use one of {sorted(LOADERS)}")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    samples = LOADERS[fmt](root)
    return [_replace(s, repeat=repeat) for s in samples] if repeat > 1 else samples
