"""Independent float64 reference implementations of every loss, straight from docs/losses.md.

Written with softmax + one-hot (the slow obvious way) and the reference code's clamps; nothing
here calls asymloss.
"""
from __future__ import annotations

import math

import torch

LN1E4 = math.log(1e4)


def _flat(z, y):
    """(N, C, d..) logits and (N, d..) labels -> (M, C) float64 probs, (M, C) one-hot."""
    C = z.shape[1]
    z2 = z.double().movedim(1, -1).reshape(-1, C)
    y2 = y.reshape(-1).long()
    p = torch.softmax(z2, dim=1)
    onehot = torch.zeros_like(p)
    onehot[torch.arange(len(y2)), y2.clamp(min=0)] = 1.0
    return z2, p, onehot


def _focal_terms(p, gamma, detach):
    f = (1 - p)
    if detach:
        f = f.detach()
    return -(f ** gamma) * torch.log(p)


def per_sample(name, z, y, **hp):
    """Per-sample loss in float64 with shape y.shape (labels must be valid)."""
    z2, p, oh = _flat(z, y)
    K = p.shape[1]
    py = (oh * p).sum(1)

    def rce_(A=LN1E4, eps=1e-7):
        pc = torch.clamp(p, min=eps, max=1.0) if eps > 0 else p
        return -(A / LN1E4) * (pc * torch.log(torch.clamp(oh, min=1e-4, max=1.0))).sum(1)

    def nce_():
        lp = torch.log_softmax(z2, 1)
        return (oh * lp).sum(1) / lp.sum(1)

    def nfl_(gamma=0.5, detach=False):
        fl = _focal_terms(p, gamma, detach)
        return (oh * fl).sum(1) / fl.sum(1)

    def mae_(scale=2.0):
        return scale / 2 * (oh - p).abs().sum(1)

    def agce_(a=0.6, q=0.6):
        return ((a + 1) ** q - (a + py) ** q) / q

    def aul_(a=5.5, q=3.0):
        return ((a - py) ** q - (a - 1) ** q) / q

    def ael_(a=2.5):
        return torch.exp(-py / a)

    def nnce_(min_prob=1e-7):
        A = -math.log(min_prob)
        lp = torch.log(torch.clamp(p, min=min_prob))
        return 1 - (oh * (A + lp)).sum(1) / (A + lp).sum(1)

    def amse_(a=30.0):
        return ((p - a * oh) ** 2).sum(1) / K

    def ce_eps_(m=1e5):
        t = p.argmax(1)
        ph = (p + m * torch.nn.functional.one_hot(t, K).double()) / (m + 1)
        ph = torch.clamp(ph, min=1e-8)
        return -torch.log((oh * ph).sum(1))

    def ce_():
        return -torch.log(py)

    def nnfl_(gamma=0.5, min_prob=1e-7, detach=True):
        lmin = math.log(min_prob)
        ell = torch.clamp(torch.log_softmax(z2, 1), min=lmin)
        f = 1 - torch.exp(ell)
        f = f.detach() if detach else f
        fl = -(f ** gamma) * ell
        A = -(1 - min_prob) ** gamma * lmin
        return 1 - (A - (oh * fl).sum(1)) / (K * A - fl.sum(1))

    def fl_eps_(m=1e5, gamma=0.1, detach=True):
        ph = torch.exp(-ce_eps_(m))
        f = (1 - ph).detach() if detach else (1 - ph)
        return -(f ** gamma) * torch.log(ph)

    def js_(pi1=0.5):
        mix = pi1 * oh + (1 - pi1) * p
        lm = torch.log(torch.clamp(mix, 1e-7, 1.0))
        kl1 = (oh * (torch.log(torch.clamp(oh, min=1e-7)) - lm)).sum(1)
        kl2 = torch.where(p > 0, p * (torch.log(torch.clamp(p, min=1e-7)) - lm), torch.zeros_like(p)).sum(1)
        return (pi1 * kl1 + (1 - pi1) * kl2) / (-(1 - pi1) * math.log(1 - pi1))

    def bi_tempered_(t1=0.8, t2=1.2, label_smoothing=0.0, num_iters=5):
        def log_t(u, t):
            return torch.log(u) if t == 1 else (u ** (1 - t) - 1) / (1 - t)

        def exp_t(u, t):
            return torch.exp(u) if t == 1 else torch.relu(1 + (1 - t) * u) ** (1 / (1 - t))

        a = z2 - z2.max(1, keepdim=True).values
        if t2 == 1:
            q = torch.softmax(z2, 1)
        elif t2 > 1:  # the reference's fixed point
            x = a
            for _ in range(num_iters):
                x = a * exp_t(x, t2).sum(1, keepdim=True) ** (1 - t2)
            q = exp_t(a + log_t(1 / exp_t(x, t2).sum(1, keepdim=True), t2), t2)
        else:  # bisection to convergence
            lo = torch.zeros(a.shape[0], 1, dtype=a.dtype)
            hi = -log_t(1 / (a > -1 / (1 - t2)).sum(1, keepdim=True).double(), t2)
            for _ in range(200):
                mid = (lo + hi) / 2
                below = exp_t(a - mid, t2).sum(1, keepdim=True) < 1
                lo, hi = torch.where(below, lo, mid), torch.where(below, mid, hi)
            q = exp_t(a - (lo + hi) / 2, t2)
        s = label_smoothing
        lab = (1 - K * s / (K - 1)) * oh + s / (K - 1)
        return (lab * (log_t(lab + 1e-10, t1) - log_t(q, t1)) - (lab ** (2 - t1) - q ** (2 - t1)) / (2 - t1)).sum(1)

    def ldr_kl_(margin=0.1, lam=1.0):
        sp = torch.nn.functional.softplus(z2)
        s = sp / sp.mean(1, keepdim=True)
        d = margin * (1 - oh) + s - (oh * s).sum(1, keepdim=True)
        return lam * torch.log(torch.exp(d / lam).mean(1))

    singles = {
        "ce": ce_,
        "focal": lambda gamma=0.5, detach=False: (oh * _focal_terms(p, gamma, detach)).sum(1),
        "mae": mae_,
        "rce": rce_,
        "gce": lambda q=0.7, eps=1e-7: (1 - (oh * torch.clamp(p, min=eps)).sum(1) ** q) / q,
        "sce": lambda alpha=0.1, beta=1.0, A=LN1E4, eps=1e-7: alpha * ce_() + beta * rce_(A, eps),
        "nce": nce_,
        "nfl": nfl_,
        "ngce": lambda q=0.7, eps=1e-7: (
            (1 - (oh * torch.clamp(p, min=eps)).sum(1) ** q) / (K - (torch.clamp(p, min=eps) ** q).sum(1))),
        "nmae": lambda scale=1.0: scale * (oh - p).abs().sum(1) / (2 * (K - 1)),
        "nrce": lambda eps=1e-7: rce_(eps=eps) / torch.stack(
            [rce_single(p, k, eps) for k in range(K)], 1).sum(1),
        "agce": agce_,
        "aul": aul_,
        "ael": ael_,
        "anorm": lambda a=1.5, p_=0.9, eps=1e-5: (
            (torch.abs(a * oh - torch.clamp(p, min=eps, max=1)) ** p_).sum(1) - (a - 1) ** p_) / p_,
        "nnce": nnce_,
        "amse": amse_,
        "ce_eps": ce_eps_,
        "taylor_ce": lambda t=2: sum((1 - py) ** k / k for k in range(1, t + 1)),
        "poly1_ce": lambda epsilon=1.0: -torch.log(py) + epsilon * (1 - py),
        "nnfl": nnfl_,
        "fl_eps": fl_eps_,
        "js": js_,
        "ldr_kl": ldr_kl_,
        "bi_tempered": bi_tempered_,
    }
    if name == "anorm" and "p" in hp:
        hp = dict(hp)
        hp["p_"] = hp.pop("p")
    combos = {
        "nce+agce": (nce_, agce_, ("a", "q"), 1.0, 4.0, {"a": 6.0, "q": 1.5}),
        "nce+aul": (nce_, aul_, ("a", "q"), 1.0, 4.0, {"a": 6.3, "q": 1.5}),
        "nce+ael": (nce_, ael_, ("a",), 1.0, 4.0, {"a": 5.0}),
        "nce+rce": (nce_, rce_, ("A", "eps"), 1.0, 1.0, {}),
        "nce+mae": (nce_, mae_, ("scale",), 1.0, 1.0, {}),
        "anl_ce": (nce_, nnce_, ("min_prob",), 5.0, 5.0, {}),
        "jal_ce": (nce_, amse_, ("a",), 1.0, 1.0, {}),
    }
    if name in singles:
        out = singles[name](**hp)
    elif name in combos:
        act, pas, pkeys, da, db, dflt = combos[name]
        kw = {**dflt, **{k: v for k, v in hp.items() if k in pkeys}}
        out = hp.get("alpha", da) * act() + hp.get("beta", db) * pas(**kw)
    elif name.startswith("nfl+"):
        pas = {"rce": rce_, "agce": agce_, "aul": aul_, "ael": ael_}[name[4:]]
        dflt = {"rce": {}, "agce": {"a": 6.0, "q": 1.5}, "aul": {"a": 6.3, "q": 1.5}, "ael": {"a": 5.0}}[name[4:]]
        db = 1.0 if name == "nfl+rce" else 4.0
        kw = {**dflt, **{k: v for k, v in hp.items() if k not in ("alpha", "beta", "gamma", "detach")}}
        out = hp.get("alpha", 1.0) * nfl_(hp.get("gamma", 0.5), hp.get("detach", False)) + hp.get("beta", db) * pas(**kw)
    elif name in ("ce_lc", "logit_clip"):
        tau, pn, legacy = hp.get("tau", 1.0), hp.get("p", 2.0), hp.get("legacy_threshold", False)
        base = hp.get("loss", "ce")
        zc = z.double()
        norm = (zc.abs() ** pn).sum(1, keepdim=True) ** (1 / pn)
        if legacy:
            n = norm + 1e-7
            zc = torch.where(n > 1 / tau, zc / (n / tau), zc)
        else:
            zc = zc * torch.clamp(tau / norm, max=1.0)
        return per_sample(base, zc, y)
    elif name == "jal_fl":
        g_, d_ = hp.get("gamma", 0.5), hp.get("detach", True)
        out = hp.get("alpha", 1.0) * nfl_(g_, d_) + hp.get("beta", 1.0) * amse_(hp.get("a", 30.0))
    elif name == "anl_fl":
        g_, d_ = hp.get("gamma", 0.5), hp.get("detach", True)
        out = hp.get("alpha", 5.0) * nfl_(g_, d_) + hp.get("beta", 5.0) * nnfl_(g_, hp.get("min_prob", 1e-7), d_)
    elif name == "fl_eps+mae":
        fl = fl_eps_(hp.get("m", 1e5), hp.get("gamma", 0.1), hp.get("detach", True))
        out = hp.get("alpha", 0.01) * fl + hp.get("beta", 5.0) * mae_(2.0)
    elif name in ("ce_sr", "fl_sr", "gce_sr"):   # Sparse Regularization: base loss on z' + lam sum_k p'_k^p
        tau, pn, lam = hp.get("tau", 0.5), hp.get("p", 0.1), hp.get("lam", 1.2)
        zz = z.double()
        zn = zz / (tau * zz.norm(dim=1, keepdim=True).clamp_min(1e-12)) if hp.get("normalize", True) else zz / tau
        base = {"ce_sr": ("ce", {}), "fl_sr": ("focal", {"gamma": hp.get("gamma", 0.5), "detach": True}),
                "gce_sr": ("gce", {"q": hp.get("q", 0.01)})}[name]
        reg = (torch.softmax(zn, 1).clamp(1e-7, 1.0) ** pn).sum(1)
        return per_sample(base[0], zn, y, **base[1]) + lam * reg
    elif name == "ce_eps+mae":
        out = hp.get("alpha", 0.01) * ce_eps_(hp.get("m", 1e5)) + hp.get("beta", 5.0) * mae_(2.0)
    else:
        raise KeyError(name)
    return out.reshape(y.shape)


