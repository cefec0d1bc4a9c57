"""Format readers on small files written here in the real formats (IDX, CIFAR pickles, npz, folders).

The writers below are independent of asymloss: they follow the published format descriptions
(LeCun's IDX page, the CIFAR "python version" page) and are reused by test_data_download.py.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from asymloss.data import (
    ChecksumError,
    DatasetNotFoundError,
    FormatError,
    load,
    readers,
    registry,
)

# ------------------------------------------------------------------------------------------------
# independent writers
# ------------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX: 0x00 0x00, type 0x08 (ubyte), ndim, big-endian uint32 dims, data."""
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(arr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(seed: int = 0, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.int64),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.int64),
    }


IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def write_mnist_dir(d: Path, arrays: dict, gz: bool = True) -> dict[str, str]:
    """The four IDX files in ``d``; returns {file name: md5}."""
    md5 = {}
    for key, name in IDX_NAMES.items():
        p = write_idx(d / (name if gz else name[:-3]), arrays[key], gz=gz)
        md5[name] = hashlib.md5(p.read_bytes()).hexdigest()
    return md5


def content_sha256(arrays: dict) -> tuple[tuple[str, str], ...]:
    """(uncompressed IDX file name, sha256 of its bytes) for the four files of ``arrays``."""
    return tuple((IDX_NAMES[k][:-3], hashlib.sha256(idx_bytes(arrays[k])).hexdigest()) for k in IDX_NAMES)


def _cifar_rows(x: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072): 1024 red, then green, then blue values, each row-major."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))


def fake_cifar(seed: int, n_train: int, n_test: int, k: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, k, n_train).astype(np.int64),
        "x_test": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, k, n_test).astype(np.int64),
    }


def cifar10_members(arrays: dict, bytes_keys: bool = False) -> dict[str, bytes]:
    def key(s):
        return s.encode() if bytes_keys else s

    out = {}
    xs = np.array_split(arrays["x_train"], 5)
    ys = np.array_split(arrays["y_train"], 5)
    for i in range(5):
        out[f"data_batch_{i + 1}"] = pickle.dumps(
            {
                key("batch_label"): f"training batch {i + 1} of 5",
                key("labels"): [int(v) for v in ys[i]],
                key("data"): _cifar_rows(xs[i]),
                key("filenames"): [f"img_{i}_{j}.png" for j in range(len(ys[i]))],
            },
            protocol=2,
        )
    out["test_batch"] = pickle.dumps(
        {
            key("batch_label"): "testing batch 1 of 1",
            key("labels"): [int(v) for v in arrays["y_test"]],
            key("data"): _cifar_rows(arrays["x_test"]),
            key("filenames"): [f"t_{j}.png" for j in range(len(arrays["y_test"]))],
        },
        protocol=2,
    )
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    out["batches.meta"] = pickle.dumps({key("label_names"): names, key("num_vis"): 3072}, protocol=2)
    return out


def cifar100_members(arrays: dict, coarse_of_fine: np.ndarray) -> dict[str, bytes]:
    out = {}
    for split in ("train", "test"):
        y = arrays[f"y_{split}"]
        out[split] = pickle.dumps(
            {
                "filenames": [f"{split}_{j}.png" for j in range(len(y))],
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": [int(v) for v in y],
                "coarse_labels": [int(coarse_of_fine[v]) for v in y],
                "data": _cifar_rows(arrays[f"x_{split}"]),
            },
            protocol=2,
        )
    out["meta"] = pickle.dumps(
        {
            "fine_label_names": list(registry.CIFAR100_CLASSES),
            "coarse_label_names": list(registry.CIFAR100_COARSE),
        },
        protocol=2,
    )
    return out


