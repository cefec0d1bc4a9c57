"""The losses of docs/training-mechanics.md (SR, GJS, ALDR-KL, NLNL) against worked values on two vectors.

A: z = (2, 1, 0), y = 0.  B: z = (0.5, -1, 3, 0), y = 2.  Values and gradients w.r.t. the logits in
float64, to 1e-6, computed with the reference semantics (detached focal factor, clamps); float16,
bfloat16 and extreme logits; the errors of a call that lacks what the loss needs.
"""
from __future__ import annotations

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import asymloss
from loss_cases import extreme_logits
import asymloss.functional as AF
from asymloss.losses._mechanics import ALDRKL, GJS, NLNL, nlnl_class_weight
from asymloss.train.mechanics import complementary_labels, needs

A = ([2.0, 1.0, 0.0], 0)
B = ([0.5, -1.0, 3.0, 0.0], 2)
SR_C10 = {"tau": 0.5, "p": 0.1, "lam": 1.2}

# (name, hyperparameters, vector, value, gradient)
SR_WORKED = [
    ("ce_sr", SR_C10, A, 3.608873, (-0.181720, 0.363440, 0.150703)),
    ("ce_sr", SR_C10, B, 4.374182, (0.160033, -0.010203, -0.030073, 0.099669)),
    ("fl_sr", {**SR_C10, "gamma": 0.5}, A, 3.428988, (-0.119163, 0.238326, 0.113189)),
    ("fl_sr", {**SR_C10, "gamma": 0.5}, B, 4.210284, (0.107382, -0.001363, -0.018351, 0.070157)),
    ("gce_sr", {**SR_C10, "q": 0.01}, A, 3.607840, (-0.181002, 0.362004, 0.150273)),
    ("gce_sr", {**SR_C10, "q": 0.01}, B, 4.373504, (0.159598, -0.010130, -0.029976, 0.099425)),
    ("gce_sr", {**SR_C10, "q": 0.7}, A, 3.543563, (-0.138581, 0.277161, 0.124834)),
    ("gce_sr", {**SR_C10, "q": 0.7}, B, 4.330509, (0.133129, -0.005686, -0.024083, 0.084589)),
]