def rce_single(p, k, eps):
    """RCE of every sample for label k (for the NRCE normaliser)."""
    oh = torch.zeros_like(p)
    oh[:, k] = 1
    pc = torch.clamp(p, min=eps, max=1.0) if eps > 0 else p
    return -(pc * torch.log(torch.clamp(oh, min=1e-4, max=1.0))).sum(1)


# =================================================================================================
# tests
# =================================================================================================
import pytest
import torch.nn.functional as TF

import asymloss
from loss_cases import extreme_logits
import asymloss.functional as AF
from asymloss.losses.registry import LOSSES, hparam_defaults
from asymloss.train.mechanics import needs

# losses that take more than logits and labels (views, sample indices, complementary labels):
# tests/test_losses_mechanics.py
ALL = sorted(n for n in LOSSES if not needs(asymloss.create_loss(n)))
FUNCTIONAL = {  # registry name -> functional name
    "ce": "ce", "focal": "focal", "mae": "mae", "rce": "rce", "gce": "gce", "sce": "sce", "nce": "nce",
    "nfl": "nfl", "ngce": "ngce", "nmae": "nmae", "nrce": "nrce", "agce": "agce", "aul": "aul",
    "ael": "ael", "anorm": "anorm", "nnce": "nnce", "amse": "amse", "ce_eps": "ce_eps",
    "nce+agce": "nce_agce", "nce+aul": "nce_aul", "nce+ael": "nce_ael", "nce+rce": "nce_rce",
    "nce+mae": "nce_mae", "nfl+rce": "nfl_rce", "anl_ce": "anl_ce", "jal_ce": "jal_ce",
    "ce_eps+mae": "ce_eps_mae",
    "taylor_ce": "taylor_ce", "poly1_ce": "poly1_ce", "nnfl": "nnfl", "fl_eps": "fl_eps", "js": "js",
    "ldr_kl": "ldr_kl", "jal_fl": "jal_fl", "anl_fl": "anl_fl", "fl_eps+mae": "fl_eps_mae",
    "ce_lc": "ce_lc", "logit_clip": "logit_clip", "bi_tempered": "bi_tempered",
    "ce_sr": "ce_sr", "fl_sr": "fl_sr", "gce_sr": "gce_sr",
}
# non-default hyperparameters, so that every parameter actually reaches the computation
NONDEFAULT = {
    "focal": {"gamma": 2.0}, "mae": {"scale": 1.0}, "rce": {"A": 4.0, "eps": 1e-3},
    "gce": {"q": 0.5, "eps": 1e-3}, "sce": {"alpha": 0.5, "beta": 2.0, "A": 3.0, "eps": 1e-3},
    "nfl": {"gamma": 1.5}, "ngce": {"q": 0.3, "eps": 1e-3}, "nmae": {"scale": 0.5},
    "nrce": {"eps": 1e-3}, "agce": {"a": 1.7, "q": 0.3}, "aul": {"a": 2.5, "q": 1.7},
    "ael": {"a": 0.8}, "anorm": {"a": 2.0, "p": 1.5, "eps": 1e-3}, "nnce": {"min_prob": 1e-3},
    "amse": {"a": 3.0}, "ce_eps": {"m": 2.0},
    "nce+agce": {"alpha": 2.0, "beta": 0.5, "a": 4.0, "q": 0.2},
    "nce+aul": {"alpha": 0.5, "beta": 2.0, "a": 3.0, "q": 0.1},
    "nce+ael": {"alpha": 0.0, "beta": 1.0, "a": 3.5},
    "nce+rce": {"alpha": 10.0, "beta": 0.1, "A": 2.0},
    "nce+mae": {"alpha": 1.0, "beta": 100.0, "scale": 1.0},
    "nfl+rce": {"alpha": 1.0, "beta": 3.0, "gamma": 1.0},
    "nfl+agce": {"alpha": 1.0, "beta": 3.0, "gamma": 1.0, "a": 2.0, "q": 0.5},
    "nfl+aul": {"alpha": 1.0, "beta": 3.0, "gamma": 1.0, "a": 2.0, "q": 2.0},
    "nfl+ael": {"alpha": 2.0, "beta": 3.0, "gamma": 1.0, "a": 2.0},
    "anl_ce": {"alpha": 1.0, "beta": 2.0, "min_prob": 1e-4},
    "jal_ce": {"alpha": 5.0, "beta": 1.0, "a": 20.0},
    "ce_eps+mae": {"alpha": 0.5, "beta": 2.0, "m": 3.0},
    "taylor_ce": {"t": 5}, "poly1_ce": {"epsilon": -0.7},
    "nnfl": {"gamma": 1.5, "min_prob": 1e-3, "detach": False}, "fl_eps": {"m": 3.0, "gamma": 2.0},
    "js": {"pi1": 0.9}, "ldr_kl": {"margin": 0.7, "lam": 0.3},
    "jal_fl": {"alpha": 5.0, "beta": 1.0, "gamma": 1.0, "a": 20.0, "detach": False},
    "anl_fl": {"alpha": 10.0, "beta": 1.0, "gamma": 2.0, "min_prob": 1e-4},
    "fl_eps+mae": {"alpha": 0.5, "beta": 2.0, "m": 3.0, "gamma": 1.0, "detach": False},
    "ce_lc": {"tau": 0.5, "p": 1.0}, "logit_clip": {"loss": "agce", "tau": 0.4, "legacy_threshold": True},
    "bi_tempered": {"t1": 0.5, "t2": 0.8, "label_smoothing": 0.1},
    "ce_sr": {"tau": 0.3, "p": 0.5, "lam": 2.0}, "fl_sr": {"tau": 0.1, "p": 0.1, "lam": 4.0, "normalize": False, "gamma": 1.0},
    "gce_sr": {"tau": 0.7, "p": 0.01, "lam": 10.0, "q": 0.5},
}


