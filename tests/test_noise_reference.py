"""Reference samplers ``alfs`` and ``apl``: the reference codes' own noisy labels, bit for bit.

The oracle hashes were obtained by running the reference code itself (NumPy 1.26) on the offline
clean labels: SHA-256 of the noisy training labels as int64 little-endian, C order. The other
tests check the references' procedures against counts that follow from them (no randomness), and
against the same procedure written out with NumPy's *global* legacy RNG, as the references call it.
"""
from __future__ import annotations

import numpy as np
import pytest

from asymloss.noise import REFERENCE_SAMPLERS, corrupt, replay_kinds

# (sampler, dataset, noise, seed) -> sha256 of the reference's noisy labels
ORACLES = {
    ("alfs", "cifar10", "symmetric:0.4", 123): "5efeed8141f188aa0ac6cfeef426ee6d803ef9bd23b4869cf5ed11c3e97c4ae3",
    ("alfs", "cifar10", "asymmetric:0.4", 123): "5ae090aa8409a131eab0d36fb237dbcec2158e74991ff6a533c122dbdc4feb98",
    ("alfs", "mnist", "symmetric:0.8", 123): "2b17afb33bdf49cfdc1c700fc6326ac91b328977238c8dfe3d6094dce9a7d968",
    ("alfs", "mnist", "asymmetric:0.4", 123): "2b6a4758692a7e81a22cab09e013377632ad16ba808660220422cd72576fa508",
    ("alfs", "cifar100", "symmetric:0.4", 123): "bd6a8aa809e933c9c32ac3f0630c9133a5942c9962e1914aa8cc12b141d8797a",
    ("apl", "cifar10", "symmetric:0.4", 0): "23779137dec4d2ea4024cd59db1cabd1d847ffc932d23af2fe3b8a29a2578f74",
    ("apl", "mnist", "symmetric:0.8", 0): "ab2a61ce5f35c82181f7f1feed1512a7abf6f08459c417df93fc637f5ae0ba8a",
}


def clean_labels(shared, dataset):
    if dataset == "mnist":
        return np.load(shared / "mnist.npz")["y_train"]
    if dataset == "cifar10":
        return np.load(shared / "cifar10_jpeg.npz")["y_train"]
    return np.load(shared / "cifar100n_labels.npz")["clean_label"]


@pytest.mark.shared
@pytest.mark.parametrize("key", list(ORACLES), ids=lambda k: "-".join(map(str, k)))
def test_reference_labels_bit_for_bit(shared_datasets, key):
    sampler, dataset, noise, seed = key
    r = corrupt(clean_labels(shared_datasets, dataset), noise, seed=seed, dataset=dataset, sampler=sampler)
    assert r.sha256 == ORACLES[key]
    s = r.summary()
    assert s["sampler"] == sampler and s["seed"] == seed
    assert s["reference_seed"] == (0 if (sampler, dataset) == ("alfs", "mnist") else seed)


@pytest.mark.shared
def test_alfs_mnist_ignores_seed_and_apl_does_not(shared_datasets):
    y = clean_labels(shared_datasets, "mnist")
    want = ORACLES[("alfs", "mnist", "asymmetric:0.4", 123)]
    assert corrupt(y, "asymmetric:0.4", seed=7, dataset="mnist", sampler="alfs").sha256 == want
    apl = corrupt(y, "symmetric:0.8", seed=1, dataset="mnist", sampler="apl")
    assert apl.sha256 != ORACLES[("apl", "mnist", "symmetric:0.8", 0)] and apl.reference_seed == 1


@pytest.mark.shared
def test_apl_mnist_flips_a_fixed_count_per_class(shared_datasets):
    y = clean_labels(shared_datasets, "mnist")
    n = np.bincount(y, minlength=10)
    r = corrupt(y, "symmetric:0.4", seed=0, dataset="mnist", sampler="apl")
    flipped = np.bincount(y[r.noisy_labels != y], minlength=10)
    assert flipped.tolist() == [2400] * 10  # int(int(0.4 * 60000) / 10), whatever the class size
    np.testing.assert_allclose(r.per_class_rate, 2400 / n)


def test_private_state_leaves_global_rng_untouched():
    y = np.repeat(np.arange(10), 300)
    np.random.seed(2024)
    before = np.random.get_state()
    for sampler in REFERENCE_SAMPLERS:
        for dataset in ("mnist", "cifar10"):
            for kind in replay_kinds(sampler, dataset):
                corrupt(y, f"{kind}:0.3", seed=5, dataset=dataset, sampler=sampler)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.random.seed(2024)
    expected = np.random.random(3)
    np.random.set_state(after)
    assert np.array_equal(np.random.random(3), expected)


# -- the references' procedures, written with the global RNG as they call it ---------------------

def _global_per_class(y, rate, K, seed):
    """Per class, choose int(int(rate N)/K) samples; then give each a random other class."""
    np.random.seed(seed)
    y = y.copy()
    chosen = []
    for d in range(K):
        chosen.extend(np.random.choice(np.where(y == d)[0], int(int(rate * len(y)) / K), replace=False))
    for i in chosen:
        others = [k for k in range(K) if k != y[i]]
        y[i] = np.random.choice(others)
    return y


