"""Readers for the file formats users actually have. Each returns NumPy arrays.

- IDX (MNIST, Fashion-MNIST): :func:`read_idx`, gzipped or raw.
- CIFAR "python version" batches (tar.gz archive or extracted folder): :func:`read_cifar`,
  unpickled by :func:`restricted_load`, which refuses anything but NumPy arrays and builtins.
- ``.npz`` with ``x_train, y_train, x_test, y_test``: :func:`read_npz`.
- Image folders ``<root>/{train,test}/<class>/<image>``: :func:`read_image_folder` (Pillow).

Images come back as ``uint8`` HWC arrays ``(N, H, W, C)`` or ``(N, H, W)`` and labels as ``int64``.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "FormatError",
    "read_idx",
    "parse_idx",
    "gunzip_if_needed",
    "restricted_load",
    "read_cifar",
    "read_npz",
    "read_image_folder",
    "IMAGE_SUFFIXES",
]


class FormatError(ValueError):
    """A file is not in the format it should be in (the message names the file and the problem)."""


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike, *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``*-idx3-ubyte`` images, ``*-idx1-ubyte`` labels), gzipped or raw.

    The magic number is ``0x0000`` + a type byte + the number of dimensions; then one big-endian
    uint32 per dimension, then the data. Gzip is recognised by its magic bytes, not the name.
    Raises :class:`FormatError` naming the file on a bad magic number, a wrong number of
    dimensions (``expect_ndim``) or a size that does not match the header.

    >>> read_idx("mnist/train-labels-idx1-ubyte.gz", expect_ndim=1).shape  # doctest: +SKIP
    (60000,)
    """
    path = Path(path)
    return parse_idx(gunzip_if_needed(path.read_bytes(), path), path, expect_ndim=expect_ndim)


def gunzip_if_needed(raw: bytes, where: str | os.PathLike = "<bytes>") -> bytes:
    """Decompress ``raw`` if it starts with the gzip magic bytes, else return it unchanged."""
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise FormatError(f"{where}: corrupt gzip data ({e or 'truncated'}).") from e
    return raw


def parse_idx(raw: bytes, where: str | os.PathLike = "<bytes>", *, expect_ndim: int | None = None) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; see :func:`read_idx`."""
    path = where
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise FormatError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; "
            f"expected 00 00 <type in {sorted(hex(k) for k in _IDX_DTYPES)}> <ndim>)."
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    if expect_ndim is not None and ndim != expect_ndim:
        raise FormatError(f"{path}: IDX file has {ndim} dimensions; expected {expect_ndim}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FormatError(f"{path}: truncated IDX header.")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise FormatError(
            f"{path}: IDX header says dims {dims} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes."
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True) if dtype.itemsize > 1 else arr.copy()


# ---------------------------------------------------------------------------------------------
# Restricted unpickling (CIFAR batches, CIFAR-N label files)
# ---------------------------------------------------------------------------------------------
def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:  # NumPy >= 2
        from numpy._core import multiarray as ma
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray as ma
    import _codecs

    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs.encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = ma._reconstruct
        allowed[(mod, "scalar")] = ma.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = _frombuffer
    return allowed


def _frombuffer(buf, dtype, shape, order):  # what NumPy pickles arrays with under protocol 5
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing an object-dtype array in a data file.")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed: dict | None = None

    def find_class(self, module: str, name: str):
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _numpy_globals()
        obj = _RestrictedUnpickler._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only NumPy arrays, dtypes and builtin "
                "containers are allowed in data files."
            )
        return obj


def restricted_load(file: IO[bytes] | bytes, *, encoding: str = "latin1") -> Any:
    """Unpickle data that may hold only builtin containers/scalars and NumPy arrays.

    ``pickle.load`` on an untrusted file can run arbitrary code; this loader resolves no global
    except NumPy's array reconstruction helpers, so a malicious file raises
    ``pickle.UnpicklingError`` instead. ``encoding="latin1"`` reads Python 2 pickles (the CIFAR
    batches) with ``str`` keys and intact arrays.
    """
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    return _RestrictedUnpickler(file, encoding=encoding).load()


# ---------------------------------------------------------------------------------------------
# CIFAR python version
# ---------------------------------------------------------------------------------------------
CIFAR10_MEMBERS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")
CIFAR100_MEMBERS = ("train", "test", "meta")


def _key(d: dict, name: str):
    for k in (name, name.encode()):
        if k in d:
            return d[k]
    raise KeyError(name)


def _cifar_batch(blob: bytes, where: str, label_key: str) -> tuple[np.ndarray, np.ndarray, dict]:
    try:
        d = restricted_load(blob)
    except pickle.UnpicklingError:
        raise
    except Exception as e:
        raise FormatError(f"{where}: not a readable CIFAR pickle ({type(e).__name__}: {e}).") from e
    if not isinstance(d, dict):
        raise FormatError(f"{where}: expected a pickled dict, got {type(d).__name__}.")
    try:
        data = np.asarray(_key(d, "data"), dtype=np.uint8)
        labels = np.asarray(_key(d, label_key), dtype=np.int64)
    except KeyError as e:
        raise FormatError(f"{where}: CIFAR batch lacks the key {e.args[0]!r} (keys: {sorted(map(str, d))}).") from e
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise FormatError(
            f"{where}: expected data of shape (N, 3072) and N labels; got {data.shape} and {labels.shape}."
        )
    # rows are 1024 R, 1024 G, 1024 B values, each 32x32 row-major -> (N, 32, 32, 3)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels, d


def _cifar_blobs(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The member files ``names`` from a tar(.gz) archive or an extracted folder (missing ones absent)."""
    found: dict[str, bytes] = {}
    if path.is_dir():
        for n in names:
            if (path / n).is_file():
                found[n] = (path / n).read_bytes()
        return found
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:  # one sequential pass over the (gzipped) stream
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names and base not in found:
                    found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FormatError(f"{path}: not a readable tar archive ({e}).") from e
    return found


