"""The public questions of asymloss.theory (docs/theory.md)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import check_choice, check_number
from ._closed import BOUNDED_PARAMETERS, ParameterBound, closed_form_ratio, parameter_bound
from ._noise import as_transition_matrix, noise_ratio
from ._ratio import numerical_ratio
from ._resolve import ResolvedLoss, registry, resolve_loss
from ._simplex import GeneralObjective, PointwiseObjective, SimplexMinimum, TorchObjective, minimise_rows

__all__ = [
    "AsymmetryRatio",
    "AsymmetryVerdict",
    "SymmetryCheck",
    "asymmetry_ratio",
    "is_asymmetric",
    "is_symmetric",
    "min_parameter",
    "minimize_weighted_risk",
]


# ------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsymmetryRatio:
    """The asymmetry ratio r(ℓ) of a loss L(u, y) = ℓ(u_y).

    Attributes:
        value: r(ℓ) (``float(result)`` gives it too).
        method: ``"closed-form"`` (docs/theory.md, 'Closed-form asymmetry ratios') or ``"numerical"`` (grid + refinement + limit).
        loss: a readable name of the loss, with its parameters.
        params: the parameters the value depends on.
        at: for ``"numerical"``, the (u, Δu) where the infimum is attained; Δu = 0 marks a limit
            Δu → 0 at that u. None for ``"closed-form"``.
    """

    value: float
    method: str
    loss: str
    params: dict = field(default_factory=dict)
    at: tuple | None = None

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class AsymmetryVerdict:
    """Whether a loss is asymmetric on a noise transition matrix T, and why.

    Attributes:
        asymmetric: the verdict (``bool(result)`` gives it too).
        method: ``"closed-form"`` (r̃ ≤ r with a closed-form r: necessary and sufficient for
            L(u, y) = ℓ(u_y) losses with convex or concave ℓ, such as AGCE, AUL, AEL, MAE, GCE, CE),
            ``"ratio"`` (r̃ ≤ r with a numerical r: sufficient), ``"simplex"`` (numerical minimisation
            of Σ_k T[y, k] L(u, k) over the simplex for every clean class y) or ``"noise-ratio"``
            (r̃ ≥ 1: no clean class is the unique most likely label, so nothing is asymmetric).
        loss: readable name of the loss.
        noise_ratio: r̃(T).
        asymmetry_ratio: r(ℓ) when it was used, else None.
        rows: for ``"simplex"``, one :class:`SimplexMinimum` per distinct row of T (rows equal up to
            a relabelling of the classes are solved once), target = the clean class.
        reason: one readable sentence with the evidence.
    """

    asymmetric: bool
    method: str
    loss: str
    noise_ratio: float
    asymmetry_ratio: float | None
    rows: tuple = ()
    reason: str = ""

    def __bool__(self) -> bool:
        return bool(self.asymmetric)


@dataclass(frozen=True)
class SymmetryCheck:
    """Whether Σ_k L(u, k) is constant over the simplex (Ghosh et al. 2017), checked numerically.

    Attributes:
        symmetric: the verdict (``bool(result)`` too).
        constant: the mean of Σ_k L(u, k) over the samples.
        spread: max − min of Σ_k L(u, k) over the samples.
        samples: how many random points u were drawn.
        num_classes: K.
    """

    symmetric: bool
    constant: float
    spread: float
    samples: int
    num_classes: int

    def __bool__(self) -> bool:
        return bool(self.symmetric)


# ------------------------------------------------------------------------------------------------
# asymmetry ratio
# ------------------------------------------------------------------------------------------------


def asymmetry_ratio(loss, *, method: str = "auto", num_classes: int | None = None, preset: str | None = None,
                    **params) -> AsymmetryRatio:
    """The asymmetry ratio r(ℓ) = inf (ℓ(u) − ℓ(u+Δu)) / (ℓ(0) − ℓ(Δu)) over 0 ≤ u, Δu, u+Δu ≤ 1.

    Args:
        loss: a registry name with its parameters as keywords (``"agce", a=0.6, q=0.6``; or
            ``preset="paper:cifar10"``), a loss module (its attributes are read), or a callable
            ℓ(u) on [0, 1] (NumPy or torch, vectorised or scalar).
        method: ``"auto"`` (closed form when known, else numerical), ``"closed-form"`` or
            ``"numerical"`` (a callable always uses ``"numerical"``).
        num_classes: passed to ``create_loss`` for names that need it.

    Returns:
        :class:`AsymmetryRatio` (``float(result)`` is the value). Closed forms (docs/theory.md): AGCE
        ((a+1)/a)^(q−1) for q ≤ 1 else 1; AUL ((a−1)/a)^(q−1) for q > 1 else 1; AEL exp(−1/a);
        MAE, RCE, NMAE 1; CE, focal 0; GCE 0 for q < 1 (1 for q ≥ 1); SCE 0 for α > 0. The numerical
        infimum agrees with them to 1e-5.

    Raises:
        ValueError: for a loss that is not of the form L(u, y) = ℓ(u_y) (NCE, NFL, NGCE, ANorm,
            active–passive combinations): use :func:`is_asymmetric` for those.

    Example:
        >>> round(float(asymmetry_ratio(lambda u: ((1.6) ** 0.6 - (0.6 + u) ** 0.6) / 0.6)), 6)
        0.67548
    """
    check_choice("method", method, ("auto", "closed-form", "numerical"))
    res = resolve_loss(loss, params, num_classes=num_classes, preset=preset)
    return _ratio(res, method)


def _ratio(res: ResolvedLoss, method: str = "auto") -> AsymmetryRatio:
    if res.closed_form and method in ("auto", "closed-form"):
        value = closed_form_ratio(res.name, res.params)
        return AsymmetryRatio(value, "closed-form", res.label, dict(res.params))
    if method == "closed-form":
        raise ValueError(
            f"method='closed-form': no closed form for {res.label}; closed forms exist for "
            "agce, aul, ael, mae, rce, nmae, ce, focal, gce, sce. Use method='numerical'."
        )
    if res.pointwise is None:
        raise ValueError(
            f"{res.label} is not of the form L(u, y) = ℓ(u_y), so it has no asymmetry ratio; "
            "use is_asymmetric(loss, T), which minimises the weighted risk over the simplex."
        )
    inf = numerical_ratio(res.pointwise)
    return AsymmetryRatio(inf.value, "numerical", res.label, dict(res.params), (inf.u, inf.du))


# ------------------------------------------------------------------------------------------------
# simplex minimisation
# ------------------------------------------------------------------------------------------------


def _objective(res: ResolvedLoss, K: int):
    if res.module is not None:
        return TorchObjective(res.module, K)
    if res.pointwise is not None:
        return PointwiseObjective(res.pointwise, K)
    return GeneralObjective(res.general, K)


def minimize_weighted_risk(loss, weights, *, target: int | None = None, num_classes: int | None = None,
                           preset: str | None = None, seed: int = 0, **params) -> SimplexMinimum:
    """Minimise Σ_k w_k L(u, k) over the probability simplex and compare with the vertex e_t.

    Args:
        loss: a registry name (+ parameters), a loss module, a callable ℓ(u) (L(u, k) = ℓ(u_k)) or
            a callable L(U, k) taking U of shape (N, K) and a class index, returning (N,).
        weights: (K,) non-negative weights summing to 1 (e.g. a row of a transition matrix).
        target: the class whose vertex should be the minimiser (default: argmax of the weights).
        seed: seed of the random starts.

    Returns:
        :class:`SimplexMinimum` with the best point found, its risk, the risk at e_t and the gap.
        Exponentiated gradient in float64 from K + 21 starts (21 for K > 12): the centre, near
        vertices, along the ray to e_t and random Dirichlet points, batched.

    Example:
        >>> import numpy as np
        >>> w = np.r_[0.2, np.full(9, 0.8 / 9)]
        >>> m = minimize_weighted_risk(lambda u: (1.1 ** 0.1 - (0.1 + u) ** 0.1) / 0.1, w)
        >>> round(float(m.point[0]), 4), round(m.risk, 6), round(m.vertex_risk, 6)
        (0.3296, 1.53939, 1.721987)
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size < 2 or not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1) > 1e-6:
        raise ValueError(f"weights must be a 1-D vector of >= 2 non-negative numbers summing to 1; got {weights!r}.")
    K = w.size
    if target is None:
        target = int(np.argmax(w))
    check_number("target", target, ge=0, lt=K, integer=True)
    res = resolve_loss(loss, params, num_classes=num_classes or (K if isinstance(loss, str) else None), preset=preset)
    return minimise_rows(_objective(res, K), w[None], [target], seed=seed)[0]


