"""Noise models: specs, transition matrices, samplers and their statistics (fixed seeds)."""
from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from asymloss.noise import (
    CIFAR100_COARSE,
    NoiseSpec,
    corrupt,
    list_noise_kinds,
    noise_ratio,
    parse_noise,
    transition_matrix,
)
from asymloss.noise._matrices import cifar100_next_in_superclass
from asymloss.noise._sampling import exact_counts

CIFAR10 = np.repeat(np.arange(10), 5000)  # CIFAR-10-sized balanced train labels
RNG = np.random.default_rng(12345)
SHUFFLED = RNG.permutation(CIFAR10)


def z_bound(p, n, sigmas=5.0):
    """``sigmas`` binomial standard deviations of a proportion (at least one count)."""
    return sigmas * np.sqrt(np.maximum(p * (1 - p), 1.0 / n) / n)


# ----------------------------------------------------------------------------------- specs

@pytest.mark.parametrize("text, kind, rate, variant", [
    ("clean", "clean", None, None),
    ("symmetric:0.4", "symmetric", 0.4, None),
    (" Asymmetric : 0.3 ", "asymmetric", 0.3, None),
    ("pairflip:0.45", "pairflip", 0.45, None),
    ("uniform:0.5", "uniform", 0.5, None),
    ("instance:0.4", "instance", 0.4, None),
    ("symmetric:0", "symmetric", 0.0, None),
    ("cifar10n:worst", "cifar10n", None, "worst"),
    ("cifar10n:AGGRE", "cifar10n", None, "aggre"),
    ("cifar100n", "cifar100n", None, None),
])
def test_parse_noise(text, kind, rate, variant):
    spec = parse_noise(text)
    assert spec == NoiseSpec(kind, rate, variant)
    assert parse_noise(str(spec)) == spec
    assert parse_noise(spec) is spec


@pytest.mark.parametrize("text, match", [
    ("symetric:0.4", "Did you mean 'symmetric'"),
    ("pairflp:0.2", "Did you mean 'pairflip'"),
    ("symmetric", "needs a rate"),
    ("symmetric:1.0", r"< 1\.0; got 1\.0"),
    ("symmetric:-0.1", ">= 0.0"),
    ("symmetric:abc", "must be a number"),
    ("symmetric:nan", "finite"),
    ("cifar10n", "needs a label set"),
    ("cifar10n:wrst", "Did you mean 'worst'"),
    ("clean:0.2", "takes no argument"),
    ("cifar100n:x", "takes no argument"),
])
def test_parse_noise_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_noise(text)


def test_noise_spec_validates_itself():
    with pytest.raises(TypeError, match="rate of instance noise must be a real number; got None"):
        NoiseSpec("instance")
    with pytest.raises(KeyError, match="Did you mean 'uniform'"):
        NoiseSpec("unifrom", 0.2)
    with pytest.raises(KeyError, match="CIFAR-10N label set 'best'"):
        NoiseSpec("cifar10n", variant="best")
    with pytest.raises(ValueError, match="clean noise takes no rate"):
        NoiseSpec("clean", 0.1)
    with pytest.raises(ValueError, match="takes no variant"):
        NoiseSpec("symmetric", 0.1, "aggre")


def test_parse_noise_type_error():
    with pytest.raises(TypeError, match="spec string"):
        parse_noise(0.4)
    assert set(list_noise_kinds()) >= {"clean", "symmetric", "cifar10n", "cifar100n", "instance"}


# -------------------------------------------------------------------------------- matrices