def read_cifar(path: str | os.PathLike, *, cifar100: bool = False) -> dict[str, Any]:
    """Read CIFAR-10 or CIFAR-100 (python version) from its archive or extracted folder.

    ``path`` is ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` or the folder
    ``cifar-10-batches-py`` / ``cifar-100-python``. Returns a dict with ``x_train, y_train,
    x_test, y_test`` (uint8 ``(N, 32, 32, 3)``, int64), ``classes`` (from the meta file when
    present, else ``None``) and, for CIFAR-100, ``y_train_coarse, y_test_coarse,
    coarse_classes`` (fine labels are the main labels).
    """
    path = Path(path)
    names = CIFAR100_MEMBERS if cifar100 else CIFAR10_MEMBERS
    blobs = _cifar_blobs(path, names)
    required = names[:-1]
    missing = [n for n in required if n not in blobs]
    if missing:
        raise FormatError(f"{path}: missing CIFAR member file(s) {', '.join(missing)}.")
    out: dict[str, Any] = {"classes": None}
    if cifar100:
        for split in ("train", "test"):
            x, y, d = _cifar_batch(blobs[split], f"{path}:{split}", "fine_labels")
            try:
                coarse = np.asarray(_key(d, "coarse_labels"), dtype=np.int64)
            except KeyError as e:
                raise FormatError(f"{path}:{split}: CIFAR-100 batch lacks 'coarse_labels'.") from e
            out[f"x_{split}"], out[f"y_{split}"], out[f"y_{split}_coarse"] = x, y, coarse
        out["coarse_classes"] = None
        if "meta" in blobs:
            meta = restricted_load(blobs["meta"])
            out["classes"] = tuple(_text(s) for s in _key(meta, "fine_label_names"))
            out["coarse_classes"] = tuple(_text(s) for s in _key(meta, "coarse_label_names"))
    else:
        xs, ys = [], []
        for i in range(1, 6):
            x, y, _ = _cifar_batch(blobs[f"data_batch_{i}"], f"{path}:data_batch_{i}", "labels")
            xs.append(x)
            ys.append(y)
        out["x_train"], out["y_train"] = np.concatenate(xs), np.concatenate(ys)
        out["x_test"], out["y_test"], _ = _cifar_batch(blobs["test_batch"], f"{path}:test_batch", "labels")
        if "batches.meta" in blobs:
            out["classes"] = tuple(_text(s) for s in _key(restricted_load(blobs["batches.meta"]), "label_names"))
    return out


def _text(s) -> str:
    return s.decode("utf-8") if isinstance(s, bytes) else str(s)


# ---------------------------------------------------------------------------------------------
# npz
# ---------------------------------------------------------------------------------------------
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

