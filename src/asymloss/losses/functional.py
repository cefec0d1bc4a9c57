"""Functional API: one function per loss, each a drop-in for ``F.cross_entropy``.

Every function has the signature::

    name(input, target, *, <hyperparameters>, weight=None, ignore_index=-100, reduction="mean")

- ``input``: logits of shape (N, C) or (N, C, d1, ..., dk); ``target``: class indices of shape (N)
  or (N, d1, ..., dk) (any integer dtype).
- ``weight`` (C,), ``ignore_index`` and ``reduction`` ('mean' | 'sum' | 'none') behave exactly as
  in ``torch.nn.functional.cross_entropy``: each sample's loss is multiplied by ``weight[y]``, the
  weighted mean divides by the sum of the weights of the non-ignored samples, ignored samples
  contribute 0 (and are 0 in the ``'none'`` output).
- float16/bfloat16 inputs are computed in float32 and the result is returned in the input dtype
  (like ``F.cross_entropy``; a ``'sum'`` over a very large float16 batch can overflow to ``inf`` —
  pass float32 logits, or use ``'mean'``, if that matters). float32 and float64 are computed as is.
- Labels outside ``[0, C-1]`` (other than ``ignore_index``) raise ``ValueError`` on CPU tensors.

With ``p = softmax(input)`` and ``p_y`` the probability of the label, the per-sample values are
(docs/losses.md; see each docstring)::

    ce     -log p_y                          agce  ((a+1)^q - (a+p_y)^q) / q
    focal  -(1-p_y)^gamma log p_y            aul   ((a-p_y)^q - (a-1)^q) / q
    mae    scale (1-p_y)   (scale=2: ||e_y-p||_1)   ael   exp(-p_y / a)
    rce    A sum_{k!=y} max(p_k, eps)        nce   log p_y / sum_k log p_k
    gce    (1 - max(p_y,eps)^q) / q          nfl   FL_y / sum_k FL_k
    sce    alpha CE + beta RCE               ngce  (1-p~_y^q) / (K - sum_k p~_k^q)
    nmae   scale (1-p_y) / (K-1)             nrce  RCE_y / sum_k RCE_k

No loss builds a one-hot (N, C) tensor: ``log p_y`` is gathered (from ``log_softmax`` or inside the
fused autograd Functions of ``_core``, which compute value and gradient w.r.t. the logits together).

Example::

    >>> import torch, asymloss.functional as AF
    >>> logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    >>> loss = AF.agce(logits, y, a=0.6, q=0.6)          # scalar (mean)
    >>> AF.nce(logits, y, reduction="none").shape
    torch.Size([8])
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .._validation import check_number
from . import _core
from ._core import Batch

__all__ = [
    "ce", "focal", "mae", "rce", "gce", "sce", "nce", "nfl", "ngce", "nmae", "nrce",
    "agce", "aul", "ael", "anorm", "nnce", "amse", "ce_eps",
    "nce_agce", "nce_aul", "nce_ael", "nce_rce", "nce_mae", "nfl_rce",
    "anl_ce", "jal_ce", "ce_eps_mae",
    "taylor_ce", "poly1_ce", "nnfl", "fl_eps", "js", "ldr_kl",
    "jal_fl", "anl_fl", "fl_eps_mae", "logit_clip", "ce_lc", "bi_tempered",
]

#: RCE's constant: ``A = -log(1e-4)``, the reference code's ``-log`` of its clamped one-hot.
RCE_A = -math.log(1e-4)
#: Probability clamp of the reference code (RCE, GCE, NGCE).
REF_EPS = 1e-7

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------------
# hyperparameter validation (shared with the nn.Module wrappers)
# ------------------------------------------------------------------------------------------------

def _check_bool(arg: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be True or False; got {value!r}.")
    return value


def _check_eps(value, arg: str = "eps") -> float:
    return check_number(arg, value, ge=0, lt=1)


CHECKS = {
    "ce": lambda: None,
    "focal": lambda gamma, detach: (check_number("gamma", gamma, ge=0), _check_bool("detach", detach)),
    "mae": lambda scale: check_number("scale", scale, gt=0),
    "rce": lambda A, eps: (check_number("A", A, gt=0), _check_eps(eps)),
    "gce": lambda q, eps: (check_number("q", q, gt=0, le=1), _check_eps(eps)),
    "sce": lambda alpha, beta, A, eps: (
        check_number("alpha", alpha, ge=0), check_number("beta", beta, ge=0),
        check_number("A", A, gt=0), _check_eps(eps)),
    "nce": lambda: None,
    "nfl": lambda gamma, detach: (check_number("gamma", gamma, ge=0), _check_bool("detach", detach)),
    "ngce": lambda q, eps: (check_number("q", q, gt=0, le=1), _check_eps(eps)),
    "nmae": lambda scale: check_number("scale", scale, gt=0),
    "nrce": lambda eps: _check_eps(eps),
    "agce": lambda a, q: (check_number("a", a, gt=0), check_number("q", q, gt=0)),
    "aul": lambda a, q: (check_number("a", a, gt=1), check_number("q", q, gt=0)),
    "ael": lambda a: check_number("a", a, gt=0),
    "anorm": lambda a, p, eps: (check_number("a", a, gt=1), check_number("p", p, gt=0),
                                 check_number("eps", eps, gt=0, lt=1)),
    "nnce": lambda min_prob: check_number("min_prob", min_prob, gt=0, lt=1),
    "amse": lambda a: check_number("a", a, gt=0),
    "ce_eps": lambda m: check_number("m", m, ge=0),
    "taylor_ce": lambda t: check_number("t", t, ge=1, integer=True),
    "poly1_ce": lambda epsilon: check_number("epsilon", epsilon, ge=-1),
    "nnfl": lambda gamma, min_prob, detach: (
        check_number("gamma", gamma, ge=0), check_number("min_prob", min_prob, gt=0, lt=1),
        _check_bool("detach", detach)),
    "fl_eps": lambda m, gamma, detach: (check_number("m", m, ge=0), check_number("gamma", gamma, ge=0),
                                        _check_bool("detach", detach)),
    "js": lambda pi1: check_number("pi1", pi1, gt=0, lt=1),
    "ldr_kl": lambda margin, lam: (check_number("margin", margin, ge=0), check_number("lam", lam, gt=0)),
    "bi_tempered": lambda t1, t2, label_smoothing, num_iters: (
        check_number("t1", t1, ge=0, le=1), check_number("t2", t2, gt=0),
        check_number("label_smoothing", label_smoothing, ge=0, lt=1),
        check_number("num_iters", num_iters, ge=1, integer=True)),
    "logit_clip": lambda tau, p, legacy_threshold: (
        check_number("tau", tau, gt=0), check_number("p", p, ge=1), _check_bool("legacy_threshold", legacy_threshold)),
}


def _check_ab(alpha, beta) -> None:
    check_number("alpha", alpha, ge=0)
    check_number("beta", beta, ge=0)


# ------------------------------------------------------------------------------------------------
# kernels: Batch -> per-sample loss (N, d1, ..., dk).  Used by the functions and the modules.
# ------------------------------------------------------------------------------------------------

def _focal_factor(one_minus_p: Tensor, gamma: float) -> Tensor:
    """(1 - p)^gamma; the clamp keeps the gradient finite at p = 1 for gamma < 1 (d/dx x^g is
    infinite at x = 0; the value changes by tiny^g, multiplied by -log p = 0 there)."""
    return one_minus_p.clamp_min(_core.tiny(one_minus_p.dtype)).pow(gamma)


def _focal_term(b: Batch, gamma: float, detach: bool) -> Tensor:
    """(1 - p_y)^gamma log p_y; ``detach``: the factor is a constant for the gradient, like the
    reference codes (same value, their gradient)."""
    if detach:
        return _core.const_factor_mul(_focal_factor(b.one_minus_p_y(), gamma), b.logp_y())
    return _focal_factor(b.one_minus_p_y(), gamma) * b.logp_y()


def _k_ce(b: Batch) -> Tensor:
    return -b.logp_y()


def _k_focal(b: Batch, gamma: float, detach: bool) -> Tensor:
    if gamma == 0:
        return -b.logp_y()
    return -_focal_term(b, gamma, detach)


def _k_mae(b: Batch, scale: float) -> Tensor:
    return scale * b.one_minus_p_y()


def _off_target_mass(b: Batch, eps: float) -> Tensor:
    """sum_{k != y} max(p_k, eps): ``1 - p_y`` for ``eps = 0``, else the fused clamped sum."""
    if eps == 0:
        return b.one_minus_p_y()
    return b.clamped_off_target(eps)[0]


def _sum_exp_scaled(b: Batch, s: float, lmin: float) -> Tensor:
    """sum_k exp(s * max(log p_k, lmin)) = sum_k max(p_k^s, e^(s lmin)), with a fused backward."""
    floor = math.exp(s * lmin) if lmin > -math.inf else 0.0
    return b.row_sum("powclamp", s, floor)


def _k_rce(b: Batch, A: float, eps: float) -> Tensor:
    return A * _off_target_mass(b, eps)


def _k_gce(b: Batch, q: float, eps: float) -> Tensor:
    lp = b.logp_y()
    if eps > 0:
        lp = lp.clamp_min(math.log(eps))
    return (0.0 - torch.expm1(q * lp)) / q


def _k_sce(b: Batch, alpha: float, beta: float, A: float, eps: float) -> Tensor:
    if eps == 0 or alpha == 0 or beta == 0 or b.has_logp:
        return _combine(b, alpha, _k_ce, (), beta, _k_rce, (A, eps))
    # one fused Function for both terms: no log_softmax forward or backward
    off, _, logp_y = b.clamped_off_target(eps, with_logp_y=True)
    return (A * beta) * off - alpha * logp_y


def _k_nce(b: Batch) -> Tensor:
    # fused on the logits (shares p with the batch) for short rows, where exp(log p) is cheap
    # next to the log_softmax backward it replaces; from C ~ 64 on the log_softmax path is faster
    if not b.has_logp and not b.has_logp_y and b.num_classes < 64:
        total, logp_y = b.log_prob_sum()
        return logp_y / total
    return _k_nce_logp(b)


def _k_nce_logp(b: Batch) -> Tensor:
    """NCE on the batch's log_softmax (when another term needs every log p_k too)."""
    den = b.row_sum("sum")                               # first: gathers log p_y in the same Function
    return b.logp_y() / den