def test_symmetric_uniform_pairflip_matrices():
    K, eta = 4, 0.3
    S = transition_matrix("symmetric", eta, num_classes=K)
    assert np.allclose(np.diag(S), 0.7) and np.allclose(S[~np.eye(K, dtype=bool)], 0.1)
    U = transition_matrix("uniform", eta, num_classes=K)
    assert np.allclose(np.diag(U), 0.7 + 0.075) and np.allclose(U[0, 1:], 0.075)
    P = transition_matrix("pairflip", eta, num_classes=K)
    expected = np.array([[.7, .3, 0, 0], [0, .7, .3, 0], [0, 0, .7, .3], [.3, 0, 0, .7]])
    assert np.array_equal(P, expected)
    for T in (S, U, P):
        assert T.dtype == np.float64 and T.shape == (K, K)


def test_asymmetric_maps():
    M = transition_matrix("asymmetric", 0.3, dataset="mnist")
    flips = {(s, t) for s, t in zip(*np.nonzero(M)) if s != t}
    assert flips == {(7, 1), (2, 7), (5, 6), (6, 5), (3, 8)}
    assert np.allclose(M[7, [7, 1]], [0.7, 0.3]) and M[1, 1] == 1.0
    C = transition_matrix("asymmetric", 0.4, dataset="cifar10")
    flips = {(s, t) for s, t in zip(*np.nonzero(C)) if s != t}
    assert flips == {(9, 1), (2, 0), (3, 5), (5, 3), (4, 7)}
    assert np.allclose(np.diag(C), [1, 1, .6, .6, .6, .6, 1, 1, 1, .6])


def test_cifar100_asymmetric_uses_real_superclasses():
    T = transition_matrix("asymmetric", 0.2, dataset="cifar100")
    assert T.shape == (100, 100) and np.allclose(np.diag(T), 0.8)
    src, dst = np.nonzero(T - np.diag(np.diag(T)))
    assert src.size == 100 and np.array_equal(np.sort(src), np.arange(100))
    assert np.array_equal(CIFAR100_COARSE[src], CIFAR100_COARSE[dst])  # all 100 edges in a superclass
    # within each superclass the flips form one 5-cycle through its classes in index order
    targets = (T - np.diag(np.diag(T))).argmax(axis=1)
    assert np.array_equal(targets, cifar100_next_in_superclass())
    for c in range(20):
        members = np.flatnonzero(CIFAR100_COARSE == c)
        assert members.size == 5
        assert np.array_equal(targets[members], np.roll(members, -1))
    assert np.array_equal(np.bincount(CIFAR100_COARSE), np.full(20, 5))


def test_cifar100_legacy_blocks():
    T = transition_matrix("asymmetric", 0.2, dataset="cifar100", legacy=True)
    src, dst = np.nonzero(T - np.diag(np.diag(T)))
    assert np.array_equal(dst, 5 * (src // 5) + (src % 5 + 1) % 5)
    assert int((CIFAR100_COARSE[src] == CIFAR100_COARSE[dst]).sum()) == 6  # docs/noise.md, 'Legacy switches': 6 of 100


def test_cifar10_legacy_expected_matrix():
    T = transition_matrix("asymmetric", 0.4, dataset="cifar10", legacy=True)
    assert np.allclose(T[3, [3, 5]], [0.76, 0.24]) and np.allclose(T[5, [5, 3]], [0.6, 0.4])
    assert np.allclose(T.sum(axis=1), 1)


@pytest.mark.parametrize("kind, eta, K, expected", [
    ("symmetric", 0.8, 10, 0.444444), ("symmetric", 0.6, 10, 0.166667),
    ("symmetric", 0.4, 10, 0.074074), ("symmetric", 0.8, 100, 0.040404),
    ("pairflip", 0.4, 10, 0.666667), ("pairflip", 0.3, 10, 0.428571),
])
def test_noise_ratio_worked_values(kind, eta, K, expected):
    assert noise_ratio(transition_matrix(kind, eta, num_classes=K)) == pytest.approx(expected, abs=5e-7)
    assert noise_ratio(transition_matrix("asymmetric", 0.4, dataset="cifar10")) == pytest.approx(2 / 3)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["symmetric", "uniform", "pairflip"]),
       rate=st.floats(0.0, 0.999, allow_nan=False), K=st.integers(2, 60))