# ------------------------------------------------------------------------------------------------
# asymmetric on a noise
# ------------------------------------------------------------------------------------------------


def _canonical_rows(T: np.ndarray, equivariant: bool):
    """Distinct rows (up to relabelling when the loss allows it) with their clean class."""
    K = T.shape[0]
    keys, reps, perms = {}, [], []
    for y in range(K):
        if equivariant:
            others = [k for k in range(K) if k != y]
            others.sort(key=lambda k: -T[y, k])
            perm = np.array([y, *others])
            key = tuple(np.round(T[y, perm], 12))
        else:
            perm, key = np.arange(K), (y, *np.round(T[y], 12))
        if key not in keys:
            keys[key] = len(reps)
            reps.append(y)
            perms.append(perm)
    return reps, perms


def is_asymmetric(loss, T, *, num_classes: int | None = None, dataset: str | None = None,
                  preset: str | None = None, method: str = "auto", seed: int = 0, **params) -> AsymmetryVerdict:
    """Is the loss asymmetric on the noise T (so that, under this noise, the noisy-risk minimiser is
    the clean one)?

    Args:
        loss: a registry name (+ parameters as keywords, or ``preset``), a loss module, a callable
            ℓ(u) or a callable L(U, k) (see :func:`minimize_weighted_risk`).
        T: a row-stochastic (K, K) transition matrix (rows = clean class) or a noise spec string
            such as ``"symmetric:0.8"`` with ``num_classes`` (and ``dataset`` for asymmetric noise).
        method: ``"auto"`` (below), ``"ratio"`` (the paper's condition only) or ``"simplex"``
            (numerical minimisation only).

    ``"auto"``: if r̃(T) ≥ 1 the answer is no. For L(u, y) = ℓ(u_y) losses with a closed-form
    ratio the condition r̃ ≤ r decides (necessary and sufficient for AGCE, AUL, AEL, and for the
    linear, concave and r = 0 losses MAE, RCE, NMAE, GCE, CE, focal, SCE). For a callable ℓ the
    ratio is computed numerically; r̃ ≤ r proves asymmetry, otherwise the simplex decides. Other
    losses (NCE, NFL, NGCE, ANorm, active–passive combinations, L(U, k) callables) are decided by
    minimising Σ_k T[y, k] L(u, k) over the simplex for every clean class y: asymmetric iff no
    point beats the vertex e_y by more than 1e-9 (relative). NCE is symmetric but asymmetric in this
    sense only when the off-target weights are equal.

    Returns:
        :class:`AsymmetryVerdict` (truthy iff asymmetric) with the method and the evidence.

    Example:
        >>> import numpy as np
        >>> K, eta = 10, 0.8
        >>> T = (1 - eta) * np.eye(K) + eta / (K - 1) * (np.ones((K, K)) - np.eye(K))
        >>> ael = lambda u: np.exp(-u / 2.5)
        >>> v = is_asymmetric(ael, T)
        >>> v.asymmetric, v.method
        (True, 'ratio')
    """
    check_choice("method", method, ("auto", "ratio", "simplex"))
    M = as_transition_matrix(T, num_classes, dataset)
    K = M.shape[0]
    rt = noise_ratio(M)
    res = resolve_loss(loss, params, num_classes=K if isinstance(loss, str) else None, preset=preset)
    if rt >= 1:
        r = _ratio(res).value if (res.closed_form or res.pointwise is not None) else None
        return AsymmetryVerdict(False, "noise-ratio", res.label, rt, r, (), (
            f"the noise is not clean-labels-dominant (r̃ = {rt:.6g} ≥ 1): some noisy label is at "
            "least as likely as the clean one, so no loss is asymmetric on it."))
    if method != "simplex" and (res.closed_form or res.pointwise is not None):
        ratio = _ratio(res)
        r = ratio.value
        holds = rt <= r * (1 + 1e-12) + 1e-15
        if ratio.method == "closed-form":
            sign = "≤" if holds else ">"
            return AsymmetryVerdict(holds, "closed-form", res.label, rt, r, (),
                                    f"r̃ = {rt:.6f} {sign} r = {r:.6f} (closed form; necessary and sufficient).")
        if holds or method == "ratio":
            why = "sufficient" if holds else "inconclusive for a general ℓ; use method='simplex'"
            return AsymmetryVerdict(holds, "ratio", res.label, rt, r, (),
                                    f"r̃ = {rt:.6f} {'≤' if holds else '>'} r = {r:.6f} (numerical ratio; {why}).")
    elif method == "ratio":
        raise ValueError(
            f"method='ratio': {res.label} is not of the form L(u, y) = ℓ(u_y) and has no asymmetry "
            "ratio; use method='auto' or 'simplex'."
        )
    reps, perms = _canonical_rows(M, res.equivariant)
    rows = np.stack([M[y, p] for y, p in zip(reps, perms)])
    targets = [int(np.flatnonzero(p == y)[0]) for y, p in zip(reps, perms)]
    found = minimise_rows(_objective(res, K), rows, targets, seed=seed)
    back = []
    for y, p, m in zip(reps, perms, found):
        inv = np.empty_like(p)
        inv[p] = np.arange(K)
        back.append(SimplexMinimum(M[y].copy(), y, m.point[inv], m.risk, m.vertex_risk, m.gap, m.vertex_is_minimiser))
    ok = all(m.vertex_is_minimiser for m in back)
    worst = max(back, key=lambda m: m.gap)
    if ok:
        reason = (f"e_y minimises the weighted risk Σ_k T[y, k] L(u, k) of every clean class y: no point "
                  f"beats it ({len(back)} distinct row(s) checked).")
    else:
        pt = ", ".join(f"{v:.4g}" for v in worst.point[: min(K, 4)]) + (", …" if K > 4 else "")
        reason = (f"row y={worst.target}: u* = ({pt}) has weighted risk {worst.risk:.6f} < "
                  f"{worst.vertex_risk:.6f} at e_y.")
    r = None
    if res.closed_form or res.pointwise is not None:
        r = _ratio(res).value
    return AsymmetryVerdict(ok, "simplex", res.label, rt, r, tuple(back), reason)