def _focal_mass(b: Batch, gamma: float, detach: bool) -> Tensor:
    """sum_k (1 - p_k)^gamma log p_k (negative), with a fused backward (gathers log p_y too)."""
    return b.row_sum("focal", gamma, 1.0 if detach else 0.0)


def _k_nfl(b: Batch, gamma: float, detach: bool) -> Tensor:
    if gamma == 0:
        return _k_nce(b)
    den = _focal_mass(b, gamma, detach)                  # first: gathers log p_y in the same Function
    if not detach:
        return _focal_term(b, gamma, detach) / den
    # detached factors: the ratio's backward reads the true values (exact double backward)
    f, lp = _focal_factor(b.one_minus_p_y(), gamma), b.logp_y()
    num = f * lp
    den_true = _core.row_sum_tangent(den, b.logp(), "focal", gamma)
    return _core.pseudo_ratio(_core.pseudo_view(num, f, lp), den, num, den_true)


def _k_ngce(b: Batch, q: float, eps: float) -> Tensor:
    leps = math.log(eps) if eps > 0 else -math.inf
    den = b.num_classes - _sum_exp_scaled(b, q, leps)   # first: gathers log p_y in the same Function
    lp = b.logp_y()
    if eps > 0:
        lp = lp.clamp_min(leps)
    return (0.0 - torch.expm1(q * lp)) / den


def _k_nmae(b: Batch, scale: float) -> Tensor:
    return (scale / (b.num_classes - 1)) * b.one_minus_p_y()


