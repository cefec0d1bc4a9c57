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
    num = _focal_term(b, gamma, detach)
    return num / den


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
