"""``nn.Module`` wrappers: drop-in replacements for ``torch.nn.CrossEntropyLoss``.

Each class stores its hyperparameters as attributes named like the keywords of the function in
:mod:`asymloss.losses.functional`, validates them at construction, and calls the same kernel. Every
class also takes the keyword-only arguments ``weight=None``, ``ignore_index=-100``,
``reduction="mean"`` (as ``CrossEntropyLoss``) and ``num_classes=None``: no loss needs ``K`` up
front (it is read from ``input.shape[1]``); when ``num_classes`` is given, inputs with another
number of classes are rejected.

Example::

    >>> import torch, asymloss
    >>> loss_fn = asymloss.NCEandAGCE(alpha=1, beta=4, a=6, q=1.5)
    >>> logits = torch.randn(8, 10, requires_grad=True)
    >>> loss = loss_fn(logits, torch.randint(0, 10, (8,)))
    >>> loss.backward()

Calling any loss with ``reduction="none"`` on logits ``log(u)`` for a probability vector ``u``
(rows of the open simplex) evaluates ``L(u, y)`` itself (``log_softmax(log u) = log u``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._validation import check_number
from . import _core
from . import functional as F

__all__ = [
    "CE", "FocalLoss", "MAE", "RCE", "GCE", "SCE", "NCE", "NFL", "NGCE", "NMAE", "NRCE",
    "AGCE", "AUL", "AEL", "ANorm", "NNCE", "AMSE", "CEEps",
    "ActivePassive", "NCEandAGCE", "NCEandAUL", "NCEandAEL", "NCEandRCE", "NCEandMAE", "NFLandRCE",
    "NFLandAGCE", "NFLandAUL", "NFLandAEL", "ANLCE", "JALCE", "CEEpsandMAE",
    "TaylorCE", "Poly1CE", "NNFL", "FLEps", "JS", "LDRKL", "JALFL", "ANLFL", "FLEpsandMAE",
    "LogitClip", "CELC", "BiTempered",
]


class Loss(nn.Module):
    """Base class of every asymloss loss.

    Subclasses set ``name`` (the functional/registry name), ``kind`` ('active' or 'passive', the
    role in Ma et al.'s active-passive framework), ``hparam_names`` and implement
    :meth:`kernel` (a :class:`~asymloss.losses._core.Batch` to the per-sample loss).
    """

    name: str = ""
    kind: str = "active"
    hparam_names: tuple = ()
    min_classes: int = 1
    #: the kernel reads every class's log p (b.logp()): in a combination it is computed first, so
    #: that the other term shares it rather than taking a fused path that skips log_softmax
    needs_logp: bool = False

    def __init__(self, *, weight: Optional[torch.Tensor] = None, ignore_index: int = -100,
                 reduction: str = "mean", num_classes: Optional[int] = None):
        super().__init__()
        _core.check_common(reduction, ignore_index)
        if num_classes is not None:
            check_number("num_classes", num_classes, ge=max(self.min_classes, 1), integer=True)
        _core.check_weight(weight, num_classes)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.register_buffer("weight", weight)

    def hparams(self) -> dict:
        """The hyperparameters, by their functional keyword names."""
        return {n: getattr(self, n) for n in self.hparam_names}

    def kernel(self, batch: _core.Batch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``input`` (N, C) or (N, C, d1..dk) logits, ``target`` (N) or (N, d1..dk) labels ->
        scalar (``'mean'``/``'sum'``) or (N, d1..dk) (``'none'``)."""
        return _core.compute(input, target, self.kernel, weight=self.weight,
                             ignore_index=self.ignore_index, reduction=self.reduction,
                             num_classes=self.num_classes, min_classes=self.min_classes)

    def extra_repr(self) -> str:
        parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in self.hparams().items()]
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        if self.weight is not None:
            parts.append(f"weight=<{self.weight.numel()} class weights>")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        return ", ".join(parts)


def _num(x):
    return float(x)


# ------------------------------------------------------------------------------------------------
# single losses
# ------------------------------------------------------------------------------------------------