def _k_nrce(b: Batch, eps: float) -> Tensor:
    if eps == 0:
        return b.one_minus_p_y() / (b.num_classes - 1)
    off, v_y, _ = b.clamped_off_target(eps)             # sum_k max(p_k, eps) = off + v_y
    return off / ((b.num_classes - 1) * (off + v_y))


def _k_agce(b: Batch, a: float, q: float) -> Tensor:
    # value: -(a+1)^q/q * expm1(q log r), r = (a + p_y)/(a + 1), with log r = log1p(-(1-p_y)/(a+1))
    # near p_y = 1 (exactly 0 at p_y = 1, no cancellation) and log((a + p_y)/(a + 1)) where r is
    # small (a + p_y -> 0: 1 - (1-p_y)/(a+1) would cancel). Gradient: that of the direct form
    # ((a+1)^q - (a+p_y)^q)/q, pow's backward q (a + p_y)^(q-1), exact for every a + p_y > 0
    # (expm1's backward is not: it loses everything once q log r < -17 in float32).
    p, om = b.p_y(), b.one_minus_p_y()
    log_r = torch.where(om < 0.5 * (a + 1), torch.log1p(om / -(a + 1)), torch.log((p + a) / (a + 1)))
    value = torch.expm1(log_r * q) * (-((a + 1) ** q) / q)
    carrier = ((a + 1) ** q - (p + a) ** q) / q     # the same function: its gradient (in p, and in
    return value.detach() + (carrier - carrier.detach())   # a and q when they are tensors) is exact


def _k_aul(b: Batch, a: float, q: float) -> Tensor:
    # ((a-p)^q - (a-1)^q)/q = (a-1)^q/q * expm1(q log1p((1-p)/(a-1))): exactly 0 at p = 1
    x = b.one_minus_p_y() / (a - 1)
    return torch.expm1(torch.log1p(x) * q) * (((a - 1) ** q) / q)


def _k_ael(b: Batch, a: float) -> Tensor:
    return torch.exp(b.p_y() / -a)


def _k_anorm(b: Batch, a: float, p: float, eps: float) -> Tensor:
    total = _sum_exp_scaled(b, p, math.log(eps))        # sum_k p~_k^p (first: gathers log p_y)
    py = b.p_y().clamp_min(eps)
    return (total - py.pow(p) + (a - py).pow(p) - (a - 1) ** p) / p


def _k_nnce(b: Batch, min_prob: float) -> Tensor:
    lmin = math.log(min_prob)
    # sum_k (A + log p~_k) = sum_k (max(log p_k, lmin) - lmin): term by term, each >= 0 (no cancellation)
    den = b.row_sum("clampmin", lmin)                    # first: gathers log p_y in the same Function
    return 1 - (b.logp_y().clamp_min(lmin) - lmin) / den


def _k_amse(b: Batch, a: float) -> Tensor:
    sq, p_y = b.square_mass()                            # sum_k p_k^2, p_y (fused backward)
    return (sq - 2 * a * p_y + a * a) / b.num_classes


def _k_ce_eps(b: Batch, m: float) -> Tensor:
    # p^ = (p + m e_t) / (1 + m), t = argmax p, clamped at 1e-8; value -log p^_y, computed stably.
    # y is t = argmax p (the first maximal index, as torch.argmax) iff z_y equals the row maximum and
    # no earlier class ties with it. argmax over dim 1 is slow for N-d inputs, so: amax, and the
    # (rare) ties are resolved only when there are any (always where a host check would sync or
    # break a graph: devices, torch.compile, torch.func).
    z = b.logits
    zmax = z.amax(1, keepdim=True)
    zy = b.gather(z)
    is_top = zy == zmax.squeeze(1)
    if _core.host_checks(z, b.target):
        others_max = z.scatter(1, b.index, -math.inf).amax(1)     # max over k != y
        check_ties = bool((is_top & (others_max == zy)).any())
    else:                                                          # no host sync: always resolve
        check_ties = True
    if check_ties:
        idx = torch.arange(b.num_classes, device=z.device).view((1, -1) + (1,) * (z.dim() - 2))
        earlier_tie = ((z == zmax) & (idx < b.index)).any(1)
        is_top = is_top & ~earlier_tie
    top = -torch.log1p(b.one_minus_p_y() / -(1 + m))
    other = (math.log1p(m) - b.logp_y()).clamp_max(-math.log(1e-8))
    return torch.where(is_top, top, other)


def _k_taylor_ce(b: Batch, t: int) -> Tensor:
    # sum_{k=1}^t u^k / k, u = 1 - p_y, by Horner: u (1 + u (1/2 + u (1/3 + ...)))
    u = b.one_minus_p_y()
    s = 1.0 / t
    for k in range(t - 1, 0, -1):
        s = 1.0 / k + u * s
    return u * s if t > 1 else u


def _k_poly1_ce(b: Batch, epsilon: float) -> Tensor:
    if epsilon == 0:
        return -b.logp_y()
    return epsilon * b.one_minus_p_y() - b.logp_y()


def _k_nnfl(b: Batch, gamma: float, min_prob: float, detach: bool) -> Tensor:
    # l_k = max(log p_k, log min_prob); FL_k = -(1 - e^l_k)^gamma l_k (factor detached when
    # ``detach``); A = -(1 - min_prob)^gamma log min_prob; NNFL = 1 - (A - FL_y) / (K A - sum_k FL_k).
    # A - FL_k = (1 - e^l)^gamma l - (1 - min_prob)^gamma lmin >= 0 term by term (no cancellation).
    lmin = math.log(min_prob)
    l = b.logp().clamp_min(lmin)
    base = -torch.expm1(l)
    if gamma == 0:
        f = l
    elif detach:
        w = base.clamp_min(0.0).pow(gamma)
        v = w * l - (1.0 - min_prob) ** gamma * lmin
        vp = _core.pseudo_view(v, w, l)                 # the ratio's backward reads the true values
        den = vp.sum(1)
        return 1 - _core.pseudo_ratio(b.gather(vp), den, b.gather(v), _core.row_sum_tangent(den, l, "focal", gamma))
    else:
        f = _focal_factor(base, gamma) * l
    v = f - (1.0 - min_prob) ** gamma * lmin            # A - FL_k >= 0
    return 1 - b.gather(v) / v.sum(1)