def test_matrices_row_stochastic(kind, rate, K):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T = transition_matrix(kind, rate, num_classes=K)
    assert T.shape == (K, K) and (T >= 0).all()
    assert np.allclose(T.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(np.diag(T), 1 - rate + (rate / K if kind == "uniform" else 0))


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0.0, 0.999, allow_nan=False), dataset=st.sampled_from(["mnist", "cifar10", "cifar100"]),
       legacy=st.booleans())
def test_asymmetric_row_stochastic(rate, dataset, legacy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T = transition_matrix("asymmetric", rate, dataset=dataset, legacy=legacy)
    assert (T >= 0).all() and np.allclose(T.sum(axis=1), 1.0, atol=1e-12)


def test_matrix_errors_and_warnings():
    with pytest.raises(KeyError, match="Did you mean 'pairflip'"):
        transition_matrix("pairflp", 0.2, num_classes=3)
    with pytest.raises(ValueError, match="rate must be >= 0.0 and < 1.0; got 1.2"):
        transition_matrix("symmetric", 1.2, num_classes=3)
    with pytest.raises(ValueError, match="needs dataset="):
        transition_matrix("asymmetric", 0.2)
    with pytest.raises(ValueError, match="dataset must be one of"):
        transition_matrix("asymmetric", 0.2, dataset="svhn")
    with pytest.raises(ValueError, match="needs num_classes"):
        transition_matrix("symmetric", 0.2)
    with pytest.raises(ValueError, match="does not match dataset"):
        transition_matrix("symmetric", 0.2, num_classes=7, dataset="cifar10")
    with pytest.warns(UserWarning, match="not dominant"):
        transition_matrix("pairflip", 0.5, num_classes=10)
    with pytest.warns(UserWarning, match="not dominant"):
        transition_matrix("symmetric", 0.9, num_classes=10)  # r̃ = 0.9 / (9 · 0.1) = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transition_matrix("symmetric", 0.89, num_classes=10)
        transition_matrix("uniform", 0.99, num_classes=10)  # uniform keeps clean labels dominant


# ------------------------------------------------------------------------- exact sampler

@pytest.mark.parametrize("noise, kw", [
    ("pairflip:0.45", {}), ("asymmetric:0.4", {"dataset": "cifar10"}),
    ("asymmetric:0.3", {"dataset": "mnist"}), ("pairflip:0.2", {}),
])
def test_exact_counts_equal_rounded(noise, kw):
    r = corrupt(SHUFFLED, noise, seed=3, **kw)
    T = r.expected_transition
    counts = np.rint(r.transition * 5000).astype(int)  # every class has 5000 samples
    expected = np.floor(T * 5000 + 0.5).astype(int)
    np.fill_diagonal(expected, 0)
    np.fill_diagonal(expected, 5000 - expected.sum(axis=1))
    assert np.array_equal(counts, expected)


def test_exact_symmetric_rates_exact_and_no_self_flips():
    r = corrupt(SHUFFLED, "symmetric:0.4", seed=5)
    assert r.rate == 0.4 and np.all(r.per_class_rate == 0.4)  # like the reference: 2000 per class
    counts = np.rint(r.transition * 5000).astype(int)
    off = counts[~np.eye(10, dtype=bool)]
    assert set(off) <= {222, 223}  # floor / ceil of 0.4 / 9 · 5000 = 222.2
    # ties are broken at random, not always in favour of low class indices
    assert len({tuple(np.flatnonzero(row == 223)) for row in counts}) > 1
    flipped = r.noisy_labels != r.clean_labels
    assert flipped.sum() == 20000  # every selected sample changed class: no self-flips


def test_exact_uniform_rate():
    r = corrupt(SHUFFLED, "uniform:0.5", seed=2)
    assert r.rate == pytest.approx(0.5 * 9 / 10, abs=1e-12)
    counts = np.rint(r.transition * 5000).astype(int)
    assert np.all(counts[~np.eye(10, dtype=bool)] == 250)


@settings(max_examples=60, deadline=None)
@given(K=st.integers(2, 12), seed=st.integers(0, 2**32 - 1), nmax=st.integers(0, 400))
def test_exact_counts_properties(K, seed, nmax):
    rng = np.random.default_rng(seed)
    T = rng.dirichlet(np.ones(K), size=K)
    n = rng.integers(0, nmax + 1, size=K)
    C = exact_counts(T, n, rng)
    want = T * n[:, None]
    off = ~np.eye(K, dtype=bool)
    assert (C >= 0).all() and np.array_equal(C.sum(axis=1), n)
    assert np.all(np.abs(C[off] - want[off]) < 1 + 1e-9)  # floor or ceil
    assert np.array_equal(C[off].reshape(K, K - 1).sum(axis=1),
                          np.minimum(np.floor(want[off].reshape(K, K - 1).sum(axis=1) + 0.5 + 1e-9), n))


def test_exact_sampler_chooses_at_random():
    r = corrupt(CIFAR10, "pairflip:0.3", seed=0)
    flipped = np.flatnonzero(r.noisy_labels != r.clean_labels)
    # within class 0 (indices 0..4999) the flipped samples are spread, not the first 1500
    first = flipped[flipped < 5000]
    assert first.size == 1500 and 2000 < first.mean() < 3000 and first.max() > 4500


# ------------------------------------------------------------------- independent sampler

@pytest.mark.parametrize("noise, kw", [
    ("symmetric:0.4", {}), ("uniform:0.6", {}), ("pairflip:0.45", {}),
    ("asymmetric:0.4", {"dataset": "cifar10"}), ("symmetric:0.8", {}),
])
def test_independent_within_binomial_tolerance(noise, kw):
    r = corrupt(SHUFFLED, noise, seed=11, sampler="independent", **kw)
    T = r.expected_transition
    assert np.all(np.abs(r.transition - T) <= z_bound(T, 5000))
    assert np.all(r.transition[T == 0] == 0)
    expected_rate = float(np.mean(1 - np.diag(T)))
    assert abs(r.rate - expected_rate) <= z_bound(expected_rate, 50000)


def test_uniform_realised_rate_closed_form():
    r = corrupt(SHUFFLED, "uniform:0.5", seed=4, sampler="independent")
    assert abs(r.rate - 0.5 * 9 / 10) <= z_bound(0.45, 50000)
    s = corrupt(SHUFFLED, "symmetric:0.5", seed=4, sampler="independent")
    assert abs(s.rate - 0.5) <= z_bound(0.5, 50000)  # symmetric never flips to itself
    assert abs(s.transition[0, 1:].mean() - 0.5 / 9) < 0.01


# ------------------------------------------------------------------------ legacy quirks

def test_cifar10_legacy_sequential_flips():
    r = corrupt(SHUFFLED, "asymmetric:0.4", dataset="cifar10", seed=123, legacy=True)
    pc = r.per_class_rate
    # hypergeometric sd of the cats drawn back is ~18.5 of 5000 (0.0037)
    assert abs(pc[3] - 0.24) < 0.02 and abs(pc[5] - 0.40) < 0.02
    assert pc[9] == pc[2] == pc[4] == 0.4 and pc[[0, 1, 6, 7, 8]].sum() == 0
    assert abs(r.rate - 0.184) < 0.003
    # dogs drawn: int(0.4 · 7000) = 2800 of the enlarged dog set; cats sent to dog and not back
    n_dog_to_cat = np.count_nonzero((r.clean_labels == 5) & (r.noisy_labels == 3))
    n_cat_back = 2800 - n_dog_to_cat
    assert np.count_nonzero((r.clean_labels == 3) & (r.noisy_labels == 5)) == 2000 - n_cat_back
    default = corrupt(SHUFFLED, "asymmetric:0.4", dataset="cifar10", seed=123)
    assert default.per_class_rate[3] == 0.4 and default.per_class_rate[5] == 0.4 and default.rate == 0.2
    ind = corrupt(SHUFFLED, "asymmetric:0.4", dataset="cifar10", seed=123, legacy=True, sampler="independent")
    assert np.all(np.abs(ind.transition - ind.expected_transition) <= z_bound(ind.expected_transition, 5000))


def test_cifar100_legacy_corrupt():
    y = np.repeat(np.arange(100), 50)
    r = corrupt(y, "asymmetric:0.4", dataset="cifar100", seed=0, legacy=True)
    flipped = r.noisy_labels != r.clean_labels
    assert np.all(r.noisy_labels[flipped] == 5 * (y[flipped] // 5) + (y[flipped] % 5 + 1) % 5)
    d = corrupt(y, "asymmetric:0.4", dataset="cifar100", seed=0)
    f = d.noisy_labels != d.clean_labels
    assert np.all(CIFAR100_COARSE[d.noisy_labels[f]] == CIFAR100_COARSE[y[f]]) and d.rate == 0.4


# --------------------------------------------------------------- seeds, records, inputs

def test_determinism_and_different_seeds():
    for sampler in ("exact", "independent"):
        a = corrupt(SHUFFLED, "symmetric:0.4", seed=7, sampler=sampler)
        b = corrupt(SHUFFLED, "symmetric:0.4", seed=7, sampler=sampler)
        c = corrupt(SHUFFLED, "symmetric:0.4", seed=8, sampler=sampler)
        assert np.array_equal(a.noisy_labels, b.noisy_labels) and a.sha256 == b.sha256
        assert not np.array_equal(a.noisy_labels, c.noisy_labels) and a.sha256 != c.sha256
        # two draws agree only by chance: ~ 0.6² + 0.4²/9 of the labels
        assert np.mean(a.noisy_labels == c.noisy_labels) < 0.7


def test_record_fields_and_summary():
    y = torch.arange(10).repeat(30)
    r = corrupt(y, "pairflip:0.2", seed=1, sampler="independent")
    assert isinstance(r.noisy_labels, np.ndarray) and r.noisy_labels.dtype == np.int64
    assert np.array_equal(r.clean_labels, y.numpy()) and np.array_equal(y, torch.arange(10).repeat(30))
    assert r.sha256 == hashlib.sha256(r.noisy_labels.astype("<i8").tobytes()).hexdigest()
    assert r.rate == np.mean(r.noisy_labels != y.numpy()) and r.num_flipped == int(r.rate * 300)
    s = r.summary()
    json.dumps(s, allow_nan=False)
    assert s["spec"] == "pairflip:0.2" and s["seed"] == 1 and s["sampler"] == "independent"
    assert s["num_flipped"] == r.num_flipped and len(s["transition"]) == 10 and s["n"] == 300
    assert "noisy_labels" not in s and "clean_labels" not in s
    assert np.allclose(np.asarray(s["transition"]).sum(axis=1), 1)


def test_clean_and_matrix_noise():
    r = corrupt(SHUFFLED, "clean", seed=0)
    assert np.array_equal(r.noisy_labels, SHUFFLED) and r.rate == 0 and r.sampler is None
    T = np.full((10, 10), 0.05) + 0.5 * np.eye(10)
    m = corrupt(SHUFFLED, T, seed=0)
    assert m.spec.kind == "transition" and m.rate == 0.45
    assert np.allclose(m.transition, T)  # 0.05 · 5000 = 250: exact
    assert corrupt(SHUFFLED, NoiseSpec("symmetric", 0.2), seed=0).rate == 0.2


def test_absent_class_gives_nan_rate_and_null_in_summary():
    y = np.array([0, 0, 1, 1, 3, 3])
    r = corrupt(y, "symmetric:0.5", seed=0, num_classes=4)
    assert np.isnan(r.per_class_rate[2]) and r.summary()["per_class_rate"][2] is None
    json.dumps(r.summary(), allow_nan=False)


def test_corrupt_errors():
    y = np.repeat(np.arange(10), 5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\] for 5 classes; found label 9"):
        corrupt(y, "symmetric:0.2", seed=0, num_classes=5)
    with pytest.raises(ValueError, match="found label -1"):
        corrupt(np.array([0, -1, 2]), "symmetric:0.2", seed=0)
    with pytest.raises(TypeError, match="labels must be integers"):
        corrupt(y.astype(float), "symmetric:0.2", seed=0)
    with pytest.raises(ValueError, match="1-D"):
        corrupt(y.reshape(5, 10), "symmetric:0.2", seed=0)
    with pytest.raises(ValueError, match=r"row-stochastic.*row 0 sums to 10 "):
        corrupt(y, np.ones((10, 10)), seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        corrupt(y, np.eye(10) * 2 - np.roll(np.eye(10), 1, axis=1), seed=0)
    with pytest.raises(ValueError, match="square"):
        corrupt(y, np.ones((10, 5)) / 5, seed=0)
    with pytest.raises(ValueError, match="3x3 matrix but num_classes is 10"):
        corrupt(y, np.eye(3), seed=0, num_classes=10)
    with pytest.raises(ValueError, match="needs dataset="):
        corrupt(y, "asymmetric:0.2", seed=0)
    with pytest.raises(ValueError, match="sampler must be one of 'exact', 'independent'.*Did you mean 'exact'"):
        corrupt(y, "symmetric:0.2", seed=0, sampler="exakt")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        corrupt(y, "symmetric:0.2", seed=-1)
    with pytest.raises(TypeError, match="seed must be"):
        corrupt(y, "symmetric:0.2", seed=1.5)
    with pytest.raises(ValueError, match="rate of symmetric noise must be >= 0.0 and < 1.0"):
        corrupt(y, NoiseSpec("symmetric", 1.5), seed=0)
    with pytest.warns(UserWarning, match="not dominant") as rec:
        corrupt(y, "pairflip:0.6", seed=0)
    assert rec[0].filename == __file__  # the warning points at the caller
    with pytest.warns(UserWarning, match="not dominant"):
        corrupt(y, np.roll(np.eye(10), 1, axis=1), seed=0)
    assert corrupt(y, "symmetric:0.2", seed=np.int64(3)).seed == 3
    with pytest.raises(ValueError, match="pass the .K, K. array itself"):
        corrupt(y, NoiseSpec("transition"), seed=0)
    with pytest.raises(ValueError, match="dataset must be one of 'mnist', 'digits', 'cifar10', 'cifar100'; got 'fashion-mnist'"):
        corrupt(y, "asymmetric:0.2", seed=0, dataset="fashion-mnist")
    assert corrupt(y, "symmetric:0.2", seed=0, dataset="NPZ:Data/X.npz").dataset == "NPZ:Data/X.npz"


def test_digits_use_the_mnist_asymmetric_map():
    np.testing.assert_array_equal(
        transition_matrix("asymmetric", 0.3, dataset="digits"), transition_matrix("asymmetric", 0.3, dataset="mnist")
    )
    T = transition_matrix("asymmetric", 0.3, dataset="digits")
    assert T[7, 1] == pytest.approx(0.3) and T[5, 6] == pytest.approx(0.3) and T[0, 0] == 1.0


def test_reference_sampler_per_dataset_and_kind():
    from asymloss.noise import reference_sampler

    assert reference_sampler("mnist", "symmetric") == "independent"
    assert reference_sampler("cifar10", "asymmetric") == "exact"
    assert reference_sampler("cifar100", "symmetric") == "exact"
    assert reference_sampler("cifar100", "asymmetric") == "independent"
