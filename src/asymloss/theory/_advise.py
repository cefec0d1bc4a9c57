"""Advice from the theory: which losses are asymmetric on an (estimated) noise, by how much, and the
smallest parameter that would make them so (see ``docs/estimation.md``).

:func:`advise` takes a transition matrix — an estimate T̂ with its leave-one-fold-out estimates
(:class:`asymloss.noise.TransitionEstimate`), a plain matrix or a noise spec — and a list of
candidate losses, and answers for each candidate: its asymmetry ratio r, the margin r − r̃, whether
it is asymmetric on T̂ (r̃ ≤ r for ℓ(p_y) losses; a minimisation over the simplex for the others),
and the smallest value of its parameter (``a``; ``q`` for GCE) that makes it asymmetric. With a
standard error of r̃ (from the folds) a verdict is only given when the whole interval
r̃ ± z·SE agrees; otherwise it is "uncertain".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_number
from ._closed import BOUNDED_PARAMETERS, ParameterBound, parameter_bound
from ._noise import as_transition_matrix, noise_ratio

__all__ = ["Advice", "CandidateAdvice", "advise", "parse_candidate", "default_candidates"]

#: The paper's asymmetric losses (ALFs), proposed with the values of every ``paper:*`` preset.
PAPER_ALFS = ("agce", "aul", "ael")
#: Registered ℓ(p_y) losses with a closed-form asymmetry ratio, proposed with their defaults.
POINTWISE_DEFAULTS = ("ce", "focal", "gce", "sce", "mae", "rce", "nmae")
#: The parameter whose smallest value is reported, per loss.
PRIMARY_PARAMETER = {"agce": "a", "aul": "a", "ael": "a", "gce": "q"}


@dataclass(frozen=True)
class CandidateAdvice:
    """The theory's answer for one candidate loss.

    Attributes:
        label: readable name with the parameters, e.g. ``"AGCE(a=4, q=0.2)"``.
        name: canonical registry name; params: its parameters; sources: where the candidate came
            from (``"paper:mnist"``, ``"default"``, ``"user"``), several when they coincide.
        ratio: r(ℓ), or None for losses that are not of the form ℓ(p_y).
        margin: r − r̃(T̂) (None without r): ≥ 0 means asymmetric on T̂.
        verdict: ``"yes"`` (asymmetric on T̂, and on the whole interval of r̃ when there is one),
            ``"no"``, or ``"uncertain"`` (the interval of r̃ contains r, or the fold estimates
            disagree).
        method: how the verdict on T̂ was reached (``closed-form``, ``ratio``, ``simplex``,
            ``noise-ratio``).
        param: the parameter solved for (``"a"``, ``"q"``) or None; bound: its
            :class:`ParameterBound` at r̃(T̂); bound_range: the bound's values at the two ends of
            r̃'s interval, or None.
        reason: one sentence of evidence.
    """

    label: str
    name: str | None
    params: dict
    sources: tuple
    ratio: float | None
    margin: float | None
    verdict: str
    method: str
    param: str | None = None
    bound: ParameterBound | None = None
    bound_range: tuple | None = None
    reason: str = ""

    def summary(self) -> dict:
        b = self.bound
        return {
            "label": self.label, "name": self.name, "params": dict(self.params), "sources": list(self.sources),
            "ratio": self.ratio, "margin": self.margin, "verdict": self.verdict, "method": self.method,
            "param": self.param,
            "bound": None if b is None else {"kind": b.kind, "value": b.value, "domain": b.domain, "message": b.message},
            "bound_range": None if self.bound_range is None else list(self.bound_range),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Advice:
    """The advice for one noise: T̂, r̃ with its uncertainty, a status and one answer per candidate.

    Attributes:
        transition: (K, K) T̂ (rows = clean class).
        noise_ratio: r̃(T̂).
        noise_ratio_se: fold-jackknife standard error of r̃, or None.
        interval: (low, high) = r̃ ± z·SE, or None.
        status: ``"dominant"`` (r̃ < 1 on the whole interval), ``"not-dominant"`` (r̃ ≥ 1: no loss
            of this family can be asymmetric), or ``"uncertain"`` (the interval contains 1, or is
            unbounded: T̂ is too uncertain to decide).
        candidates: one :class:`CandidateAdvice` per candidate, in the order given.
        message: plain sentences that say what the numbers mean.
        transition_se: (K, K) standard error of each entry of T̂, or None.
        source: where T̂ came from (free text).
    """

    transition: np.ndarray
    noise_ratio: float
    noise_ratio_se: float | None
    interval: tuple | None
    status: str
    candidates: tuple
    message: str
    transition_se: np.ndarray | None = None
    source: str = ""
    z: float = 2.0
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.transition.shape[0])

    def summary(self) -> dict:
        """A JSON-able dict (``inf`` as None)."""
        def f(x):
            return None if x is None or not math.isfinite(float(x)) else float(x)

        return {
            "kind": "advice",
            "source": self.source,
            "num_classes": self.num_classes,
            "transition": [[float(v) for v in row] for row in self.transition],
            "transition_se": None if self.transition_se is None else [[f(v) for v in row] for row in self.transition_se],
            "noise_ratio": f(self.noise_ratio),
            "noise_ratio_se": f(self.noise_ratio_se),
            "interval": None if self.interval is None else [f(v) for v in self.interval],
            "z": self.z,
            "status": self.status,
            "message": self.message,
            "candidates": [c.summary() for c in self.candidates],
            **self.extra,
        }


# ------------------------------------------------------------------------------------------------
# candidates
# ------------------------------------------------------------------------------------------------


def _value(text: str):
    t = text.strip()
    try:
        return int(t) if t.lstrip("+-").isdigit() else float(t)
    except ValueError:
        low = t.lower()
        if low in ("true", "false"):
            return low == "true"
        return t


def parse_candidate(spec) -> tuple[str, str | None, dict, str]:
    """A candidate loss as ``(name, preset, params, source)``.

    Accepts ``"agce"``, ``"agce@paper:mnist"``, ``"agce,a=0.6,q=0.6"``,
    ``"agce@paper:cifar10,q=0.5"`` (name, optional ``@preset``, then ``key=value`` pairs separated
    by commas), a dict ``{"loss": ..., "preset": ..., "params": {...}, "source": ...}`` or a tuple
    ``(name, params)``. ``source`` says where the candidate came from (default ``"user"``; the
    preset's name is shown instead when there is one).
    """
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",")]
        head, pairs = parts[0], parts[1:]
        if not head:
            raise ValueError(f"candidate {spec!r}: a loss name comes first, e.g. 'agce,a=0.6,q=0.6' or 'ael@paper:mnist'.")
        name, _, preset = head.partition("@")
        params = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise ValueError(f"candidate {spec!r}: after the name come key=value pairs separated by commas; "
                                 f"got {pair!r}.")
            params[key.strip()] = _value(value)
        return name.strip(), (preset.strip() or None), params, "user"
    if isinstance(spec, dict):
        unknown = set(spec) - {"loss", "preset", "params", "source"}
        if "loss" not in spec or unknown:
            raise ValueError(f"candidate {spec!r}: a dict needs 'loss' and may have 'preset', 'params' and "
                             "'source' only.")
        return str(spec["loss"]), spec.get("preset"), dict(spec.get("params") or {}), str(spec.get("source", "user"))
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
        return spec[0], None, dict(spec[1]), "user"
    raise TypeError(f"a candidate must be a string like 'agce,a=0.6,q=0.6', a dict or a (name, params) tuple; "
                    f"got {spec!r}.")


def default_candidates() -> list:
    """The paper's ALFs under every ``paper:*`` preset that defines them (``"agce@paper:mnist"``, …),
    then the registered ℓ(p_y) losses with a closed-form ratio at their defaults (as dicts with
    ``source="default"``). :func:`advise` merges candidates that resolve to the same loss."""
    from ._resolve import registry

    reg = registry()
    out = []
    for name in PAPER_ALFS:
        for preset in sorted(p for p in reg.list_presets() if p.startswith("paper:")):
            try:
                reg.get_preset(preset, name)
            except (KeyError, ValueError):
                continue
            out.append(f"{name}@{preset}")
    out.extend({"loss": name, "source": "default"} for name in POINTWISE_DEFAULTS)
    return out


# ------------------------------------------------------------------------------------------------
# the advice
# ------------------------------------------------------------------------------------------------


def _interval(rt: float, se: float | None, z: float):
    if se is None:
        return None
    if not math.isfinite(se) or not math.isfinite(rt):
        return (0.0 if not math.isfinite(se) else max(0.0, rt - z * se)), math.inf
    return max(0.0, rt - z * se), rt + z * se


def _fmt_params(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}={v}"
                     for k, v in params.items())


_QUIET = ("eps", "min_prob", "A")  # numerical guards, left out of the short labels


def _label(res, hp: dict) -> str:
    """``AGCE(a=4, q=0.2)``: the hyperparameters, without numerical guards (eps, min_prob, A)."""
    if not res.name:
        return res.label
    params = {k: v for k, v in hp.items() if k not in _QUIET}
    shown = {k: v for k, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return f"{res.name.upper()}({_fmt_params(shown)})" if shown else res.name.upper()


def _one(res, rt: float, interval, M: np.ndarray, fold_mats, seed: int):
    """(ratio, margin, verdict, method, reason) for a resolved loss."""
    from ._api import _ratio, is_asymmetric

    ratio = None
    if res.closed_form or res.pointwise is not None:
        ratio = float(_ratio(res).value)
    v = is_asymmetric(res.module, M, seed=seed)
    margin = None if ratio is None else ratio - rt
    verdict = "yes" if v.asymmetric else "no"
    if interval is not None:
        lo, hi = interval
        if ratio is not None and v.method in ("closed-form", "ratio"):
            if lo <= ratio < hi:
                verdict = "uncertain"
        elif v.method == "simplex" and fold_mats is not None:
            others = {bool(is_asymmetric(res.module, F, seed=seed)) for F in fold_mats}
            if others != {bool(v.asymmetric)}:
                verdict = "uncertain"
    return ratio, margin, verdict, v.method, v.reason


def _status(rt: float, interval) -> str:
    if interval is None:
        return "dominant" if rt < 1 else "not-dominant"
    lo, hi = interval
    if lo >= 1:
        return "not-dominant"
    if hi >= 1 or not math.isfinite(hi):
        return "uncertain"
    return "dominant"


def _message(status: str, rt: float, se, interval, K: int, n_yes: int, n_unc: int, z: float) -> str:
    pm = "" if se is None else (f" ± {se:.3f}" if math.isfinite(se) else " ± ∞")
    if status == "not-dominant":
        return (f"The noise is not clean-labels-dominant: r̃ = {rt:.3f}{pm} ≥ 1. In some class a wrong label is at "
                "least as likely as the right one, so NO loss of the form ℓ(p_y) can be asymmetric on it (and no "
                "robust loss can tell the clean label from the noisy one there). Fix the labels of that class, or "
                "use a method that models T.")
    if status == "uncertain":
        lo, hi = interval
        return (f"T̂ is too uncertain to decide: r̃ = {rt:.3f}{pm}, and its interval [{lo:.3f}, "
                f"{'∞' if not math.isfinite(hi) else f'{hi:.3f}'}] (r̃ ± {z:g}·SE) contains 1, so the data cannot tell "
                "whether clean labels dominate. Get more examples or better predicted probabilities.")
    parts = [f"Clean labels dominate: r̃ = {rt:.3f}{pm} < 1, so a loss with asymmetry ratio r ≥ r̃ is asymmetric "
             "(noise-tolerant) on T̂."]
    if se is None:
        parts.append("No uncertainty is available (T̂ came without folds): a verdict close to r̃ is fragile.")
    else:
        parts.append(f"Verdicts are given when the whole interval r̃ ± {z:g}·SE agrees; otherwise they read 'uncertain'.")
    parts.append(f"{n_yes} candidate(s) asymmetric, {n_unc} uncertain.")
    return " ".join(parts)


def advise(T, candidates=None, *, num_classes: int | None = None, dataset: str | None = None,
           fold_transitions=None, z: float = 2.0, seed: int = 0, source: str = "") -> Advice:
    """Which candidate losses are asymmetric (noise-tolerant) on the noise T, and by what margin.

    Args:
        T: a :class:`asymloss.noise.TransitionEstimate` (its leave-one-fold-out estimates give the
            uncertainty), a row-stochastic (K, K) matrix (rows = clean class) or a noise spec
            string with ``num_classes`` / ``dataset``.
        candidates: losses to judge (default :func:`default_candidates`): strings such as
            ``"agce@paper:mnist"``, ``"ael,a=2"``, ``"nce+agce@paper:cifar10"``, dicts or
            ``(name, params)`` tuples (see :func:`parse_candidate`). Any registered loss works;
            those that are not of the form ℓ(p_y) get a verdict from a simplex minimisation and no
            ratio, margin or bound. Candidates that resolve to the same loss and parameters are merged.
        fold_transitions: (F, K, K) leave-one-fold-out estimates of T, when ``T`` is a matrix.
        z: width of r̃'s interval in standard errors.
        seed: seed of the simplex minimisations.

    Returns:
        :class:`Advice`. ``status`` says whether clean labels dominate (r̃ < 1), do not (no loss of
        this family can be asymmetric) or whether T̂ is too uncertain to tell.

    Example:
        >>> from asymloss import theory
        >>> adv = theory.advise("asymmetric:0.4", ["ael,a=2", "ael,a=3"], dataset="mnist")
        >>> for c in adv.candidates:
        ...     print(c.label, c.verdict, round(c.bound.value, 3))
        AEL(a=2) no 2.466
        AEL(a=3) yes 2.466
    """
    from ._resolve import registry, resolve_loss

    check_number("z", z, gt=0)
    se = tse = None
    if hasattr(T, "transition") and hasattr(T, "fold_transitions"):  # a TransitionEstimate
        if fold_transitions is not None:
            raise ValueError("fold_transitions is taken from the estimate; do not pass both.")
        M = as_transition_matrix(T.transition)
        fold_mats = T.fold_transitions
        source = source or f"estimate ({T.method}, N = {T.num_examples})"
    else:
        M = as_transition_matrix(T, num_classes, dataset)
        fold_mats = None if fold_transitions is None else np.asarray(fold_transitions, dtype=np.float64)
        source = source or ("noise spec " + T if isinstance(T, str) else "matrix")
    K = M.shape[0]
    if fold_mats is not None:
        if fold_mats.ndim != 3 or fold_mats.shape[1:] != (K, K) or fold_mats.shape[0] < 2:
            raise ValueError(f"fold_transitions must have shape (F, {K}, {K}) with F >= 2; got {fold_mats.shape}.")
        fold_mats = np.stack([as_transition_matrix(F) for F in fold_mats])
        from ..noise._estimate import TransitionEstimate

        jk = TransitionEstimate._jackknife
        se = float(jk(np.array([noise_ratio(F) for F in fold_mats])))
        tse = jk(fold_mats)
    rt = noise_ratio(M)
    interval = _interval(rt, se, z)
    status = _status(rt, interval)

    reg = registry()
    specs = default_candidates() if candidates is None else list(candidates)
    if isinstance(candidates, str):
        specs = [candidates]
    merged: dict = {}
    for spec in specs:
        name, preset, params, origin = parse_candidate(spec)
        try:
            module = reg.create_loss(name, num_classes=K, preset=preset, **params)
        except (KeyError, ValueError, TypeError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise type(exc)(f"candidate {spec!r}: {msg}") from exc
        res = resolve_loss(module, {})
        hp = module.hparams() if callable(getattr(module, "hparams", None)) else {}
        key = (_label(res, hp), tuple(sorted((k, repr(v)) for k, v in hp.items())))
        src = preset or origin
        if key in merged:
            if src not in merged[key][1]:
                merged[key][1].append(src)
            continue
        merged[key] = (res, [src], {k: v for k, v in hp.items()})

    out = []
    for (label, _), (res, sources, hp) in merged.items():
        ratio, margin, verdict, method, reason = _one(res, rt, interval, M, fold_mats, seed)
        param = bound = brange = None
        if status == "uncertain":
            verdict = "uncertain"
        pname = PRIMARY_PARAMETER.get(res.name)
        if pname is not None and pname in BOUNDED_PARAMETERS.get(res.name, ()):
            fixed = {k: float(res.params[k]) for k in BOUNDED_PARAMETERS[res.name] if k != pname and k in res.params}
            param = pname
            bound = parameter_bound(res.name, pname, rt, fixed)
            if interval is not None:
                ends = [parameter_bound(res.name, pname, r, fixed) for r in interval]
                brange = tuple(b.value if b.kind in ("min", "max") else b.kind for b in ends)
        out.append(CandidateAdvice(label=label, name=res.name, params=hp, sources=tuple(sources), ratio=ratio,
                                   margin=margin, verdict=verdict, method=method, param=param, bound=bound,
                                   bound_range=brange, reason=reason))
    n_yes = sum(c.verdict == "yes" for c in out)
    n_unc = sum(c.verdict == "uncertain" for c in out)
    return Advice(transition=M, noise_ratio=rt, noise_ratio_se=se, interval=interval, status=status,
                  candidates=tuple(out), message=_message(status, rt, se, interval, K, n_yes, n_unc, z),
                  transition_se=tse, source=source, z=z)