def _k_fl_eps(b: Batch, m: float, gamma: float, detach: bool) -> Tensor:
    # FL on the epsilon-softmax: -(1 - p^_y)^gamma log p^_y, with -log p^_y = CE_eps
    ce = _k_ce_eps(b, m)
    if gamma == 0:
        return ce
    base = -torch.expm1(-ce)                             # 1 - p^_y, exact near p^_y = 1
    if detach:
        return _core.const_factor_mul(base.clamp_min(0.0).pow(gamma), ce)
    return _focal_factor(base, gamma) * ce


_JS_EPS = 1e-7


def _k_js(b: Batch, pi1: float) -> Tensor:
    # m = pi1 e_y + (1 - pi1) p; JS = (pi1 KL(e_y || m) + (1 - pi1) KL(p || m)) / Z,
    # Z = -(1 - pi1) log(1 - pi1), logs of p and m clamped at 1e-7 (m also at 1) as the reference.
    # No one-hot: every class gets m_k = (1 - pi1) p_k, then the label's entry is corrected.
    lmin = math.log(_JS_EPS)
    logp = b.logp()
    p = logp.exp()
    lq = (logp + math.log1p(-pi1)).clamp(lmin, 0.0)      # log clamp((1 - pi1) p_k)
    lpc = logp.clamp_min(lmin)                           # log clamp(p_k)
    s = (p * (lpc - lq)).sum(1)
    lm_y = torch.log1p(b.one_minus_p_y() * -(1.0 - pi1)).clamp(lmin, 0.0)  # log m_y, m_y = 1 - (1-pi1)(1-p_y)
    kl_p = s + b.gather(p) * (b.gather(lq) - lm_y)
    z = -(1.0 - pi1) * math.log1p(-pi1)
    return (pi1 * -lm_y + (1.0 - pi1) * kl_p) / z


def _k_ldr_kl(b: Batch, margin: float, lam: float) -> Tensor:
    # s = softplus(z) / mean_k softplus(z_k); d_k = margin 1[k != y] + s_k - s_y;
    # L = lam log((1/K) sum_k exp(d_k / lam)) (LDRLoss_V1). The mean is kept >= the smallest normal
    # number, so that a row whose softplus all underflow gives s = 0, not 0/0.
    sp = torch.nn.functional.softplus(b.logits)
    s = sp / sp.mean(1, keepdim=True).clamp_min(_core.tiny(sp.dtype))
    d = (s - s.gather(1, b.index) + margin).scatter(1, b.index, 0.0)
    return lam * (torch.logsumexp(d / lam, 1) - math.log(b.num_classes))


def _exp_t(u: Tensor, t: float) -> Tensor:
    return torch.relu(1.0 + (1.0 - t) * u) ** (1.0 / (1.0 - t))


def _log_t_scalar(u: float, t: float) -> float:
    return math.log(u) if t == 1 else (u ** (1.0 - t) - 1.0) / (1.0 - t)


#: Newton steps after the bisection of the tempered softmax's normaliser (t2 < 1)
_BT_NEWTON = 8


def _bt_normaliser(a: Tensor, t: float, num_iters: int) -> Tensor:
    """The tempered softmax's normaliser ``lam >= 0`` of ``a = z - max z`` (no gradient), with
    ``sum_k exp_t(a_k - lam) = 1``. t > 1: the reference's fixed point, ``num_iters`` steps.
    t < 1: ``num_iters`` bisection steps (the reference), then Newton steps from the lower end:
    the sum is convex and decreasing in lam, so they rise monotonically to the root."""
    if t > 1:
        x = a
        for _ in range(num_iters):
            x = a * _exp_t(x, t).sum(1, keepdim=True) ** (1.0 - t)
        Z = _exp_t(x, t).sum(1, keepdim=True)
        return (1.0 - Z ** (t - 1.0)) / (1.0 - t)           # -log_t(1 / Z)
    eff = (a > -1.0 / (1.0 - t)).sum(1, keepdim=True).to(a.dtype)
    lo = torch.zeros_like(eff)
    hi = (1.0 - eff ** (t - 1.0)) / (1.0 - t)              # -log_t(1 / K_eff)
    for _ in range(num_iters):
        mid = (lo + hi) * 0.5
        below = _exp_t(a - mid, t).sum(1, keepdim=True) < 1.0
        lo = torch.where(below, lo, mid)
        hi = torch.where(below, mid, hi)
    lam = lo
    for _ in range(_BT_NEWTON):
        base = torch.relu(1.0 + (1.0 - t) * (a - lam))
        r = (base ** (1.0 / (1.0 - t))).sum(1, keepdim=True) - 1.0
        d = (base ** (t / (1.0 - t))).sum(1, keepdim=True)  # -dr/dlam = sum_k exp_t(.)^t
        lam = lam + r / d
    return lam