def _check(out, z, value, grad):
    assert abs(out.item() - value) <= 1e-6 * max(1.0, abs(value)), (out.item(), value)
    out.backward()
    torch.testing.assert_close(z.grad.reshape(-1), torch.tensor(grad, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", SR_WORKED, ids=[f"{c[0]}-{c[1].get('q', '')}-{len(c[2][0])}" for c in SR_WORKED])
def test_sr_worked_values_and_gradients(case):
    name, hp, (z, y), value, grad = case
    for build in (lambda: asymloss.create_loss(name, **hp), lambda: lambda t, yy: getattr(AF, name)(t, yy, **hp)):
        zt = torch.tensor([z], dtype=torch.float64, requires_grad=True)
        _check(build()(zt, torch.tensor([y])), zt, value, grad)


def test_sr_mnist_skips_the_normalisation():
    z, y = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64), torch.tensor([0])
    got = asymloss.create_loss("ce_sr", preset="sr:mnist")(z, y)
    zn = z / 0.1
    want = torch.nn.functional.cross_entropy(zn, y) + 4.0 * (zn.softmax(1).clamp(1e-7, 1) ** 0.1).sum()
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("pi,z,y,value,grads", [
    (0.3, [[2.0, 1.0, 0.0], [1.0, 2.0, 0.0]], 0, 1.013751,
     [(0.052926, -0.095907, 0.042981), (-0.419346, 0.411589, 0.007758)]),
    (0.3, [[0.5, -1.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]], 2, 1.165386,
     [(-0.055591, -0.041661, 0.155762, -0.058510), (0.134552, 0.200920, -0.502068, 0.166596)]),
])
def test_gjs_worked_values_and_gradients_per_view(pi, z, y, value, grads):
    for call in ("module", "list", "functional"):
        views = torch.tensor(z, dtype=torch.float64).unsqueeze(1).requires_grad_(True)   # (M=2, N=1, C)
        target = torch.tensor([y])
        if call == "module":
            out = GJS(pi1=pi)(views, target)
        elif call == "list":
            out = GJS(pi1=pi)(list(views.unbind(0)), target)
        else:
            out = AF.gjs(views, target, pi1=pi)
        assert abs(out.item() - value) <= 1e-6, (call, out.item())
        out.backward()
        for i, g in enumerate(grads):
            torch.testing.assert_close(views.grad[i, 0], torch.tensor(g, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("pi1,value", [(0.5, 0.383635), (0.7, 0.373132), (0.1, 0.402845)])
def test_gjs_with_two_equal_views_is_js(pi1, value):
    # one view with weight 1 - pi1 is JS; two equal views with (1 - pi1) / 2 each give the same m and value
    z = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    got = GJS(pi1=pi1)(torch.stack([z, z]), torch.tensor([0]))
    assert abs(got.item() - value) <= 1e-6
    torch.testing.assert_close(got, asymloss.JS(pi1=pi1)(z, torch.tensor([0])))


def test_gjs_unscaled():
    z = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    assert abs(GJS(pi1=0.5, scaled=False)(torch.stack([z, z]), torch.tensor([0])).item() - 0.132958) <= 1e-6


@pytest.mark.parametrize("z,y,value,lam_i,grad", [
    (A[0], A[1], -0.640523, 0.878847, (-0.188429, 0.376858, 0.078077)),
    (B[0], B[1], -1.046836, 0.725461, (0.089943, -0.039291, -0.028088, 0.023681)),
])
def test_aldr_kl_first_call_worked_values(z, y, value, lam_i, grad):
    loss = ALDRKL(margin=0.1, lam=1.0, alpha=2.0)
    loss.bind_training_set(torch.zeros(5, dtype=torch.long))
    zt = torch.tensor([z], dtype=torch.float64, requires_grad=True)
    _check(loss(zt, torch.tensor([y]), index=torch.tensor([3])), zt, value, grad)
    assert abs(loss.lambdas[3].item() - lam_i) <= 1e-6
    assert torch.equal(loss.lambdas[[0, 1, 2, 4]], torch.ones(4))           # only the batch's samples change
    # the functional form updates a state tensor in place
    state = torch.ones(5)
    zt = torch.tensor([z], dtype=torch.float64, requires_grad=True)
    _check(AF.aldr_kl(zt, torch.tensor([y]), index=torch.tensor([1]), state=state, lam=1.0), zt, value, grad)
    assert abs(state[1].item() - lam_i) <= 1e-6


def test_aldr_kl_state_is_a_buffer_saved_and_loaded():
    loss = ALDRKL(lam=10.0)
    loss.bind_training_set(torch.zeros(7, dtype=torch.long))
    z, y = torch.randn(4, 5), torch.randint(0, 5, (4,))
    loss(z, y, index=torch.tensor([0, 2, 4, 6]))
    state = loss.state_dict()
    assert set(state) == {"lambdas"} and state["lambdas"].shape == (7,)
    fresh = ALDRKL(lam=10.0)
    fresh.load_state_dict(state)                 # sized by the checkpoint, no bind needed
    assert torch.equal(fresh.lambdas, loss.lambdas)
    clone = pickle.loads(pickle.dumps(loss))
    assert torch.equal(clone.lambdas, loss.lambdas)


def test_nlnl_worked_values_and_the_reference_nan_is_gone():
    for (z, y), ybar, value, grad in ((A, 1, 0.280678, (-0.215556, 0.244728, -0.029172)),
                                      (B, 0, 0.074041, (0.071367, -0.001224, -0.066816, -0.003327))):
        for call in (lambda t, yy, c: NLNL()(t, yy, complementary=c),
                     lambda t, yy, c: AF.nlnl(t, yy, complementary=c)):
            zt = torch.tensor([z], dtype=torch.float64, requires_grad=True)
            out = call(zt, torch.tensor([y]), torch.tensor([ybar]))
            assert torch.isfinite(out)
            _check(out, zt, value, grad)


def test_nlnl_class_weights_from_training_labels():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    w = nlnl_class_weight(labels, 4)
    torch.testing.assert_close(w, torch.tensor([1.0, 2.0, 4.0, 1.0]))    # class 3 is empty: 1
    loss = NLNL(reduction="none")
    loss.bind_training_set(labels, 4)
    z, y, c = torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3])
    plain = NLNL(reduction="none")(z, y, complementary=c)
    torch.testing.assert_close(loss(z, y, complementary=c), plain * torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    # mean over N (not over the weights' sum), as the reference
    torch.testing.assert_close(NLNL()(z, y, complementary=c), plain.mean())


def test_complementary_labels_are_uniform_over_the_other_classes():
    g = torch.Generator().manual_seed(0)
    y = torch.full((60000,), 3)
    c = complementary_labels(y, 10, g)
    assert not (c == y).any()
    counts = torch.bincount(c, minlength=10).double()
    assert counts[3] == 0 and ((counts[counts > 0] / 60000 * 9 - 1).abs() < 0.05).all()
    again = complementary_labels(y, 10, torch.Generator().manual_seed(0))
    assert torch.equal(c, again)


# -- precision and extreme logits ------------------------------------------------------------------

def _call(name, z, y, **kw):
    """The loss ``name`` on logits z (N, K) with what it needs (two views: z and z flipped)."""
    if name == "gjs":
        return asymloss.create_loss(name, **kw)(torch.stack([z, z.flip(1)]), y)
    if name == "aldr_kl":
        loss = asymloss.create_loss(name, **kw)
        loss.bind_training_set(torch.zeros(len(y), dtype=torch.long))
        return loss(z, y, index=torch.arange(len(y)))
    if name == "nlnl":
        return asymloss.create_loss(name, **kw)(z, y, complementary=(y + 1) % z.shape[-1])
    return asymloss.create_loss(name, **kw)(z, y)


NAMES = ["ce_sr", "fl_sr", "gce_sr", "gjs", "aldr_kl", "nlnl"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(name, dtype):
    g = torch.Generator().manual_seed(7)
    z = (torch.randn(16, 7, generator=g) * 2).to(dtype).requires_grad_(True)
    y = torch.randint(0, 7, (16,), generator=g)
    out = _call(name, z, y)
    assert out.dtype == dtype
    want = _call(name, z.detach().double(), y)       # same (rounded) logits, float64 maths
    tol = 1e-2 if dtype == torch.float16 else 2e-2
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol * 1e-1)
    out.backward()
    assert z.grad.dtype == dtype and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype,scale", [(torch.float32, 1e4), (torch.float64, 1e4), (torch.float16, 60.0),
                                         (torch.bfloat16, 60.0)])
