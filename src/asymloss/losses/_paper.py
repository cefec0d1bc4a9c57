"""The paper's losses and their baselines (Zhou et al. 2021; Ma et al. 2020; docs/losses.md):
one declaration each (see :mod:`asymloss.losses._define`; docs/adding-a-loss.md).

Each kernel maps a :class:`~asymloss.losses._core.Batch` to the per-sample loss; its docstring is
the documentation of ``asymloss.functional.<name>`` and of the module class.
"""
from __future__ import annotations

import math

import torch

from . import _core
from ._core import Batch
from ._define import Bool, Real, combination, combine_kernels, loss

Tensor = torch.Tensor

#: RCE's constant: ``A = -log(1e-4)``, the reference code's ``-log`` of its clamped one-hot.
RCE_A = -math.log(1e-4)
#: Probability clamp of the reference code (RCE, GCE, NGCE).
REF_EPS = 1e-7

_EPS = Real(REF_EPS, ge=0, lt=1)
_GAMMA = Real(0.5, ge=0)


# ------------------------------------------------------------------------------------------------
# closed-form asymmetry ratios (docs/theory.md): r = inf |l'| / sup |l'| over [0, 1]
# ------------------------------------------------------------------------------------------------

def agce_ratio(a: float, q: float) -> float:
    """r(AGCE) = ((a+1)/a)^(q-1) for q <= 1, else 1."""
    if q >= 1:
        return 1.0
    # ((a+1)/a)^(q-1) = exp((q-1) * log1p(1/a)), accurate for tiny and huge a
    return math.exp((q - 1.0) * math.log1p(1.0 / a))


def aul_ratio(a: float, q: float) -> float:
    """r(AUL) = ((a-1)/a)^(q-1) for q > 1, else 1."""
    if q <= 1:
        return 1.0
    return math.exp((q - 1.0) * math.log1p(-1.0 / a))


def ael_ratio(a: float) -> float:
    """r(AEL) = exp(-1/a)."""
    return math.exp(-1.0 / a)


def _unbounded(**_) -> float:
    """l(0) = inf or l'(0) = -inf (CE, focal, Poly-1): r = 0."""
    return 0.0


def _linear(**_) -> float:
    """l linear in p_y (MAE, RCE, NMAE): r = 1."""
    return 1.0


def _gce_ratio(q: float, **_) -> float:
    """GCE: l'(0) = -inf for q < 1 (r = 0); concave for q >= 1 (r = 1)."""
    return 0.0 if q < 1 else 1.0


def _sce_ratio(alpha: float, beta: float, **_) -> float:
    """SCE = alpha CE + beta RCE: r = 0 when alpha > 0, 1 when alpha = 0."""
    if alpha == 0 and beta == 0:
        raise ValueError("SCE with alpha = beta = 0 is the zero loss; its asymmetry ratio is undefined.")
    return 0.0 if alpha > 0 else 1.0


# ------------------------------------------------------------------------------------------------
# shared pieces
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


def _off_target_mass(b: Batch, eps: float) -> Tensor:
    """sum_{k != y} max(p_k, eps): ``1 - p_y`` for ``eps = 0``, else the fused clamped sum."""
    if eps == 0:
        return b.one_minus_p_y()
    return b.clamped_off_target(eps)[0]


def _sum_exp_scaled(b: Batch, s: float, lmin: float) -> Tensor:
    """sum_k exp(s * max(log p_k, lmin)) = sum_k max(p_k^s, e^(s lmin)), with a fused backward."""
    floor = math.exp(s * lmin) if lmin > -math.inf else 0.0
    return b.row_sum("powclamp", s, floor)


def _k_nce_logp(b: Batch) -> Tensor:
    """NCE on the batch's log_softmax (when another term needs every log p_k too)."""
    den = b.row_sum("sum")                               # first: gathers log p_y in the same Function
    return b.logp_y() / den


def _focal_mass(b: Batch, gamma: float, detach: bool) -> Tensor:
    """sum_k (1 - p_k)^gamma log p_k (negative), with a fused backward (gathers log p_y too)."""
    return b.row_sum("focal", gamma, 1.0 if detach else 0.0)


# ------------------------------------------------------------------------------------------------
# single losses
# ------------------------------------------------------------------------------------------------

@loss("ce", cls="CE", kind="active", pointwise=True, ratio=_unbounded,
      aliases=("cross_entropy", "crossentropy", "cross_entropy_loss"))
def _k_ce(b: Batch) -> Tensor:
    """Cross-entropy ``-log p_y`` (same values as ``F.cross_entropy``)."""
    return -b.logp_y()