def _k_bi_tempered(b: Batch, t1: float, t2: float, label_smoothing: float, num_iters: int) -> Tensor:
    # p^ = exp_t2(z - lam(z)) (tempered softmax), loss (smoothed labels y~, docs/losses.md):
    #   sum_k [y~_k (log_t1(y~_k + 1e-10) - log_t1(p^_k)) - (y~_k^(2-t1) - p^_k^(2-t1)) / (2-t1)].
    # lam's value is the reference's iterate; its derivative is the implicit one,
    # d lam / dz = e = p^^t2 / sum p^^t2 (the reference's own gradient), with a symmetric second
    # derivative (see below). Every power of p^ is exp(c log p^): no 0^negative at the support's end.
    K = b.num_classes
    s = label_smoothing
    if t2 == 1:
        logq = b.logp()
    else:
        z = b.logits
        zd = z.detach()
        mu = zd.amax(1, keepdim=True)
        lam0 = _bt_normaliser(zd - mu, t2, num_iters) + mu
        delta = z - zd                                       # value 0, derivative the identity

        def logq_at(lam):
            base = (1.0 + (1.0 - t2) * (z - lam)).clamp_min(_core.tiny(z.dtype))
            return torch.log(base) / (1.0 - t2)

        e0 = torch.softmax(t2 * logq_at(lam0).detach(), 1)
        lam1 = lam0 + (e0 * delta).sum(1, keepdim=True)     # d lam1 / dz = e0 (first order)
        e1 = torch.softmax(t2 * logq_at(lam1), 1)            # e with its first-order dependence on z
        lam = lam0 + (0.5 * (e1 + e1.detach()) * delta).sum(1, keepdim=True)
        logq = logq_at(lam)

    def log_t1(lq):
        return lq if t1 == 1 else torch.expm1((1.0 - t1) * lq) / (1.0 - t1)

    mass = torch.exp((2.0 - t1) * logq).sum(1) / (2.0 - t1)  # sum_k p^_k^(2-t1) / (2-t1)
    w_other = s / (K - 1) if K > 1 else 0.0
    w_y = 1.0 - s
    const = w_y * _log_t_scalar(w_y + 1e-10, t1) - w_y ** (2.0 - t1) / (2.0 - t1)
    if w_other > 0:
        const += (K - 1) * (w_other * _log_t_scalar(w_other + 1e-10, t1) - w_other ** (2.0 - t1) / (2.0 - t1))
        lt = log_t1(logq)
        cross = w_other * lt.sum(1) + (w_y - w_other) * b.gather(lt)
    else:
        cross = w_y * log_t1(b.gather(logq))
    return const - cross + mass


def _clip_logits(z: Tensor, tau: float, p: float, legacy_threshold: bool) -> Tensor:
    """LogitClip: ``z min(1, tau / ||z||_p)`` over dim 1; ``legacy_threshold``: the official code,
    ``n = ||z||_p + 1e-7``, ``z tau / n`` if ``n > 1 / tau`` else ``z`` (bound tau, threshold 1/tau)."""
    norm = torch.linalg.vector_norm(z, ord=p, dim=1, keepdim=True)
    if legacy_threshold:
        n = norm + 1e-7
        return torch.where(n > 1.0 / tau, z * (tau / n), z)
    return z * (tau / norm.clamp_min(tau))             # tau / max(n, tau) = min(1, tau / n), no 0/0


def _k_logit_clip(b: Batch, kernel, tau: float, p: float, legacy_threshold: bool) -> Tensor:
    """``kernel`` on the clipped logits (a new batch: same labels and mask)."""
    return kernel(Batch(_clip_logits(b.logits, tau, p, legacy_threshold), b.target, b.valid))


def _combine(b: Batch, alpha, k1, args1, beta, k2, args2) -> Tensor:
    """alpha * k1 + beta * k2 on a shared batch (a zero coefficient skips its term)."""
    if alpha == 0:
        return beta * k2(b, *args2)
    if beta == 0:
        return alpha * k1(b, *args1)
    return alpha * k1(b, *args1) + beta * k2(b, *args2)


def _run(input, target, kernel, weight, ignore_index, reduction, min_classes=1):
    return _core.compute(input, target, kernel, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, min_classes=min_classes)


# ------------------------------------------------------------------------------------------------
# public functions
# ------------------------------------------------------------------------------------------------

def ce(input: Tensor, target: Tensor, *, weight: Optional[Tensor] = None, ignore_index: int = -100,
       reduction: str = "mean") -> Tensor:
    """Cross-entropy ``-log p_y`` (same values as ``F.cross_entropy``)."""
    return _run(input, target, _k_ce, weight, ignore_index, reduction)


