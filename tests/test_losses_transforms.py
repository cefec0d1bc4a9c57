"""Every registered loss, combination and preset under PyTorch's compiler and transforms.

Driven by the registry, so a loss added later is covered automatically:
- ``torch.compile(fullgraph=True)`` (no graph break inside the loss) gives the eager value and
  gradient (backend ``aot_eager``: Dynamo's capture and AOTAutograd's forward/backward graphs,
  without C++ code generation; a few losses also go through inductor);
- ``torch.func.grad``, ``vmap`` and ``jacrev`` give what autograd gives;
- double backward: ``gradgradcheck`` in float64.
"""
from __future__ import annotations

import pytest
import torch
from torch import func as tf

import asymloss
from asymloss.train.mechanics import needs

N, C = 6, 5

# every registered loss with its defaults, every preset's losses, and on-the-fly combinations
# (losses that take more than logits and labels: tests/test_losses_mechanics.py)
CASES = [(name, None) for name in asymloss.list_losses() if not needs(asymloss.create_loss(name))]
CASES += [(name, preset) for preset in asymloss.list_presets()
          for name in sorted(asymloss.losses.registry.PRESETS[preset]) if not needs(asymloss.create_loss(name))]
CASES += [("gce+mae", None), ("nfl+agce", None), ("ce+rce", None)]
IDS = [f"{n}@{p}" if p else n for n, p in CASES]


def _loss(name, preset, reduction="mean"):
    return asymloss.create_loss(name, preset=preset, reduction=reduction)


def _data(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(N, C, generator=g) * 2).to(dtype)
    y = torch.randint(0, C, (N,), generator=g)
    y[0] = int(z[0].argmax())          # one sample whose label is the top class (CE_eps's branch)
    return z, y


@pytest.mark.parametrize("name,preset", CASES, ids=IDS)
def test_compile_fullgraph_matches_eager(name, preset):
    torch._dynamo.reset()
    loss = _loss(name, preset)
    z, y = _data(torch.float32)
    a = z.clone().requires_grad_()
    want = loss(a, y)
    want.backward()
    b = z.clone().requires_grad_()
    got = torch.compile(loss, fullgraph=True, backend="aot_eager")(b, y)   # forward and backward graphs
    got.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["agce", "nce+agce", "nce+rce", "sce", "nfl", "anl_ce", "jal_ce"])
def test_compile_inductor_matches_eager(name):
    torch._dynamo.reset()
    loss = _loss(name, "paper:cifar10" if name in ("agce", "nce+agce", "nce+rce", "sce", "nfl") else None)
    z, y = _data(torch.float32, seed=3)
    a = z.clone().requires_grad_()
    want = loss(a, y)
    want.backward()
    b = z.clone().requires_grad_()
    got = torch.compile(loss, fullgraph=True)(b, y)
    got.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name,preset", CASES, ids=IDS)
def test_torch_func_grad_vmap_jacrev_match_autograd(name, preset):
    loss = _loss(name, preset)
    per_sample = _loss(name, preset, reduction="none")
    z, y = _data()
    a = z.clone().requires_grad_()
    want = loss(a, y)
    (want_grad,) = torch.autograd.grad(want, a)
    torch.testing.assert_close(tf.grad(loss)(z, y), want_grad, rtol=1e-10, atol=1e-12)
    # vmap over a stack of logit batches == a loop
    stack = torch.stack([z, z.flip(0), 0.5 * z])
    got = tf.vmap(loss, in_dims=(0, None))(stack, y)
    torch.testing.assert_close(got, torch.stack([loss(t, y) for t in stack]), rtol=1e-10, atol=1e-12)
    # vmap of grad (per-batch gradients), as ensembles and packed runs use it
    got = tf.vmap(tf.grad(loss), in_dims=(0, None))(stack, y)
    want = torch.stack([_grad(loss, t, y) for t in stack])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # jacrev of the per-sample losses: row i is the gradient of sample i's loss
    jac = tf.jacrev(per_sample)(z, y)
    rows = torch.stack([_grad(lambda t, yy, i=i: per_sample(t, yy)[i], z, y) for i in range(N)])
    torch.testing.assert_close(jac, rows, rtol=1e-10, atol=1e-12)


def _grad(fn, z, y):
    t = z.clone().requires_grad_()
    return torch.autograd.grad(fn(t, y), t)[0]


#: a detached focal factor whose value enters the gradient only through the factor itself: exact
EXACT_WHEN_DETACHED = {"focal", "fl_eps", "fl_eps+mae", "fl_sr"}  # the factor only multiplies log p_y


def _detached(name, preset):
    """Whether the loss uses the reference codes' detached focal factors (``detach=True``)."""
    return bool(_loss(name, preset).hparams().get("detach", False))


@pytest.mark.parametrize("name,preset", CASES, ids=IDS)
def test_double_backward_gradgradcheck(name, preset):
    loss = _loss(name, preset, reduction="sum")
    z, y = _data()
    z.requires_grad_()
    # gradgradcheck draws its output cotangent from the global RNG; a small one can hide the
    # detached factors' missing term below the tolerance, so fix it (not depending on test order)
    torch.manual_seed(0)
    if _detached(name, preset) and name not in EXACT_WHEN_DETACHED:
        # A detached factor makes the first-order gradient a pseudo-gradient G(z). Double backward
        # differentiates the gradient actually used through every factor (the detached ones too),
        # but where the detached *value* also appears in G (NFL's denominator), autograd's graph
        # holds one node with the pseudo-derivative: the second derivative misses that term.
        # Known limitation, checked so that it cannot pass silently (docs/losses.md).
        assert not torch.autograd.gradgradcheck(lambda t: loss(t, y), (z,), raise_exception=False)
        return
    assert torch.autograd.gradgradcheck(lambda t: loss(t, y), (z,))