@loss("focal", cls="FocalLoss", kind="active", pointwise=True, ratio=_unbounded,
      params=dict(gamma=_GAMMA, detach=Bool(False)), aliases=("fl", "focal_loss"))
def _k_focal(b: Batch, gamma: float, detach: bool) -> Tensor:
    """Focal loss ``-(1 - p_y)^gamma log p_y`` (Lin et al. 2017), gamma >= 0.

    ``detach=False`` (default) differentiates the whole expression; ``detach=True`` treats the
    factor ``(1 - p_y)^gamma`` as a constant, as the APL/ALFs reference code does (same value,
    different gradient). The ``paper:*``/``apl:*`` presets set ``detach=True``.
    """
    if gamma == 0:
        return -b.logp_y()
    return -_focal_term(b, gamma, detach)


@loss("mae", cls="MAE", kind="passive", pointwise=True, ratio=_linear,
      params=dict(scale=Real(2.0, gt=0)), aliases=("mean_absolute_error",))
def _k_mae(b: Batch, scale: float) -> Tensor:
    """Mean absolute error ``scale * (1 - p_y)``.

    The default ``scale=2`` is ``||e_y - p||_1 = 2(1 - p_y)`` (the definition, and the ALFs code);
    the APL code computes ``1 - p_y`` (``scale=1``, used by the ``apl:*`` presets).
    """
    return scale * b.one_minus_p_y()


@loss("rce", cls="RCE", kind="passive", pointwise=True, ratio=_linear,
      params=dict(A=Real(RCE_A, gt=0), eps=_EPS), aliases=("reverse_cross_entropy",))
def _k_rce(b: Batch, A: float, eps: float) -> Tensor:
    """Reverse cross-entropy ``A * sum_{k != y} max(p_k, eps)`` (Wang et al. 2019).

    ``A = -ln(1e-4) ~ 9.2103`` and the clamp ``eps = 1e-7`` are the reference code's (the papers
    write A = -4). ``eps=0`` gives exactly ``A (1 - p_y)``.
    """
    return A * _off_target_mass(b, eps)


@loss("gce", cls="GCE", kind="active", pointwise=True, ratio=_gce_ratio,
      params=dict(q=Real(0.7, gt=0, le=1), eps=_EPS), aliases=("generalized_cross_entropy",))
def _k_gce(b: Batch, q: float, eps: float) -> Tensor:
    """Generalised cross-entropy ``(1 - max(p_y, eps)^q) / q`` (Zhang & Sabuncu 2018), 0 < q <= 1."""
    lp = b.logp_y()
    if eps > 0:
        lp = lp.clamp_min(math.log(eps))
    return (0.0 - torch.expm1(q * lp)) / q


@loss("sce", cls="SCE", kind="active", pointwise=True, ratio=_sce_ratio,
      params=dict(alpha=Real(0.1, ge=0), beta=Real(1.0, ge=0), A=Real(RCE_A, gt=0), eps=_EPS),
      aliases=("symmetric_cross_entropy",))
def _k_sce(b: Batch, alpha: float, beta: float, A: float, eps: float) -> Tensor:
    """Symmetric cross-entropy ``alpha * CE + beta * RCE(A, eps)`` (Wang et al. 2019)."""
    if eps == 0 or alpha == 0 or beta == 0 or b.has_logp:
        return combine_kernels(b, alpha, _k_ce, {}, False, beta, _k_rce, {"A": A, "eps": eps}, False)
    # one fused Function for both terms: no log_softmax forward or backward
    off, _, logp_y = b.clamped_off_target(eps, with_logp_y=True)
    return (A * beta) * off - alpha * logp_y


@loss("nce", cls="NCE", kind="active", min_classes=2, aliases=("normalized_cross_entropy",))
def _k_nce(b: Batch) -> Tensor:
    """Normalised cross-entropy ``log p_y / sum_k log p_k`` (Ma et al. 2020); symmetric: sums to 1 over labels."""
    # fused on the logits (shares p with the batch) for short rows, where exp(log p) is cheap
    # next to the log_softmax backward it replaces; from C ~ 64 on the log_softmax path is faster
    if not b.has_logp and not b.has_logp_y and b.num_classes < 64:
        total, logp_y = b.log_prob_sum()
        return logp_y / total
    return _k_nce_logp(b)


@loss("nfl", cls="NFL", kind="active", min_classes=2, needs_logp=True,
      params=dict(gamma=_GAMMA, detach=Bool(False)), aliases=("normalized_focal_loss",))