class CE(Loss):
    """Cross-entropy ``-log p_y`` (values identical to ``nn.CrossEntropyLoss``)."""
    name, kind = "ce", "active"

    def kernel(self, b):
        return F._k_ce(b)


class FocalLoss(Loss):
    """Focal loss ``-(1-p_y)^gamma log p_y``; ``detach=True`` = reference gradient (factor constant)."""
    name, kind, hparam_names = "focal", "active", ("gamma", "detach")

    def __init__(self, gamma: float = 0.5, detach: bool = False, **common):
        F.CHECKS["focal"](gamma, detach)
        super().__init__(**common)
        self.gamma, self.detach = _num(gamma), detach

    def kernel(self, b):
        return F._k_focal(b, self.gamma, self.detach)


class MAE(Loss):
    """Mean absolute error ``scale (1 - p_y)``; ``scale=2`` is ``||e_y - p||_1`` (APL code: 1)."""
    name, kind, hparam_names = "mae", "passive", ("scale",)

    def __init__(self, scale: float = 2.0, **common):
        F.CHECKS["mae"](scale)
        super().__init__(**common)
        self.scale = _num(scale)

    def kernel(self, b):
        return F._k_mae(b, self.scale)


class RCE(Loss):
    """Reverse cross-entropy ``A sum_{k!=y} max(p_k, eps)``, ``A = -ln(1e-4)``, ``eps = 1e-7``."""
    name, kind, hparam_names = "rce", "passive", ("A", "eps")

    def __init__(self, A: float = F.RCE_A, eps: float = F.REF_EPS, **common):
        F.CHECKS["rce"](A, eps)
        super().__init__(**common)
        self.A, self.eps = _num(A), _num(eps)

    def kernel(self, b):
        return F._k_rce(b, self.A, self.eps)


class GCE(Loss):
    """Generalised cross-entropy ``(1 - max(p_y, eps)^q) / q``, 0 < q <= 1."""
    name, kind, hparam_names = "gce", "active", ("q", "eps")

    def __init__(self, q: float = 0.7, eps: float = F.REF_EPS, **common):
        F.CHECKS["gce"](q, eps)
        super().__init__(**common)
        self.q, self.eps = _num(q), _num(eps)

    def kernel(self, b):
        return F._k_gce(b, self.q, self.eps)


class SCE(Loss):
    """Symmetric cross-entropy ``alpha CE + beta RCE``."""
    name, kind, hparam_names = "sce", "active", ("alpha", "beta", "A", "eps")

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, A: float = F.RCE_A,
                 eps: float = F.REF_EPS, **common):
        F.CHECKS["sce"](alpha, beta, A, eps)
        super().__init__(**common)
        self.alpha, self.beta, self.A, self.eps = _num(alpha), _num(beta), _num(A), _num(eps)

    def kernel(self, b):
        return F._k_sce(b, self.alpha, self.beta, self.A, self.eps)


class NCE(Loss):
    """Normalised cross-entropy ``log p_y / sum_k log p_k``."""
    name, kind, min_classes = "nce", "active", 2

    def kernel(self, b):
        return F._k_nce(b)


class NFL(Loss):
    """Normalised focal loss ``FL_y / sum_k FL_k``; ``detach=True`` = reference gradient."""
    name, kind, hparam_names, min_classes = "nfl", "active", ("gamma", "detach"), 2
    needs_logp = True

    def __init__(self, gamma: float = 0.5, detach: bool = False, **common):
        F.CHECKS["nfl"](gamma, detach)
        super().__init__(**common)
        self.gamma, self.detach = _num(gamma), detach

    def kernel(self, b):
        return F._k_nfl(b, self.gamma, self.detach)


class NGCE(Loss):
    """Normalised GCE ``(1 - p~_y^q) / (K - sum_k p~_k^q)``, ``p~ = max(p, eps)``."""
    name, kind, hparam_names, min_classes = "ngce", "active", ("q", "eps"), 2
    needs_logp = True

    def __init__(self, q: float = 0.7, eps: float = F.REF_EPS, **common):
        F.CHECKS["ngce"](q, eps)
        super().__init__(**common)
        self.q, self.eps = _num(q), _num(eps)

    def kernel(self, b):
        return F._k_ngce(b, self.q, self.eps)


