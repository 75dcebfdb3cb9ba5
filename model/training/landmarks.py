"""468-point face landmarks for Self-Blended Images, from MediaPipe's face-mesh model.

SBI's masks follow the face's real outline (the paper: the convex hull of
68 dlib landmarks, deformed and feathered).  MTCNN gives five points, which
only support a guessed polygon.  MediaPipe's face-mesh network (468 points,
Apache-2.0, 1.2 MB) gives the outline, eyebrows, eyes, nose and mouth, and
runs in ~3 ms per crop on one core through TensorFlow's own Lite interpreter.

The ``mediapipe`` package itself is never installed: it pins protobuf < 5,
which TensorFlow cannot share.  ``make install`` fetches its wheel from PyPI
once (``python -m model.training.landmarks --fetch``) and keeps only the model
file, under ``model/training/assets/`` (not committed: it is MediaPipe's file).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bot.errors import FindError

log = logging.getLogger(__name__)

MEDIAPIPE_WHEEL = "mediapipe==0.10.14"
MODEL_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
MODEL_FILE = Path(__file__).resolve().parent / "assets" / "face_landmark.tflite"
INPUT_SIZE = 192
#: Below this face-presence probability the points are not trusted (SBI then
#: falls back to the five-keypoint polygon).
MIN_PRESENCE = 0.5

#: Indices of the face oval (MediaPipe's FACEMESH_FACE_OVAL, in order around the face).
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
    377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
#: Landmarks of the eyebrows (upper edge) and the nose tip: the paper's partial
#: hulls cut the face below the brows or below the nose.
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
NOSE_TIP = 1


class LandmarkError(FindError):
    """The face-mesh model is not installed or cannot run."""


@dataclass(frozen=True)
class Landmarks:
    """468 (x, y) points in the pixels of the crop they were found in, and their trust."""

    points: np.ndarray  # float32 (468, 2)
    presence: float

    @property
    def trusted(self) -> bool:
        return self.presence >= MIN_PRESENCE


#: TensorFlow Lite's own logger (``tflite::logging_internal::MinimalLogger``): its least
#: severity shown, a static member exported by the TensorFlow library already loaded.
_TFLITE_MIN_SEVERITY = "_ZN6tflite16logging_internal13MinimalLogger21minimum_log_severity_E"
_TFLITE_LOG_WARNING = 2  # tflite::LogSeverity: VERBOSE 0, INFO 1, WARNING 2, ERROR 3


def quiet_tflite_info() -> None:
    """Keep TensorFlow Lite's INFO lines ("INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU.") off stderr, so that `find-bot train` prints only its own output.

    TFLite writes them from C++ with ``fprintf(stderr)``, below TensorFlow's logging:
    ``TF_CPP_MIN_LOG_LEVEL`` (:func:`bot.logs.quiet_native_logging`) does not reach them,
    and pointing descriptor 2 at /dev/null (:func:`bot.logs.import_tensorflow_quietly`)
    would also swallow the other threads' output while the interpreters of the batch
    threads start.  So the logger's threshold is raised to WARNING in place, in the
    library TensorFlow has loaded; warnings and errors still show.  A TensorFlow build
    without that symbol keeps printing the line, nothing worse (the training test says so).
    """
    import ctypes

    import tensorflow as tf

    library = Path(tf.__file__).resolve().parent / "libtensorflow_cc.so.2"
    try:  # RTLD_NOLOAD: the copy already in the process, never a second one
        handle = ctypes.CDLL(str(library), mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
        severity = ctypes.c_int.in_dll(handle, _TFLITE_MIN_SEVERITY)
    except (OSError, ValueError):
        return
    severity.value = max(severity.value, _TFLITE_LOG_WARNING)


class FaceMesh:
    """One face-mesh interpreter (not thread-safe: one per thread, see :func:`face_mesh`)."""

    def __init__(self, model_path: Path = MODEL_FILE):
        if not model_path.is_file():
            raise LandmarkError(
                f"{model_path}: face-mesh model missing; run `make install` "
                "(or `python -m model.training.landmarks --fetch`)"
            )
        import tensorflow as tf

        quiet_tflite_info()
        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it still works
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_path=str(model_path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        by_size = sorted(outputs, key=lambda d: int(np.prod(d["shape"])))
        self._presence, self._points = by_size[0]["index"], by_size[-1]["index"]

    def __call__(self, crop: np.ndarray) -> Landmarks:
        """Landmarks of the face centred in ``crop`` (uint8 RGB, square, face ~1/1.3 of it)."""
        side = crop.shape[0]
        x = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        self._interpreter.set_tensor(self._input, (x.astype(np.float32) / 255.0)[None])
        self._interpreter.invoke()
        points = self._interpreter.get_tensor(self._points).reshape(-1, 3)[:, :2]
        logit = float(self._interpreter.get_tensor(self._presence).reshape(-1)[0])
        scale = side / INPUT_SIZE
        return Landmarks(
            points=(points * scale).astype(np.float32),
            presence=float(1.0 / (1.0 + np.exp(-logit))),
        )


_local = threading.local()


def face_mesh() -> FaceMesh:
    """This thread's interpreter, built on first use."""
    mesh = getattr(_local, "mesh", None)
    if mesh is None:
        mesh = _local.mesh = FaceMesh()
    return mesh


def available() -> bool:
    return MODEL_FILE.is_file()


def fetch(destination: Path = MODEL_FILE) -> Path:
    """Download the MediaPipe wheel (no install) and keep only the face-mesh model file."""
    if destination.is_file():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--python-version", "3.12",
            "--platform", "manylinux_2_17_x86_64", "-d", tmp, MEDIAPIPE_WHEEL,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if result.returncode != 0 or not wheels:
            raise LandmarkError(
                f"could not download {MEDIAPIPE_WHEEL} from PyPI for its face-mesh model "
                f"({result.stderr.strip().splitlines()[-1:] or 'no wheel'}); SBI training "
                "needs it, inference does not"
            )
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(MODEL_MEMBER) as src:
            partial = destination.with_suffix(".partial")
            with open(partial, "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(partial, destination)
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="fetch the face-mesh model file")
    args = parser.parse_args(argv)
    if args.fetch:
        try:
            path = fetch()
        except LandmarkError as exc:
            print(f"warning: {exc}", file=sys.stderr)
            return 0  # training with SBI reports it again; installing must not fail
        print(f"face-mesh model: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