#: What NumPy and zipfile raise on a truncated, empty or otherwise damaged ``.npz``.
_DAMAGED = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _why(exc: BaseException, path: Path) -> str:
    if isinstance(exc, EOFError) or (path.is_file() and path.stat().st_size == 0):
        return "the file is empty"
    return f"{type(exc).__name__}: {exc}"


def read_npz(path: str | os.PathLike, keys: tuple[str, ...] = NPZ_KEYS) -> dict[str, np.ndarray]:
    """Load the arrays ``keys`` from an ``.npz`` (no pickle). Images must be uint8 ``(N, H, W)`` or
    ``(N, H, W, C)`` with C in {1, 3, 4}; labels integer ``(N,)``. Also returns ``classes`` when the
    file has a string array of that name."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except _DAMAGED as e:
        raise FormatError(f"{path}: not a readable .npz file ({_why(e, path)}).") from e
    with z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise FormatError(f"{path}: missing array(s) {', '.join(missing)}; it holds {', '.join(z.files) or 'nothing'}.")
        try:  # each array is decompressed and CRC-checked here: a damaged member fails now
            out = {k: z[k] for k in keys}
            if "classes" in z.files:
                out["classes"] = tuple(str(c) for c in z["classes"].tolist())
        except _DAMAGED as e:
            raise FormatError(f"{path}: not a readable .npz file: an array is damaged ({_why(e, path)}).") from e
    for split in ("train", "test"):
        xk, yk = f"x_{split}", f"y_{split}"
        if xk not in out:
            continue
        x, y = out[xk], out[yk]
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3, 4)):
            raise FormatError(
                f"{path}: {xk} must be uint8 images (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
                f"got {x.dtype} {x.shape}."
            )
        if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise FormatError(f"{path}: {yk} must be integer labels of shape ({x.shape[0]},); got {y.dtype} {y.shape}.")
        out[yk] = y.astype(np.int64, copy=False)
    return out


# ---------------------------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image_folder(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``path/train/<class>/*`` and ``path/test/<class>/*`` with Pillow.

    Classes are the sorted sub-folder names of ``train/`` (``test/`` may lack some but must not
    add new ones). Files are read in sorted name order. Images are converted to grayscale (C = 1)
    when every image is gray (mode ``L``/``1``, or colour with three equal channels), else to RGB
    (C = 3); all must share one size. Returns ``x_train, y_train, x_test, y_test, classes``.
    """
    from .._extras import require

    require("PIL")
    from PIL import Image

    path = Path(path)
    for split in ("train", "test"):
        if not (path / split).is_dir():
            raise FormatError(f"{path}: an image folder needs the sub-folders train/ and test/ (missing {split}/).")
    classes = sorted(p.name for p in (path / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FormatError(f"{path / 'train'}: no class sub-folders found.")
    extra = sorted({p.name for p in (path / "test").iterdir() if p.is_dir()} - set(classes))
    if extra:
        raise FormatError(f"{path / 'test'}: class folder(s) {', '.join(extra)} have no counterpart in train/.")
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in ("train", "test"):
        files[split] = [
            (f, k)
            for k, c in enumerate(classes)
            if (path / split / c).is_dir()
            for f in sorted((path / split / c).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not files[split]:
            raise FormatError(f"{path / split}: no images found (suffixes {', '.join(IMAGE_SUFFIXES)}).")
    images: dict[str, list] = {"train": [], "test": []}
    gray = True
    size = None
    for split in ("train", "test"):
        for f, _ in files[split]:
            try:
                with Image.open(f) as im:
                    im.load()
                    img = im.copy()
            except OSError as e:
                raise FormatError(f"{f}: not a readable image ({e}).") from e
            if size is None:
                size = img.size
            elif img.size != size:
                raise FormatError(f"{f}: image size {img.size} differs from the first image's {size}; resize them first.")
            if gray and img.mode not in ("L", "1"):
                rgb = np.asarray(img.convert("RGB"))
                if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
                    gray = False
            images[split].append(img)
    mode = "L" if gray else "RGB"
    out: dict[str, Any] = {"classes": tuple(classes)}
    for split in ("train", "test"):
        out[f"x_{split}"] = np.stack([np.asarray(im.convert(mode), dtype=np.uint8) for im in images[split]])
        out[f"y_{split}"] = np.array([k for _, k in files[split]], dtype=np.int64)
    return out
