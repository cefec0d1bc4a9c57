"""Instance-dependent noise (Xia et al. 2020), checked against a per-sample loop written from the
paper's recipe with the same random draws."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import truncnorm

from asymloss.noise import corrupt


def reference_instance_noise(y, x_uint8, rate, K, seed):
    """Per-sample loop following Xia et al.'s code: q ~ TN(rate, 0.1², [0, 1]); W ~ N(0, 1)^(K, d, K);
    A = x_i W[y_i], A[y_i] = -inf, p = q_i softmax(A), p[y_i] += 1 - q_i; draw."""
    rng = np.random.Generator(np.random.PCG64(seed))
    n = y.size
    q = truncnorm.rvs(-rate / 0.1, (1 - rate) / 0.1, loc=rate, scale=0.1, size=n, random_state=rng)
    W = rng.standard_normal((K, x_uint8[0].size, K))
    u = rng.random(n)
    out = []
    for i in range(n):
        a = (x_uint8[i].reshape(-1) / 255.0) @ W[y[i]]
        a[y[i]] = -np.inf
        p = np.exp(a - a.max())
        p = q[i] * p / p.sum()
        p[y[i]] += 1 - q[i]
        out.append(min(int(np.searchsorted(np.cumsum(p), u[i], side="right")), K - 1))
    return np.array(out), q


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3000, 3, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 10, size=3000)
    return x, y


def test_matches_per_sample_reference(small):
    x, y = small
    r = corrupt(y, "instance:0.4", seed=9, features=x)
    ref, q = reference_instance_noise(y, x, 0.4, 10, 9)
    assert np.array_equal(r.noisy_labels, ref)
    assert q.min() >= 0 and q.max() <= 1 and abs(q.std() - 0.1) < 0.01
    assert r.sampler == "independent" and r.spec.kind == "instance"


def test_rates_scaling_and_determinism(small):
    x, y = small
    r = corrupt(y, "instance:0.4", seed=1, features=x)
    # E[rate] = E[q] = 0.4 (truncation at 0 and 1 is 4 sd away); sd of the mean over 3000 is ~0.01
    assert abs(r.rate - 0.4) < 0.05
    assert np.all(np.abs(r.per_class_rate - 0.4) < 0.15)
    again = corrupt(y, "instance:0.4", seed=1, features=torch.from_numpy(x))
    scaled = corrupt(y, "instance:0.4", seed=1, features=x.astype(np.float64) / 255.0)
    assert again.sha256 == r.sha256 and scaled.sha256 == r.sha256  # uint8 is divided by 255
    other = corrupt(y, "instance:0.4", seed=2, features=x)
    assert other.sha256 != r.sha256
    assert corrupt(y, "instance:0", seed=1, features=x).rate == 0.0


def test_noise_depends_on_the_instance(small):
    x, y = small
    # same label, same flip rate, different images -> different preferred wrong classes
    r = corrupt(y, "instance:0.6", seed=3, features=x)
    t = r.transition.copy()
    np.fill_diagonal(t, 0)
    assert t.max() > 2.0 * (0.6 / 9)  # far from symmetric: the flips concentrate on a few classes


def test_instance_errors(small):
    x, y = small
    with pytest.raises(ValueError, match="instance noise needs features="):
        corrupt(y, "instance:0.4", seed=0)
    with pytest.raises(ValueError, match="N = 3000 rows"):
        corrupt(y, "instance:0.4", seed=0, features=x[:10])
    with pytest.raises(TypeError, match="uint8"):
        corrupt(y, "instance:0.4", seed=0, features=x.astype(np.int32))
    with pytest.warns(UserWarning, match=r"pixels scaled to \[0, 1\]"):
        corrupt(y[:50], "instance:0.4", seed=0, features=x[:50].astype(np.float32))
    with pytest.raises(ValueError, match="finite"):
        corrupt(y[:2], "instance:0.4", seed=0, features=np.full((2, 4), np.nan), num_classes=10)
