"""The later robust losses (docs/losses.md, 'Later losses'): one declaration each (see
:mod:`asymloss.losses._define`; docs/adding-a-loss.md).
"""
from __future__ import annotations

import math

import torch

from . import _core
from ._base import Loss, _COMMON_KW
from ._core import Batch
import inspect

from ._define import Bool, Int, Real, combination, loss, signature_params
from ._paper import _focal_factor, _k_ce, _unbounded

Tensor = torch.Tensor

_MIN_PROB = Real(1e-7, gt=0, lt=1)
_M = Real(1e5, ge=0)


def _taylor_ratio(t: int) -> float:
    """Taylor-CE of order t: |l'(u)| = sum_{k=1}^t (1 - u)^(k-1), from t (u = 0) to 1 (u = 1): r = 1/t."""
    return 1.0 / t


@loss("nnce", cls="NNCE", kind="passive", min_classes=2, needs_logp=True,
      params=dict(min_prob=_MIN_PROB))
def _k_nnce(b: Batch, min_prob: float) -> Tensor:
    """Normalised negative CE ``1 - (A + log p~_y) / sum_k (A + log p~_k)`` (Ye et al. 2023).

    ``p~ = max(p, min_prob)``, ``A = -log(min_prob)``.
    """
    lmin = math.log(min_prob)
    # sum_k (A + log p~_k) = sum_k (max(log p_k, lmin) - lmin): term by term, each >= 0 (no cancellation)
    den = b.row_sum("clampmin", lmin)                    # first: gathers log p_y in the same Function
    return 1 - (b.logp_y().clamp_min(lmin) - lmin) / den


@loss("amse", cls="AMSE", kind="passive", params=dict(a=Real(30.0, gt=0)))
def _k_amse(b: Batch, a: float) -> Tensor:
    """Asymmetric MSE ``||p - a e_y||^2 / K`` (Wang et al. 2025, JAL), a > 0."""
    sq, p_y = b.square_mass()                            # sum_k p_k^2, p_y (fused backward)
    return (sq - 2 * a * p_y + a * a) / b.num_classes


@loss("ce_eps", cls="CEEps", kind="active", params=dict(m=_M),
      aliases=("eps_softmax", "ceeps", "ce_epsilon"))
def _k_ce_eps(b: Batch, m: float) -> Tensor:
    """CE on the epsilon-softmax (Wang et al. 2024): ``p^ = (p + m e_t) / (1 + m)``, ``t = argmax p``,
    ``-log max(p^_y, 1e-8)``.
    """
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


@loss("taylor_ce", cls="TaylorCE", kind="active", pointwise=True, ratio=_taylor_ratio,
      params=dict(t=Int(2, ge=1)), aliases=("taylor", "taylor_cross_entropy"))
def _k_taylor_ce(b: Batch, t: int) -> Tensor:
    """Taylor cross-entropy ``sum_{k=1}^t (1 - p_y)^k / k`` (Feng et al. 2020), integer order t >= 1.

    The t-th order Taylor series of ``-log p_y`` around ``p_y = 1``: ``t=1`` is ``1 - p_y``
    (MAE / 2), large t tends to CE.
    """
    # sum_{k=1}^t u^k / k, u = 1 - p_y, by Horner: u (1 + u (1/2 + u (1/3 + ...)))
    u = b.one_minus_p_y()
    s = 1.0 / t
    for k in range(t - 1, 0, -1):
        s = 1.0 / k + u * s
    return u * s if t > 1 else u


@loss("poly1_ce", cls="Poly1CE", kind="active", pointwise=True, ratio=_unbounded,
      params=dict(epsilon=Real(1.0, ge=-1)), aliases=("poly1", "poly_loss", "polyloss"))
def _k_poly1_ce(b: Batch, epsilon: float) -> Tensor:
    """Poly-1 loss ``-log p_y + epsilon (1 - p_y)`` (Leng et al. 2022), epsilon >= -1."""
    if epsilon == 0:
        return -b.logp_y()
    return epsilon * b.one_minus_p_y() - b.logp_y()


@loss("nnfl", cls="NNFL", kind="passive", min_classes=2, needs_logp=True,
      params=dict(gamma=Real(0.5, ge=0), min_prob=_MIN_PROB, detach=Bool(True)))
def _k_nnfl(b: Batch, gamma: float, min_prob: float, detach: bool) -> Tensor:
    """Normalised negative focal loss of ANL (Ye et al. 2023)::

        1 - (A - FL_y) / (K A - sum_k FL_k),  FL_k = -(1 - p~_k)^gamma log p~_k,
        p~ = max(p, min_prob),  A = -(1 - min_prob)^gamma log min_prob.

    ``detach=True`` (default, the reference code) treats the focal factors as constants.
    """
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


