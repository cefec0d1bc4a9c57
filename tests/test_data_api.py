"""ImageDataset, the registry, digits and subset()."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import asymloss.data as data
from asymloss._validation import UnknownNameError
from asymloss.data import DatasetNotFoundError, ImageDataset, stratified_indices


def test_list_datasets():
    names = data.list_datasets()
    for n in ("mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "npz:<path>", "folder:<path>"):
        assert n in names


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'cifar01'.*Did you mean 'cifar10'"):
        data.load("cifar01")
    with pytest.raises(KeyError):
        data.load("mnits")
    with pytest.raises(TypeError, match="name must be a dataset name"):
        data.load(3)
    with pytest.raises(TypeError, match="download must be True or False"):
        data.load("mnist", download="yes")


#: sha256 of sklearn.datasets.load_digits()'s images (as uint8, 0..16) and targets (uint8)
DIGITS_IMAGES_SHA256 = "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
DIGITS_TARGET_SHA256 = "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0"


def _shipped_digits():
    from importlib.resources import files

    with files("asymloss.data").joinpath("digits.npz").open("rb") as f, np.load(f) as z:
        return z["images"], z["target"]


def test_shipped_digits_are_scikit_learns():
    import hashlib

    images, target = _shipped_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and target.dtype == np.uint8
    assert hashlib.sha256(images.tobytes()).hexdigest() == DIGITS_IMAGES_SHA256
    assert hashlib.sha256(target.tobytes()).hexdigest() == DIGITS_TARGET_SHA256
    sklearn_datasets = pytest.importorskip("sklearn.datasets")  # scikit-learn is not needed otherwise
    d = sklearn_datasets.load_digits()
    assert np.array_equal(d.images, images) and np.array_equal(d.target, target)


def test_digits_split():
    from types import SimpleNamespace

    ds = data.load("digits")
    images, target = _shipped_digits()
    d = SimpleNamespace(images=images.astype(np.float64), target=target.astype(np.int64))
    assert ds.x_train.shape == (1438, 1, 8, 8) and ds.x_test.shape == (359, 1, 8, 8)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert ds.num_classes == 10 and ds.note == ""
    # values 0..16 scaled to 0..255 with rounding; the split partitions the 1797 images
    expected = np.rint(d.images * 255 / 16).astype(np.uint8)
    assert int(ds.x_train.max()) == 255 and int(ds.x_train.min()) == 0
    all_x = torch.cat([ds.x_train, ds.x_test]).numpy()[:, 0]
    all_y = torch.cat([ds.y_train, ds.y_test]).numpy()
    key = lambda x, y: sorted(zip(y.tolist(), [a.tobytes() for a in x]))  # noqa: E731
    assert key(all_x, all_y) == key(expected, d.target)
    # stratified: each class has round(0.2 * n_c) +- 1 test images
    counts = np.bincount(d.target)
    test_counts = np.bincount(ds.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) < 1)
    # deterministic
    again = data.load("digits")
    assert torch.equal(again.x_test, ds.x_test) and torch.equal(again.y_train, ds.y_train)
    # normalisation computed on the training split
    x = ds.x_train.double() / 255
    assert ds.mean[0] == pytest.approx(float(x.mean()), rel=1e-12)
    assert ds.std[0] == pytest.approx(float(x.std(correction=0)), rel=1e-12)


def _toy(n_train=20, n_test=6, k=3, c=1) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    return ImageDataset(
        name="toy",
        x_train=torch.randint(0, 256, (n_train, c, 4, 4), generator=g, dtype=torch.uint8),
        y_train=torch.arange(n_train) % k,
        x_test=torch.randint(0, 256, (n_test, c, 4, 4), generator=g, dtype=torch.uint8),
        y_test=torch.arange(n_test) % k,
        classes=tuple("abc"[:k]),
        mean=(0.5,) * c,
        std=(0.25,) * c,
    )


def test_dataset_validation():
    ds = _toy()
    with pytest.raises(ValueError, match="x_train must be a uint8"):
        ImageDataset("t", ds.x_train.float(), ds.y_train, ds.x_test, ds.y_test, ds.classes, ds.mean, ds.std)
    with pytest.raises(ValueError, match="y_test must be an int64"):
        ImageDataset("t", ds.x_train, ds.y_train, ds.x_test, ds.y_test[:-1], ds.classes, ds.mean, ds.std)
    with pytest.raises(ValueError, match=r"labels outside \[0, 2\)"):
        ImageDataset("t", ds.x_train, ds.y_train, ds.x_test, ds.y_test, ("a", "b"), ds.mean, ds.std)
    with pytest.raises(ValueError, match="need 1 entries"):
        ImageDataset("t", ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.classes, (0.1, 0.2), ds.std)


def test_subset_and_to_and_summary():
    ds = _toy()
    first = ds.subset(5, seed=None)
    assert torch.equal(first.x_train, ds.x_train[:5]) and torch.equal(first.x_test, ds.x_test)
    s = ds.subset(9, seed=3)
    assert s.x_train.shape[0] == 9 and torch.bincount(s.y_train).tolist() == [3, 3, 3]
    assert torch.equal(ds.subset(9, seed=3).x_train, s.x_train)
    draws = {tuple(torch.nonzero((ds.x_train[:, None] == ds.subset(9, seed=k).x_train[None]).flatten(2).all(2).any(1)).flatten().tolist()) for k in range(10)}
    assert len(draws) > 1  # different seeds pick different images
    # every selected image is the original image with its own label
    for x, y in zip(s.x_train, s.y_train):
        i = int(torch.nonzero((ds.x_train == x).flatten(1).all(1))[0])
        assert int(ds.y_train[i]) == int(y)
    t = ds.subset(6, seed=0, n_test=3)
    assert t.x_test.shape[0] == 3 and torch.bincount(t.y_test).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="n must be"):
        ds.subset(0)
    with pytest.raises(ValueError, match="n must be"):
        ds.subset(21)
    with pytest.raises(TypeError, match="n must be an integer"):
        ds.subset(2.5)
    moved = ds.to("cpu")
    assert moved.device.type == "cpu" and torch.equal(moved.x_train, ds.x_train)
    summ = ds.summary()
    json.dumps(summ)
    assert summ["num_train"] == 20 and summ["shape"] == [1, 4, 4] and summ["num_classes"] == 3


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    frac=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_indices_property(counts, frac, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    n = max(1, int(frac * len(labels)))
    idx = stratified_indices(labels, n, seed)
    assert len(idx) == n and len(np.unique(idx)) == n and np.all(np.diff(idx) > 0)
    got = np.bincount(labels[idx], minlength=len(counts))
    exact = np.array(counts) * n / len(labels)
    assert np.all(np.abs(got - exact) < 1)  # largest-remainder allocation
    assert np.array_equal(idx, stratified_indices(labels, n, seed))


def test_stratified_indices_is_random_within_class():
    labels = np.zeros(1000, dtype=np.int64)
    picks = np.concatenate([stratified_indices(labels, 10, s) for s in range(200)])
    freq = np.bincount(picks, minlength=1000)
    # 2000 draws over 1000 items: mean 2; a "first-n" bias would put 200 on each of 10 items
    assert freq.max() <= 10 and (freq > 0).sum() > 800


def test_missing_dataset_error_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        data.load("mnist", root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in msg and "mnist.npz" in msg and "download=True" in msg
    with pytest.raises(FileNotFoundError):
        data.load("cifar10", root=tmp_path)