def _k_nfl(b: Batch, gamma: float, detach: bool) -> Tensor:
    """Normalised focal loss ``FL_y / sum_k FL_k`` with ``FL_k = -(1-p_k)^gamma log p_k`` (Ma et al. 2020).

    ``detach=True`` treats every focal factor as a constant, like the reference code.
    """
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


@loss("ngce", cls="NGCE", kind="active", min_classes=2, needs_logp=True,
      params=dict(q=Real(0.7, gt=0, le=1), eps=_EPS))
def _k_ngce(b: Batch, q: float, eps: float) -> Tensor:
    """Normalised GCE ``(1 - p~_y^q) / (K - sum_k p~_k^q)``, ``p~ = max(p, eps)`` (Ma et al. 2020)."""
    leps = math.log(eps) if eps > 0 else -math.inf
    den = b.num_classes - _sum_exp_scaled(b, q, leps)   # first: gathers log p_y in the same Function
    lp = b.logp_y()
    if eps > 0:
        lp = lp.clamp_min(leps)
    return (0.0 - torch.expm1(q * lp)) / den


@loss("nmae", cls="NMAE", kind="passive", min_classes=2, pointwise=True, ratio=_linear,
      params=dict(scale=Real(1.0, gt=0)))
def _k_nmae(b: Batch, scale: float) -> Tensor:
    """Normalised MAE ``scale * (1 - p_y) / (K - 1)`` (= MAE / sum_k MAE_k for ``scale=1``).

    The APL code computes ``(1 - p_y) / (2 (K - 1))``, i.e. ``scale=0.5``.
    """
    return (scale / (b.num_classes - 1)) * b.one_minus_p_y()


@loss("nrce", cls="NRCE", kind="passive", min_classes=2, params=dict(eps=_EPS))
def _k_nrce(b: Batch, eps: float) -> Tensor:
    """Normalised RCE ``RCE_y / sum_k RCE_k = sum_{k!=y} p~_k / ((K-1) sum_k p~_k)``.

    The references multiply RCE by ``1 / 4 * (K - 1)`` = (K-1)/4 (an operator-precedence bug);
    asymloss uses the correct normaliser (with ``eps=0`` this equals NMAE).
    """
    if eps == 0:
        return b.one_minus_p_y() / (b.num_classes - 1)
    off, v_y, _ = b.clamped_off_target(eps)             # sum_k max(p_k, eps) = off + v_y
    return off / ((b.num_classes - 1) * (off + v_y))


@loss("agce", cls="AGCE", kind="passive", pointwise=True, ratio=agce_ratio,
      params=dict(a=Real(0.6, gt=0), q=Real(0.6, gt=0)), aliases=("agceloss",))
def _k_agce(b: Batch, a: float, q: float) -> Tensor:
    """Asymmetric GCE ``((a+1)^q - (a+p_y)^q) / q`` (Zhou et al. 2021), a > 0, q > 0; zero at p_y = 1."""
    # value: -(a+1)^q/q * expm1(q log r), r = (a + p_y)/(a + 1), with log r = log1p(-(1-p_y)/(a+1))
    # near p_y = 1 (exactly 0 at p_y = 1, no cancellation) and log((a + p_y)/(a + 1)) where r is
    # small (a + p_y -> 0: 1 - (1-p_y)/(a+1) would cancel). Gradient: that of the direct form
    # ((a+1)^q - (a+p_y)^q)/q, pow's backward q (a + p_y)^(q-1), exact for every a + p_y > 0
    # (expm1's backward is not: it loses everything once q log r < -17 in float32).
    # Fast path: for a number a >= 1, r >= a/(a+1) >= 1/2, so log1p needs no branch, and while
    # q log(a/(a+1)) > -8 the direct chain through expm1 and log1p keeps its precision: no carrier.
    direct = isinstance(a, float) and isinstance(q, float) and a >= 1 and q * math.log1p(-1 / (a + 1)) > -8
    om = b.one_minus_p_y()
    if direct:
        log_r = torch.log1p(om / -(a + 1))
    else:
        p = b.p_y()
        log_r = torch.where(om < 0.5 * (a + 1), torch.log1p(om / -(a + 1)), torch.log((p + a) / (a + 1)))
    value = torch.expm1(log_r * q) * (-((a + 1) ** q) / q)
    if direct:
        return value
    carrier = ((a + 1) ** q - (p + a) ** q) / q     # the same function: its gradient (in p, and in
    return value.detach() + (carrier - carrier.detach())   # a and q when they are tensors) is exact


@loss("aul", cls="AUL", kind="passive", pointwise=True, ratio=aul_ratio,
      params=dict(a=Real(5.5, gt=1), q=Real(3.0, gt=0)), aliases=("auel", "aueloss"))