@loss("fl_eps", cls="FLEps", kind="active",
      params=dict(m=_M, gamma=Real(0.1, ge=0), detach=Bool(True)), aliases=("fleps", "fl_epsilon", "focal_eps"))
def _k_fl_eps(b: Batch, m: float, gamma: float, detach: bool) -> Tensor:
    """Focal loss on the epsilon-softmax (Wang et al. 2024): ``-(1 - p^_y)^gamma log p^_y`` with
    ``p^`` as in :func:`ce_eps`; ``detach=True`` (default, the reference code) treats the factor
    as a constant.
    """
    # FL on the epsilon-softmax: -(1 - p^_y)^gamma log p^_y, with -log p^_y = CE_eps
    ce = _k_ce_eps(b, m)
    if gamma == 0:
        return ce
    base = -torch.expm1(-ce)                             # 1 - p^_y, exact near p^_y = 1
    if detach:
        return _core.const_factor_mul(base.clamp_min(0.0).pow(gamma), ce)
    return _focal_factor(base, gamma) * ce


_JS_EPS = 1e-7


@loss("js", cls="JS", kind="passive", needs_logp=True, params=dict(pi1=Real(0.5, gt=0, lt=1)),
      aliases=("jensen_shannon", "jsd"))
def _k_js(b: Batch, pi1: float) -> Tensor:
    """Jensen-Shannon loss (Englesson & Azizpour 2021), one view, 0 < pi1 < 1::

        (pi1 KL(e_y || m) + (1 - pi1) KL(p || m)) / Z,  m = pi1 e_y + (1 - pi1) p,
        Z = -(1 - pi1) log(1 - pi1),

    logarithms of ``p`` and ``m`` clamped at 1e-7 as in the reference code.
    """
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


@loss("ldr_kl", cls="LDRKL", kind="passive", params=dict(margin=Real(0.1, ge=0), lam=Real(1.0, gt=0)),
      aliases=("ldr", "ldrkl", "ldrloss_v1"))
def _k_ldr_kl(b: Batch, margin: float, lam: float) -> Tensor:
    """LDR-KL loss (Zhu et al. 2023; ``LDRLoss_V1``), margin >= 0, lam > 0::

        lam log((1/K) sum_k exp(d_k / lam)),  d_k = margin 1[k != y] + s_k - s_y,
        s = softplus(z) / mean_k softplus(z_k).

    Can be negative.
    """
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


@loss("bi_tempered", cls="BiTempered", kind="active",
      params=dict(t1=Real(0.8, ge=0, le=1), t2=Real(1.2, gt=0), label_smoothing=Real(0.0, ge=0, lt=1),
                  num_iters=Int(5, ge=1)),
      aliases=("bitempered", "bi_tempered_logistic", "bitemperedloss"))
def _k_bi_tempered(b: Batch, t1: float, t2: float, label_smoothing: float, num_iters: int) -> Tensor:
    """Bi-tempered logistic loss (Amid et al. 2019), 0 <= t1 <= 1 (log_t temperature), t2 > 0
    (tempered softmax); t1 = t2 = 1 is CE. ``label_smoothing`` s in [0, 1): the label gets 1 - s,
    every other class s / (K - 1). The tempered softmax's normaliser: for t2 > 1 ``num_iters``
    fixed-point steps as the reference; for t2 < 1 ``num_iters`` bisection steps then Newton steps
    to convergence (the reference's 5 bisection steps alone are inaccurate).
    """
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


#: LogitClip's hyperparameters (``ce_lc`` and the ``logit_clip`` wrapper)
CLIP_PARAMS = dict(tau=Real(1.0, gt=0), p=Real(2.0, ge=1), legacy_threshold=Bool(False))


@loss("ce_lc", cls="CELC", kind="active", params=CLIP_PARAMS, aliases=("lc(ce)", "ceandlc"))
def _k_ce_lc(b: Batch, tau: float, p: float, legacy_threshold: bool) -> Tensor:
    """CE on the clipped logits: ``logit_clip(..., loss="ce")``."""
    return _k_logit_clip(b, _k_ce, tau, p, legacy_threshold)


def inner_loss(loss) -> Loss:
    """A wrapper's inner loss: a registered name (built with its defaults) or a loss module."""
    from .registry import create_loss

    if isinstance(loss, str):
        return create_loss(loss)
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a registered loss name or an asymloss loss module; got {type(loss).__name__}.")
    return loss


