"""Real human noise (CIFAR-N): the restricted .pt reader and the label sets' realised rates."""
from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
import torch

from asymloss.noise import CIFAR100_COARSE, corrupt, read_human_pt

# raw sha256 of the int64 label arrays, from the datasets MANIFEST
SHA = {
    "clean": "f5cfe00b0f00968c0cc5ff3b1d2de51b10e33efa277c2986f4e0fa63e58c9f4f",
    "aggre": "b3c3d486d22c3055756e7b1b1a0e98b099c1d68b771633023b0f76fa2e09ede6",
    "worst": "a64d887522cf6d8f4966912a1536ea2d890600929a8465a7f307cdca2501847b",
    "rand1": "b5dc9007ae247a48ce267bec37a1310b0cd65ed73801ca7e595fb954902575a7",
    "rand2": "1182c45d3a24636640fe1e3743b9566b6fabe86b2ed14f6b8216799e209a0d4e",
    "rand3": "b51e116c617ded2c98be095ba8b3abae8adfa6caa54f7f6eedf50c7aed013d44",
    "cifar100n": "4a1efd5da7a214b299cf6ac0bafe3f0d48c065b7aa2d40aa185d4711714bb311",
}
RATES = {"aggre": 0.0901, "worst": 0.4021, "rand1": 0.1723, "rand2": 0.1812, "rand3": 0.1764}
KEYS = {"aggre": "aggre_label", "worst": "worse_label", "rand1": "random_label1",
        "rand2": "random_label2", "rand3": "random_label3"}


def fake_cifar10n(n=40, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 10, n)
    d = {"clean_label": clean}
    for i, key in enumerate(KEYS.values()):
        noisy = clean.copy()
        noisy[: 2 * (i + 1)] = (noisy[: 2 * (i + 1)] + 1) % 10
        d[key] = noisy
    return d


def test_reads_torch_save_file(tmp_path):
    d = fake_cifar10n()
    d["coarse_label"] = [int(v) for v in d["clean_label"] // 2]  # a list, as in CIFAR-100_human.pt
    d["int32"] = d["clean_label"].astype(np.int32)
    torch.save(d, tmp_path / "CIFAR-10_human.pt")
    got = read_human_pt(tmp_path / "CIFAR-10_human.pt")
    assert set(got) == set(d)
    for k, v in d.items():
        assert got[k].dtype == np.int64 and np.array_equal(got[k], np.asarray(v))


def test_corrupt_reads_pt_and_checks_clean_labels(tmp_path):
    d = fake_cifar10n()
    sub = tmp_path / "cifar-n"
    sub.mkdir()
    torch.save(d, sub / "CIFAR-10_human.pt")
    for i, variant in enumerate(KEYS):
        r = corrupt(d["clean_label"], f"cifar10n:{variant}", seed=0, data_dir=tmp_path)
        assert np.array_equal(r.noisy_labels, d[KEYS[variant]]) and r.num_flipped == 2 * (i + 1)
        assert r.sampler == "file" and r.source == "CIFAR-10_human.pt" and r.num_classes == 10
    wrong = d["clean_label"].copy()
    wrong[5] = (wrong[5] + 1) % 10
    with pytest.raises(ValueError, match="not the clean labels of CIFAR-10_human.pt.*first at index 5"):
        corrupt(wrong, "cifar10n:aggre", seed=0, data_dir=tmp_path)
    with pytest.raises(ValueError, match="shape"):
        corrupt(wrong[:-1], "cifar10n:aggre", seed=0, data_dir=tmp_path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar100n_labels.npz or the official CIFAR-100_human.pt"):
        corrupt(np.arange(100), "cifar100n", seed=0, data_dir=tmp_path)


def _zip_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "CIFAR-10_human.pt"
    _zip_with_pickle(path, pickle.dumps({"clean_label": _Evil(marker)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (posix|nt|os)\.system"):
        read_human_pt(path)
    assert not marker.exists()
    # the same through corrupt()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        corrupt(np.zeros(3, dtype=int), "cifar10n:aggre", seed=0, data_dir=tmp_path)
    # builtins are refused too (eval, getattr, ...)
    _zip_with_pickle(path, b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        read_human_pt(path)


def test_torch_tensors_and_non_zip_refused(tmp_path):
    torch.save({"clean_label": torch.arange(3)}, tmp_path / "t.pt")
    with pytest.raises(pickle.UnpicklingError, match="torch tensors"):
        read_human_pt(tmp_path / "t.pt")
    (tmp_path / "old.pt").write_bytes(pickle.dumps({"clean_label": [1, 2]}))
    with pytest.raises(ValueError, match="not a torch.save zip"):
        read_human_pt(tmp_path / "old.pt")


# ------------------------------------------------------------------- shared datasets

def test_cifar10n_rates_and_checksums(shared_datasets):
    clean = np.load(shared_datasets / "cifar10n_labels.npz")["clean_label"]
    for variant, rate in RATES.items():
        r = corrupt(clean, f"cifar10n:{variant}", seed=0, data_dir=shared_datasets)
        assert r.rate == pytest.approx(rate, abs=5e-5), variant
        assert r.sha256 == SHA[variant] and r.source == "cifar10n_labels.npz"
        assert r.summary()["spec"] == f"cifar10n:{variant}"
    assert corrupt(clean, "clean", seed=0).sha256 == SHA["clean"]


def test_cifar100n_rate_checksum_and_coarse_map(shared_datasets):
    z = np.load(shared_datasets / "cifar100n_labels.npz")
    r = corrupt(z["clean_label"], "cifar100n", seed=0, data_dir=shared_datasets)
    assert r.rate == pytest.approx(0.4020, abs=5e-5) and r.sha256 == SHA["cifar100n"]
    assert r.num_classes == 100
    # the hard-coded official fine -> coarse map agrees with the file on all 50,000 images
    assert np.array_equal(CIFAR100_COARSE[z["clean_label"]], z["clean_coarse_label"])


def test_pt_reader_on_real_labels(shared_datasets, tmp_path):
    """The .pt path on full-size data: the npz arrays saved like the official file (CIFAR-100's
    coarse labels as lists) read back bit-identically."""
    z = np.load(shared_datasets / "cifar100n_labels.npz")
    d = {k: z[k] for k in ("clean_label", "noisy_label")}
    d.update({k: z[k].tolist() for k in ("clean_coarse_label", "noisy_coarse_label")})
    torch.save(d, tmp_path / "CIFAR-100_human.pt")
    r = corrupt(z["clean_label"], "cifar100n", seed=0, data_dir=tmp_path)
    assert r.sha256 == SHA["cifar100n"] and r.source == "CIFAR-100_human.pt"
    got = read_human_pt(tmp_path / "CIFAR-100_human.pt")
    assert np.array_equal(got["clean_coarse_label"], z["clean_coarse_label"])