def _global_sequential(y, rate, seed):
    np.random.seed(seed)
    y = y.copy()
    for s, t in [(9, 1), (2, 0), (3, 5), (5, 3), (4, 7)]:
        members = np.where(y == s)[0]
        for i in np.random.choice(members, int(rate * members.shape[0]), replace=False):
            y[i] = t
    return y


def _state_rows(y, P, seed):
    flipper = np.random.RandomState(seed)
    return np.array([np.where(flipper.multinomial(1, P[c, :], 1)[0] == 1)[0][0] for c in y])


@pytest.fixture
def keep_global_state():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


SHUFFLED = np.random.default_rng(3).permutation(np.repeat(np.arange(10), 230))  # 2,300 labels


@pytest.mark.parametrize("rate", [0.2, 0.45, 0.6, 0.8])
@pytest.mark.parametrize("sampler,dataset,seed", [("alfs", "cifar10", 123), ("apl", "cifar10", 2), ("apl", "mnist", 1)])
def test_per_class_symmetric_matches_global_rng_calls(keep_global_state, sampler, dataset, seed, rate):
    r = corrupt(SHUFFLED, f"symmetric:{rate}", seed=seed, dataset=dataset, sampler=sampler)
    assert np.array_equal(r.noisy_labels, _global_per_class(SHUFFLED, rate, 10, seed))
    c = int(int(rate * SHUFFLED.size) / 10)
    assert np.bincount(SHUFFLED[r.noisy_labels != SHUFFLED], minlength=10).tolist() == [c] * 10


def test_cifar100_symmetric_matches_global_rng_calls(keep_global_state):
    y = np.random.default_rng(4).permutation(np.repeat(np.arange(100), 30))
    r = corrupt(y, "symmetric:0.6", seed=9, dataset="cifar100", sampler="apl")
    assert np.array_equal(r.noisy_labels, _global_per_class(y, 0.6, 100, 9))
    assert r.num_flipped == 100 * 18


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.4])
def test_cifar10_asymmetric_sequential_in_place(keep_global_state, rate):
    y = np.repeat(np.arange(10), 500)
    r = corrupt(y, f"asymmetric:{rate}", seed=123, dataset="cifar10", sampler="alfs")
    assert np.array_equal(r.noisy_labels, _global_sequential(y, rate, 123))
    # counts that follow from the procedure: cat -> dog first, then int(rate * #current dogs) -> cat
    n_cat = int(rate * 500)
    n_dog = int(rate * (500 + n_cat))
    counts = np.bincount(r.noisy_labels, minlength=10)
    assert counts[3] == 500 - n_cat + n_dog and counts[5] == 500 + n_cat - n_dog
    assert counts[1] == counts[0] == counts[7] == 500 + n_cat and counts[9] == counts[2] == counts[4] == 500 - n_cat


def _mnist_P(rate):
    P = np.eye(10)
    for s, t in [(7, 1), (2, 7), (5, 6), (6, 5), (3, 8)]:
        P[s, s], P[s, t] = 1 - rate, rate
    return P


def _pairflip_P(rate):
    return (1 - rate) * np.eye(10) + rate * np.roll(np.eye(10), 1, axis=1)