@loss("logit_clip", kind="active", params=CLIP_PARAMS, aliases=("lc", "logitclip"))
class LogitClip(Loss):
    """LogitClip (Wei et al. 2023): any asymloss loss on the logits clipped to ``||z||_p <= tau``,
    ``z min(1, tau / ||z||_p)``; tau > 0, p >= 1.

    ``loss`` is a registered name (built with its defaults) or a loss module. ``legacy_threshold=True``
    reproduces the official code: the logits are scaled to norm tau only when ``||z||_p + 1e-7 > 1 / tau``
    (its ``--temp T`` is ``tau = 1 / T``). The wrapped loss's own weight/ignore_index/reduction are
    not used. ``hparams()`` lists the wrapped loss's hyperparameters too.

    >>> LogitClip("agce", tau=2.0).hparams()
    {'a': 0.6, 'q': 0.6, 'tau': 2.0, 'p': 2.0, 'legacy_threshold': False}
    """

    name, hparam_names = "logit_clip", tuple(CLIP_PARAMS)

    def __init__(self, loss="ce", *, weight=None, ignore_index=-100, reduction="mean", num_classes=None, **clip):
        hp = self.definition.bind(clip, owner="LogitClip")
        inner = inner_loss(loss)
        self.min_classes = inner.min_classes
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction, num_classes=num_classes)
        self.loss = inner
        self.kind = inner.kind
        for k, v in hp.items():
            setattr(self, k, v)

    def kernel(self, b):
        return _k_logit_clip(b, self.loss.kernel, self.tau, self.p, self.legacy_threshold)

    def hparams(self) -> dict:
        return {**self.loss.hparams(), **Loss.hparams(self)}


LogitClip.__init__.__signature__ = inspect.Signature([
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("loss", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="ce"),
    *signature_params(LogitClip.definition), *_COMMON_KW,
    inspect.Parameter("num_classes", inspect.Parameter.KEYWORD_ONLY, default=None)])


# ------------------------------------------------------------------------------------------------
# combinations
# ------------------------------------------------------------------------------------------------

combination(
    "anl_ce", "nce", "nnce", cls="ANLCE", func="anl_ce", aliases=("anl", "anlce"),
    defaults={"alpha": 5.0, "beta": 5.0},
    doc="ANL-CE ``alpha * NCE + beta * NNCE`` (Ye et al. 2023); defaults = CIFAR-10. The paper's "
        "``delta * ||theta||_1`` term (with weight decay 0) acts on the model's parameters and belongs "
        "to the training engine.")
combination(
    "jal_ce", "nce", "amse", cls="JALCE", func="jal_ce", aliases=("jal", "jalce"),
    defaults={"alpha": 1.0, "beta": 1.0},
    doc="JAL-CE ``alpha * NCE + beta * AMSE(a)`` (Wang et al. 2025); defaults = CIFAR-10. The L1 term "
        "belongs to the training engine.")
combination(
    "ce_eps+mae", "ce_eps", "mae", cls="CEEpsandMAE", func="ce_eps_mae",
    defaults={"alpha": 0.01, "beta": 5.0},
    doc="``alpha * CE_eps(m) + beta * scale (1 - p_y)`` (Wang et al. 2024); defaults = CIFAR-10 "
        "symmetric (``scale=2``).")
combination(
    "jal_fl", "nfl", "amse", cls="JALFL", func="jal_fl", aliases=("jalfl", "nflandamse"),
    defaults={"alpha": 1.0, "beta": 1.0, "detach": True},
    doc="JAL-FL ``alpha * NFL(gamma) + beta * AMSE(a)`` (Wang et al. 2025); defaults = CIFAR-10, focal "
        "factors detached as in the reference code. The L1 term belongs to the training engine.")
combination(
    "anl_fl", "nfl", "nnfl", cls="ANLFL", func="anl_fl", aliases=("anlfl", "nflandnnfl"),
    tied=("gamma", "detach"), defaults={"alpha": 5.0, "beta": 5.0, "detach": True},
    doc="ANL-FL ``alpha * NFL(gamma) + beta * NNFL(gamma, min_prob)`` (Ye et al. 2023); one gamma for "
        "both terms; defaults = CIFAR-10, focal factors detached as in the reference code. The L1 term "
        "belongs to the training engine.")
combination(
    "fl_eps+mae", "fl_eps", "mae", cls="FLEpsandMAE", func="fl_eps_mae",
    defaults={"alpha": 0.01, "beta": 5.0},
    doc="``alpha * FL_eps(m, gamma) + beta * scale (1 - p_y)`` (Wang et al. 2024); defaults = CIFAR-10 "
        "symmetric (``scale=2``).")
