"""Property-based tests (hypothesis) of the losses, evaluated as L(u, y) through logits log(u)."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import asymloss
from asymloss.train.mechanics import needs

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def simplex_points(draw, min_k=2, max_k=12, n=4):
    """Logits of shape (n, K) drawn from [-15, 15], and K."""
    K = draw(st.integers(min_k, max_k))
    vals = draw(st.lists(st.floats(-15, 15, allow_nan=False), min_size=n * K, max_size=n * K))
    return torch.tensor(vals, dtype=torch.float64).reshape(n, K), K


def _all_labels(module, z):
    """(n, K) matrix of L(u, k) for every label k."""
    n, K = z.shape
    cols = [module(z, torch.full((n,), k, dtype=torch.long)) for k in range(K)]
    return torch.stack(cols, 1)


@SETTINGS
@given(a=st.floats(0.01, 20), q=st.floats(0.05, 5), K=st.integers(2, 20))
def test_agce_aul_vanish_at_the_label_and_ael_is_exp_minus_one_over_a(a, q, K):
    u = torch.full((1, K), 1e-300, dtype=torch.float64)
    u[0, 0] = 1.0  # u = e_0 up to 1e-300 (p_0 = 1 in float64)
    z, y = torch.log(u), torch.zeros(1, dtype=torch.long)
    assert asymloss.AGCE(a=a, q=q)(z, y).item() == 0.0
    assert asymloss.AUL(a=1 + a, q=q)(z, y).item() == 0.0
    assert math.isclose(asymloss.AEL(a=a)(z, y).item(), math.exp(-1 / a), rel_tol=1e-12)


#: LDR-KL = max_q sum_k q_k d_k - lam KL(q || uniform) is negative when the label's s_y is large
CAN_BE_NEGATIVE = {"ldr_kl"}


#: losses that take more than logits and labels: tests/test_losses_mechanics.py
PLAIN = {n for n in asymloss.list_losses() if not needs(asymloss.create_loss(n))}


@SETTINGS
@given(data=simplex_points(), name=st.sampled_from(sorted(PLAIN - CAN_BE_NEGATIVE)))
def test_every_loss_is_non_negative_and_finite(data, name):
    z, K = data
    loss = asymloss.create_loss(name, reduction="none")
    vals = _all_labels(loss, z)
    assert torch.isfinite(vals).all()
    assert (vals >= -1e-12).all(), (name, vals.min())


SYMMETRIC = {  # loss -> sum over labels as a function of K
    "mae": lambda K: 2.0 * (K - 1),
    "rce": lambda K: math.log(1e4) * (K - 1),
    "nce": lambda K: 1.0,
    "nfl": lambda K: 1.0,
    "ngce": lambda K: 1.0,
    "nmae": lambda K: 1.0,
    "nrce": lambda K: 1.0,
}


@SETTINGS
@given(data=simplex_points(), name=st.sampled_from(sorted(SYMMETRIC)))
def test_symmetric_losses_sum_to_a_constant_over_labels(data, name):
    z, K = data
    kw = {"eps": 0.0} if name == "rce" else {}  # the reference clamp makes RCE only nearly symmetric
    vals = _all_labels(asymloss.create_loss(name, reduction="none", **kw), z)
    torch.testing.assert_close(vals.sum(1), torch.full((z.shape[0],), SYMMETRIC[name](K), dtype=torch.float64),
                               rtol=1e-9, atol=1e-9)


@SETTINGS
@given(data=simplex_points(), a=st.floats(0.05, 10), q=st.floats(0.05, 3))
def test_asymmetric_losses_decrease_in_p_y(data, a, q):
    # l(u_y) is non-increasing in u_y: sorting samples by p_y sorts the losses the other way
    z, K = data
    y = torch.zeros(z.shape[0], dtype=torch.long)
    py = torch.softmax(z, 1)[:, 0]
    order = torch.argsort(py)
    for loss in (asymloss.AGCE(a=a, q=q, reduction="none"), asymloss.AUL(a=1 + a, q=q, reduction="none"),
                 asymloss.AEL(a=a, reduction="none")):
        v = loss(z, y)[order]
        assert (v[1:] <= v[:-1] + 1e-12).all()


@SETTINGS
@given(data=simplex_points(), weights=st.lists(st.floats(0.01, 10), min_size=12, max_size=12),
       name=st.sampled_from(["agce", "nce", "rce", "nce+agce", "nfl+rce", "gce"]))
def test_weighted_mean_is_weighted_average_of_none(data, weights, name):
    z, K = data
    y = torch.arange(z.shape[0]) % K
    w = torch.tensor(weights[:K], dtype=torch.float64)
    per = asymloss.create_loss(name, reduction="none")(z, y)
    mean = asymloss.create_loss(name, weight=w)(z, y)
    torch.testing.assert_close(mean, (per * w[y]).sum() / w[y].sum())
