"""Numerical asymmetry ratio of a pointwise loss ℓ(u) on [0, 1].

r(ℓ) = inf over 0 ≤ u, Δu, u + Δu ≤ 1 (Δu > 0) of R(u, Δu) = (ℓ(u) − ℓ(u+Δu)) / (ℓ(0) − ℓ(Δu)).

Three stages, all in float64:
1. a vectorised grid over (Δu, t) with u = t·(1 − Δu): Δu geometric (2^-k, k ≤ 24) and uniform,
   t uniform and clustered at both ends (convex ℓ has its infimum at u = 1 − Δu, Δu → 0);
2. bounded Nelder–Mead refinement (scipy) from the best grid points, in (t, log2 Δu);
3. when the best point sits at the smallest Δu the infimum is a limit Δu → 0: R is evaluated
   along that path at Δu = 2^-26, 2^-23, 2^-20, 2^-17 and Aitken's Δ² extrapolation gives the
   limit when two successive extrapolations agree (this recovers r = 0 for GCE-like ℓ whose ℓ′(0)
   is −∞, and the exact limit for ℓ whose slope changes on tiny scales, e.g. AGCE with a → 0).

Every pair is evaluated at exactly representable arguments: Δu is replaced by (u + Δu) − u so the
numerator and the denominator use the same step. Points whose denominator is below 1e-9·max|ℓ|
(rounding noise would dominate; only ℓ flat at 0 has them) are skipped. Verified against the closed
forms of AGCE, AUL, AEL, GCE, CE, MAE (errors ≤ 3e-6, tests/test_theory.py) and against brute force
for non-convex ℓ; a power-law approach to 0 as slow as GCE with q → 1 (q·Δu^(1−q)) is the limit of
what it resolves (q = 0.99 gives 2e-5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["vectorise", "numerical_ratio", "NumericalInfimum"]

_KMAX = 24  # smallest Δu of the grid and of the refinement: 2**-24 ≈ 6e-8
_KLIM = 26  # smallest Δu of the limit stage: 2**-26 ≈ 1.5e-8


def _to_numpy(y):
    if hasattr(y, "detach") and hasattr(y, "cpu"):
        y = y.detach().cpu().numpy()
    return np.asarray(y, dtype=np.float64)


def vectorise(fn):
    """Wrap a scalar or array callable ℓ so that it maps a float64 array to a float64 array.

    Tries, in order: NumPy array input, torch float64 tensor input, then element by element.
    """
    state = {"mode": None}

    def call(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            if state["mode"] in (None, "numpy"):
                try:
                    y = _to_numpy(fn(x))
                    if y.shape == x.shape:
                        state["mode"] = "numpy"
                        return y
                except Exception:
                    if state["mode"] == "numpy":
                        raise
            if state["mode"] in (None, "torch"):
                try:
                    import torch

                    y = _to_numpy(fn(torch.from_numpy(np.ascontiguousarray(x))))
                    if y.shape == x.shape:
                        state["mode"] = "torch"
                        return y
                except Exception:
                    if state["mode"] == "torch":
                        raise
            state["mode"] = "scalar"
            flat = [float(_to_numpy(fn(float(v)))) for v in x.ravel()]
            return np.asarray(flat, dtype=np.float64).reshape(x.shape)

    return call


@dataclass(frozen=True)
class NumericalInfimum:
    value: float
    u: float
    du: float  # 0.0 when the infimum is the limit Δu → 0
    limit: bool


def _ratio_at(f, l0, u, d, tiny=0.0):
    """R(u, d) for arrays u, d (float64), with the step made exactly representable.

    Where the denominator is at most ``tiny`` (rounding noise would dominate) R is NaN.
    """
    v = u + d
    de = v - u
    num = f(u) - f(v)
    den = l0 - f(de)
    with np.errstate(all="ignore"):
        r = np.where(den > tiny, num / den, np.nan)
    return r, de, den


def _grid():
    d = np.unique(np.concatenate([2.0 ** -np.arange(0, _KMAX + 1), np.arange(1, 257) / 256.0]))
    ends = 2.0 ** -np.arange(9, _KMAX + 1)
    t = np.unique(np.concatenate([np.linspace(0.0, 1.0, 257), ends, 1.0 - ends]))
    D, Tt = np.meshgrid(d, t, indexing="ij")
    return D.ravel(), Tt.ravel()


def _aitken(r0, r1, r2):
    """Aitken Δ² limit of r0, r1, r2 (at Δu, 8Δu, 64Δu), or None when it is not trustworthy."""
    d1, d2 = r1 - r0, r2 - r1
    if not (np.isfinite(d1) and np.isfinite(d2)) or abs(d1) < 1e-6 or d1 * d2 <= 0:
        return None
    ratio = d2 / d1
    if not 1.0 + 1e-6 < ratio < 8.0 ** 1.5:
        return None
    return r0 - d1 / (ratio - 1.0)


def _path_limit(f, l0, t, tiny):
    """lim_{Δu→0} R(t·(1 − Δu), Δu).

    R is evaluated at Δu = 2^-26, 2^-23, 2^-20, 2^-17 (smaller steps drown in rounding noise).
    Aitken's Δ² on the first three (checked on the last three) extrapolates to Δu = 0 when the two
    estimates agree: this gives the exact limit of a slow power-law approach such as GCE's
    q·Δu^(1−q) → 0, and of ℓ whose slope changes on tiny scales (AGCE with a → 0). Otherwise the
    value at the smallest step is returned (its bias is O(Δu) ≈ 1e-8).
    """
    ds = 2.0 ** -np.array([_KLIM, _KLIM - 3, _KLIM - 6, _KLIM - 9], dtype=np.float64)
    R, _, _ = _ratio_at(f, l0, t * (1.0 - ds), ds, tiny)
    if not np.isfinite(R[0]):
        return None
    e1, e2 = _aitken(*R[:3]), _aitken(*R[1:])
    if e1 is not None and e2 is not None and abs(e1 - e2) <= max(1e-7, 1e-2 * abs(R[0] - e1)):
        return float(e1)
    return float(R[0])


def numerical_ratio(ell, *, refine: bool = True) -> NumericalInfimum:
    """Numerical infimum of (ℓ(u) − ℓ(u+Δu)) / (ℓ(0) − ℓ(Δu)); see the module docstring.

    Raises ``ValueError`` when ℓ is not finite on (0, 1] or when ℓ(Δu) > ℓ(0) for some Δu > 0
    (the ratio is then undefined).
    """
    f = vectorise(ell)
    l0 = float(f(np.zeros(1))[0])
    probe = np.linspace(0.0, 1.0, 1025)[1:]
    lp = f(probe)
    if not np.all(np.isfinite(lp)):
        bad = ~np.isfinite(lp)
        raise ValueError(f"loss: ℓ(u) must be finite on (0, 1]; ℓ({probe[bad][0]:g}) = {lp[bad][0]!r}.")
    if math.isnan(l0) or l0 == -math.inf:
        raise ValueError(f"loss: ℓ(0) must be a real number or +inf; got {l0!r}.")
    if l0 == math.inf:  # the denominator is infinite for every Δu: every ratio is 0
        return NumericalInfimum(0.0, 1.0, 0.0, True)

    # a denominator below `tiny` carries a relative rounding error above ~1e-7: such points are
    # skipped (they only occur for ℓ that is flat at 0, whose infimum is not at tiny Δu)
    tiny = 1e-9 * max(abs(l0), float(np.max(np.abs(lp))), 1e-300)
    D, Tt = _grid()
    U = Tt * (1.0 - D)
    R, de, den = _ratio_at(f, l0, U, D, tiny)
    bad = (den < -1e-12 * (abs(l0) + 1.0)) | ((den <= 0) & (D >= 2.0 ** -8))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            "loss: the asymmetry ratio needs ℓ(0) > ℓ(Δu) for every Δu in (0, 1]; "
            f"got ℓ(0) = {l0!r} and ℓ({de[i]:g}) = {float(l0 - den[i])!r}."
        )
    R = np.where(np.isnan(R), np.inf, R)
    nonneg = bool(np.all(R >= 0))
    order = np.argsort(R)
    best = NumericalInfimum(float(R[order[0]]), float(U[order[0]]), float(D[order[0]]), False)
    if refine:
        best = _refine(f, l0, best, D[order], Tt[order], tiny)
    if best.du <= 2.0 ** -(_KMAX - 1):  # the infimum is approached as Δu → 0
        t = best.u / (1.0 - best.du)
        lim = _path_limit(f, l0, t, tiny)
        if lim is not None and lim <= best.value + 1e-6:
            if nonneg:  # ℓ is non-increasing on the grid, so every ratio is >= 0
                lim = max(lim, 0.0)
            best = NumericalInfimum(lim, t, 0.0, True)
    return best


def _refine(f, l0, best, D, Tt, tiny, starts: int = 6) -> NumericalInfimum:
    from scipy.optimize import minimize

    lo = -float(_KMAX)

    def obj(x):
        t, s = float(np.clip(x[0], 0, 1)), float(np.clip(x[1], lo, 0))
        d = np.array([2.0 ** s])
        r, _, _ = _ratio_at(f, l0, np.array([t]) * (1.0 - d), d, tiny)
        val = float(r[0])
        return val if math.isfinite(val) else math.inf

    chosen, seen = [], set()
    for d, t in zip(D, Tt):
        key = (round(math.log2(d), 1), round(float(t), 2))
        if key in seen:
            continue
        seen.add(key)
        chosen.append((t, math.log2(d)))
        if len(chosen) == starts:
            break
    for t0, s0 in chosen:
        res = minimize(obj, x0=[t0, s0], method="Nelder-Mead", bounds=[(0.0, 1.0), (lo, 0.0)],
                       options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 400,
                                "initial_simplex": [[t0, s0], [min(t0 + 0.01, 1.0) if t0 < 1 else t0 - 0.01, s0],
                                                    [t0, s0 - 0.5 if s0 > lo + 0.5 else s0 + 0.5]]})
        if res.fun < best.value:
            t, s = float(np.clip(res.x[0], 0, 1)), float(np.clip(res.x[1], lo, 0))
            d = 2.0 ** s
            best = NumericalInfimum(float(res.fun), t * (1.0 - d), d, False)
    return best