# ------------------------------------------------------------------------------------------------
# smallest parameter
# ------------------------------------------------------------------------------------------------


def _bounded_list() -> str:
    return ", ".join(f"{n} ({', '.join(ps)})" for n, ps in BOUNDED_PARAMETERS.items())


def min_parameter(loss_name: str, param: str, T, *, num_classes: int | None = None, dataset: str | None = None,
                  **fixed) -> ParameterBound:
    """The smallest value of ``param`` that makes the loss asymmetric on the noise T (docs/theory.md, 'Smallest parameters').

    Args:
        loss_name: ``"agce"``, ``"aul"``, ``"ael"`` or ``"gce"`` (any spelling the registry accepts).
        param: the parameter to solve for (``"a"``; ``"q"`` for AGCE, AUL, GCE).
        T: transition matrix or noise spec string (with ``num_classes``, ``dataset``).
        **fixed: the other parameters (default: the registry's defaults).

    Returns:
        :class:`ParameterBound`: ``kind="min"`` with ``value`` (asymmetric iff param ≥ value),
        ``"max"`` (iff param ≤ value: AUL's q), ``"any"`` (every valid value works, e.g. AGCE with
        q ≥ 1) or ``"none"`` (no value works: r̃ ≥ 1). Closed forms: AGCE a ≥ t/(1−t), t =
        r̃^(1/(1−q)); q ≥ 1 + ln r̃ / ln(1 + 1/a). AUL a ≥ 1/(1 − r̃^(1/(q−1))); q ≤ 1 + ln r̃ /
        ln(1 − 1/a). AEL a ≥ −1/ln r̃. GCE q ≥ 1.

    Example:
        >>> import numpy as np
        >>> T = np.array([[0.6, 0.4], [0.4, 0.6]])  # r̃ = 2/3
        >>> round(min_parameter("ael", "a", T).value, 3)
        2.466
    """
    if not isinstance(loss_name, str):
        raise TypeError(f"loss_name must be a registry name (str); got {type(loss_name).__name__}.")
    if param in fixed:
        raise TypeError(f"min_parameter: {param!r} is the parameter solved for; do not pass it among the fixed ones.")
    rt = noise_ratio(T, num_classes, dataset)
    name, values = _canonical_name(loss_name, fixed)
    if name not in BOUNDED_PARAMETERS:
        raise ValueError(f"min_parameter has closed forms for {_bounded_list()}; got loss_name={loss_name!r}.")
    check_choice("param", param, BOUNDED_PARAMETERS[name])
    others = {k: v for k, v in values.items() if k != param}
    return parameter_bound(name, param, rt, others)