def _blocks_P(rate):
    P = np.eye(100)
    for i in range(100):
        P[i, i], P[i, 5 * (i // 5) + (i + 1) % 5] = 1 - rate, rate
    return P


@pytest.mark.parametrize("sampler,dataset,noise,seed,used,P", [  # ALFs's MNIST loader: random_state=0 always
    ("alfs", "mnist", "symmetric:0.3", 99, 0, (1 - 0.3) * np.eye(10) + 0.3 / 9 * (1 - np.eye(10))),
    ("alfs", "mnist", "asymmetric:0.2", 99, 0, _mnist_P(0.2)),
    ("alfs", "mnist", "pairflip:0.45", 99, 0, _pairflip_P(0.45)),
    ("apl", "mnist", "asymmetric:0.3", 4, 4, _mnist_P(0.3)),
    ("alfs", "cifar100", "asymmetric:0.3", 123, 123, _blocks_P(0.3)),
])
def test_matrix_noise_is_one_multinomial_per_label(sampler, dataset, noise, seed, used, P):
    y = np.random.default_rng(5).integers(0, P.shape[0], 3000)
    r = corrupt(y, noise, seed=seed, dataset=dataset, sampler=sampler)
    assert np.array_equal(r.noisy_labels, _state_rows(y, P, used))
    assert r.seed == seed and r.reference_seed == used
    assert np.all(P[y, r.noisy_labels] > 0)  # every flip is an edge of the reference's matrix


def test_cifar100_asymmetric_uses_blocks_of_five():
    y = np.repeat(np.arange(100), 200)
    r = corrupt(y, "asymmetric:0.4", seed=123, dataset="cifar100", sampler="alfs")
    moved = r.noisy_labels != y
    np.testing.assert_array_equal(r.noisy_labels[moved], 5 * (y[moved] // 5) + (y[moved] + 1) % 5)
    assert abs(r.rate - 0.4) < 4 * np.sqrt(0.4 * 0.6 / y.size)


def test_rate_zero_and_clean_are_clean():
    y = np.repeat(np.arange(10), 50)
    for sampler in REFERENCE_SAMPLERS:
        for dataset in ("mnist", "cifar10"):
            for kind in replay_kinds(sampler, dataset):
                assert corrupt(y, f"{kind}:0", seed=1, dataset=dataset, sampler=sampler).num_flipped == 0
        r = corrupt(y, "clean", seed=1, sampler=sampler)
        assert r.num_flipped == 0 and r.sampler is None and r.reference_seed is None


def test_other_samplers_record_no_reference_seed():
    r = corrupt(np.arange(10), "symmetric:0.2", seed=0)
    assert r.reference_seed is None and r.summary()["reference_seed"] is None


def test_unsupported_combinations_are_clear_errors():
    y = np.repeat(np.arange(10), 50)
    with pytest.raises(ValueError, match="sampler must be one of 'exact', 'independent', 'alfs', 'apl'; got 'alf'"):
        corrupt(y, "symmetric:0.2", seed=0, dataset="mnist", sampler="alf")
    with pytest.raises(ValueError, match=r"sampler 'alfs' .* pass dataset=, one of 'mnist', 'cifar10', 'cifar100'"):
        corrupt(y, "symmetric:0.2", seed=0, sampler="alfs")
    with pytest.raises(ValueError, match="sampler 'apl' has no generator for dataset 'fashion-mnist'"):
        corrupt(y, "symmetric:0.2", seed=0, dataset="fashion-mnist", sampler="apl")
    with pytest.raises(ValueError, match="sampler 'apl' has no 'pairflip' noise for dataset 'mnist'.*'clean', "
                                         "'symmetric', 'asymmetric'"):
        corrupt(y, "pairflip:0.2", seed=0, dataset="mnist", sampler="apl")
    with pytest.raises(ValueError, match="sampler 'alfs' has no 'pairflip' noise for dataset 'cifar10'"):
        corrupt(y, "pairflip:0.2", seed=0, dataset="cifar10", sampler="alfs")
    for kind in ("uniform:0.2", "instance:0.2", "cifar10n:worst"):
        with pytest.raises(ValueError, match=f"has no '{kind.split(':')[0]}' noise for dataset 'cifar10'"):
            corrupt(y, kind, seed=0, dataset="cifar10", sampler="alfs")
    with pytest.raises(ValueError, match="not a transition matrix"):
        corrupt(y, np.eye(10), seed=0, dataset="cifar10", sampler="apl")
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*32 for sampler 'apl'.*got 4294967296"):
        corrupt(y, "symmetric:0.2", seed=2**32, dataset="cifar10", sampler="apl")
    with pytest.raises(ValueError, match="flips .* = 30 labels of every class, but class 9 has only 20 samples"):
        corrupt(np.concatenate([np.repeat(np.arange(9), 40), np.full(20, 9)]), "symmetric:0.8", seed=0,
                dataset="cifar10", sampler="alfs")


# -- training on the reference's labels --------------------------------------------------------

@pytest.mark.shared
def test_paper_protocol_trains_on_the_reference_labels(shared_datasets):
    from asymloss.train import get_protocol
    from asymloss.train.engine import prepare_data

    cfg = get_protocol("paper-mnist", noise="symmetric:0.8", noise_sampler="apl", noise_seed=0, seed=3,
                       data_dir=str(shared_datasets))
    full = prepare_data(cfg)
    assert full.noise["sha256"] == ORACLES[("apl", "mnist", "symmetric:0.8", 0)]
    assert full.noise["sampler"] == "apl" and full.noise["reference_seed"] == 0
    # a subset trains on the reference's labels of those images (drawn on the full set first)
    sub = prepare_data(cfg.replace(subset=1000))
    idx = _subset_index(full.y_clean.numel(), 1000)
    assert np.array_equal(sub.y_noisy.numpy(), full.y_noisy.numpy()[idx])
    assert sub.noise["sha256"] == full.noise["sha256"] and "subset_rate" in sub.noise


def _subset_index(n, size):
    from asymloss.train.engine import SUBSET_SEED  # the engine's fixed subset

    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[:size])


def test_config_and_pre_run_checks():
    from asymloss.train import get_protocol
    from asymloss.train.checks import check_noise

    for sampler in REFERENCE_SAMPLERS:
        check_noise(get_protocol("paper-cifar10", noise="asymmetric:0.4", noise_sampler=sampler))
    with pytest.raises(ValueError, match="noise_sampler must be one of .*'alfs', 'apl'; got 'apll'"):
        get_protocol("paper-mnist", noise_sampler="apll")
    with pytest.raises(ValueError, match="noise 'pairflip:0.4' on dataset 'mnist': sampler 'apl' has no 'pairflip'"):
        check_noise(get_protocol("paper-mnist", noise="pairflip:0.4", noise_sampler="apl"))
    with pytest.raises(ValueError, match="sampler 'alfs' has no generator for dataset 'digits'"):
        check_noise(get_protocol("demo-digits", noise="symmetric:0.4", noise_sampler="alfs"))