def _k_aul(b: Batch, a: float, q: float) -> Tensor:
    """Asymmetric unhinged loss ``((a-p_y)^q - (a-1)^q) / q`` (Zhou et al. 2021; ``AUELoss``), a > 1, q > 0."""
    # ((a-p)^q - (a-1)^q)/q = (a-1)^q/q * expm1(q log1p((1-p)/(a-1))): exactly 0 at p = 1
    x = b.one_minus_p_y() / (a - 1)
    return torch.expm1(torch.log1p(x) * q) * (((a - 1) ** q) / q)


@loss("ael", cls="AEL", kind="passive", pointwise=True, ratio=ael_ratio,
      params=dict(a=Real(2.5, gt=0)), aliases=("aexp", "aexploss"))
def _k_ael(b: Batch, a: float) -> Tensor:
    """Asymmetric exponential loss ``exp(-p_y / a)`` (Zhou et al. 2021; ``AExpLoss``), a > 0."""
    return torch.exp(b.p_y() / -a)


@loss("anorm", cls="ANorm", kind="passive", needs_logp=True,
      params=dict(a=Real(1.5, gt=1), p=Real(0.9, gt=0), eps=Real(1e-5, gt=0, lt=1)), aliases=("anormloss",))
def _k_anorm(b: Batch, a: float, p: float, eps: float) -> Tensor:
    """Asymmetric norm loss ``(sum_k |a 1[k=y] - p~_k|^p - (a-1)^p) / p``, ``p~ = max(p, eps)``.

    From the ALFs reference code (``ANormLoss``; not in the paper's tables), a > 1, p > 0.
    """
    total = _sum_exp_scaled(b, p, math.log(eps))        # sum_k p~_k^p (first: gathers log p_y)
    py = b.p_y().clamp_min(eps)
    return (total - py.pow(p) + (a - py).pow(p) - (a - 1) ** p) / p


# ------------------------------------------------------------------------------------------------
# combinations (active-passive, Ma et al. 2020); defaults = paper:cifar10
# ------------------------------------------------------------------------------------------------

combination("nce+agce", "nce", "agce", cls="NCEandAGCE", func="nce_agce",
            defaults={"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5},
            doc="``alpha * NCE + beta * AGCE(a, q)`` (Zhou et al. 2021); defaults = paper:cifar10.")
combination("nce+aul", "nce", "aul", cls="NCEandAUL", func="nce_aul",
            defaults={"alpha": 1.0, "beta": 4.0, "a": 6.3, "q": 1.5},
            doc="``alpha * NCE + beta * AUL(a, q)`` (Zhou et al. 2021); defaults = paper:cifar10.")
combination("nce+ael", "nce", "ael", cls="NCEandAEL", func="nce_ael",
            defaults={"alpha": 1.0, "beta": 4.0, "a": 5.0},
            doc="``alpha * NCE + beta * AEL(a)`` (Zhou et al. 2021); defaults = paper:cifar10.")
combination("nce+rce", "nce", "rce", cls="NCEandRCE", func="nce_rce",
            defaults={"alpha": 1.0, "beta": 1.0},
            doc="``alpha * NCE + beta * RCE(A, eps)`` (Ma et al. 2020); defaults = paper:cifar10.")
combination("nce+mae", "nce", "mae", cls="NCEandMAE", func="nce_mae",
            defaults={"alpha": 1.0, "beta": 1.0},
            doc="``alpha * NCE + beta * MAE(scale)`` (Ma et al. 2020); ``scale=1`` is APL's MAE.")
combination("nfl+rce", "nfl", "rce", cls="NFLandRCE", func="nfl_rce",
            defaults={"alpha": 1.0, "beta": 1.0},
            doc="``alpha * NFL(gamma) + beta * RCE(A, eps)`` (Ma et al. 2020); defaults = paper:cifar10.")
combination("nfl+agce", "nfl", "agce", cls="NFLandAGCE", func="nfl_agce",
            defaults={"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5},
            doc="``alpha * NFL(gamma) + beta * AGCE(a, q)`` (in the ALFs code).")
combination("nfl+aul", "nfl", "aul", cls="NFLandAUL", func="nfl_aul",
            defaults={"alpha": 1.0, "beta": 4.0, "a": 6.3, "q": 1.5},
            doc="``alpha * NFL(gamma) + beta * AUL(a, q)`` (in the ALFs code).")
combination("nfl+ael", "nfl", "ael", cls="NFLandAEL", func="nfl_ael",
            defaults={"alpha": 1.0, "beta": 4.0, "a": 5.0},
            doc="``alpha * NFL(gamma) + beta * AEL(a)`` (in the ALFs code).")