class NMAE(Loss):
    """Normalised MAE ``scale (1 - p_y) / (K - 1)`` (APL code: ``scale=0.5``)."""
    name, kind, hparam_names, min_classes = "nmae", "passive", ("scale",), 2

    def __init__(self, scale: float = 1.0, **common):
        F.CHECKS["nmae"](scale)
        super().__init__(**common)
        self.scale = _num(scale)

    def kernel(self, b):
        return F._k_nmae(b, self.scale)


class NRCE(Loss):
    """Normalised RCE with the correct normaliser (the references' ``(K-1)/4`` is a bug)."""
    name, kind, hparam_names, min_classes = "nrce", "passive", ("eps",), 2

    def __init__(self, eps: float = F.REF_EPS, **common):
        F.CHECKS["nrce"](eps)
        super().__init__(**common)
        self.eps = _num(eps)

    def kernel(self, b):
        return F._k_nrce(b, self.eps)


class AGCE(Loss):
    """Asymmetric GCE ``((a+1)^q - (a+p_y)^q) / q``, a > 0, q > 0 (Zhou et al. 2021)."""
    name, kind, hparam_names = "agce", "passive", ("a", "q")

    def __init__(self, a: float = 0.6, q: float = 0.6, **common):
        F.CHECKS["agce"](a, q)
        super().__init__(**common)
        self.a, self.q = _num(a), _num(q)

    def kernel(self, b):
        return F._k_agce(b, self.a, self.q)


class AUL(Loss):
    """Asymmetric unhinged loss ``((a-p_y)^q - (a-1)^q) / q``, a > 1, q > 0 (Zhou et al. 2021)."""
    name, kind, hparam_names = "aul", "passive", ("a", "q")

    def __init__(self, a: float = 5.5, q: float = 3.0, **common):
        F.CHECKS["aul"](a, q)
        super().__init__(**common)
        self.a, self.q = _num(a), _num(q)

    def kernel(self, b):
        return F._k_aul(b, self.a, self.q)


class AEL(Loss):
    """Asymmetric exponential loss ``exp(-p_y / a)``, a > 0 (Zhou et al. 2021)."""
    name, kind, hparam_names = "ael", "passive", ("a",)

    def __init__(self, a: float = 2.5, **common):
        F.CHECKS["ael"](a)
        super().__init__(**common)
        self.a = _num(a)

    def kernel(self, b):
        return F._k_ael(b, self.a)


class ANorm(Loss):
    """Asymmetric norm loss of the ALFs code ``(sum_k |a 1[k=y] - p~_k|^p - (a-1)^p) / p``."""
    name, kind, hparam_names = "anorm", "passive", ("a", "p", "eps")
    needs_logp = True

    def __init__(self, a: float = 1.5, p: float = 0.9, eps: float = 1e-5, **common):
        F.CHECKS["anorm"](a, p, eps)
        super().__init__(**common)
        self.a, self.p, self.eps = _num(a), _num(p), _num(eps)

    def kernel(self, b):
        return F._k_anorm(b, self.a, self.p, self.eps)


class NNCE(Loss):
    """Normalised negative cross-entropy of ANL (Ye et al. 2023)."""
    name, kind, hparam_names, min_classes = "nnce", "passive", ("min_prob",), 2
    needs_logp = True

    def __init__(self, min_prob: float = 1e-7, **common):
        F.CHECKS["nnce"](min_prob)
        super().__init__(**common)
        self.min_prob = _num(min_prob)

    def kernel(self, b):
        return F._k_nnce(b, self.min_prob)


class AMSE(Loss):
    """Asymmetric MSE ``||p - a e_y||^2 / K`` of JAL (Wang et al. 2025)."""
    name, kind, hparam_names = "amse", "passive", ("a",)

    def __init__(self, a: float = 30.0, **common):
        F.CHECKS["amse"](a)
        super().__init__(**common)
        self.a = _num(a)

    def kernel(self, b):
        return F._k_amse(b, self.a)


