"""Closed forms of docs/theory.md: asymmetry ratios and the smallest asymmetric parameters.

Everything here is a pure function of floats. Loss names are the canonical registry names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


__all__ = [
    "closed_form_ratio",
    "agce_ratio",
    "aul_ratio",
    "ael_ratio",
    "ParameterBound",
    "parameter_bound",
    "BOUNDED_PARAMETERS",
]

# (loss, parameter) pairs for which parameter_bound has a closed form (the inverses below).
BOUNDED_PARAMETERS = {"agce": ("a", "q"), "aul": ("a", "q"), "ael": ("a",), "gce": ("q",)}


def _definition(name: str):
    from ..losses import get_definition

    return get_definition(name)


def closed_form_ratio(name: str, params: dict) -> float:
    """Closed-form asymmetry ratio of the registered ℓ(p_y) loss ``name`` with ``params`` (the
    others take their defaults), from the loss's declaration; ``KeyError`` when it has none.

    CE, focal and Poly-1 have ℓ(0) = ∞ and GCE (q < 1) has ℓ′(0) = −∞, so r = 0; Taylor-CE of
    order t has |ℓ′| from 1 (u = 1) to t (u = 0), so r = 1/t; MAE, RCE and NMAE are
    linear in u_y (r = 1); GCE with q ≥ 1 is concave (r = 1); SCE = α·CE + β·RCE has r = 0 when
    α > 0 and r = 1 when α = 0.
    """
    d = _definition(name)
    if d.ratio is None:
        raise KeyError(name)
    return d.ratio(**d.bind({k: v for k, v in params.items() if k in d.params}))


def agce_ratio(a: float, q: float) -> float:
    """r(AGCE) = ((a+1)/a)^(q−1) for q ≤ 1, else 1. ``a > 0, q > 0``."""
    return closed_form_ratio("agce", {"a": a, "q": q})


def aul_ratio(a: float, q: float) -> float:
    """r(AUL) = ((a−1)/a)^(q−1) for q > 1, else 1. ``a > 1, q > 0``."""
    return closed_form_ratio("aul", {"a": a, "q": q})


def ael_ratio(a: float) -> float:
    """r(AEL) = exp(−1/a). ``a > 0``."""
    return closed_form_ratio("ael", {"a": a})


@dataclass(frozen=True)
class ParameterBound:
    """Which values of one parameter make a loss asymmetric for a given noise ratio.

    Attributes:
        loss, param: the loss (canonical name) and the parameter asked about.
        fixed: the other parameters, held fixed.
        noise_ratio: r̃ of the noise.
        kind: ``"min"`` (asymmetric iff ``param >= value``), ``"max"`` (iff ``param <= value``;
            there is no smallest value above the domain's bound), ``"any"`` (every valid value
            works; ``value`` is None) or ``"none"`` (no value works; ``value`` is None).
        value: the bound (float) or None.
        domain: the parameter's valid range as text, e.g. ``"a > 0"``.
        message: one readable sentence.
    """

    loss: str
    param: str
    fixed: dict
    noise_ratio: float
    kind: str
    value: float | None
    domain: str
    message: str

    def __float__(self) -> float:
        if self.value is None:
            raise TypeError(f"no bound to convert to float: {self.message}")
        return float(self.value)

    def admits(self, x: float) -> bool:
        """Whether ``param = x`` makes the loss asymmetric (``x`` in the parameter's domain)."""
        if self.kind == "any":
            return True
        if self.kind == "none":
            return False
        if self.kind == "min":
            return x >= self.value
        return x <= self.value


def parameter_bound(name: str, param: str, rt: float, fixed: dict) -> ParameterBound:
    """Closed-form set of ``param`` values with r(ℓ) ≥ r̃ (docs/theory.md, 'Smallest parameters'), for r̃ = ``rt``."""
    domain = _definition(name).params[param].describe(param)
    label = f"{name.upper()}({', '.join(f'{k}={v:g}' for k, v in fixed.items())})" if fixed else name.upper()

    def bound(kind, value, text):
        return ParameterBound(name, param, dict(fixed), rt, kind, value, domain, text)

    if not rt < 1:
        return bound("none", None, (
            f"no {param} works: the noise is not clean-labels-dominant (r̃ = {rt:.6g} ≥ 1), "
            "so no loss is asymmetric on it."))
    if rt <= 0:
        return bound("any", None, f"every {domain.replace(' ', '')} works: the noise ratio is 0 (no noise).")
    lr = math.log(rt)  # < 0
    if name == "agce" and param == "a":
        q = fixed["q"]
        if q >= 1:
            return bound("any", None, f"every a > 0 works: {label} with q ≥ 1 is concave, r = 1.")
        x = lr / (1.0 - q)  # t = r̃^(1/(1-q)) = e^x; a = t / (1 - t)
        v = math.exp(x) / -math.expm1(x)
        return bound("min", v, f"{label} is asymmetric iff a ≥ {v:.6g}.")
    if name == "agce" and param == "q":
        a = fixed["a"]
        v = 1.0 + lr / math.log1p(1.0 / a)
        if v <= 0:
            return bound("any", None, f"every q > 0 works for {label} (r̃ = {rt:.6g}).")
        return bound("min", v, f"{label} is asymmetric iff q ≥ {v:.6g}.")
    if name == "aul" and param == "a":
        q = fixed["q"]
        if q <= 1:
            return bound("any", None, f"every a > 1 works: {label} with q ≤ 1 is concave, r = 1.")
        x = lr / (q - 1.0)  # s = r̃^(1/(q-1)) = e^x; a = 1 / (1 - s)
        v = -1.0 / math.expm1(x)
        return bound("min", v, f"{label} is asymmetric iff a ≥ {v:.6g}.")
    if name == "aul" and param == "q":
        a = fixed["a"]
        v = 1.0 + lr / math.log1p(-1.0 / a)
        return bound("max", v, f"{label} is asymmetric iff q ≤ {v:.6g} (smaller q is safer; no lower bound).")
    if name == "ael" and param == "a":
        v = -1.0 / lr
        return bound("min", v, f"AEL is asymmetric iff a ≥ {v:.6g}.")
    if name == "gce" and param == "q":
        return bound("min", 1.0, "GCE is asymmetric iff q ≥ 1 (q < 1 has r = 0 on any noise).")
    raise KeyError((name, param))  # pragma: no cover - guarded by BOUNDED_PARAMETERS
