"""The fused (hand-written backward) loss paths against the float64 references of test_losses.py:
clamp-active and clamp-inactive entries, N-d inputs, ignore_index and weights, gradcheck."""
from __future__ import annotations

import pytest
import torch

import asymloss
from test_losses import _data, per_sample

CLAMPED = ["rce", "nrce", "sce", "nce+rce", "nfl+rce"]


def _masked_reference_mean(name, z, y, keep, w, **kw):
    ref = torch.zeros(y.shape, dtype=torch.float64)
    ref[keep] = per_sample(name, z.movedim(1, -1)[keep].unsqueeze(-1), y[keep].unsqueeze(-1), **kw).squeeze(-1)
    wy = torch.where(keep, w[y.clamp(min=0)], torch.zeros(()))
    return (ref * wy).sum() / wy.sum()


@pytest.mark.parametrize("name", CLAMPED)
@pytest.mark.parametrize("eps", [1e-7, 0.05])  # 0.05: the clamp is active for many entries
def test_clamped_losses_nd_ignore_weight_value_and_gradient(name, eps):
    z, y = _data((3, 6, 4, 2), seed=21, scale=2.5)
    z[0, :, 0, 0] = torch.tensor([30.0, -5.0, 0.0, 2.0, -1.0, 1.0], dtype=torch.float64)  # p_k < 1e-7
    y[0, 0, 0] = 0
    y[1, 2, 1] = -100
    y[2, 0, 0] = -100
    keep = y != -100
    w = torch.tensor([0.3, 1.0, 2.0, 0.5, 1.5, 0.8], dtype=torch.float64)
    a = z.clone().requires_grad_(True)
    b = z.clone().requires_grad_(True)
    got = asymloss.create_loss(name, eps=eps, weight=w)(a, y)
    want = _masked_reference_mean(name, b, y, keep, w, eps=eps)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", CLAMPED)
@pytest.mark.parametrize("eps", [1e-7, 0.05])
def test_clamped_losses_gradcheck_nd_with_ignored_samples(name, eps):
    z, y = _data((2, 5, 3), seed=22, scale=2.0)
    y[1, 1] = -100
    z.requires_grad_(True)
    loss = asymloss.create_loss(name, eps=eps, reduction="sum")
    p = torch.softmax(z.detach(), 1)
    assert ((p - eps).abs() > 1e-4).all()  # finite differences stay on one side of the clamp
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (z,))


def test_clamped_off_target_is_exact_near_p_y_equal_one():
    # sum_{k != y} max(p_k, eps) is summed from positive terms: no cancellation against p_y
    z = torch.tensor([[14.0, 0.0, 0.0, 0.0]])                    # float32, off-target p_k ~ 8e-7
    y = torch.tensor([0])
    want = torch.softmax(z.double(), 1)[0, 1:].sum().item()
    got = asymloss.create_loss("rce", A=1.0)(z, y).item()       # every off-target p_k > 1e-7 here
    assert got == pytest.approx(want, rel=1e-5)
    z32 = torch.tensor([[40.0, 0.0, 0.0, 0.0]])                  # off-target p_k = e^-40 < 1e-7
    got = asymloss.create_loss("rce", A=1.0)(z32, y).item()
    assert got == pytest.approx(3e-7, rel=1e-5)


@pytest.mark.parametrize("name,kw", [("amse", {}), ("amse", {"a": 0.7}), ("jal_ce", {}),
                                     ("jal_ce", {"alpha": 0.0, "a": 2.0}), ("jal_ce", {"beta": 0.0})])
def test_square_mass_losses_nd_ignore_weight_value_gradient_and_gradcheck(name, kw):
    z, y = _data((3, 6, 4, 2), seed=24, scale=2.5)
    z[0, :, 0, 0] = torch.tensor([30.0, -5.0, 0.0, 2.0, -1.0, 1.0], dtype=torch.float64)
    y[1, 2, 1] = -100
    keep = y != -100
    w = torch.tensor([0.3, 1.0, 2.0, 0.5, 1.5, 0.8], dtype=torch.float64)
    a = z.clone().requires_grad_(True)
    b = z.clone().requires_grad_(True)
    got = asymloss.create_loss(name, weight=w, **kw)(a, y)
    want = _masked_reference_mean(name, b, y, keep, w, **kw)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    loss = asymloss.create_loss(name, reduction="sum", **kw)
    zc = z[:2, :, :2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss(t, y[:2, :2]), (zc,))


@pytest.mark.parametrize("name,kw", [("rce", {}), ("rce", {"eps": 0.05}), ("nrce", {"eps": 0.05}),
                                     ("sce", {}), ("nfl", {}), ("nfl", {"detach": True}),
                                     ("nfl+rce", {"eps": 0.05}), ("ngce", {"eps": 0.05}),
                                     ("anorm", {}), ("nnce", {"min_prob": 0.05}), ("nce", {}),
                                     ("amse", {}), ("jal_ce", {})])
def test_fused_backward_twice_with_retain_graph_gives_the_same_gradient(name, kw):
    # the first backward reuses the forward's temporaries as its buffer; a second one recomputes them
    z, y = _data((5, 6, 3), seed=25, scale=2.0)
    z.requires_grad_(True)
    out = asymloss.create_loss(name, **kw)(z, y)
    (g1,) = torch.autograd.grad(out, z, retain_graph=True)
    (g2,) = torch.autograd.grad(out, z)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    b = z.detach().clone().requires_grad_(True)
    per_sample(name, b, y, **kw).mean().backward()
    torch.testing.assert_close(g1, b.grad, rtol=1e-9, atol=1e-12)