def _data(shape=(6, 5), seed=0, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.randint(0, shape[1], (shape[0],) + tuple(shape[2:]), generator=g)
    return z, y


def test_registry_covers_required_losses_and_functions():
    required = "ce focal mae rce gce sce nce nfl ngce nmae agce aul ael".split()
    for name in required:
        assert name in LOSSES and callable(getattr(AF, name))
    assert AF.agce is asymloss.losses.functional.agce


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("hp", ["default", "other"])
def test_value_matches_float64_reference(name, hp):
    kw = NONDEFAULT.get(name, {}) if hp == "other" else {}
    z, y = _data((7, 6), seed=1)
    got = asymloss.create_loss(name, reduction="none", **kw)(z, y)
    want = per_sample(name, z, y, **kw)
    assert got.dtype == torch.float64 and got.shape == y.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    if name in FUNCTIONAL:
        f = getattr(AF, FUNCTIONAL[name])
        torch.testing.assert_close(f(z, y, reduction="none", **kw), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_value_nd_input_matches_reference(name):
    z, y = _data((3, 4, 5, 2), seed=2)
    got = asymloss.create_loss(name, reduction="none")(z, y)
    assert got.shape == (3, 5, 2)
    torch.testing.assert_close(got, per_sample(name, z, y), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_gradcheck(name):
    kw = {"detach": False} if "gamma" in hparam_defaults(LOSSES[name]) else {}
    if name in ("ce_eps", "ce_eps+mae", "fl_eps", "fl_eps+mae"):
        kw["m"] = 2.0  # keep the epsilon-softmax away from its 1e-8 clamp
    loss = asymloss.create_loss(name, **kw)
    z, y = _data((4, 5), seed=3, scale=1.0)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.7], dtype=torch.float64)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (z,))
    loss_w = asymloss.create_loss(name, weight=w, reduction="sum", **kw)
    assert torch.autograd.gradcheck(lambda t: loss_w(t, y), (z,))


