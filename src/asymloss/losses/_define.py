"""One definition per loss (docs/adding-a-loss.md).

A loss is declared once, by decorating its per-sample kernel with :func:`loss`::

    @loss("agce", cls="AGCE", kind="passive", pointwise=True, ratio=agce_ratio,
          params=dict(a=Real(0.6, gt=0), q=Real(0.6, gt=0)))
    def agce(b, a, q):
        '''Asymmetric GCE ``((a+1)^q - (a+p_y)^q) / q`` ...'''
        ...

The declaration (a :class:`LossDef`) holds the name, the hyperparameters with their defaults and
constraints (:class:`Param`), the role (active/passive), whether the loss is a function of ``p_y``
alone (the theory's ℓ(u) form) and its closed-form asymmetry ratio when one exists, and the kernel
(a :class:`~asymloss.losses._core.Batch` to the per-sample loss). Everything else is derived from
it: the function of :mod:`asymloss.functional`, the ``nn.Module`` class, the registry entry, the
``asymloss losses`` listing, the presets' validation and the theory toolkit.

Named combinations ``alpha * active + beta * passive`` are declared with :func:`combination`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from .._validation import check_number, unknown_name_error

__all__ = ["Param", "Real", "Int", "Bool", "LossDef", "loss", "combination", "DEFINITIONS",
           "get_definition", "on_define", "COMMON"]

#: the keyword arguments every loss takes, as ``F.cross_entropy``
COMMON = ("weight", "ignore_index", "reduction")


@dataclass(frozen=True)
class Param:
    """A hyperparameter: its default and what values are allowed.

    ``kind`` is ``"real"`` (a float; bounds ``gt``/``ge``/``lt``/``le``), ``"int"`` (an integer,
    bounds as well) or ``"bool"``. :meth:`check` validates a value with the messages every
    asymloss error uses (argument, value, what is allowed) and returns it normalised (a ``float``
    for a real, an ``int`` for an integer).
    """

    default: Any
    kind: str = "real"
    gt: Optional[float] = None
    ge: Optional[float] = None
    lt: Optional[float] = None
    le: Optional[float] = None
    doc: str = ""

    def check(self, name: str, value):
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False; got {value!r}.")
            return value
        v = check_number(name, value, gt=self.gt, ge=self.ge, lt=self.lt, le=self.le,
                         integer=self.kind == "int")
        return float(v) if self.kind == "real" else int(v)

    @property
    def continuous(self) -> bool:
        """Whether the hyperparameter is a real number (it can be learned by gradient)."""
        return self.kind == "real"

    def describe(self, name: str) -> str:
        """The allowed values as text, e.g. ``"a > 0"``, ``"0 < q <= 1"``, ``"detach: bool"``."""
        if self.kind == "bool":
            return f"{name}: bool"
        low = f"{_g(self.gt)} < " if self.gt is not None else f"{_g(self.ge)} <= " if self.ge is not None else ""
        high = f" < {_g(self.lt)}" if self.lt is not None else f" <= {_g(self.le)}" if self.le is not None else ""
        if low and high:
            return f"{low}{name}{high}"
        if low:  # "a > 0" reads better than "0 < a"
            return f"{name} {'>' if self.gt is not None else '>='} {_g(self.gt if self.gt is not None else self.ge)}"
        if high:
            return f"{name}{high}"
        return f"{name}: {'integer' if self.kind == 'int' else 'real'}"


def _g(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def Real(default: float, *, gt=None, ge=None, lt=None, le=None, doc: str = "") -> Param:
    """A real hyperparameter."""
    return Param(float(default), "real", gt, ge, lt, le, doc)


def Int(default: int, *, gt=None, ge=None, lt=None, le=None, doc: str = "") -> Param:
    """An integer hyperparameter."""
    return Param(int(default), "int", gt, ge, lt, le, doc)


def Bool(default: bool, *, doc: str = "") -> Param:
    """A boolean switch."""
    return Param(bool(default), "bool", doc=doc)


@dataclass(frozen=True)
class LossDef:
    """Everything asymloss knows about one loss (see the module docstring).

    Attributes:
        name: canonical registry name (``"agce"``, ``"nce+agce"``).
        cls_name: name of the ``nn.Module`` class (``"AGCE"``).
        func_name: name of the function in :mod:`asymloss.functional` (``"agce"``, ``"nce_agce"``).
        kernel: ``kernel(batch, **hparams) -> per-sample loss``; None for a loss whose module is
            written by hand (``module``).
        params: hyperparameter name -> :class:`Param`, in signature order.
        kind: ``"active"`` or ``"passive"`` (Ma et al.'s framework; ``"active+passive"`` for
            combinations).
        doc: the docstring of the function and the class.
        aliases: other spellings the registry accepts.
        min_classes: the smallest number of classes the loss is defined for.
        needs_logp: the kernel reads every class's ``log p`` (in a combination that is computed
            first so both terms share it).
        pointwise: the loss is ``L(p, y) = ℓ(p_y)`` (the theory's form).
        ratio: closed-form asymmetry ratio ``ratio(**hparams) -> float`` (pointwise losses), or None.
        parts: for a combination, the (active, passive) definitions.
        tied: for a combination, hyperparameters given once and passed to both parts.
        module: a hand-written ``nn.Module`` class (wrappers, losses with training mechanics), or
            None: the class is generated.
    """

    name: str
    cls_name: str
    func_name: str
    kernel: Optional[Callable]
    params: Mapping[str, Param]
    kind: str
    doc: str = ""
    aliases: tuple = ()
    min_classes: int = 1
    needs_logp: bool = False
    pointwise: bool = False
    ratio: Optional[Callable] = None
    parts: Optional[tuple] = None
    tied: tuple = ()
    module: Optional[type] = None

    @property
    def summary(self) -> str:
        return self.doc.strip().split("\n")[0] if self.doc else ""

    def defaults(self) -> dict:
        """Hyperparameter name -> default (a new dict)."""
        return {k: p.default for k, p in self.params.items()}

    def bind(self, given: Mapping[str, Any], owner: Optional[str] = None) -> dict:
        """``given`` checked against the declaration, defaults filled in: every hyperparameter,
        validated and normalised (a new dict). An unknown name is a ``TypeError`` naming the
        hyperparameters, the closest first."""
        for k in given:
            if k not in self.params:
                hint = unknown_name_error(f"{owner or self.name} hyperparameter", k, self.params)
                raise TypeError(str(hint) if self.params else
                                f"{owner or self.name} takes no hyperparameters; got {k!r}.")
        return {k: p.check(k, given.get(k, p.default)) for k, p in self.params.items()}


#: canonical name -> definition, in declaration order
DEFINITIONS: dict[str, LossDef] = {}


#: called with each new definition (the module classes, the functions, the registry's names)
_LISTENERS: list = []
#: called with each new definition before it is registered; raise to refuse it
_VALIDATORS: list = []


def on_validate(validator: Callable[[LossDef], None]) -> None:
    """Call ``validator(d)`` before any later definition is registered (it raises to refuse it)."""
    _VALIDATORS.append(validator)


def on_define(listener: Callable[[LossDef], None]) -> None:
    """Call ``listener(d)`` for every definition, those made so far and every later one."""
    _LISTENERS.append(listener)
    for d in list(DEFINITIONS.values()):
        listener(d)


def _register(d: LossDef) -> LossDef:
    if not isinstance(d.name, str) or not d.name.strip():
        raise ValueError(f"a loss name must be a non-empty string; got {d.name!r}.")
    if d.name in DEFINITIONS:
        raise ValueError(f"loss {d.name!r} is already defined.")
    if d.kind not in ("active", "passive", "active+passive"):
        raise ValueError(f"loss {d.name!r}: kind must be 'active' or 'passive'; got {d.kind!r}.")
    if d.module is None and not d.cls_name:
        raise ValueError(f"loss {d.name!r}: cls= must name its module class.")
    for k, p in d.params.items():
        if not isinstance(p, Param):
            raise TypeError(f"loss {d.name!r}: hyperparameter {k!r} must be declared with Real/Int/Bool; got {p!r}.")
        p.check(k, p.default)                     # a default must satisfy its own constraint
    for validator in _VALIDATORS:
        validator(d)
    DEFINITIONS[d.name] = d
    for listener in _LISTENERS:
        listener(d)
    return d


def get_definition(name: str) -> LossDef:
    """The definition of the canonically-named loss ``name``."""
    try:
        return DEFINITIONS[name]
    except KeyError:
        raise unknown_name_error("loss", name, DEFINITIONS) from None


def loss(name: str, *, kind: str, cls: Optional[str] = None, params: Optional[Mapping[str, Param]] = None,
         func: Optional[str] = None, aliases: tuple = (), min_classes: int = 1, needs_logp: bool = False,
         pointwise: bool = False, ratio: Optional[Callable] = None, module: Optional[type] = None):
    """Decorator: declare the loss whose per-sample kernel it decorates (returned unchanged).

    The kernel's docstring is the loss's documentation; ``cls`` names the generated ``nn.Module``
    class. Decorating a hand-written ``nn.Module`` class (a subclass of
    :class:`asymloss.losses.Loss`: wrappers, losses with training mechanics) registers that class
    instead; it has no generated function.
    """
    def deco(obj):
        is_class = isinstance(obj, type)
        _register(LossDef(
            name=name, cls_name=obj.__name__ if is_class else cls, func_name=func or name,
            kernel=None if is_class else obj, params=dict(params or {}), kind=kind,
            doc=inspect.getdoc(obj) or "", aliases=tuple(aliases), min_classes=min_classes,
            needs_logp=needs_logp, pointwise=pointwise, ratio=ratio, module=obj if is_class else module))
        if is_class:   # the class's registry facts come from the declaration
            obj.definition = DEFINITIONS[name]
            obj.name, obj.kind, obj.hparam_names = name, kind, tuple(params or {})
            obj.min_classes, obj.needs_logp = min_classes, needs_logp
        return obj
    return deco


def combination(name: str, active: str, passive: str, *, cls: str, func: str, defaults: Mapping[str, Any],
                doc: str, aliases: tuple = (), tied: tuple = ()) -> LossDef:
    """Declare the named combination ``alpha * active + beta * passive`` with its own defaults.

    Its hyperparameters are ``alpha``, ``beta`` (>= 0) and the parts' (constraints from the parts;
    ``defaults`` gives every default that differs from a part's). A name in ``tied`` is given once
    and passed to both parts; any other name both parts have must not occur (declare it tied).
    """
    act, pas = DEFINITIONS[active], DEFINITIONS[passive]
    clash = (set(act.params) & set(pas.params)) - set(tied)
    if clash or {"alpha", "beta"} & (set(act.params) | set(pas.params)):
        raise ValueError(f"combination {name!r}: hyperparameters {sorted(clash) or ['alpha/beta']} "
                         f"are ambiguous; tie them or use an ad-hoc combination.")
    params = {"alpha": Real(1.0, ge=0), "beta": Real(1.0, ge=0)}
    for part in (act, pas):
        for k, p in part.params.items():
            params.setdefault(k, p)
    for k, v in defaults.items():
        if k not in params:
            raise ValueError(f"combination {name!r}: default for unknown hyperparameter {k!r}.")
        params[k] = Param(params[k].check(k, v), params[k].kind, params[k].gt, params[k].ge,
                          params[k].lt, params[k].le, params[k].doc)

    def kernel(b, alpha, beta, **hp):
        ka = {k: hp[k] for k in act.params}
        kp = {k: hp[k] for k in pas.params}
        return combine(b, alpha, act, ka, beta, pas, kp)

    return _register(LossDef(
        name=name, cls_name=cls, func_name=func, kernel=kernel, params=params, kind="active+passive",
        doc=doc, aliases=tuple(aliases), min_classes=max(act.min_classes, pas.min_classes),
        needs_logp=act.needs_logp or pas.needs_logp, pointwise=act.pointwise and pas.pointwise,
        parts=(act, pas), tied=tuple(tied)))


def combine(b, alpha, act: LossDef, ka: Mapping, beta, pas: LossDef, kp: Mapping):
    """``alpha * act + beta * pas`` on a shared batch; a zero coefficient skips its term (the MNIST
    presets' ``alpha = 0``); a term that reads every ``log p`` makes the batch compute it first,
    so that the other term shares it."""
    return combine_kernels(b, alpha, act.kernel, ka, act.needs_logp, beta, pas.kernel, kp, pas.needs_logp)


def combine_kernels(b, alpha, k1, kw1, logp1, beta, k2, kw2, logp2):
    if (alpha and logp1) or (beta and logp2):
        b.logp()
    if alpha == 0:
        return beta * k2(b, **kw2)
    if beta == 0:
        return alpha * k1(b, **kw1)
    return alpha * k1(b, **kw1) + beta * k2(b, **kw2)


def signature_params(d: LossDef, kind=inspect.Parameter.KEYWORD_ONLY) -> list:
    """The hyperparameters of ``d`` as ``inspect.Parameter``s with their defaults and annotations."""
    ann = {"real": float, "int": int, "bool": bool}
    return [inspect.Parameter(k, kind, default=p.default, annotation=ann[p.kind]) for k, p in d.params.items()]
