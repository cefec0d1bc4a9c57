"""Closed forms of docs/theory.md: asymmetry ratios and the smallest asymmetric parameters.

Everything here is a pure function of floats. Loss names are the canonical registry names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .._validation import check_number

__all__ = [
    "POINTWISE",
    "closed_form_ratio",
    "agce_ratio",
    "aul_ratio",
    "ael_ratio",
    "ParameterBound",
    "parameter_bound",
    "BOUNDED_PARAMETERS",
]

# Losses of the form L(u, y) = ℓ(u_y) that have a closed-form asymmetry ratio, with the
# parameters the ratio depends on.
POINTWISE = {
    "agce": ("a", "q"),
    "aul": ("a", "q"),
    "ael": ("a",),
    "mae": (),
    "rce": (),
    "nmae": (),
    "ce": (),
    "focal": (),
    "gce": ("q",),
    "sce": ("alpha", "beta"),
    "taylor_ce": ("t",),
    "poly1_ce": ("epsilon",),
}

# (loss, parameter) pairs for which parameter_bound has a closed form.
BOUNDED_PARAMETERS = {"agce": ("a", "q"), "aul": ("a", "q"), "ael": ("a",), "gce": ("q",)}


def agce_ratio(a: float, q: float) -> float:
    """r(AGCE) = ((a+1)/a)^(q−1) for q ≤ 1, else 1. ``a > 0, q > 0``."""
    check_number("a", a, gt=0)
    check_number("q", q, gt=0)
    if q >= 1:
        return 1.0
    # ((a+1)/a)^(q-1) = exp((q-1) * log1p(1/a)), accurate for tiny and huge a
    return math.exp((q - 1.0) * math.log1p(1.0 / a))


def aul_ratio(a: float, q: float) -> float:
    """r(AUL) = ((a−1)/a)^(q−1) for q > 1, else 1. ``a > 1, q > 0``."""
    check_number("a", a, gt=1)
    check_number("q", q, gt=0)
    if q <= 1:
        return 1.0
    return math.exp((q - 1.0) * math.log1p(-1.0 / a))


def ael_ratio(a: float) -> float:
    """r(AEL) = exp(−1/a). ``a > 0``."""
    check_number("a", a, gt=0)
    return math.exp(-1.0 / a)


def closed_form_ratio(name: str, params: dict) -> float:
    """Closed-form asymmetry ratio of the pointwise loss ``name`` with ``params``.

    CE, focal and Poly-1 have ℓ(0) = ∞ and GCE (q < 1) has ℓ′(0) = −∞, so r = 0; Taylor-CE of
    order t has |ℓ′| from 1 (u = 1) to t (u = 0), so r = 1/t; MAE, RCE and NMAE are
    linear in u_y (r = 1); GCE with q ≥ 1 is concave (r = 1); SCE = α·CE + β·RCE has r = 0 when
    α > 0 and r = 1 when α = 0.
    """
    if name == "agce":
        return agce_ratio(params["a"], params["q"])
    if name == "aul":
        return aul_ratio(params["a"], params["q"])
    if name == "ael":
        return ael_ratio(params["a"])
    if name in ("mae", "rce", "nmae"):
        return 1.0
    if name in ("ce", "focal"):
        return 0.0
    if name == "gce":
        q = check_number("q", params["q"], gt=0)
        return 0.0 if q < 1 else 1.0
    if name == "taylor_ce":
        # |ℓ′(u)| = sum_{k=1}^t (1 − u)^(k−1): t at u = 0, 1 at u = 1
        return 1.0 / check_number("t", params["t"], ge=1)
    if name == "poly1_ce":
        check_number("epsilon", params["epsilon"], ge=-1)
        return 0.0  # ℓ′(u) = −1/u − epsilon is unbounded at u = 0, like CE
    if name == "sce":
        alpha = check_number("alpha", params["alpha"], ge=0)
        beta = check_number("beta", params["beta"], ge=0)
        if alpha == 0 and beta == 0:
            raise ValueError("SCE with alpha = beta = 0 is the zero loss; its asymmetry ratio is undefined.")
        return 0.0 if alpha > 0 else 1.0
    raise KeyError(name)


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


_DOMAINS = {("agce", "a"): "a > 0", ("agce", "q"): "q > 0", ("aul", "a"): "a > 1",
            ("aul", "q"): "q > 0", ("ael", "a"): "a > 0", ("gce", "q"): "q > 0"}


def parameter_bound(name: str, param: str, rt: float, fixed: dict) -> ParameterBound:
    """Closed-form set of ``param`` values with r(ℓ) ≥ r̃ (docs/theory.md, 'Smallest parameters'), for r̃ = ``rt``."""
    domain = _DOMAINS[(name, param)]
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