@pytest.mark.parametrize("name", ["focal", "nfl", "nfl+rce"])
def test_detached_focal_factor_gives_reference_gradient(name):
    z, y = _data((5, 4), seed=4)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    asymloss.create_loss(name, detach=True)(z1, y).backward()
    per_sample(name, z2, y, detach=True).mean().backward()
    torch.testing.assert_close(z1.grad, z2.grad)
    # same value, different gradient from the full-gradient version
    z3 = z.clone().requires_grad_(True)
    asymloss.create_loss(name, detach=False)(z3, y).backward()
    assert not torch.allclose(z3.grad, z1.grad)


@pytest.mark.parametrize("name", ALL)
def test_reductions_weight_ignore_index(name):
    z, y = _data((9, 5), seed=5)
    y[[1, 4]] = -100
    y[7] = 3
    w = torch.tensor([0.2, 1.0, 3.0, 0.5, 2.0], dtype=torch.float64)
    keep = y != -100
    ref = torch.zeros(9, dtype=torch.float64)
    ref[keep] = per_sample(name, z[keep], y[keep])
    wy = torch.where(keep, w[y.clamp(min=0)], torch.zeros(()))
    f = asymloss.create_loss
    torch.testing.assert_close(f(name, reduction="none", weight=w)(z, y), ref * wy)
    torch.testing.assert_close(f(name, reduction="sum", weight=w)(z, y), (ref * wy).sum())
    torch.testing.assert_close(f(name, reduction="mean", weight=w)(z, y), (ref * wy).sum() / wy.sum())
    torch.testing.assert_close(f(name)(z, y), ref[keep].mean())
    torch.testing.assert_close(f(name, reduction="sum")(z, y), ref.sum())
    # another ignore_index value, and a label equal to it is skipped
    y2 = y.clone()
    y2[~keep] = 2
    y2[0] = 2
    k2 = y2 != 2
    torch.testing.assert_close(f(name, ignore_index=2)(z, y2), per_sample(name, z[k2], y2[k2]).mean())