class CEEps(Loss):
    """Cross-entropy on the epsilon-softmax (Wang et al. 2024), ``m`` the mass added to the argmax."""
    name, kind, hparam_names = "ce_eps", "active", ("m",)

    def __init__(self, m: float = 1e5, **common):
        F.CHECKS["ce_eps"](m)
        super().__init__(**common)
        self.m = _num(m)

    def kernel(self, b):
        return F._k_ce_eps(b, self.m)


class TaylorCE(Loss):
    """Taylor cross-entropy ``sum_{k=1}^t (1 - p_y)^k / k`` (Feng et al. 2020), integer t >= 1."""
    name, kind, hparam_names = "taylor_ce", "active", ("t",)

    def __init__(self, t: int = 2, **common):
        F.CHECKS["taylor_ce"](t)
        super().__init__(**common)
        self.t = int(t)

    def kernel(self, b):
        return F._k_taylor_ce(b, self.t)


class Poly1CE(Loss):
    """Poly-1 loss ``-log p_y + epsilon (1 - p_y)`` (Leng et al. 2022), epsilon >= -1."""
    name, kind, hparam_names = "poly1_ce", "active", ("epsilon",)

    def __init__(self, epsilon: float = 1.0, **common):
        F.CHECKS["poly1_ce"](epsilon)
        super().__init__(**common)
        self.epsilon = _num(epsilon)

    def kernel(self, b):
        return F._k_poly1_ce(b, self.epsilon)


class NNFL(Loss):
    """Normalised negative focal loss of ANL (Ye et al. 2023); ``detach=True`` = reference gradient."""
    name, kind, hparam_names, min_classes = "nnfl", "passive", ("gamma", "min_prob", "detach"), 2
    needs_logp = True

    def __init__(self, gamma: float = 0.5, min_prob: float = 1e-7, detach: bool = True, **common):
        F.CHECKS["nnfl"](gamma, min_prob, detach)
        super().__init__(**common)
        self.gamma, self.min_prob, self.detach = _num(gamma), _num(min_prob), detach

    def kernel(self, b):
        return F._k_nnfl(b, self.gamma, self.min_prob, self.detach)


class FLEps(Loss):
    """Focal loss on the epsilon-softmax (Wang et al. 2024); ``detach=True`` = reference gradient."""
    name, kind, hparam_names = "fl_eps", "active", ("m", "gamma", "detach")

    def __init__(self, m: float = 1e5, gamma: float = 0.1, detach: bool = True, **common):
        F.CHECKS["fl_eps"](m, gamma, detach)
        super().__init__(**common)
        self.m, self.gamma, self.detach = _num(m), _num(gamma), detach

    def kernel(self, b):
        return F._k_fl_eps(b, self.m, self.gamma, self.detach)


class JS(Loss):
    """Jensen-Shannon loss with one view, scaled by ``-(1 - pi1) log(1 - pi1)`` (Englesson & Azizpour 2021)."""
    name, kind, hparam_names = "js", "passive", ("pi1",)
    needs_logp = True

    def __init__(self, pi1: float = 0.5, **common):
        F.CHECKS["js"](pi1)
        super().__init__(**common)
        self.pi1 = _num(pi1)

    def kernel(self, b):
        return F._k_js(b, self.pi1)


class LDRKL(Loss):
    """LDR-KL loss (Zhu et al. 2023, ``LDRLoss_V1``), margin >= 0, lam > 0; can be negative."""
    name, kind, hparam_names = "ldr_kl", "passive", ("margin", "lam")

    def __init__(self, margin: float = 0.1, lam: float = 1.0, **common):
        F.CHECKS["ldr_kl"](margin, lam)
        super().__init__(**common)
        self.margin, self.lam = _num(margin), _num(lam)

    def kernel(self, b):
        return F._k_ldr_kl(b, self.margin, self.lam)


class BiTempered(Loss):
    """Bi-tempered logistic loss (Amid et al. 2019): t1 in [0, 1] (log_t), t2 > 0 (tempered softmax)."""
    name, kind, hparam_names = "bi_tempered", "active", ("t1", "t2", "label_smoothing", "num_iters")

    def __init__(self, t1: float = 0.8, t2: float = 1.2, label_smoothing: float = 0.0, num_iters: int = 5,
                 **common):
        F.CHECKS["bi_tempered"](t1, t2, label_smoothing, num_iters)
        super().__init__(**common)
        self.t1, self.t2, self.label_smoothing, self.num_iters = _num(t1), _num(t2), _num(label_smoothing), num_iters

    def kernel(self, b):
        return F._k_bi_tempered(b, self.t1, self.t2, self.label_smoothing, self.num_iters)