def _canonical_name(loss_name: str, fixed: dict):
    try:
        reg = registry()
    except (ImportError, RuntimeError):  # pragma: no cover - only before the losses part exists
        return loss_name.lower(), dict(fixed)
    res = resolve_loss(reg.create_loss(loss_name, **fixed), {})
    return res.name, {k: v for k, v in res.params.items() if k in BOUNDED_PARAMETERS.get(res.name, ())}


# ------------------------------------------------------------------------------------------------
# symmetric loss
# ------------------------------------------------------------------------------------------------


def is_symmetric(loss, num_classes: int, *, samples: int = 512, seed: int = 0, rtol: float = 1e-6,
                 preset: str | None = None, **params) -> SymmetryCheck:
    """Check numerically that Σ_k L(u, k) is the same constant for every u in the simplex.

    Draws ``samples`` points u from Dirichlet distributions (concentrations 0.1, 1 and 10, so that
    near-vertex, interior and near-uniform points are all covered) and compares max − min of
    Σ_k L(u, k) with ``rtol · max(1, |mean|)``.

    Example:
        >>> bool(is_symmetric(lambda u: 2 * (1 - u), 10))  # MAE
        True
    """
    check_number("num_classes", num_classes, ge=2, integer=True)
    check_number("samples", samples, ge=2, integer=True)
    check_number("rtol", rtol, gt=0)
    res = resolve_loss(loss, params, num_classes=num_classes if isinstance(loss, str) else None, preset=preset)
    rng = np.random.default_rng(seed)
    conc = np.array([0.1, 1.0, 10.0])[np.arange(samples) % 3]
    U = rng.gamma(conc[:, None], size=(samples, num_classes))
    U = np.clip(U / U.sum(axis=1, keepdims=True), 1e-30, None)
    U /= U.sum(axis=1, keepdims=True)
    S = _objective(res, num_classes).losses(U).sum(axis=1)
    if not np.all(np.isfinite(S)):
        return SymmetryCheck(False, float("nan"), float("inf"), samples, num_classes)
    mean = float(S.mean())
    spread = float(S.max() - S.min())
    return SymmetryCheck(spread <= rtol * max(1.0, abs(mean)), mean, spread, samples, num_classes)