def test_sce_fused_cross_entropy_term_matches_torch_even_when_p_y_underflows():
    # SCE's CE term comes from the fused clamp Function: log p_y = (z_y - max z) + log(max p)
    z = torch.tensor([[-120.0, 0.0, 3.0, -2.0], [50.0, 49.0, -80.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    y = torch.tensor([0, 1, 3])
    z.requires_grad_(True)
    got = asymloss.create_loss("sce", alpha=1.0, beta=0.0 + 1e-30, reduction="none")(z, y)
    ce = torch.nn.functional.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(got, ce, rtol=1e-6, atol=1e-6)
    assert torch.isfinite(got).all()
    got.sum().backward()
    zc = z.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(zc, y, reduction="sum").backward()
    torch.testing.assert_close(z.grad, zc.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["nce", "nce+agce", "nce+rce", "jal_ce", "anl_ce", "nfl", "sce", "nrce"])
@pytest.mark.parametrize("C", [5, 70])  # NCE is fused on the logits for C < 64, on log_softmax above
def test_nce_paths_both_class_counts_nd_ignore_value_and_gradient(name, C):
    z, y = _data((3, C, 2), seed=26, scale=2.0)
    y[1, 1] = -100
    keep = y != -100
    w = torch.linspace(0.5, 2.0, C, dtype=torch.float64)
    a = z.clone().requires_grad_(True)
    b = z.clone().requires_grad_(True)
    got = asymloss.create_loss(name, weight=w)(a, y)
    want = _masked_reference_mean(name, b, y, keep, w)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def test_active_passive_module_shares_log_softmax_with_a_log_p_passive():
    z, y = _data((6, 5), seed=27)
    combo = asymloss.ActivePassive(asymloss.NCE(), asymloss.NNCE(), alpha=2.0, beta=3.0, reduction="none")
    want = 2.0 * per_sample("nce", z, y) + 3.0 * per_sample("nnce", z, y)
    torch.testing.assert_close(combo(z, y), want, rtol=1e-10, atol=1e-12)
    zc = z.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: combo(t, y).sum(), (zc,))


@pytest.mark.parametrize("C", [5, 20])             # below and from LSE_MAX_CLASSES: both forwards
@pytest.mark.parametrize("name", ["ce", "gce", "agce", "ael"])
def test_log_p_y_paths_nd_value_gradient_and_second_backward(name, C):
    from asymloss.losses import _core
    assert (C < _core.LSE_MAX_CLASSES) == (C == 5)
    z, y = _data((4, C, 3, 2), seed=26, scale=3.0)
    z.requires_grad_(True)
    out = asymloss.create_loss(name)(z, y)
    (g1,) = torch.autograd.grad(out, z, retain_graph=True)
    (g2,) = torch.autograd.grad(out, z)                  # the kept temporaries were consumed
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    b = z.detach().clone().requires_grad_(True)
    want = per_sample(name, b, y).mean()
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-14)
    want.backward()
    torch.testing.assert_close(g1, b.grad, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("C", [5, 20])
def test_log_p_y_gradient_label_entry_is_expm1_of_the_forwards_log_p_y(C):
    # float32 near p_y = 1: the label's entry is -(1 - p_y) = expm1(log p_y) of the forward's own
    # log p_y (log_softmax's backward would form 1 - exp(log p_y) by subtraction), on both paths
    z = torch.zeros(3, C)
    z[:, 0] = torch.tensor([9.0, 12.0, 14.0])
    y = torch.zeros(3, dtype=torch.long)
    z.requires_grad_(True)
    per = asymloss.create_loss("ce", reduction="none")(z, y)
    (grad,) = torch.autograd.grad(per.sum(), z)
    torch.testing.assert_close(grad[:, 0], torch.expm1(-per.detach()), rtol=1e-6, atol=0)
    e = torch.exp(torch.tensor(-9.0, dtype=torch.float64))  # far from p_y = 1: the float64 value
    assert grad[0, 0].item() == pytest.approx((-(C - 1) * e / (1 + (C - 1) * e)).item(), rel=1e-2)


@pytest.mark.parametrize("name", ["ce", "nce+agce", "sce", "amse", "nfl+rce"])
def test_eager_calls_skip_torchs_per_call_signature_binding(name, monkeypatch):
    """The fused Functions' ``apply`` passes every argument positionally to PyTorch's C++ apply in
    eager mode, without ``torch.autograd.Function.apply``'s ``inspect.signature`` binding (about
    30 µs a call); values and gradients are those of PyTorch's own ``apply``."""
    import torch.autograd.function as taf

    z, y = _data((64, 19), seed=3, scale=2.0)
    loss = asymloss.create_loss(name)
    want = z.clone().requires_grad_()
    out_want = loss(want, y)
    out_want.backward()

    def bind_forbidden(*_, **__):
        raise AssertionError("inspect.signature called in an eager loss call")

    monkeypatch.setattr(taf.inspect, "signature", bind_forbidden)
    got = z.clone().requires_grad_()
    out = loss(got, y)
    out.backward()
    assert torch.equal(out, out_want) and torch.equal(got.grad, want.grad)