def test_extreme_logits_finite_values_and_gradients(name, dtype, scale):
    z, y = extreme_logits(dtype, scale)
    for red in ("mean", "none"):
        z.grad = None
        out = _call(name, z, y, reduction=red)
        assert torch.isfinite(out).all(), (name, red, out)
        out.sum().backward()
        assert torch.isfinite(z.grad).all(), (name, red, z.grad)


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_logits_give_finite_values(name):
    # (SR's and ALDR-KL's normalisation are not differentiable at z = 0; their gradient there is the
    # reference's, 1 / (tau 1e-12) resp. 1 / the smallest normal number: large but finite in float32)
    z, y = torch.zeros(3, 4, requires_grad=True), torch.tensor([0, 1, 3])
    out = _call(name, z, y)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", ["ce_sr", "gce_sr", "gjs", "nlnl"])
def test_gradcheck(name):
    # (ALDR-KL's gradient treats the new lambda_i as a constant, as the reference, so finite
    # differences, which move lambda_i too, do not match it; its gradient is checked on the worked vectors)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (4,), generator=g)
    assert torch.autograd.gradcheck(lambda t: _call(name, t, y), (z,))


def test_reductions_weight_and_ignore_index():
    g = torch.Generator().manual_seed(5)
    z, y = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (6,), generator=g)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.7], dtype=torch.float64)
    for name in NAMES:
        per = _call(name, z, y, reduction="none")
        assert per.shape == (6,)
        torch.testing.assert_close(_call(name, z, y, reduction="sum"), per.sum())
        weighted = _call(name, z, y, reduction="mean", weight=w)
        torch.testing.assert_close(weighted, (per * w[y]).sum() / w[y].sum())
        y_ign = y.clone()
        y_ign[2] = -100
        per_ign = _call(name, z, torch.where(y_ign < 0, 0, y_ign), reduction="none")
        got = _call(name, z, y_ign, reduction="mean") if name not in ("nlnl",) else \
            NLNL()(z, y_ign, complementary=(torch.where(y_ign < 0, 0, y_ign) + 1) % 5)
        keep = torch.arange(6) != 2
        torch.testing.assert_close(got, per_ign[keep].mean())