def write_tar_gz(path: Path, folder: str, members: dict[str, bytes]) -> str:
    """A .tar.gz with ``folder/<member>`` entries (like the official archives); returns its md5."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, blob in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_members(d: Path, members: dict[str, bytes]) -> dict[str, str]:
    d.mkdir(parents=True, exist_ok=True)
    for name, blob in members.items():
        (d / name).write_bytes(blob)
    return {name: hashlib.md5(blob).hexdigest() for name, blob in members.items()}


def patch_spec(monkeypatch, name: str, **changes) -> None:
    monkeypatch.setitem(registry.DATASETS, name, dataclasses.replace(registry.DATASETS[name], **changes))


def resources_with(md5: dict[str, str], spec_name: str):
    from asymloss.data.download import Resource

    return tuple(Resource(r.filename, md5[r.filename]) for r in registry.DATASETS[spec_name].resources)


def nchw(x: np.ndarray) -> np.ndarray:
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)


def assert_matches(ds, arrays):
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(ds, f"x_{split}").numpy(), nchw(arrays[f"x_{split}"]))
        np.testing.assert_array_equal(getattr(ds, f"y_{split}").numpy(), arrays[f"y_{split}"])
        assert getattr(ds, f"x_{split}").dtype == torch.uint8
        assert getattr(ds, f"y_{split}").dtype == torch.int64
        assert getattr(ds, f"x_{split}").is_contiguous()


# ------------------------------------------------------------------------------------------------
# IDX
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    p = write_idx(tmp_path / "im", imgs, gz=gz)
    q = write_idx(tmp_path / "lb", labels, gz=gz)
    np.testing.assert_array_equal(readers.read_idx(p, expect_ndim=3), imgs)
    np.testing.assert_array_equal(readers.read_idx(q, expect_ndim=1), labels)


def test_idx_int32_big_endian(tmp_path):
    arr = np.array([[1, -2], [70000, 3]], dtype=">i4")
    p = tmp_path / "i4"
    p.write_bytes(struct.pack(">BBBB", 0, 0, 0x0C, 2) + struct.pack(">II", 2, 2) + arr.tobytes())
    out = readers.read_idx(p)
    assert out.dtype == np.int32 and out.tolist() == [[1, -2], [70000, 3]]


def test_idx_errors(tmp_path):
    good = idx_bytes(np.zeros((2, 3, 3), np.uint8))
    bad_magic = tmp_path / "bad_magic"
    bad_magic.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(FormatError, match="not an IDX file.*bad_magic|bad_magic.*not an IDX file"):
        readers.read_idx(bad_magic)
    bad_type = tmp_path / "bad_type"
    bad_type.write_bytes(b"\x00\x00\x07" + good[3:])
    with pytest.raises(FormatError, match="not an IDX file"):
        readers.read_idx(bad_type)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good[:-1])
    with pytest.raises(FormatError, match=r"dims \(2, 3, 3\) \(18 data bytes\).*17 data bytes"):
        readers.read_idx(truncated)
    ok = tmp_path / "ok"
    ok.write_bytes(good)
    with pytest.raises(FormatError, match="3 dimensions; expected 1"):
        readers.read_idx(ok, expect_ndim=1)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(good)[:30])
    with pytest.raises(FormatError, match="corrupt gzip"):
        readers.read_idx(broken_gz)


@pytest.mark.parametrize("gz,folder", [(True, "mnist"), (False, "mnist"), (True, "MNIST/raw")])
def test_load_mnist_from_idx(tmp_path, monkeypatch, gz, folder):
    arrays = fake_mnist()
    md5 = write_mnist_dir(tmp_path / folder, arrays, gz=gz)
    if gz:
        patch_spec(monkeypatch, "mnist", resources=resources_with(md5, "mnist"))
    else:
        with pytest.raises(ChecksumError, match="expected sha256 ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"):
            load("mnist", root=tmp_path)  # un-gzipped files are checked against the known contents
        patch_spec(monkeypatch, "mnist", content=content_sha256(arrays))
    ds = load("mnist", root=tmp_path)
    assert_matches(ds, arrays)
    assert ds.mean == (0.1307,) and ds.std == (0.3081,)
    assert ds.note == "" and "IDX" in ds.source


def test_env_root_and_idx_preferred_over_npz(tmp_path, monkeypatch):
    arrays = fake_mnist(seed=3)
    md5 = write_mnist_dir(tmp_path / "fashion-mnist", arrays)
    patch_spec(monkeypatch, "fashion-mnist", resources=resources_with(md5, "fashion-mnist"))
    other = fake_mnist(seed=4)
    np.savez(tmp_path / "fashion_mnist.npz", **other)
    monkeypatch.setenv("ASYMLOSS_DATA", str(tmp_path))
    ds = load("fashion_mnist")  # alias, root from the environment
    assert ds.name == "fashion-mnist" and ds.classes[0] == "T-shirt/top"
    assert_matches(ds, arrays)  # the original files win over the offline copy
    (tmp_path / "fashion-mnist" / IDX_NAMES["y_test"]).unlink()  # incomplete originals: use the copy
    assert_matches(load("fashion-mnist"), other)


def test_local_checksum_mismatch_names_file(tmp_path):
    write_mnist_dir(tmp_path / "mnist", fake_mnist())  # not the published files: md5s differ
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(ChecksumError) as e:
        load("mnist", root=tmp_path)
    msg = str(e.value)
    assert str(path) in msg and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in msg and actual in msg


def test_recompressed_gz_accepted_by_content_hash(tmp_path, monkeypatch):
    """A .gz with other compression bytes (md5 differs) but the published contents is accepted."""
    arrays = fake_mnist(seed=5)
    md5 = write_mnist_dir(tmp_path / "mnist", arrays)
    patch_spec(monkeypatch, "mnist", resources=resources_with({k: "0" * 32 for k in md5}, "mnist"), content=content_sha256(arrays))
    assert_matches(load("mnist", root=tmp_path), arrays)
    # a different content is refused, naming both checksums
    other = fake_mnist(seed=6)
    write_idx(tmp_path / "mnist" / IDX_NAMES["x_test"], other["x_test"])
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte.gz: expected md5 0{32} \(or uncompressed sha256"):
        load("mnist", root=tmp_path)


def test_idx_count_mismatch(tmp_path, monkeypatch):
    arrays = fake_mnist()
    arrays["y_train"] = arrays["y_train"][:-1]
    write_mnist_dir(tmp_path / "mnist", arrays, gz=False)
    patch_spec(monkeypatch, "mnist", content=())  # unknown contents: only the structure is checked
    with pytest.raises(FormatError, match="do not match 29 labels"):
        load("mnist", root=tmp_path)


# ------------------------------------------------------------------------------------------------
# CIFAR
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_read_cifar10_archive_and_folder(tmp_path, bytes_keys):
    arrays = fake_cifar(0, n_train=12, n_test=4, k=10)
    members = cifar10_members(arrays, bytes_keys=bytes_keys)
    write_tar_gz(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", members)
    write_members(tmp_path / "cifar-10-batches-py", members)
    for src in (tmp_path / "cifar-10-python.tar.gz", tmp_path / "cifar-10-batches-py"):
        out = readers.read_cifar(src)
        for k in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(out[k], arrays[k])
        assert out["classes"][3] == "cat"


def test_cifar_pixel_layout(tmp_path):
    """Row layout of the format: 1024 R, then G, then B, each a row-major 32x32 plane."""
    row = np.zeros((1, 3072), np.uint8)
    row[0, 0] = 10  # R at (0, 0)
    row[0, 1024 + 33] = 20  # G at (1, 1)
    row[0, 2048 + 31] = 30  # B at (0, 31)
    batch = pickle.dumps({"data": row, "labels": [7]}, protocol=2)
    members = {f"data_batch_{i}": batch for i in range(1, 6)} | {"test_batch": batch}
    write_members(tmp_path / "c", members)
    x = readers.read_cifar(tmp_path / "c")["x_train"]
    assert x.shape == (5, 32, 32, 3)
    assert x[0, 0, 0, 0] == 10 and x[0, 1, 1, 1] == 20 and x[0, 0, 31, 2] == 30 and x.sum() == 5 * 60


def test_load_cifar10_and_cifar100_from_archives(tmp_path, monkeypatch):
    a10 = fake_cifar(1, n_train=10, n_test=5, k=10)
    md5 = write_tar_gz(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_members(a10))
    patch_spec(monkeypatch, "cifar10", resources=resources_with({"cifar-10-python.tar.gz": md5}, "cifar10"))
    np.savez(tmp_path / "cifar10_jpeg.npz", **fake_cifar(2, 3, 3, 10))  # the archive wins
    ds = load("cifar10", root=tmp_path)
    assert_matches(ds, a10)
    assert ds.note == "" and ds.source.endswith("cifar-10-python.tar.gz")
    assert ds.mean == (0.4914, 0.4822, 0.4465)

    coarse_of_fine = np.arange(100) % 20
    a100 = fake_cifar(3, n_train=8, n_test=6, k=100)
    md5 = write_tar_gz(tmp_path / "cifar-100-python.tar.gz", "cifar-100-python", cifar100_members(a100, coarse_of_fine))
    patch_spec(monkeypatch, "cifar100", resources=resources_with({"cifar-100-python.tar.gz": md5}, "cifar100"))
    ds = load("cifar-100", root=tmp_path)  # torchvision layout: archive directly in the root
    assert_matches(ds, a100)
    assert ds.num_classes == 100 and ds.classes[19] == "cattle" and len(ds.coarse_classes) == 20
    np.testing.assert_array_equal(ds.y_train_coarse.numpy(), coarse_of_fine[a100["y_train"]])
    np.testing.assert_array_equal(ds.y_test_coarse.numpy(), coarse_of_fine[a100["y_test"]])
    sub = ds.subset(4, seed=1, n_test=3)
    idx = [int(np.flatnonzero((a100["x_train"] == x.permute(1, 2, 0).numpy()).all((1, 2, 3)))[0]) for x in sub.x_train]
    np.testing.assert_array_equal(sub.y_train_coarse.numpy(), coarse_of_fine[a100["y_train"][idx]])


def test_cifar_extracted_folder_member_checksums(tmp_path, monkeypatch):
    from asymloss.data.download import Resource

    a10 = fake_cifar(4, n_train=10, n_test=5, k=10)
    md5 = write_members(tmp_path / "cifar10" / "cifar-10-batches-py", cifar10_members(a10))
    good = tuple(Resource(m.filename, md5[m.filename]) for m in registry.DATASETS["cifar10"].members)
    patch_spec(monkeypatch, "cifar10", members=good)
    assert_matches(load("cifar10", root=tmp_path), a10)
    # the published md5s (not these generated files) -> a clear mismatch naming the batch
    monkeypatch.undo()
    with pytest.raises(ChecksumError, match=r"data_batch_1: expected md5 c99cafc152244af753f735de768cd75f"):
        load("cifar10", root=tmp_path)


def test_cifar_format_errors(tmp_path):
    members = cifar10_members(fake_cifar(5, 10, 5, 10))
    del members["data_batch_3"]
    write_tar_gz(tmp_path / "a.tar.gz", "cifar-10-batches-py", members)
    with pytest.raises(FormatError, match="missing CIFAR member file.*data_batch_3"):
        readers.read_cifar(tmp_path / "a.tar.gz")
    (tmp_path / "b.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(FormatError, match="not a readable tar archive"):
        readers.read_cifar(tmp_path / "b.tar.gz")
    bad = {name: pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=2) for name in readers.CIFAR10_MEMBERS}
    write_members(tmp_path / "c", bad)
    with pytest.raises(FormatError, match=r"expected data of shape \(N, 3072\)"):
        readers.read_cifar(tmp_path / "c")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler(protocol):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    blob = pickle.dumps({"data": arr, "labels": [1, 2], b"raw": b"\x00\xff", "f": 1.5}, protocol=protocol)
    out = readers.restricted_load(blob)
    np.testing.assert_array_equal(out["data"], arr)
    assert out["labels"] == [1, 2] and out[b"raw"] == b"\x00\xff" and out["f"] == 1.5
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle global posix.getcwd|refusing to unpickle global os.getcwd|refusing to unpickle global nt.getcwd"):
        readers.restricted_load(pickle.dumps({"x": _Evil()}, protocol=protocol))


def test_restricted_unpickler_refuses_object_arrays():
    blob = pickle.dumps(np.array([_Evil()], dtype=object), protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        readers.restricted_load(blob)


# ------------------------------------------------------------------------------------------------
# npz and folders
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hwc", [False, True])
def test_load_npz(tmp_path, hwc):
    rng = np.random.default_rng(7)
    shape = (6, 5, 4, 3) if hwc else (6, 5, 4)
    arrays = {
        "x_train": rng.integers(0, 256, shape, dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2], np.int32),
        "x_test": rng.integers(0, 256, (2, *shape[1:]), dtype=np.uint8),
        "y_test": np.array([2, 0], np.int64),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    ds = load(f"npz:{tmp_path / 'd.npz'}")
    assert_matches(ds, arrays)
    assert ds.num_classes == 3 and ds.classes == ("0", "1", "2")
    np.savez(tmp_path / "named.npz", classes=np.array(["ant", "bee", "cow", "dog"]), **arrays)
    named = load(f"npz:{tmp_path / 'named.npz'}")
    assert named.classes == ("ant", "bee", "cow", "dog") and named.num_classes == 4
    x = nchw(arrays["x_train"]).astype(np.float64) / 255
    np.testing.assert_allclose(ds.mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ds.std, x.std(axis=(0, 2, 3)), rtol=1e-12)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 3, 3), np.uint8), y_train=np.zeros(2, np.int64))
    with pytest.raises(FormatError, match="missing array.*x_test, y_test"):
        load(f"npz:{tmp_path / 'a.npz'}")
    np.savez(tmp_path / "b.npz", x_train=np.zeros((2, 3, 3)), y_train=np.zeros(2), x_test=np.zeros((1, 3, 3)), y_test=np.zeros(1))
    with pytest.raises(FormatError, match="x_train must be uint8 images"):
        load(f"npz:{tmp_path / 'b.npz'}")
    with pytest.raises(DatasetNotFoundError, match="npz dataset file not found"):
        load(f"npz:{tmp_path / 'missing.npz'}")
    with pytest.raises(ValueError, match="needs a path after the colon"):
        load("npz:")


def _save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.mark.parametrize("rgb", [False, True])
def test_load_image_folder(tmp_path, rgb):
    rng = np.random.default_rng(8)
    shape = (6, 7, 3) if rgb else (6, 7)
    expected = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for split, n in (("train", 3), ("test", 2)):
        for k, cls in enumerate(["cat", "dog"]):
            for i in range(n):
                img = rng.integers(0, 256, shape, dtype=np.uint8)
                _save_png(tmp_path / split / cls / f"{i:03d}.png", img)
                expected[f"x_{split}"].append(img)
                expected[f"y_{split}"].append(k)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("ignored")
    arrays = {k: np.array(v) for k, v in expected.items()}
    ds = load(f"folder:{tmp_path}")
    assert ds.classes == ("cat", "dog")
    assert_matches(ds, arrays)
    assert ds.in_channels == (3 if rgb else 1)


def test_image_folder_errors(tmp_path):
    img = np.zeros((4, 4), np.uint8)
    _save_png(tmp_path / "a" / "train" / "x" / "0.png", img)
    with pytest.raises(FormatError, match="needs the sub-folders train/ and test/"):
        load(f"folder:{tmp_path / 'a'}")
    _save_png(tmp_path / "a" / "test" / "y" / "0.png", img)
    with pytest.raises(FormatError, match="class folder\\(s\\) y have no counterpart"):
        load(f"folder:{tmp_path / 'a'}")
    _save_png(tmp_path / "b" / "train" / "x" / "0.png", img)
    _save_png(tmp_path / "b" / "test" / "x" / "0.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(FormatError, match="differs from the first image"):
        load(f"folder:{tmp_path / 'b'}")
    with pytest.raises(DatasetNotFoundError, match="image folder not found"):
        load(f"folder:{tmp_path / 'none'}")