def test_ce_semantics_equal_torch_cross_entropy():
    z, y = _data((8, 6, 3), seed=6, dtype=torch.float32)
    y[0, 0] = -100
    y[3, 2] = -100
    w = torch.rand(6)
    for red in ("mean", "sum", "none"):
        for weight in (None, w):
            torch.testing.assert_close(AF.ce(z, y, weight=weight, reduction=red),
                                       TF.cross_entropy(z, y, weight=weight, reduction=red))
            torch.testing.assert_close(asymloss.CE(weight=weight, reduction=red)(z, y),
                                       TF.cross_entropy(z, y, weight=weight, reduction=red))
    y_all = torch.full_like(y, -100)
    assert torch.isnan(AF.ce(z, y_all)) and torch.isnan(TF.cross_entropy(z, y_all))
    assert AF.ce(z, y_all, reduction="sum") == 0
    # int32 targets are accepted
    torch.testing.assert_close(AF.ce(z, y.clamp(min=0).int()), TF.cross_entropy(z, y.clamp(min=0)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ALL)
def test_half_precision_computed_in_float32(name, dtype):
    z, y = _data((16, 7), seed=7, dtype=dtype)
    z.requires_grad_(True)
    loss = asymloss.create_loss(name)
    out = loss(z, y)
    assert out.dtype == dtype  # like F.cross_entropy
    want = per_sample(name, z.detach().float(), y).mean()  # same (rounded) logits, float64 maths
    tol = 1e-2 if dtype == torch.float16 else 2e-2
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol * 1e-1)
    out.backward()
    assert z.grad.dtype == dtype and torch.isfinite(z.grad).all()
    # the float32 computation of the rounded logits is what float16 inputs get
    z32 = z.detach().float()
    torch.testing.assert_close(out.float(), loss(z32, y).to(dtype).float())


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype,scale", [(torch.float32, 1e4), (torch.float64, 1e4), (torch.float16, 60.0),
                                         (torch.bfloat16, 60.0)])
