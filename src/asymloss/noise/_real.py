"""Real human label noise: CIFAR-10N and CIFAR-100N (Wei et al., ICLR 2022).

The official files ``CIFAR-10_human.pt`` and ``CIFAR-100_human.pt`` are ``torch.save`` zip archives
holding one pickled dict of NumPy arrays (CIFAR-100's coarse labels as lists). ``torch.load``'s safe
mode refuses them and its unsafe mode runs arbitrary pickled code, so they are read here with a
restricted unpickler that rebuilds NumPy arrays and nothing else. The ``.npz`` copies
(``cifar10n_labels.npz``, ``cifar100n_labels.npz``) are read with ``numpy.load(allow_pickle=False)``.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._paths import data_root
from ._spec import CIFAR10N_VARIANTS, NoiseSpec

__all__ = ["read_human_pt", "load_cifar_n", "CIFAR_N_FILES"]

#: kind -> (npz copy, official .pt file, file key of the noisy labels per variant)
CIFAR_N_FILES = {
    "cifar10n": ("cifar10n_labels.npz", "CIFAR-10_human.pt"),
    "cifar100n": ("cifar100n_labels.npz", "CIFAR-100_human.pt"),
}
_SUBDIRS = ("", "cifar-n", "cifar-10-100n/data", "data")

_reconstruct = np.zeros(0).__reduce__()[0]  # numpy(._)core.multiarray._reconstruct


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 only)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}.")
    return text.encode("latin1", errors)


_SAFE_GLOBALS = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
try:  # NumPy scalars (e.g. a stored count): numpy.core.multiarray.scalar
    _SAFE_GLOBALS[("numpy.core.multiarray", "scalar")] = np.int64(0).__reduce__()[0]
    _SAFE_GLOBALS[("numpy._core.multiarray", "scalar")] = np.int64(0).__reduce__()[0]
except Exception:  # pragma: no cover
    pass


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that allows only the globals needed to rebuild NumPy arrays and dtypes (and the
    latin-1 ``_codecs.encode`` that protocol 2 uses for their raw bytes)."""

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            if module.split(".")[0] == "torch":
                raise pickle.UnpicklingError(
                    f"the file holds torch tensors or objects ({module}.{name}); a CIFAR-N label file "
                    f"holds NumPy arrays only."
                ) from None
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only NumPy arrays, dtypes, lists, dicts "
                f"and numbers are allowed in a CIFAR-N label file."
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(
            "the file holds torch tensors (persistent storages); a CIFAR-N label file holds NumPy "
            "arrays only."
        )


def read_human_pt(path) -> dict:
    """Read an official CIFAR-N ``*_human.pt`` file safely; return ``{key: int64 array}``.

    Only the ``data.pkl`` inside the ``torch.save`` zip is read, with an unpickler that allows the
    NumPy reconstruction globals and nothing else (no code execution). Lists become int64 arrays.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path.name} is not a torch.save zip archive (the format of the official CIFAR-N "
            f"files); re-download it, or use the .npz copy."
        )
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(names) != 1:
            raise ValueError(f"{path.name}: expected one data.pkl in the archive; found {names}.")
        raw = zf.read(names[0])
    obj = _NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path.name}: expected a dict of label arrays; got {type(obj).__name__}.")
    out = {}
    for key, value in obj.items():
        arr = np.asarray(value)
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            out[str(key)] = arr.astype(np.int64)
    return out


def _find(root: Path, names) -> Path | None:
    for sub in _SUBDIRS:
        for name in names:
            p = root / sub / name
            if p.is_file():
                return p
    return None


def load_cifar_n(spec: NoiseSpec, data_dir=None) -> tuple[np.ndarray, np.ndarray, str]:
    """Return ``(clean_labels, noisy_labels, source file name)`` for a CIFAR-N spec.

    Looks in ``data_root(data_dir)`` and its ``cifar-n/``, ``cifar-10-100n/data/`` and ``data/``
    sub-folders for the ``.npz`` copy first, then the official ``.pt`` file.
    """
    npz_name, pt_name = CIFAR_N_FILES[spec.kind]
    key = CIFAR10N_VARIANTS[spec.variant] if spec.kind == "cifar10n" else "noisy_label"
    root = data_root(data_dir)
    path = _find(root, (npz_name, pt_name))
    if path is None:
        raise FileNotFoundError(
            f"{spec} needs {npz_name} or the official {pt_name} (github.com/UCSC-REAL/cifar-10-100n, "
            f"data/{pt_name}; CC BY-NC 4.0) in {root} (set data_dir= or ASYMLOSS_DATA)."
        )
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k in ("clean_label", key)}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise ValueError(
                f"{path}: not a readable .npz file ({type(e).__name__}: {e or 'empty file'}); the file is truncated "
                f"or corrupt: copy {npz_name} again (../shared/datasets holds one) or delete it."
            ) from e
    else:
        arrays = read_human_pt(path)
    for k in ("clean_label", key):
        if k not in arrays:
            raise ValueError(f"{path.name} has no {k!r} array (found: {', '.join(sorted(arrays))}).")
    clean = np.asarray(arrays["clean_label"], dtype=np.int64)
    noisy = np.asarray(arrays[key], dtype=np.int64)
    if clean.shape != noisy.shape or clean.ndim != 1:
        raise ValueError(f"{path.name}: clean_label {clean.shape} and {key} {noisy.shape} do not match.")
    return clean, noisy, os.fspath(path.name)