def focal(input: Tensor, target: Tensor, *, gamma: float = 0.5, detach: bool = False,
          weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Focal loss ``-(1 - p_y)^gamma log p_y`` (Lin et al. 2017), gamma >= 0.

    ``detach=False`` (default) differentiates the whole expression; ``detach=True`` treats the
    factor ``(1 - p_y)^gamma`` as a constant, as the APL/ALFs reference code does (same value,
    different gradient). The ``paper:*``/``apl:*`` presets set ``detach=True``.
    """
    CHECKS["focal"](gamma, detach)
    return _run(input, target, lambda b: _k_focal(b, gamma, detach), weight, ignore_index, reduction)


def mae(input: Tensor, target: Tensor, *, scale: float = 2.0, weight: Optional[Tensor] = None,
        ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``scale * (1 - p_y)``.

    The default ``scale=2`` is ``||e_y - p||_1 = 2(1 - p_y)`` (the definition, and the ALFs code);
    the APL code computes ``1 - p_y`` (``scale=1``, used by the ``apl:*`` presets).
    """
    CHECKS["mae"](scale)
    return _run(input, target, lambda b: _k_mae(b, scale), weight, ignore_index, reduction)


def rce(input: Tensor, target: Tensor, *, A: float = RCE_A, eps: float = REF_EPS,
        weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Reverse cross-entropy ``A * sum_{k != y} max(p_k, eps)`` (Wang et al. 2019).

    ``A = -ln(1e-4) ~ 9.2103`` and the clamp ``eps = 1e-7`` are the reference code's (the papers
    write A = -4). ``eps=0`` gives exactly ``A (1 - p_y)``.
    """
    CHECKS["rce"](A, eps)
    return _run(input, target, lambda b: _k_rce(b, A, eps), weight, ignore_index, reduction)


def gce(input: Tensor, target: Tensor, *, q: float = 0.7, eps: float = REF_EPS,
        weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Generalised cross-entropy ``(1 - max(p_y, eps)^q) / q`` (Zhang & Sabuncu 2018), 0 < q <= 1."""
    CHECKS["gce"](q, eps)
    return _run(input, target, lambda b: _k_gce(b, q, eps), weight, ignore_index, reduction)


def sce(input: Tensor, target: Tensor, *, alpha: float = 0.1, beta: float = 1.0, A: float = RCE_A,
        eps: float = REF_EPS, weight: Optional[Tensor] = None, ignore_index: int = -100,
        reduction: str = "mean") -> Tensor:
    """Symmetric cross-entropy ``alpha * CE + beta * RCE(A, eps)`` (Wang et al. 2019)."""
    CHECKS["sce"](alpha, beta, A, eps)
    return _run(input, target, lambda b: _k_sce(b, alpha, beta, A, eps), weight, ignore_index, reduction)


def nce(input: Tensor, target: Tensor, *, weight: Optional[Tensor] = None, ignore_index: int = -100,
        reduction: str = "mean") -> Tensor:
    """Normalised cross-entropy ``log p_y / sum_k log p_k`` (Ma et al. 2020); symmetric: sums to 1 over labels."""
    return _run(input, target, _k_nce, weight, ignore_index, reduction, min_classes=2)


def nfl(input: Tensor, target: Tensor, *, gamma: float = 0.5, detach: bool = False,
        weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Normalised focal loss ``FL_y / sum_k FL_k`` with ``FL_k = -(1-p_k)^gamma log p_k`` (Ma et al. 2020).

    ``detach=True`` treats every focal factor as a constant, like the reference code.
    """
    CHECKS["nfl"](gamma, detach)
    return _run(input, target, lambda b: _k_nfl(b, gamma, detach), weight, ignore_index, reduction,
                min_classes=2)


def ngce(input: Tensor, target: Tensor, *, q: float = 0.7, eps: float = REF_EPS,
         weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Normalised GCE ``(1 - p~_y^q) / (K - sum_k p~_k^q)``, ``p~ = max(p, eps)`` (Ma et al. 2020)."""
    CHECKS["ngce"](q, eps)
    return _run(input, target, lambda b: _k_ngce(b, q, eps), weight, ignore_index, reduction,
                min_classes=2)


def nmae(input: Tensor, target: Tensor, *, scale: float = 1.0, weight: Optional[Tensor] = None,
         ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Normalised MAE ``scale * (1 - p_y) / (K - 1)`` (= MAE / sum_k MAE_k for ``scale=1``).

    The APL code computes ``(1 - p_y) / (2 (K - 1))``, i.e. ``scale=0.5``.
    """
    CHECKS["nmae"](scale)
    return _run(input, target, lambda b: _k_nmae(b, scale), weight, ignore_index, reduction,
                min_classes=2)


def nrce(input: Tensor, target: Tensor, *, eps: float = REF_EPS, weight: Optional[Tensor] = None,
         ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Normalised RCE ``RCE_y / sum_k RCE_k = sum_{k!=y} p~_k / ((K-1) sum_k p~_k)``.

    The references multiply RCE by ``1 / 4 * (K - 1)`` = (K-1)/4 (an operator-precedence bug);
    asymloss uses the correct normaliser (with ``eps=0`` this equals NMAE).
    """
    CHECKS["nrce"](eps)
    return _run(input, target, lambda b: _k_nrce(b, eps), weight, ignore_index, reduction, min_classes=2)


def agce(input: Tensor, target: Tensor, *, a: float = 0.6, q: float = 0.6,
         weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Asymmetric GCE ``((a+1)^q - (a+p_y)^q) / q`` (Zhou et al. 2021), a > 0, q > 0; zero at p_y = 1."""
    CHECKS["agce"](a, q)
    return _run(input, target, lambda b: _k_agce(b, a, q), weight, ignore_index, reduction)


def aul(input: Tensor, target: Tensor, *, a: float = 5.5, q: float = 3.0,
        weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Asymmetric unhinged loss ``((a-p_y)^q - (a-1)^q) / q`` (Zhou et al. 2021; ``AUELoss``), a > 1, q > 0."""
    CHECKS["aul"](a, q)
    return _run(input, target, lambda b: _k_aul(b, a, q), weight, ignore_index, reduction)


def ael(input: Tensor, target: Tensor, *, a: float = 2.5, weight: Optional[Tensor] = None,
        ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Asymmetric exponential loss ``exp(-p_y / a)`` (Zhou et al. 2021; ``AExpLoss``), a > 0."""
    CHECKS["ael"](a)
    return _run(input, target, lambda b: _k_ael(b, a), weight, ignore_index, reduction)


def anorm(input: Tensor, target: Tensor, *, a: float = 1.5, p: float = 0.9, eps: float = 1e-5,
          weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Asymmetric norm loss ``(sum_k |a 1[k=y] - p~_k|^p - (a-1)^p) / p``, ``p~ = max(p, eps)``.

    From the ALFs reference code (``ANormLoss``; not in the paper's tables), a > 1, p > 0.
    """
    CHECKS["anorm"](a, p, eps)
    return _run(input, target, lambda b: _k_anorm(b, a, p, eps), weight, ignore_index, reduction)


def nnce(input: Tensor, target: Tensor, *, min_prob: float = 1e-7, weight: Optional[Tensor] = None,
         ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Normalised negative CE ``1 - (A + log p~_y) / sum_k (A + log p~_k)`` (Ye et al. 2023).

    ``p~ = max(p, min_prob)``, ``A = -log(min_prob)``.
    """
    CHECKS["nnce"](min_prob)
    return _run(input, target, lambda b: _k_nnce(b, min_prob), weight, ignore_index, reduction,
                min_classes=2)


def amse(input: Tensor, target: Tensor, *, a: float = 30.0, weight: Optional[Tensor] = None,
         ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Asymmetric MSE ``||p - a e_y||^2 / K`` (Wang et al. 2025, JAL), a > 0."""
    CHECKS["amse"](a)
    return _run(input, target, lambda b: _k_amse(b, a), weight, ignore_index, reduction)


def ce_eps(input: Tensor, target: Tensor, *, m: float = 1e5, weight: Optional[Tensor] = None,
           ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """CE on the epsilon-softmax (Wang et al. 2024): ``p^ = (p + m e_t) / (1 + m)``, ``t = argmax p``,
    ``-log max(p^_y, 1e-8)``."""
    CHECKS["ce_eps"](m)
    return _run(input, target, lambda b: _k_ce_eps(b, m), weight, ignore_index, reduction)


def taylor_ce(input: Tensor, target: Tensor, *, t: int = 2, weight: Optional[Tensor] = None,
              ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Taylor cross-entropy ``sum_{k=1}^t (1 - p_y)^k / k`` (Feng et al. 2020), integer order t >= 1.

    The t-th order Taylor series of ``-log p_y`` around ``p_y = 1``: ``t=1`` is ``1 - p_y``
    (MAE / 2), large t tends to CE.
    """
    CHECKS["taylor_ce"](t)
    return _run(input, target, lambda b: _k_taylor_ce(b, t), weight, ignore_index, reduction)


def poly1_ce(input: Tensor, target: Tensor, *, epsilon: float = 1.0, weight: Optional[Tensor] = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Poly-1 loss ``-log p_y + epsilon (1 - p_y)`` (Leng et al. 2022), epsilon >= -1."""
    CHECKS["poly1_ce"](epsilon)
    return _run(input, target, lambda b: _k_poly1_ce(b, epsilon), weight, ignore_index, reduction)


def nnfl(input: Tensor, target: Tensor, *, gamma: float = 0.5, min_prob: float = 1e-7, detach: bool = True,
         weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Normalised negative focal loss of ANL (Ye et al. 2023)::

        1 - (A - FL_y) / (K A - sum_k FL_k),  FL_k = -(1 - p~_k)^gamma log p~_k,
        p~ = max(p, min_prob),  A = -(1 - min_prob)^gamma log min_prob.

    ``detach=True`` (default, the reference code) treats the focal factors as constants.
    """
    CHECKS["nnfl"](gamma, min_prob, detach)
    return _run(input, target, lambda b: _k_nnfl(b, gamma, min_prob, detach), weight, ignore_index,
                reduction, min_classes=2)


def fl_eps(input: Tensor, target: Tensor, *, m: float = 1e5, gamma: float = 0.1, detach: bool = True,
           weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Focal loss on the epsilon-softmax (Wang et al. 2024): ``-(1 - p^_y)^gamma log p^_y`` with
    ``p^`` as in :func:`ce_eps`; ``detach=True`` (default, the reference code) treats the factor
    as a constant."""
    CHECKS["fl_eps"](m, gamma, detach)
    return _run(input, target, lambda b: _k_fl_eps(b, m, gamma, detach), weight, ignore_index, reduction)


def js(input: Tensor, target: Tensor, *, pi1: float = 0.5, weight: Optional[Tensor] = None,
       ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Jensen-Shannon loss (Englesson & Azizpour 2021), one view, 0 < pi1 < 1::

        (pi1 KL(e_y || m) + (1 - pi1) KL(p || m)) / Z,  m = pi1 e_y + (1 - pi1) p,
        Z = -(1 - pi1) log(1 - pi1),

    logarithms of ``p`` and ``m`` clamped at 1e-7 as in the reference code.
    """
    CHECKS["js"](pi1)
    return _run(input, target, lambda b: _k_js(b, pi1), weight, ignore_index, reduction)


def ldr_kl(input: Tensor, target: Tensor, *, margin: float = 0.1, lam: float = 1.0,
           weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """LDR-KL loss (Zhu et al. 2023; ``LDRLoss_V1``), margin >= 0, lam > 0::

        lam log((1/K) sum_k exp(d_k / lam)),  d_k = margin 1[k != y] + s_k - s_y,
        s = softplus(z) / mean_k softplus(z_k).

    Can be negative.
    """
    CHECKS["ldr_kl"](margin, lam)
    return _run(input, target, lambda b: _k_ldr_kl(b, margin, lam), weight, ignore_index, reduction)


def bi_tempered(input: Tensor, target: Tensor, *, t1: float = 0.8, t2: float = 1.2,
                label_smoothing: float = 0.0, num_iters: int = 5, weight: Optional[Tensor] = None,
                ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Bi-tempered logistic loss (Amid et al. 2019), 0 <= t1 <= 1 (log_t temperature), t2 > 0
    (tempered softmax); t1 = t2 = 1 is CE. ``label_smoothing`` s in [0, 1): the label gets 1 - s,
    every other class s / (K - 1). The tempered softmax's normaliser: for t2 > 1 ``num_iters``
    fixed-point steps as the reference; for t2 < 1 ``num_iters`` bisection steps then Newton steps
    to convergence (the reference's 5 bisection steps alone are inaccurate).
    """
    CHECKS["bi_tempered"](t1, t2, label_smoothing, num_iters)
    return _run(input, target, lambda b: _k_bi_tempered(b, t1, t2, label_smoothing, num_iters),
                weight, ignore_index, reduction)


def logit_clip(input: Tensor, target: Tensor, *, loss="ce", tau: float = 1.0, p: float = 2.0,
               legacy_threshold: bool = False, weight: Optional[Tensor] = None, ignore_index: int = -100,
               reduction: str = "mean") -> Tensor:
    """LogitClip (Wei et al. 2023): ``loss`` on the logits clipped to ``||z||_p <= tau``,
    ``z min(1, tau / ||z||_p)``; tau > 0, p >= 1.

    ``loss``: a registered loss name (built with its defaults) or an asymloss loss module (its
    hyperparameters; the module's own weight/ignore_index/reduction are not used).
    ``legacy_threshold=True`` reproduces the official code: the logits are scaled to norm tau only
    when ``||z||_p + 1e-7 > 1 / tau`` (its ``--temp T`` is ``tau = 1 / T``).
    """
    CHECKS["logit_clip"](tau, p, legacy_threshold)
    inner = _inner_loss(loss)
    return _run(input, target, lambda b: _k_logit_clip(b, inner.kernel, tau, p, legacy_threshold),
                weight, ignore_index, reduction, min_classes=inner.min_classes)


def ce_lc(input: Tensor, target: Tensor, *, tau: float = 1.0, p: float = 2.0, legacy_threshold: bool = False,
          weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """CE on the clipped logits: ``logit_clip(..., loss="ce")``."""
    CHECKS["logit_clip"](tau, p, legacy_threshold)
    return _run(input, target, lambda b: _k_logit_clip(b, _k_ce, tau, p, legacy_threshold),
                weight, ignore_index, reduction)


def _inner_loss(loss):
    from .modules import Loss
    from .registry import create_loss

    if isinstance(loss, str):
        return create_loss(loss)
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a registered loss name or an asymloss loss module; got {type(loss).__name__}.")
    return loss


# --- combinations (active-passive) --------------------------------------------------------------

def nce_agce(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 4.0, a: float = 6.0,
             q: float = 1.5, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * NCE + beta * AGCE(a, q)``."""
    _check_ab(alpha, beta); CHECKS["agce"](a, q)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce, (), beta, _k_agce, (a, q)),
                weight, ignore_index, reduction, min_classes=2)


def nce_aul(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 4.0, a: float = 6.3,
            q: float = 1.5, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * NCE + beta * AUL(a, q)``."""
    _check_ab(alpha, beta); CHECKS["aul"](a, q)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce, (), beta, _k_aul, (a, q)),
                weight, ignore_index, reduction, min_classes=2)


def nce_ael(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 4.0, a: float = 5.0,
            weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * NCE + beta * AEL(a)``."""
    _check_ab(alpha, beta); CHECKS["ael"](a)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce, (), beta, _k_ael, (a,)),
                weight, ignore_index, reduction, min_classes=2)


def nce_rce(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 1.0, A: float = RCE_A,
            eps: float = REF_EPS, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * NCE + beta * RCE(A, eps)``."""
    _check_ab(alpha, beta); CHECKS["rce"](A, eps)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce, (), beta, _k_rce, (A, eps)),
                weight, ignore_index, reduction, min_classes=2)


def nce_mae(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 1.0, scale: float = 2.0,
            weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * NCE + beta * MAE(scale)``."""
    _check_ab(alpha, beta); CHECKS["mae"](scale)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce, (), beta, _k_mae, (scale,)),
                weight, ignore_index, reduction, min_classes=2)


def nfl_rce(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 1.0, gamma: float = 0.5,
            detach: bool = False, A: float = RCE_A, eps: float = REF_EPS, weight=None,
            ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * NFL(gamma) + beta * RCE(A, eps)``."""
    _check_ab(alpha, beta); CHECKS["nfl"](gamma, detach); CHECKS["rce"](A, eps)
    return _run(input, target,
                lambda b: _combine(b, alpha, _k_nfl, (gamma, detach), beta, _k_rce, (A, eps)),
                weight, ignore_index, reduction, min_classes=2)


def anl_ce(input: Tensor, target: Tensor, *, alpha: float = 5.0, beta: float = 5.0,
           min_prob: float = 1e-7, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """ANL-CE ``alpha * NCE + beta * NNCE`` (Ye et al. 2023). The paper's ``delta * ||theta||_1``
    term acts on the model's parameters: it belongs to the training engine, not here."""
    _check_ab(alpha, beta); CHECKS["nnce"](min_prob)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce_logp, (), beta, _k_nnce, (min_prob,)),
                weight, ignore_index, reduction, min_classes=2)


def jal_ce(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 1.0, a: float = 30.0,
           weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """JAL-CE ``alpha * NCE + beta * AMSE(a)`` (Wang et al. 2025); its L1 term belongs to the engine."""
    _check_ab(alpha, beta); CHECKS["amse"](a)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nce, (), beta, _k_amse, (a,)),
                weight, ignore_index, reduction, min_classes=2)


def ce_eps_mae(input: Tensor, target: Tensor, *, alpha: float = 0.01, beta: float = 5.0, m: float = 1e5,
               weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """``alpha * CE_eps(m) + beta * 2(1 - p_y)`` (Wang et al. 2024; defaults: CIFAR-10 symmetric)."""
    _check_ab(alpha, beta); CHECKS["ce_eps"](m)
    return _run(input, target, lambda b: _combine(b, alpha, _k_ce_eps, (m,), beta, _k_mae, (2.0,)),
                weight, ignore_index, reduction)


def jal_fl(input: Tensor, target: Tensor, *, alpha: float = 1.0, beta: float = 1.0, gamma: float = 0.5,
           detach: bool = True, a: float = 30.0, weight=None, ignore_index: int = -100,
           reduction: str = "mean") -> Tensor:
    """JAL-FL ``alpha * NFL(gamma) + beta * AMSE(a)`` (Wang et al. 2025); focal factors detached by
    default as in the reference code; its L1 term belongs to the engine."""
    _check_ab(alpha, beta); CHECKS["nfl"](gamma, detach); CHECKS["amse"](a)
    return _run(input, target, lambda b: _combine(b, alpha, _k_nfl, (gamma, detach), beta, _k_amse, (a,)),
                weight, ignore_index, reduction, min_classes=2)


def anl_fl(input: Tensor, target: Tensor, *, alpha: float = 5.0, beta: float = 5.0, gamma: float = 0.5,
           min_prob: float = 1e-7, detach: bool = True, weight=None, ignore_index: int = -100,
           reduction: str = "mean") -> Tensor:
    """ANL-FL ``alpha * NFL(gamma) + beta * NNFL(gamma, min_prob)`` (Ye et al. 2023), one gamma for
    both terms, focal factors detached by default as in the reference code; the L1 term belongs to
    the engine."""
    _check_ab(alpha, beta); CHECKS["nnfl"](gamma, min_prob, detach)
    return _run(input, target,
                lambda b: _combine(b, alpha, _k_nfl, (gamma, detach), beta, _k_nnfl, (gamma, min_prob, detach)),
                weight, ignore_index, reduction, min_classes=2)


def fl_eps_mae(input: Tensor, target: Tensor, *, alpha: float = 0.01, beta: float = 5.0, m: float = 1e5,
               gamma: float = 0.1, detach: bool = True, weight=None, ignore_index: int = -100,
               reduction: str = "mean") -> Tensor:
    """``alpha * FL_eps(m, gamma) + beta * 2(1 - p_y)`` (Wang et al. 2024; defaults: CIFAR-10 symmetric)."""
    _check_ab(alpha, beta); CHECKS["fl_eps"](m, gamma, detach)
    return _run(input, target,
                lambda b: _combine(b, alpha, _k_fl_eps, (m, gamma, detach), beta, _k_mae, (2.0,)),
                weight, ignore_index, reduction)