# -- what a call lacks, bad hyperparameters ------------------------------------------------------------

def test_needs_are_declared():
    assert needs(asymloss.create_loss("gjs")) == ["views"]
    assert needs(asymloss.create_loss("aldr_kl")) == ["index"]
    assert needs(asymloss.create_loss("nlnl")) == ["complementary"]
    assert needs(asymloss.create_loss("ce_sr")) == needs(asymloss.create_loss("ce")) == []
    assert GJS(views=3).num_views == 3


def test_a_bare_call_says_what_is_missing():
    z, y = torch.randn(4, 5), torch.randint(0, 5, (4,))
    with pytest.raises(ValueError, match=r"gjs needs 2 augmented views .* shape \(M=2, N, C\).*'js'"):
        asymloss.create_loss("gjs")(z, y)
    with pytest.raises(ValueError, match=r"gjs needs 2 augmented views"):
        AF.gjs(z, y)
    with pytest.raises(ValueError, match=r"aldr_kl keeps a per-sample lambda_i .* index="):
        asymloss.create_loss("aldr_kl")(z, y)
    with pytest.raises(ValueError, match=r"no per-sample state yet: call bind_training_set"):
        asymloss.create_loss("aldr_kl")(z, y, index=torch.arange(4))
    with pytest.raises(ValueError, match=r"nlnl learns from complementary labels: call it with complementary="):
        asymloss.create_loss("nlnl")(z, y)
    with pytest.raises(ValueError, match=r"nlnl learns from complementary labels"):
        AF.nlnl(z, y)
    loss = ALDRKL()
    loss.bind_training_set(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"index holds a position outside \[0, 2\]"):
        loss(z, y, index=torch.tensor([0, 1, 2, 3]))


@pytest.mark.parametrize("name", ["gjs", "aldr_kl", "nlnl"])
def test_cannot_be_combined_or_wrapped(name):
    z, y = torch.randn(4, 5), torch.randint(0, 5, (4,))
    for spelling in (f"{name}+mae", f"lc({name})"):
        with pytest.raises(ValueError, match=f"loss '{name}' needs .* cannot be combined with another loss or wrapped"):
            asymloss.create_loss(spelling)(z, y)