def test_extreme_logits_finite_values_and_gradients(name, dtype, scale):
    z, y = extreme_logits(dtype, scale)
    for red in ("mean", "none"):
        z.grad = None
        out = asymloss.create_loss(name, reduction=red)(z, y)
        assert torch.isfinite(out).all(), (name, red, out)
        out.sum().backward()
        assert torch.isfinite(z.grad).all(), (name, red, z.grad)
    if "gamma" in hparam_defaults(LOSSES[name]):
        z.grad = None
        asymloss.create_loss(name, gamma=0.3, detach=False)(z, y).backward()
        assert torch.isfinite(z.grad).all()


def test_loss_on_log_probabilities_evaluates_l_of_u():
    # the theory toolkit evaluates L(u, y) by feeding logits log(u)
    g = torch.Generator().manual_seed(9)
    u = torch.distributions.Dirichlet(torch.ones(6)).sample((20,)).double()
    y = torch.randint(0, 6, (20,), generator=g)
    uy = u[torch.arange(20), y]
    lu = torch.log(u)
    torch.testing.assert_close(asymloss.AGCE(a=0.6, q=0.6, reduction="none")(lu, y),
                               ((1.6 ** 0.6) - (0.6 + uy) ** 0.6) / 0.6)
    torch.testing.assert_close(asymloss.AUL(a=5.5, q=3, reduction="none")(lu, y),
                               ((5.5 - uy) ** 3 - 4.5 ** 3) / 3)
    torch.testing.assert_close(asymloss.AEL(a=2.5, reduction="none")(lu, y), torch.exp(-uy / 2.5))
    torch.testing.assert_close(asymloss.MAE(reduction="none")(lu, y), (u - TF.one_hot(y, 6)).abs().sum(1))
    torch.testing.assert_close(asymloss.NCE(reduction="none")(lu, y), torch.log(uy) / torch.log(u).sum(1))


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("build,message", [
    (lambda: asymloss.AUL(a=0.9), r"a must be > 1; got 0.9"),
    (lambda: asymloss.AGCE(a=0.0), r"a must be > 0; got 0.0"),
    (lambda: asymloss.AGCE(q=-1), r"q must be > 0; got -1"),
    (lambda: asymloss.AEL(a=-2), r"a must be > 0; got -2"),
    (lambda: asymloss.GCE(q=1.5), r"q must be > 0 and <= 1; got 1.5"),
    (lambda: asymloss.FocalLoss(gamma=-0.5), r"gamma must be >= 0; got -0.5"),
    (lambda: asymloss.RCE(A=0), r"A must be > 0; got 0"),
    (lambda: asymloss.MAE(scale=0), r"scale must be > 0; got 0"),
    (lambda: asymloss.NCEandAGCE(alpha=-1), r"alpha must be >= 0; got -1"),
    (lambda: asymloss.NCEandAUL(a=1.0), r"a must be > 1; got 1.0"),
    (lambda: asymloss.ANorm(a=0.5), r"a must be > 1; got 0.5"),
    (lambda: asymloss.NNCE(min_prob=0), r"min_prob must be > 0 and < 1; got 0"),
    (lambda: asymloss.CE(reduction="avg"), r"reduction must be one of 'mean', 'sum', 'none'; got 'avg'"),
    (lambda: asymloss.AGCE(num_classes=0), r"num_classes must be >= 1; got 0"),
    (lambda: asymloss.CE(weight=torch.ones(3), num_classes=4), r"weight must have 4 entries"),
    (lambda: AF.aul(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), a=1.0), r"a must be > 1; got 1.0"),
    (lambda: AF.gce(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), q=0), r"q must be > 0"),
])
def test_invalid_hyperparameters_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_type_errors():
    with pytest.raises(TypeError, match="q must be a real number"):
        asymloss.AGCE(q="0.5")
    with pytest.raises(TypeError, match="detach must be True or False; got 'yes'"):
        asymloss.FocalLoss(detach="yes")
    with pytest.raises(TypeError, match="active must be an asymloss loss module"):
        asymloss.ActivePassive(torch.nn.CrossEntropyLoss(), asymloss.MAE())
    z = torch.zeros(3, 4)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        AF.ce(z, torch.zeros(3))
    with pytest.raises(TypeError, match="input must be floating-point logits"):
        AF.ce(z.long(), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("name", ALL)
def test_label_out_of_range_names_range_and_value(name):
    z = torch.zeros(4, 5)
    loss = asymloss.create_loss(name)
    with pytest.raises(ValueError, match=r"class index 7, outside the valid range \[0, 4\]"):
        loss(z, torch.tensor([0, 7, 1, -100]))
    with pytest.raises(ValueError, match=r"class index -3, outside the valid range \[0, 4\]"):
        loss(z, torch.tensor([0, -3, 1, 2]))


def test_shape_and_class_count_errors():
    z = torch.zeros(4, 5)
    with pytest.raises(ValueError, match=r"target must have shape \(4,\)"):
        AF.nce(z, torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input must have shape \(N, C\)"):
        AF.nce(torch.zeros(5), torch.zeros((), dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes=10"):
        asymloss.AGCE(num_classes=10)(z, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"):
        AF.nce(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="weight must have 5 entries"):
        AF.agce(z, torch.zeros(4, dtype=torch.long), weight=torch.ones(3))


def test_repr_is_readable_and_attributes_match_functional_keywords():
    assert repr(asymloss.AGCE(a=0.6, q=0.6)) == "AGCE(a=0.6, q=0.6)"
    assert repr(asymloss.AUL(a=3, q=0.1, reduction="sum")) == "AUL(a=3, q=0.1, reduction='sum')"
    m = asymloss.NCEandAGCE(alpha=0, beta=1, a=4, q=0.2)
    assert (m.alpha, m.beta, m.a, m.q) == (0.0, 1.0, 4.0, 0.2)
    assert repr(m).startswith("NCEandAGCE(\n  alpha=0, beta=1, a=4, q=0.2")
    assert m.hparams() == {"alpha": 0.0, "beta": 1.0, "a": 4.0, "q": 0.2}
    import inspect
    for name, fname in FUNCTIONAL.items():
        fkw = [p for p in inspect.signature(getattr(AF, fname)).parameters
               if p not in ("input", "target", "weight", "ignore_index", "reduction")]
        assert list(hparam_defaults(LOSSES[name])) == fkw, name
        # same defaults in the function and the module
        fdef = {p.name: p.default for p in inspect.signature(getattr(AF, fname)).parameters.values()}
        assert all(fdef[k] == v for k, v in hparam_defaults(LOSSES[name]).items()), name


def test_active_passive_any_combination_and_alpha_zero():
    z, y = _data((6, 5), seed=10)
    ap = asymloss.ActivePassive(asymloss.GCE(q=0.5), asymloss.NMAE(), alpha=2.0, beta=3.0, reduction="none")
    want = 2 * per_sample("gce", z, y, q=0.5) + 3 * per_sample("nmae", z, y)
    torch.testing.assert_close(ap(z, y), want)
    torch.testing.assert_close(asymloss.create_loss("gce+nmae", alpha=2.0, beta=3.0, q=0.5, reduction="none")(z, y), want)
    torch.testing.assert_close(asymloss.NCEandAGCE(alpha=0, beta=1, a=4, q=0.2, reduction="none")(z, y),
                               per_sample("agce", z, y, a=4, q=0.2))


def test_ce_eps_ties_follow_torch_argmax():
    # exact ties: t is the first maximal class (torch.argmax), as in the reference code
    z = torch.tensor([[2.0, 2.0, 0.0], [1.0, 3.0, 3.0], [0.0, 0.0, 0.0], [5.0, 1.0, 5.0]], dtype=torch.float64)
    for y in range(3):
        t = torch.full((4,), y)
        torch.testing.assert_close(AF.ce_eps(z, t, m=3.0, reduction="none"), per_sample("ce_eps", z, t, m=3.0))
        zs = z.reshape(2, 2, 3).transpose(1, 2)  # N-d: (2, 3, 2)
        ts = t.reshape(2, 2)
        torch.testing.assert_close(AF.ce_eps(zs, ts, m=3.0, reduction="none"), per_sample("ce_eps", zs, ts, m=3.0))


@pytest.mark.parametrize("name", ["rce", "nrce", "sce", "nce+rce"])
def test_rce_clamp_active_and_inactive_batches_match_reference(name):
    z, y = _data((6, 5), seed=11, scale=0.5)  # all p > 1e-7: the clamp is inactive
    torch.testing.assert_close(asymloss.create_loss(name, reduction="none")(z, y), per_sample(name, z, y))
    z2 = z.clone()
    z2[0, 0] = 40.0  # p_k < 1e-7 for the other classes of sample 0
    for zz in (z, z2):
        a = zz.clone().requires_grad_(True)
        b = zz.clone().requires_grad_(True)
        asymloss.create_loss(name)(a, y).backward()
        per_sample(name, b, y).mean().backward()  # the reference clamp's gradient
        torch.testing.assert_close(a.grad, b.grad)


def test_fused_losses_support_double_backward():
    # the fused Functions have a differentiable backward (test_losses_transforms.py covers all)
    z, y = _data((4, 5), seed=12)
    z.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: asymloss.NGCE()(t, y), (z,))
    assert torch.autograd.gradgradcheck(lambda t: asymloss.AGCE()(t, y), (z,))