# ------------------------------------------------------------------------------------------------
# combinations
# ------------------------------------------------------------------------------------------------

class ActivePassive(Loss):
    """``alpha * active + beta * passive`` (Ma et al. 2020), any two asymloss losses.

    The components' own ``weight``/``ignore_index``/``reduction`` are not used: the combination's
    apply to the summed per-sample loss (linear, so this equals combining reduced losses). Both
    share one ``log_softmax``. A zero coefficient skips its term (MNIST's ``alpha=0`` presets).

    >>> loss_fn = ActivePassive(NCE(), AGCE(a=6, q=1.5), alpha=1, beta=4)
    >>> loss_fn.hparams()
    {'alpha': 1.0, 'beta': 4.0, 'a': 6.0, 'q': 1.5}
    """
    name, kind, hparam_names = "active_passive", "active+passive", ("alpha", "beta")

    def __init__(self, active: Loss, passive: Loss, alpha: float = 1.0, beta: float = 1.0, **common):
        for arg, part in (("active", active), ("passive", passive)):
            if not isinstance(part, Loss):
                raise TypeError(
                    f"{arg} must be an asymloss loss module (e.g. asymloss.NCE()); got {type(part).__name__}."
                )
        F._check_ab(alpha, beta)
        self.min_classes = max(active.min_classes, passive.min_classes)
        super().__init__(**common)
        self.active, self.passive = active, passive
        self.alpha, self.beta = _num(alpha), _num(beta)

    def kernel(self, b):
        if (self.alpha and self.active.needs_logp) or (self.beta and self.passive.needs_logp):
            b.logp()  # shared by both terms (see Loss.needs_logp)
        return F._combine(b, self.alpha, self.active.kernel, (), self.beta, self.passive.kernel, ())

    def hparams(self) -> dict:
        """``alpha``, ``beta`` and the parts' hyperparameters; a name both parts have, or a part's
        own ``alpha``/``beta``, is prefixed ``active_``/``passive_`` (the keywords
        ``create_loss`` takes for it)."""
        ha, hp = self.active.hparams(), self.passive.hparams()
        prefixed = (set(ha) & set(hp)) | {"alpha", "beta"}
        out = {"alpha": self.alpha, "beta": self.beta}
        for prefix, part in (("active_", ha), ("passive_", hp)):
            out.update({(prefix + k if k in prefixed else k): v for k, v in part.items()})
        return out


def _combo(cls_name: str, name: str, active_cls, passive_cls, active_keys, passive_keys, defaults, doc):
    """Build a named ActivePassive subclass whose hyperparameters are plain keyword arguments."""
    keys = ("alpha", "beta") + tuple(active_keys) + tuple(passive_keys)
    params = ", ".join(f"{k}={defaults[k]!r}" for k in keys)
    src = (
        f"def __init__(self, {params}, **common):\n"
        f"    ActivePassive.__init__(self, active_cls({', '.join(f'{k}={k}' for k in active_keys)}),\n"
        f"        passive_cls({', '.join(f'{k}={k}' for k in passive_keys)}), alpha, beta, **common)\n"
    )
    ns = {"ActivePassive": ActivePassive, "active_cls": active_cls, "passive_cls": passive_cls}
    exec(src, ns)  # noqa: S102 - builds an explicit signature for inspect/help()
    attrs = {"__init__": ns["__init__"], "__doc__": doc, "name": name, "hparam_names": keys,
             "__module__": __name__, "hparams": Loss.hparams}
    for k in active_keys:
        attrs[k] = property(lambda self, k=k: getattr(self.active, k))
    for k in passive_keys:
        attrs[k] = property(lambda self, k=k: getattr(self.passive, k))
    return type(cls_name, (ActivePassive,), attrs)


