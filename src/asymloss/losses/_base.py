"""The ``nn.Module`` base of every loss, the active-passive combination, and the generators that
turn a :class:`~asymloss.losses._define.LossDef` into a module class and a function."""
from __future__ import annotations

import inspect
from typing import Optional

import torch
from torch import nn

from .._validation import check_number
from . import _core
from ._define import LossDef, combine_kernels, signature_params

Tensor = torch.Tensor

_COMMON_KW = [
    inspect.Parameter("weight", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Optional[Tensor]),
    inspect.Parameter("ignore_index", inspect.Parameter.KEYWORD_ONLY, default=-100, annotation=int),
    inspect.Parameter("reduction", inspect.Parameter.KEYWORD_ONLY, default="mean", annotation=str),
]


class Loss(nn.Module):
    """Base class of every asymloss loss.

    A generated class has ``definition`` (its :class:`~asymloss.losses._define.LossDef`), stores
    each hyperparameter as an attribute named like the functional keyword, and computes
    ``definition.kernel(batch, **hparams())``. A hand-written subclass sets ``name``, ``kind``,
    ``hparam_names`` and implements :meth:`kernel` (a :class:`~asymloss.losses._core.Batch` to the
    per-sample loss).

    Every loss takes the keyword-only arguments ``weight=None``, ``ignore_index=-100``,
    ``reduction="mean"`` (as ``CrossEntropyLoss``) and ``num_classes=None``: no loss needs ``K`` up
    front (it is read from ``input.shape[1]``); when given, inputs with another number of classes
    are rejected.
    """

    definition: Optional[LossDef] = None
    name: str = ""
    kind: str = "active"
    hparam_names: tuple = ()
    min_classes: int = 1
    #: the kernel reads every class's log p (b.logp()): in a combination it is computed first, so
    #: that the other term shares it rather than taking a fused path that skips log_softmax
    needs_logp: bool = False
    #: training mechanics (docs/training-mechanics.md): augmented views per sample (> 1: the input
    #: is (M, N, C)), ``index=`` (training-set positions), ``complementary=`` labels
    num_views: int = 1
    needs_index: bool = False
    needs_complementary: bool = False

    def __init__(self, *, weight: Optional[Tensor] = None, ignore_index: int = -100,
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

    def mechanics(self) -> list:
        """The training mechanics this loss needs from the engine: any of ``"views"``,
        ``"index"``, ``"complementary"`` (``[]`` for a loss of logits and labels alone)."""
        out = []
        if int(self.num_views) > 1:
            out.append("views")
        if self.needs_index:
            out.append("index")
        if self.needs_complementary:
            out.append("complementary")
        return out

    def kernel(self, batch: _core.Batch) -> Tensor:
        """The per-sample loss of ``batch``."""
        return self.definition.kernel(batch, **self.hparams())

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
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


class ActivePassive(Loss):
    """``alpha * active + beta * passive`` (Ma et al. 2020), any two asymloss losses.

    The components' own ``weight``/``ignore_index``/``reduction`` are not used: the combination's
    apply to the summed per-sample loss (linear, so this equals combining reduced losses). Both
    share one ``log_softmax``. A zero coefficient skips its term (MNIST's ``alpha=0`` presets).

    >>> from asymloss import NCE, AGCE
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
        alpha = check_number("alpha", alpha, ge=0)
        beta = check_number("beta", beta, ge=0)
        self.min_classes = max(active.min_classes, passive.min_classes)
        super().__init__(**common)
        self.active, self.passive = active, passive
        self.alpha, self.beta = float(alpha), float(beta)

    def kernel(self, b):
        return combine_kernels(b, self.alpha, self.active.kernel, {}, self.active.needs_logp,
                               self.beta, self.passive.kernel, {}, self.passive.needs_logp)

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


# ------------------------------------------------------------------------------------------------
# generators
# ------------------------------------------------------------------------------------------------

def _collect(d: LossDef, owner: str, names: tuple, args: tuple, kwargs: dict) -> dict:
    """Positional hyperparameters (in declaration order) merged into ``kwargs``, then bound."""
    if len(args) > len(names):
        raise TypeError(f"{owner}() takes at most {len(names)} positional hyperparameters "
                        f"({', '.join(names) or 'none'}); got {len(args)}.")
    for k, v in zip(names, args):
        if k in kwargs:
            raise TypeError(f"{owner}() got multiple values for hyperparameter {k!r}.")
        kwargs[k] = v
    return d.bind(kwargs, owner=owner)


def _module_signature(d: LossDef) -> inspect.Signature:
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              *signature_params(d, inspect.Parameter.POSITIONAL_OR_KEYWORD), *_COMMON_KW,
              inspect.Parameter("num_classes", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=Optional[int])]
    return inspect.Signature(params)


def make_module(d: LossDef, classes: dict) -> type:
    """The ``nn.Module`` class of definition ``d`` (``classes``: name -> class of the definitions
    made so far, for a combination's parts)."""
    if d.module is not None:
        return d.module
    names = tuple(d.params)
    attrs = {"definition": d, "name": d.name, "kind": d.kind, "hparam_names": names,
             "min_classes": d.min_classes, "needs_logp": d.needs_logp, "__doc__": d.doc,
             "__module__": "asymloss.losses.modules", "__qualname__": d.cls_name}
    if d.parts is None:
        def __init__(self, *args, weight=None, ignore_index=-100, reduction="mean", num_classes=None, **kw):
            hp = _collect(d, d.cls_name, names, args, kw)
            Loss.__init__(self, weight=weight, ignore_index=ignore_index, reduction=reduction,
                          num_classes=num_classes)
            for k, v in hp.items():
                setattr(self, k, v)
        base = Loss
    else:
        act, pas = d.parts
        act_cls, pas_cls = classes[act.name], classes[pas.name]

        def __init__(self, *args, weight=None, ignore_index=-100, reduction="mean", num_classes=None, **kw):
            hp = _collect(d, d.cls_name, names, args, kw)
            ActivePassive.__init__(
                self, act_cls(**{k: hp[k] for k in act.params}), pas_cls(**{k: hp[k] for k in pas.params}),
                hp["alpha"], hp["beta"], weight=weight, ignore_index=ignore_index, reduction=reduction,
                num_classes=num_classes)
        for k in names:
            if k not in ("alpha", "beta"):
                attrs[k] = _part_property(k, [role for role, part in (("active", act), ("passive", pas))
                                              if k in part.params])
        attrs["hparams"] = Loss.hparams          # flat names: the combination's own keywords
        base = ActivePassive
    __init__.__signature__ = _module_signature(d)
    __init__.__qualname__ = f"{d.cls_name}.__init__"
    attrs["__init__"] = __init__
    return type(d.cls_name, (base,), attrs)


def _part_property(k: str, roles: list) -> property:
    """A combination's flat hyperparameter ``k``: read from its part, written to every part that has it."""
    def get(self):
        return getattr(getattr(self, roles[0]), k)

    def set_(self, value):
        for role in roles:
            setattr(getattr(self, role), k, value)
    return property(get, set_, doc=f"hyperparameter {k!r} of the {' and '.join(roles)} part")


def make_function(d: LossDef):
    """The function of :mod:`asymloss.functional` for definition ``d``: a drop-in for
    ``F.cross_entropy`` with the loss's hyperparameters as keyword-only arguments."""
    def fn(input: Tensor, target: Tensor, *, weight: Optional[Tensor] = None, ignore_index: int = -100,
           reduction: str = "mean", **hparams) -> Tensor:
        hp = d.bind(hparams, owner=f"{d.func_name}()")
        return _core.compute(input, target, lambda b: d.kernel(b, **hp), weight=weight,
                             ignore_index=ignore_index, reduction=reduction, min_classes=d.min_classes)

    pos = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Tensor) for n in ("input", "target")]
    fn.__signature__ = inspect.Signature([*pos, *signature_params(d), *_COMMON_KW], return_annotation=Tensor)
    fn.__name__ = fn.__qualname__ = d.func_name
    fn.__doc__ = d.doc
    fn.__module__ = "asymloss.losses.functional"
    return fn
