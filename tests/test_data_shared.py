"""Integration: the real datasets of ../shared/datasets (skipped locally when absent; fail under CI)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import asymloss.data as data
from asymloss.data import DatasetNotFoundError
from test_data_formats import cifar100_members, patch_spec, resources_with, write_tar_gz

pytestmark = pytest.mark.shared

# raw-array sha256 values from MANIFEST.md (C-order bytes of the arrays as stored: HW / HWC)
MANIFEST = {
    "mnist": {
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "e474323ac02fc156161b0bbb1f8c9cfeb327a74bcd9f9680a8385269a24f566c",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
    },
    "fashion-mnist": {
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "e3245b63f7c40d1c8b652835f19744d970c1613b40ddac6bcfc87b9c46e16a0b",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "d51d859896c55775b9e9e219b77ff03bcec1b6ac322f313544dc3f9e7bc94fae",
    },
    "cifar10": {
        "x_train": "5aaf8a2cf2e577ff4dbb15e4f368840fab5aca1812bcc69682005f8dc661d466",
        "y_train": "f5cfe00b0f00968c0cc5ff3b1d2de51b10e33efa277c2986f4e0fa63e58c9f4f",
        "x_test": "b7018a062865e9348a704e72416eb53c816b43cc8ac42ab43276a2b967508ab6",
        "y_test": "cbb7365de8ed11f05cc4c3a1e7f78144127c5e851efd83762fb18202461230bb",
    },
}

COUNTS = {
    "mnist": (
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ),
    "fashion-mnist": ([6000] * 10, [1000] * 10),
    "cifar10": ([5000] * 10, [1000] * 10),
}
SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def _raw_sha256(t: torch.Tensor) -> str:
    a = t.numpy()
    if a.ndim == 4:  # back to the stored layout: (N, H, W) or (N, H, W, C)
        a = a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def cifar10(shared_datasets):
    return data.load("cifar10", root=shared_datasets)  # loaded once for this module (about 1 s)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_real_dataset(shared_datasets, request, name):
    ds = request.getfixturevalue("cifar10") if name == "cifar10" else data.load(name, root=shared_datasets)
    assert ds.x_train.shape == (sum(COUNTS[name][0]), *SHAPES[name])
    assert ds.x_test.shape == (sum(COUNTS[name][1]), *SHAPES[name])
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert torch.bincount(ds.y_train, minlength=10).tolist() == COUNTS[name][0]
    assert torch.bincount(ds.y_test, minlength=10).tolist() == COUNTS[name][1]
    for key, digest in MANIFEST[name].items():
        assert _raw_sha256(getattr(ds, key)) == digest, key
    if name == "cifar10":
        assert "JPEG-degraded" in ds.note and "JPEG-degraded" in ds.summary()["note"] and "JPEG-degraded" in repr(ds)
        assert ds.classes[3] == "cat"
    else:
        assert ds.note == "" and "exact" in ds.source


def test_cifar10_jpeg_copy_is_in_original_order(shared_datasets, cifar10):
    """The JPEG copy's first 4000 train images are close to the lossless originals, image for image."""
    ds = cifar10
    ref = np.load(shared_datasets / "cifar10_train_first4000_lossless.npz")
    lossless = torch.from_numpy(ref["x_train"]).permute(0, 3, 1, 2).float()
    jpeg = ds.x_train[:4000].float()
    mae = (jpeg - lossless).abs().mean((1, 2, 3))
    assert mae.max() <= 13.5  # MANIFEST: at most 13.0/255 per image
    shifted = (ds.x_train[1:4001].float() - lossless).abs().mean((1, 2, 3))
    assert shifted.median() > 40  # MANIFEST: median 69.7 when off by one
    assert torch.equal(ds.y_train[:4000], torch.from_numpy(ref["y_train"]))


def test_cifar100_without_archive_says_where_to_put_it(shared_datasets):
    with pytest.raises(DatasetNotFoundError) as e:
        data.load("cifar100", root=shared_datasets)
    msg = str(e.value)
    assert "cifar-100-python.tar.gz" in msg and str(shared_datasets / "cifar100") in msg
    assert "eb9058c3a382ffc7106e4002c42a8d85" in msg and "cifar100_test_labels.npz" in msg
    assert "download=True" in msg


def test_cifar100_code_path_on_20_real_images(shared_datasets, tmp_path, monkeypatch):
    """A CIFAR-100 archive in the official format, built from the 20 real test images offline."""
    t = np.load(shared_datasets / "cifar100_test_labels.npz")
    n = np.load(shared_datasets / "cifar100n_labels.npz")
    coarse_of_fine = np.zeros(100, np.int64)
    coarse_of_fine[n["clean_label"]] = n["clean_coarse_label"]
    x20, y20 = t["x_test_first20"], t["y_test"][:20]
    arrays = {"x_train": x20[::-1].copy(), "y_train": y20[::-1].copy(), "x_test": x20, "y_test": y20}
    md5 = write_tar_gz(tmp_path / "cifar100" / "cifar-100-python.tar.gz", "cifar-100-python", cifar100_members(arrays, coarse_of_fine))
    patch_spec(monkeypatch, "cifar100", resources=resources_with({"cifar-100-python.tar.gz": md5}, "cifar100"))
    ds = data.load("cifar100", root=tmp_path)
    assert np.array_equal(ds.x_test.permute(0, 2, 3, 1).numpy(), x20)
    assert ds.y_test.tolist() == y20.tolist() and ds.num_classes == 100
    assert ds.mean == (0.5071, 0.4865, 0.4409)
    # MANIFEST: fine label 19 (cattle) belongs to coarse class 11
    assert ds.classes[19] == "cattle" and ds.coarse_classes[11] == "large_omnivores_and_herbivores"
    assert coarse_of_fine[19] == 11
    assert ds.y_test_coarse.tolist() == coarse_of_fine[y20].tolist()