_RCE_D = {"A": F.RCE_A, "eps": F.REF_EPS}
NCEandAGCE = _combo("NCEandAGCE", "nce+agce", NCE, AGCE, (), ("a", "q"),
                    {"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5},
                    "``alpha * NCE + beta * AGCE(a, q)`` (Zhou et al. 2021); defaults = paper:cifar10.")
NCEandAUL = _combo("NCEandAUL", "nce+aul", NCE, AUL, (), ("a", "q"),
                   {"alpha": 1.0, "beta": 4.0, "a": 6.3, "q": 1.5},
                   "``alpha * NCE + beta * AUL(a, q)`` (Zhou et al. 2021); defaults = paper:cifar10.")
NCEandAEL = _combo("NCEandAEL", "nce+ael", NCE, AEL, (), ("a",),
                   {"alpha": 1.0, "beta": 4.0, "a": 5.0},
                   "``alpha * NCE + beta * AEL(a)`` (Zhou et al. 2021); defaults = paper:cifar10.")
NCEandRCE = _combo("NCEandRCE", "nce+rce", NCE, RCE, (), ("A", "eps"),
                   {"alpha": 1.0, "beta": 1.0, **_RCE_D},
                   "``alpha * NCE + beta * RCE`` (Ma et al. 2020); defaults = paper:cifar10.")
NCEandMAE = _combo("NCEandMAE", "nce+mae", NCE, MAE, (), ("scale",),
                   {"alpha": 1.0, "beta": 1.0, "scale": 2.0},
                   "``alpha * NCE + beta * MAE(scale)`` (Ma et al. 2020); ``scale=1`` is APL's MAE.")
NFLandRCE = _combo("NFLandRCE", "nfl+rce", NFL, RCE, ("gamma", "detach"), ("A", "eps"),
                   {"alpha": 1.0, "beta": 1.0, "gamma": 0.5, "detach": False, **_RCE_D},
                   "``alpha * NFL(gamma) + beta * RCE`` (Ma et al. 2020); defaults = paper:cifar10.")
NFLandAGCE = _combo("NFLandAGCE", "nfl+agce", NFL, AGCE, ("gamma", "detach"), ("a", "q"),
                    {"alpha": 1.0, "beta": 4.0, "gamma": 0.5, "detach": False, "a": 6.0, "q": 1.5},
                    "``alpha * NFL(gamma) + beta * AGCE(a, q)`` (in the ALFs code).")
NFLandAUL = _combo("NFLandAUL", "nfl+aul", NFL, AUL, ("gamma", "detach"), ("a", "q"),
                   {"alpha": 1.0, "beta": 4.0, "gamma": 0.5, "detach": False, "a": 6.3, "q": 1.5},
                   "``alpha * NFL(gamma) + beta * AUL(a, q)`` (in the ALFs code).")
NFLandAEL = _combo("NFLandAEL", "nfl+ael", NFL, AEL, ("gamma", "detach"), ("a",),
                   {"alpha": 1.0, "beta": 4.0, "gamma": 0.5, "detach": False, "a": 5.0},
                   "``alpha * NFL(gamma) + beta * AEL(a)`` (in the ALFs code).")
ANLCE = _combo("ANLCE", "anl_ce", NCE, NNCE, (), ("min_prob",),
               {"alpha": 5.0, "beta": 5.0, "min_prob": 1e-7},
               "ANL-CE ``alpha * NCE + beta * NNCE`` (Ye et al. 2023); defaults = CIFAR-10. The "
               "paper's ``delta * ||theta||_1`` term (with weight decay 0) acts on the model's "
               "parameters and belongs to the training engine.")
JALCE = _combo("JALCE", "jal_ce", NCE, AMSE, (), ("a",),
               {"alpha": 1.0, "beta": 1.0, "a": 30.0},
               "JAL-CE ``alpha * NCE + beta * AMSE(a)`` (Wang et al. 2025); defaults = CIFAR-10. The L1 "
               "term belongs to the training engine.")
CEEpsandMAE = _combo("CEEpsandMAE", "ce_eps+mae", CEEps, MAE, ("m",), (),
                     {"alpha": 0.01, "beta": 5.0, "m": 1e5},
                     "``alpha * CE_eps(m) + beta * 2(1 - p_y)`` (Wang et al. 2024); defaults = CIFAR-10 symmetric.")
JALFL = _combo("JALFL", "jal_fl", NFL, AMSE, ("gamma", "detach"), ("a",),
               {"alpha": 1.0, "beta": 1.0, "gamma": 0.5, "detach": True, "a": 30.0},
               "JAL-FL ``alpha * NFL(gamma) + beta * AMSE(a)`` (Wang et al. 2025); defaults = CIFAR-10, focal "
               "factors detached as in the reference code. The L1 term belongs to the training engine.")
FLEpsandMAE = _combo("FLEpsandMAE", "fl_eps+mae", FLEps, MAE, ("m", "gamma", "detach"), (),
                     {"alpha": 0.01, "beta": 5.0, "m": 1e5, "gamma": 0.1, "detach": True},
                     "``alpha * FL_eps(m, gamma) + beta * 2(1 - p_y)`` (Wang et al. 2024); defaults = CIFAR-10 "
                     "symmetric.")


class ANLFL(ActivePassive):
    """ANL-FL ``alpha * NFL(gamma) + beta * NNFL(gamma, min_prob)`` (Ye et al. 2023); one gamma for
    both terms; defaults = CIFAR-10, focal factors detached as in the reference code. The L1 term
    belongs to the training engine."""
    name, hparam_names = "anl_fl", ("alpha", "beta", "gamma", "min_prob", "detach")
    hparams = Loss.hparams

    def __init__(self, alpha: float = 5.0, beta: float = 5.0, gamma: float = 0.5, min_prob: float = 1e-7,
                 detach: bool = True, **common):
        super().__init__(NFL(gamma=gamma, detach=detach), NNFL(gamma=gamma, min_prob=min_prob, detach=detach),
                         alpha, beta, **common)

    gamma = property(lambda self: self.active.gamma)
    detach = property(lambda self: self.active.detach)
    min_prob = property(lambda self: self.passive.min_prob)


# ------------------------------------------------------------------------------------------------
# wrappers
# ------------------------------------------------------------------------------------------------

class LogitClip(Loss):
    """LogitClip (Wei et al. 2023): any asymloss loss on the logits clipped to ``||z||_p <= tau``.

    ``loss`` is a registered name (built with its defaults) or a loss module; ``tau > 0``,
    ``p >= 1``. ``legacy_threshold=True``: the official code's rule (scale to norm tau only when
    ``||z||_p + 1e-7 > 1 / tau``). The wrapped loss's own weight/ignore_index/reduction are not
    used. ``hparams()`` lists the wrapped loss's hyperparameters too.

    >>> LogitClip("agce", tau=2.0).hparams()
    {'a': 0.6, 'q': 0.6, 'tau': 2.0, 'p': 2.0, 'legacy_threshold': False}
    """
    name, hparam_names = "logit_clip", ("tau", "p", "legacy_threshold")

    def __init__(self, loss="ce", tau: float = 1.0, p: float = 2.0, legacy_threshold: bool = False, **common):
        F.CHECKS["logit_clip"](tau, p, legacy_threshold)
        inner = F._inner_loss(loss)
        self.min_classes = inner.min_classes
        super().__init__(**common)
        self.loss = inner
        self.kind = inner.kind
        self.tau, self.p, self.legacy_threshold = _num(tau), _num(p), legacy_threshold

    def kernel(self, b):
        return F._k_logit_clip(b, self.loss.kernel, self.tau, self.p, self.legacy_threshold)

    def hparams(self) -> dict:
        return {**self.loss.hparams(), **Loss.hparams(self)}

    def extra_repr(self) -> str:
        return super().extra_repr()


class CELC(LogitClip):
    """CE on logits clipped to ``||z||_p <= tau`` (LogitClip, Wei et al. 2023)."""
    name = "ce_lc"

    def __init__(self, tau: float = 1.0, p: float = 2.0, legacy_threshold: bool = False, **common):
        super().__init__(CE(), tau, p, legacy_threshold, **common)
