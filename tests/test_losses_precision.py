"""float32 precision of the asymmetric losses and NNCE against float64 computations.

The references are closed forms in float64: ``l(p_y)`` and, w.r.t. the logits of any loss
``l(p_y)``, ``l'(p_y) p_y (1[j = y] - p_j)``. Up to ``p_y = 0.97`` (and at ``p_y = 1``) they are
evaluated at the exact float64 probabilities of the float32 logits. Closer to 1, no float32
computation from logits knows ``1 - p_y`` to 1e-5 (the sum ``1 + sum_{k != y} e^(z_k - z_y)``
rounds to float32 first: CE's value has the same limit), so there the reference is evaluated at
the float32 ``log p_y`` the loss itself computes, and what is measured is the loss's own
arithmetic: no cancellation, no lost gradient.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import asymloss.functional as AF

C = 10      # C < 64: log p_y = z_y - logsumexp(z) with the exact label entry (docs/losses.md)
P_Y = np.concatenate([np.logspace(-30, -1, 59), np.linspace(0.15, 0.95, 17),
                      1.0 - np.logspace(-1, -1.5, 3), [1.0]])
P_Y_NEAR_ONE = 1.0 - np.logspace(-2, -7.5, 23)


def _logits(p_y: np.ndarray, classes: int = C) -> torch.Tensor:
    """float32 logits (N, classes), label 0, with p_0 = p_y (the other classes equal)."""
    z = np.zeros((p_y.size, classes))
    with np.errstate(divide="ignore"):
        z[:, 1:] = np.where(p_y < 1, np.log((1.0 / p_y - 1.0) / (classes - 1)), -200.0)[:, None]
    return torch.tensor(z, dtype=torch.float32)


def _ell(name, a, q, u):
    """(l(u), l'(u)) in float64 NumPy."""
    if name == "agce":
        return ((a + 1) ** q - (a + u) ** q) / q, -((a + u) ** (q - 1))
    if name == "aul":
        return ((a - u) ** q - (a - 1) ** q) / q, -((a - u) ** (q - 1))
    return np.exp(-u / a), -np.exp(-u / a) / a


def _check(got: np.ndarray, want: np.ndarray, what: str) -> None:
    # below float32's smallest normal number (1.2e-38) a value has no relative precision: such
    # entries are held to the absolute tolerance, like exact zeros
    zero = (got == 0) | (np.abs(want) < np.finfo(np.float32).tiny)
    assert np.all(np.abs(want[zero]) <= 1e-6), (what, want[zero])
    rel = np.abs(got[~zero] - want[~zero]) / np.abs(want[~zero])
    assert np.all(rel <= 1e-5), (what, float(rel.max()), int(np.argmax(rel)))


CASES = [("agce", a, q) for a in (1e-5, 0.6, 4.0, 6.0) for q in (0.1, 0.5, 1.5, 3.0)]
CASES += [("aul", a, q) for a in (1.01, 1.5, 4.0, 6.0) for q in (0.1, 0.5, 1.5, 3.0)]
CASES += [("ael", a, None) for a in (1e-5, 0.6, 4.0, 6.0)]


@pytest.mark.parametrize("near_one,classes", [(False, C), (True, C), (False, 100)])
@pytest.mark.parametrize("name,a,q", CASES)
def test_alf_value_and_gradient_float32_match_float64(name, a, q, near_one, classes):
    p_y = P_Y_NEAR_ONE if near_one else P_Y
    if classes > C:   # C >= 64 goes through log_softmax (whose rounding over C terms shows first
        p_y = p_y[p_y <= 0.5]   # near 1): there, the small-p_y range where gradients were lost
    z = _logits(p_y, classes).requires_grad_()
    y = torch.zeros(p_y.size, dtype=torch.int64)
    kw = {"a": a} if q is None else {"a": a, "q": q}
    loss = getattr(AF, name)(z, y, reduction="none", **kw)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    zd = z.detach()
    p = torch.softmax(zd.double(), 1).numpy()                   # exact for the float32 logits
    if near_one:   # the float32 log p_y the loss computes (z_y - logsumexp z), then float64
        logp_y32 = (zd[:, 0] - torch.logsumexp(zd, 1)).double().numpy()
        p[:, 0] = np.exp(logp_y32)
    u = p[:, 0]
    val, d = _ell(name, a, q, u)
    if name != "ael":
        val = np.where(u == 1.0, 0.0, val)     # l(1) = 0 exactly
    onehot = np.eye(classes)[0][None, :]
    want_grad = (d * u)[:, None] * (onehot - p)
    _check(loss.detach().double().numpy(), val, f"{name} value")
    _check(grad.double().numpy(), want_grad, f"{name} gradient")
    if name != "ael" and not near_one and classes == C:
        at_one = loss[torch.from_numpy(p_y == 1.0)]
        assert at_one.numel() == 1 and torch.all(at_one == 0) and not torch.any(torch.signbit(at_one))


@pytest.mark.parametrize("scale", [4.0, 20.0])
@pytest.mark.parametrize("classes", [10, 100])
def test_nnce_float32_within_2e6_of_float64(scale, classes):
    g = torch.Generator().manual_seed(classes + int(scale))
    z = torch.randn(2048, classes, generator=g) * scale
    y = torch.randint(0, classes, (2048,), generator=g)
    got = AF.nnce(z, y, reduction="none").double()
    # float64 term-by-term formula: 1 - (A + log p~_y) / sum_k (A + log p~_k)
    lmin = math.log(1e-7)
    v = torch.log_softmax(z.double(), 1).clamp_min(lmin) - lmin
    want = 1.0 - v.gather(1, y[:, None]).squeeze(1) / v.sum(1)
    assert float((got - want).abs().max()) <= 2e-6