@pytest.mark.parametrize("build,message", [
    (lambda: asymloss.create_loss("ce_sr", tau=0), r"tau must be > 0; got 0"),
    (lambda: asymloss.create_loss("fl_sr", p=1.5), r"p must be > 0 and <= 1; got 1.5"),
    (lambda: asymloss.create_loss("gce_sr", lam=-1), r"lam must be >= 0; got -1"),
    (lambda: asymloss.create_loss("gce_sr", q=0), r"q must be > 0 and <= 1; got 0"),
    (lambda: GJS(pi1=1.0), r"pi1 must be > 0 and < 1; got 1.0"),
    (lambda: GJS(views=1), r"views must be >= 2; got 1"),
    (lambda: ALDRKL(alpha=1.0), r"alpha must be > 1; got 1.0"),
    (lambda: ALDRKL(lam=0), r"lam must be > 0; got 0"),
    (lambda: ALDRKL(margin=-1), r"margin must be >= 0; got -1"),
])
def test_invalid_hyperparameters(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_type_errors():
    with pytest.raises(TypeError, match="normalize must be True or False"):
        asymloss.create_loss("ce_sr", normalize="no")
    with pytest.raises(TypeError, match="views must be an integer"):
        GJS(views=2.5)


def test_presets_and_registry():
    assert asymloss.create_loss("ce_sr", preset="sr:mnist").hparams() == {
        "tau": 0.1, "p": 0.1, "lam": 4.0, "normalize": False}
    assert asymloss.create_loss("gce_sr", preset="sr:cifar100").hparams()["q"] == 0.001
    assert asymloss.create_loss("gce_sr", preset="sr:cifar100-sym").lam == 4.0
    assert asymloss.create_loss("gjs", preset="gjs:webvision").hparams() == {"pi1": 0.1, "views": 2, "scaled": False}
    assert asymloss.create_loss("aldr_kl", preset="aldr:cifar100").softplus is True
    assert asymloss.losses.preset_engine_settings("sr:cifar10") == {"loss_schedule": {"lam": {"factor": 1.03,
                                                                                               "every": 1}}}
    for name in NAMES:
        assert name in asymloss.list_losses()
        assert asymloss.losses.registry.resolve_name(type(asymloss.create_loss(name)).__name__) == name


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), classes=st.integers(2, 7), batch=st.integers(1, 4),
       lam=st.sampled_from([1.0, 10.0]), margin=st.sampled_from([0.0, 0.1, 1.0]), softplus=st.booleans(),
       stored=st.floats(0.2, 12.0))
def test_aldr_kl_gradient_is_the_finite_difference_of_the_loss_with_its_new_lambda_fixed(
        seed, classes, batch, lam, margin, softplus, stored):
    """ALDR-KL stores lambda_i and reads it back as a constant (the reference's semantics): its
    gradient is that of lambda_i (logsumexp(d(z) / lambda_i) - log K) with the call's new lambda_i
    held fixed, checked by central differences in float64 (an independent computation)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, classes, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, classes, (batch,), generator=g)
    state = torch.full((batch + 2,), stored, dtype=torch.float64)
    index = torch.arange(1, batch + 1)
    zt = z.clone().requires_grad_()
    out = AF.aldr_kl(zt, y, index=index, state=state, margin=margin, lam=lam, softplus=softplus, reduction="sum")
    out.backward()
    new = state[index]                                   # the lambda_i this call stored

    def fixed(x):                                        # the loss with lambda_i = new, a constant
        s = torch.nn.functional.softplus(x) if softplus else x
        s = s / (s.abs().sum(1, keepdim=True) / classes)
        d = s - s.gather(1, y[:, None]) + margin
        d = d.scatter(1, y[:, None], 0.0)
        return (new * (torch.logsumexp(d / new[:, None], 1) - math.log(classes))).sum()

    h, fd = 1e-6, torch.zeros_like(z)
    for i in range(batch):
        for j in range(classes):
            e = torch.zeros_like(z)
            e[i, j] = h
            fd[i, j] = (fixed(z + e) - fixed(z - e)) / (2 * h)
    torch.testing.assert_close(zt.grad, fd, rtol=1e-5, atol=1e-7)
