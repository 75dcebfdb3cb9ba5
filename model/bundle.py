"""Model bundles: a directory of weight files plus a ``manifest.json`` that describes them.

A bundle is what the daemon and ``find-bot scan`` load; it carries
everything needed to reproduce a verdict: the architecture, the input size
and preprocessing, the decision threshold and calibration temperature, a
description of the training data, the evaluation metrics, and the sha256 of
every file.  Loading verifies the format version and every hash, so a
half-copied or tampered bundle fails loudly instead of scoring garbage.

Weights are stored per model as ``.npz`` arrays in float16 (half the size of
float32, no measurable change in the logits of an Xception), in the order of
``model.weights`` with their variable paths, and loaded into a freshly built
``build_classifier(spec)``: no pickled Python, no Keras version coupling.

Format 2 (written now) lets members differ: each entry of ``models`` carries
its own architecture, input size and normalisation, and ``combiner`` says how
their logits become one probability (``model.ensemble``: the mean of
temperature-scaled probabilities, or stacking weights fitted on validation).
Format 1 bundles (one ``architecture`` for all models, mean combiner) load
unchanged.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import FindError
from model.classifier import ArchSpec

FORMAT_VERSION = 2
#: Formats this version reads (1: one architecture for every model, averaged).
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
#: Crop margin used when none is recorded (see ``model.faces.crop_box``).
DEFAULT_CROP_MARGIN = 0.3


class BundleError(FindError):
    """A model bundle is missing, incomplete, corrupt or of an unsupported format."""


def default_bundle_path() -> Path:
    """Where a bundle shipped with the package would live (it may not exist)."""
    return Path(__file__).resolve().parent / "bundles" / "default"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: numpy scalars/arrays and paths converted, NaN/inf as None.

    Manifests are written with ``allow_nan=False`` (NaN is not JSON), and metrics of
    a one-class or empty set are not finite: every record FIND writes goes through here.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _save_weights(model, path: Path, dtype: str) -> None:
    arrays: dict[str, np.ndarray] = {}
    names = []
    for i, variable in enumerate(model.weights):
        array = np.asarray(variable.numpy())
        if np.issubdtype(array.dtype, np.floating):
            cast = array.astype(dtype)
            if not np.all(np.isfinite(cast)) and np.all(np.isfinite(array)):
                raise ValueError(f"weight {variable.path} overflows {dtype}; store float32")
            array = cast
        arrays[f"w{i:04d}"] = array
        names.append(variable.path)
    arrays["names"] = np.array(names)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


#: Fields of a model entry that :func:`write_bundle` computes itself (a member's
#: description copied from one manifest into a new bundle leaves them out).
WRITTEN_FIELDS = frozenset(
    {"file", "sha256", "bytes", "params", "architecture", "input_size", "normalisation"}
)


def write_bundle(
    directory: str | Path,
    models: list,
    spec: ArchSpec | list[ArchSpec],
    *,
    threshold: float,
    temperature: float = 1.0,
    name: str,
    version: str,
    training: dict,
    metrics: dict,
    crop_margin: float = DEFAULT_CROP_MARGIN,
    weights_dtype: str = "float16",
    combiner: dict | None = None,
    member_info: list[dict] | None = None,
    min_face_px: int | None = None,
) -> Path:
    """Write ``models`` as a bundle in ``directory``.

    ``spec`` is the architecture of every model, or a list with one per
    model (a mixed ensemble).  ``combiner`` is a ``model.ensemble`` combiner's
    ``to_dict()`` (default: the mean of probabilities at ``temperature``);
    ``member_info`` adds descriptive fields to each model's entry (where its
    weights started, which candidate it was, its validation numbers).
    ``training`` describes the data (datasets, splits, sizes, augmentations);
    ``metrics`` holds the evaluation numbers.  ``min_face_px`` is the smallest crop
    square (source pixels) whose face may decide a verdict (default: the input size, so
    the model never judges an enlargement); a recipe that trained on enlarged faces and
    measured its false alarms on them may set it lower.  The manifest is written last,
    atomically, so an interrupted write never leaves a bundle that loads.
    Returns the bundle directory.
    """
    from model.ensemble import combiner_from_dict

    if not models:
        raise ValueError("a bundle needs at least one model")
    specs = list(spec) if isinstance(spec, list | tuple) else [spec] * len(models)
    if len(specs) != len(models):
        raise ValueError(f"{len(models)} models but {len(specs)} architectures")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    combiner = combiner or {"kind": "mean", "temperature": float(temperature)}
    combiner_from_dict(combiner, len(models))  # refuse a combiner that would not load
    info = member_info or [{} for _ in models]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stale = directory / MANIFEST
    if stale.exists():
        stale.unlink()  # the old manifest must not vouch for the new files
    files = []
    for i, (model, member_spec) in enumerate(zip(models, specs, strict=True)):
        filename = f"model_{i}.npz"
        _save_weights(model, directory / filename, weights_dtype)
        files.append(
            {
                "file": filename,
                "sha256": sha256_file(directory / filename),
                "bytes": (directory / filename).stat().st_size,
                "params": int(model.count_params()),
                "architecture": member_spec.to_dict(),
                "input_size": member_spec.input_size,
                "normalisation": member_spec.architecture.description,
                **json_safe(info[i]),
            }
        )
    input_size = max(s.input_size for s in specs)
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "input_size": input_size,
        "preprocessing": {
            "input": "uint8 RGB",
            "crop": {
                "shape": "square",
                "margin": crop_margin,
                "out_of_frame": "black",
                "resize_to": input_size,
                "min_face_px": int(min_face_px or input_size),
                "per_model": "area-resampled to each model's input_size, then its normalisation",
            },
        },
        "combiner": combiner,
        "threshold": float(threshold),
        "temperature": float(combiner.get("temperature", 1.0)),
        "weights_dtype": weights_dtype,
        "models": files,
        "training": json_safe(training),
        "metrics": json_safe(metrics),
    }
    _write_manifest(directory, manifest)
    return directory


def _write_manifest(directory: Path, manifest: dict) -> None:
    """Write ``manifest.json`` atomically: a reader sees the old manifest or the new one."""
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n"
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared bundle from other users
    os.replace(tmp, directory / MANIFEST)


def update_manifest(path: str | Path, changes: dict) -> dict:
    """Merge ``changes`` into a bundle's manifest (atomically) and return the result.

    Only descriptive fields may change — evaluations recorded after training,
    the data terms — never the weights' hashes, which ``verify_bundle`` checks.
    """
    protected = {
        "format_version",
        "models",
        "architecture",
        "input_size",
        "preprocessing",
        "combiner",
    }
    if protected & set(changes):
        raise ValueError(f"cannot change {sorted(protected & set(changes))} of a bundle")
    directory = bundle_directory(path)
    manifest = {**read_manifest(directory), **json_safe(changes)}
    _write_manifest(directory, manifest)
    return manifest


def bundle_directory(path: str | Path) -> Path:
    """Accept a bundle directory or its ``manifest.json``; return the directory."""
    path = Path(path).expanduser()
    return path.parent if path.name == MANIFEST and path.is_file() else path


def read_manifest(path: str | Path) -> dict:
    """Read and parse a bundle's manifest without verifying the files."""
    directory = bundle_directory(path)
    if not directory.exists():
        raise BundleError(f"{directory}: model bundle not found")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{directory}: not a model bundle (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: corrupt manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: corrupt manifest (not a JSON object)")
    return manifest


def verify_bundle(path: str | Path) -> list[str]:
    """All problems of the bundle at ``path`` (empty list = valid), one line each."""
    directory = bundle_directory(path)
    try:
        manifest = read_manifest(directory)
    except BundleError as exc:
        return [str(exc)]
    problems = []
    version = manifest.get("format_version")
    if version not in READABLE_FORMATS:
        problems.append(
            f"{directory}: bundle format version {version!r} is not supported "
            f"(this find-bot reads versions {', '.join(map(str, READABLE_FORMATS))}); "
            "re-export the bundle or upgrade find-bot"
        )
        return problems
    required = ("name", "version", "architecture", "threshold", "models")
    if version >= 2:
        required = ("name", "version", "threshold", "models", "combiner")
    missing = [k for k in required if k not in manifest]
    if missing:
        return [f"{directory}: manifest lacks {', '.join(missing)}"]
    try:
        specs = member_specs(manifest)
        from model.ensemble import combiner_from_dict

        combiner_from_dict(manifest_combiner(manifest), len(specs))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        problems.append(f"{directory}: bad architecture or combiner in manifest ({exc})")
    threshold = manifest.get("threshold")
    if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        problems.append(f"{directory}: threshold {threshold!r} is not a probability")
    temperature = manifest.get("temperature", 1.0)
    if not isinstance(temperature, int | float) or temperature <= 0:
        problems.append(f"{directory}: temperature {temperature!r} must be a positive number")
    entries = manifest["models"]
    if not isinstance(entries, list) or not entries:
        return [*problems, f"{directory}: manifest lists no model files"]
    for entry in entries:
        filename = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(filename, str) or Path(filename).name != filename:
            problems.append(f"{directory}: bad model entry in manifest: {entry!r}")
            continue
        file_path = directory / filename
        if not file_path.is_file():
            problems.append(f"{file_path}: model file missing")
        elif sha256_file(file_path) != entry.get("sha256"):
            problems.append(
                f"{file_path}: sha256 mismatch (changed or corrupt since the bundle was written)"
            )
        elif not _looks_like_weights(file_path):
            problems.append(f"{file_path}: corrupt weight file (not a FIND .npz weight archive)")
    return problems


def member_specs(manifest: dict) -> list[ArchSpec]:
    """The architecture of each model in a manifest (format 1: one for all)."""
    entries = manifest.get("models") or []
    if manifest.get("format_version") == 1:
        return [ArchSpec.from_dict(manifest["architecture"])] * len(entries)
    return [ArchSpec.from_dict(entry["architecture"]) for entry in entries]


#: What each training mode teaches a member (``find-bot train --candidate-modes``), as a
#: reviewer reads it; ``{data}`` is the labelled face data set (:func:`_labelled_data`).
MODE_NAMES = {
    "sbi": "self-blended images",
    "supervised": "{data}-supervised",
    "mixed": "{data} + self-blends",
}


def member_names(manifest: dict) -> list[str]:
    """A name per member saying what it learnt (``self-blended images``, ``DFDC-supervised``),
    not its file: the review page and ``review show`` label per-member scores with it.

    An entry's own ``description`` wins; else its training ``mode``; else (old bundles,
    test bundles) its architecture.  Repeated names are numbered so each stays distinct.
    """
    data = _labelled_data(manifest)
    specs = member_specs(manifest)
    names = []
    for entry, spec in zip(manifest.get("models") or [], specs, strict=True):
        name = entry.get("description") or MODE_NAMES.get(str(entry.get("mode")), "")
        names.append(str(name).format(data=data) or f"{spec.name} {spec.input_size} px")
    repeated = {name for name in names if names.count(name) > 1}
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in repeated:
            seen[name] = seen.get(name, 0) + 1
            names[i] = f"{name} #{seen[name]}"
    return names


def _labelled_data(manifest: dict) -> str:
    """The labelled face data set the bundle trained on, for member names: ``DFDC`` from
    ``faces:../shared/data/dfdc-faces`` (short names upper-cased), else ``dataset``."""
    for item in (manifest.get("training") or {}).get("datasets") or []:
        kind, _, where = str(item).partition(":")
        if kind == "faces" and where:
            name = Path(where).name.removesuffix("-faces") or "dataset"
            return name.upper() if len(name) <= 5 and name.isalnum() else name
    return "dataset"


def manifest_combiner(manifest: dict) -> dict:
    """How a manifest's models combine (format 1: the mean at its temperature)."""
    if manifest.get("format_version") == 1:
        return {"kind": "mean", "temperature": manifest.get("temperature", 1.0)}
    return manifest["combiner"]


def _looks_like_weights(path: Path) -> bool:
    """Cheap structural check (reads the zip directory only, not the arrays)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "names" in data.files and "w0000" in data.files
    except Exception:  # any failure to open means corrupt; BadZipFile is not an OSError
        return False


def load_weights_file(model, path: Path) -> None:
    """Load an ``.npz`` weight file into ``model``; ``BundleError`` if it does not fit."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            arrays = [data[f"w{i:04d}"] for i in range(len(names))]
    except Exception as exc:  # OSError, ValueError, KeyError, zipfile.BadZipFile...
        raise BundleError(f"{path}: corrupt weight file ({type(exc).__name__}: {exc})") from exc
    variables = model.weights
    if len(variables) != len(arrays):
        raise BundleError(
            f"{path}: holds {len(arrays)} weights but the architecture has {len(variables)}; "
            "the bundle does not match its manifest's architecture"
        )
    for variable, name, array in zip(variables, names, arrays, strict=True):
        if variable.path != name or tuple(variable.shape) != array.shape:
            raise BundleError(
                f"{path}: weight {name} {array.shape} does not fit {variable.path} "
                f"{tuple(variable.shape)}; the bundle does not match its architecture"
            )
        variable.assign(array.astype(variable.dtype))


@dataclass
class ModelBundle:
    """A verified bundle; ``ensemble()`` builds the models on first use."""

    path: Path
    manifest: dict
    specs: list[ArchSpec]
    _ensemble: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def id(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    @property
    def temperature(self) -> float:
        """The mean combiner's temperature (1.0 for stacking, which calibrates by itself)."""
        return float(manifest_combiner(self.manifest).get("temperature", 1.0))

    @property
    def input_size(self) -> int:
        """The side of the face crops the scanner cuts: the largest member's input."""
        return max(spec.input_size for spec in self.specs)

    @property
    def min_face_px(self) -> int:
        """The smallest crop square (source px) whose face may decide a verdict: what the
        manifest says, else the input size (below it the model reads an enlargement)."""
        crop = (self.manifest.get("preprocessing") or {}).get("crop") or {}
        return int(crop.get("min_face_px") or self.input_size)

    @property
    def combiner(self):
        from model.ensemble import combiner_from_dict

        return combiner_from_dict(manifest_combiner(self.manifest), len(self.specs))

    @property
    def member_names(self) -> list[str]:
        """What each member learnt, in member order (:func:`member_names`)."""
        return member_names(self.manifest)

    @property
    def crop_margin(self) -> float:
        crop = self.manifest.get("preprocessing", {}).get("crop", {})
        return float(crop.get("margin", DEFAULT_CROP_MARGIN))

    @property
    def model_files(self) -> list[Path]:
        return [self.path / entry["file"] for entry in self.manifest["models"]]

    def ensemble(self):
        """The bundle's models as an ``Ensemble``, built and loaded once (float32).

        (A bfloat16 variant was dropped in issue 19: on our AVX512-BF16 CPU it
        ran slower than float32, 11.8 s against 8.6 s per video.)
        """
        with self._lock:  # analyse workers may share one bundle across threads
            if self._ensemble is None:
                from model.classifier import build_classifier
                from model.ensemble import Ensemble

                models = []
                for spec, file_path in zip(self.specs, self.model_files, strict=True):
                    model = build_classifier(spec)
                    load_weights_file(model, file_path)
                    models.append(model)
                self._ensemble = Ensemble(
                    models, self.input_size, specs=self.specs, combiner=self.combiner
                )
            return self._ensemble


def load_bundle(path: str | Path) -> ModelBundle:
    """Load and verify the bundle at ``path`` (directory or manifest.json); ``BundleError``."""
    directory = bundle_directory(path)
    problems = verify_bundle(directory)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise BundleError(problems[0] + more)
    manifest = read_manifest(directory)
    return ModelBundle(path=directory.resolve(), manifest=manifest, specs=member_specs(manifest))
