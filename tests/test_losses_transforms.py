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
# (losses that take more than logits and labels: MECHANICS_CASES below)
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
@pytest.mark.filterwarnings("error:.*batching rule:UserWarning")   # no slow per-sample vmap fallback
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


def _detached(name, preset):
    """Whether the loss uses the reference codes' detached focal factors (``detach=True``)."""
    return bool(_loss(name, preset).hparams().get("detach", False))


@pytest.mark.parametrize("name,preset", CASES, ids=IDS)
def test_double_backward_gradgradcheck(name, preset):
    # With detached focal factors the first-order gradient is a pseudo-gradient G(z); double
    # backward differentiates G itself (the detached factors' dependence on z included), so
    # gradgradcheck holds for those losses too.
    loss = _loss(name, preset, reduction="sum")
    z, y = _data()
    z.requires_grad_()
    # gradgradcheck draws its output cotangent from the global RNG: fix it (not depending on test
    # order), so that a failure reproduces
    torch.manual_seed(0)
    assert torch.autograd.gradgradcheck(lambda t: loss(t, y), (z,))


#: every registered loss/preset with detached focal factors, and a few explicit settings
DETACHED = sorted(((n, p, {}) for n, p in CASES if _detached(n, p)), key=lambda c: (c[0], c[1] or ""))
DETACHED += [("focal", None, dict(gamma=2.0, detach=True)), ("nfl", None, dict(gamma=2.0, detach=True)),
             ("nnfl", None, dict(gamma=1.5)), ("fl_eps", None, dict(m=10.0, gamma=2.0)),
             ("anl_fl", None, dict(gamma=2.0, min_prob=1e-3))]
DETACHED_IDS = [f"{n}@{p}" if p else n + "".join(f",{k}={v}" for k, v in kw.items()) for n, p, kw in DETACHED]


@pytest.mark.parametrize("name,preset,overrides", DETACHED, ids=DETACHED_IDS)
def test_double_backward_of_detached_focal_is_the_jacobian_of_its_gradient(name, preset, overrides):
    """The Hessian autograd gives for a detached-factor loss is the finite-difference Jacobian of the
    first-order pseudo-gradient G(z) (float64, central differences), not the true loss's Hessian."""
    hp = {**_loss(name, preset).hparams(), **overrides}
    loss = asymloss.create_loss(name, reduction="sum", **hp)
    z, y = _data()

    def G(t):
        t = t.detach().requires_grad_()
        return torch.autograd.grad(loss(t, y), t)[0]

    t = z.clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(t, y), t, create_graph=True)
    hess = torch.stack([torch.autograd.grad(g.reshape(-1)[i], t, retain_graph=True)[0].reshape(-1)
                        for i in range(g.numel())])
    h = 1e-6
    fd = torch.empty_like(hess)
    for j in range(z.numel()):
        e = torch.zeros(z.numel(), dtype=z.dtype)
        e[j] = h
        e = e.reshape(z.shape)
        fd[:, j] = ((G(z + e) - G(z - e)) / (2 * h)).reshape(-1)
    torch.testing.assert_close(hess, fd, rtol=1e-6, atol=1e-7)
    if overrides:
        # not vacuous: the pseudo-gradient differs from the gradient of the undetached loss (at the
        # presets' settings they can be close, e.g. FL_eps with m = 1e5)
        true = asymloss.create_loss(name, reduction="sum", **{**hp, "detach": False})
        assert (G(z) - torch.func.grad(lambda u: true(u, y))(z)).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------------
# losses that take more than logits and labels (views, training-set positions, complementary
# labels): the same three properties, with the inputs their declared mechanics call for
# ------------------------------------------------------------------------------------------------

MECHANICS_CASES = [(name, None) for name in asymloss.list_losses() if needs(asymloss.create_loss(name))]
MECHANICS_CASES += [(name, preset) for preset in asymloss.list_presets()
                    for name in sorted(asymloss.losses.registry.PRESETS[preset])
                    if needs(asymloss.create_loss(name))]
MECHANICS_IDS = [f"{n}@{p}" if p else n for n, p in MECHANICS_CASES]


def _mechanics_call(name, preset, dtype=torch.float64):
    """``(f, z)``: the loss as a function of its logits ``z`` alone (state reset at every call)."""
    loss = _loss(name, preset)
    z, y = _data(dtype)
    kw = {}
    if "views" in needs(loss):
        g = torch.Generator().manual_seed(1)
        z = torch.stack([z, (torch.randn(N, C, generator=g) * 2).to(dtype)] +
                        [(torch.randn(N, C, generator=g)).to(dtype) for _ in range(loss.num_views - 2)])
    if "complementary" in needs(loss):
        kw["complementary"] = (y + 1 + torch.arange(N) % (C - 1)) % C
        loss.bind_training_set(torch.arange(4 * C) % C, C)
    if "index" in needs(loss):
        kw["index"] = torch.arange(N) * 2
        loss.bind_training_set(torch.arange(4 * C) % C, C)
    fresh = {k: v.clone() for k, v in loss.named_buffers() if v is not None and k != "weight"}

    def f(x):
        for k, v in fresh.items():
            setattr(loss, k, v.clone())       # per-sample state as it was before the call
        return loss(x, y, **kw)
    return f, z


@pytest.mark.parametrize("name,preset", MECHANICS_CASES, ids=MECHANICS_IDS)
def test_mechanics_losses_compile_func_and_double_backward(name, preset):
    torch._dynamo.reset()
    f, z = _mechanics_call(name, preset)
    a = z.clone().requires_grad_()
    want = f(a)
    (ga,) = torch.autograd.grad(want, a)
    got = torch.compile(f, fullgraph=True, backend="aot_eager")(z.clone().requires_grad_())
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(tf.grad(f)(z.clone()), ga, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradgradcheck(f, (z.clone().requires_grad_(),))
