"""Minimising a weighted risk Σ_k w_k L(u, k) over the probability simplex.

The minimiser is exponentiated gradient (mirror descent with the entropy), run in log-space
(z = log u, float64) on a batch of starts at once, each start with its own weights and its own
adaptive step (doubled after a decrease, quartered after an increase; the step is normalised so
that the largest change of a log-probability is the step size). Log-probabilities are kept above
-700, so a start can reach a vertex up to u_k ≈ 1e-304: vertices are reached geometrically fast,
which plain gradient descent on softmax logits cannot do. A start stops when its step falls below
1e-12 or when it gains less than 1e-9 (relative) in 25 iterations.

Backends produce, for a batch U of shape (N, K), the risks Σ_k W[n, k] L(U[n], k) and their
gradients with respect to U:
- torch: any asymloss loss module, called on logits log(U) with reduction="none"; autograd, float64;
- pointwise: a NumPy ℓ with L(u, k) = ℓ(u_k); one-sided/central finite differences;
- general: a NumPy L(U, k) -> (N,); forward/backward finite differences in each coordinate.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SimplexMinimum", "TorchObjective", "PointwiseObjective", "GeneralObjective", "minimise_rows"]

ZMIN = -700.0
VERTEX_LOGIT = 60.0  # the vertex e_t is evaluated at softmax(60·e_t): off-target u_k ≈ 9e-27


def _logsumexp(Z):
    m = Z.max(axis=1, keepdims=True)
    return m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))


def _normalise(Z):
    Z = np.clip(Z - _logsumexp(Z), ZMIN, 0.0)
    return Z - _logsumexp(Z)


def vertex(K: int, t: int) -> np.ndarray:
    z = np.zeros((1, K))
    z[0, t] = VERTEX_LOGIT
    return np.exp(_normalise(z))[0]


class TorchObjective:
    """Weighted risk of a loss module evaluated on logits log(u) (reduction="none"), float64."""

    def __init__(self, module, num_classes: int):
        import torch

        self.torch = torch
        self.K = num_classes
        m = copy.deepcopy(module).to(dtype=torch.float64) if hasattr(module, "to") else copy.deepcopy(module)
        # the theory's L(u, y) is the per-sample value: no reduction, no class weights, no
        # ignored class, no fixed number of classes
        for sub in (m.modules() if hasattr(m, "modules") else [m]):
            if hasattr(sub, "reduction"):
                sub.reduction = "none"
            if getattr(sub, "weight", None) is not None:
                sub.weight = None
            if hasattr(sub, "ignore_index"):
                sub.ignore_index = -100
            if hasattr(sub, "num_classes"):
                sub.num_classes = None
        self.module = m

    def _matrix(self, U):
        torch = self.torch
        N, K = U.shape
        logits = torch.log(U).repeat_interleave(K, dim=0)
        target = torch.arange(K).repeat(N)
        out = self.module(logits, target)
        return out.reshape(N, K)

    def losses(self, U: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self._matrix(self.torch.from_numpy(np.ascontiguousarray(U))).numpy()

    def risk_grad(self, U: np.ndarray, W: np.ndarray):
        torch = self.torch
        Ut = torch.from_numpy(np.ascontiguousarray(U)).requires_grad_(True)
        with torch.enable_grad():
            R = (self._matrix(Ut) * torch.from_numpy(W)).sum(dim=1)
            (g,) = torch.autograd.grad(R.sum(), Ut)
        return R.detach().numpy(), g.numpy()


class PointwiseObjective:
    """L(u, k) = ℓ(u_k) for a vectorised NumPy ℓ; gradient by finite differences."""

    def __init__(self, f, num_classes: int):
        self.f = f
        self.K = num_classes

    def losses(self, U):
        return self.f(U)

    def risk_grad(self, U, W):
        f = self.f
        L = f(U)
        h = 1e-7 + 1e-6 * U
        lo = np.maximum(U - h, 0.0)
        hi = np.minimum(U + h, 1.0)
        d = f(hi) - f(lo)
        with np.errstate(all="ignore"):
            g = np.where(hi > lo, d / (hi - lo), 0.0)
        return (W * L).sum(axis=1), W * np.nan_to_num(g)


class GeneralObjective:
    """A NumPy L(U, k) -> (N,) for every class k; gradient by finite differences in each u_j."""

    def __init__(self, fn, num_classes: int):
        self.fn = fn
        self.K = num_classes

    def losses(self, U):
        with np.errstate(all="ignore"):
            cols = [np.asarray(self.fn(U, k), dtype=np.float64).reshape(U.shape[0]) for k in range(self.K)]
        return np.stack(cols, axis=1)

    def risk_grad(self, U, W):
        N, K = U.shape
        h = 1e-7 + 1e-6 * U  # (N, K)
        up = U + h <= 1.0
        step = np.where(up, h, -h)
        P = np.repeat(U[None], K, axis=0)  # (K, N, K): P[j] = U with u_j moved by step_j
        idx = np.arange(K)
        P[idx, :, idx] += step.T
        L = self.losses(np.concatenate([U, P.reshape(K * N, K)]))
        R0 = (W * L[:N]).sum(axis=1)
        Rj = (np.tile(W, (K, 1)) * L[N:]).sum(axis=1).reshape(K, N)
        g = ((Rj - R0[None]) / step.T).T
        return R0, np.nan_to_num(g)


@dataclass(frozen=True)
class SimplexMinimum:
    """The result of minimising Σ_k w_k L(u, k) over the simplex for one weight vector.

    Attributes:
        weights: (K,) the weights w (a row of the transition matrix).
        target: the class t whose vertex e_t should be the minimiser.
        point: (K,) the best point u* found.
        risk: the weighted risk at u*.
        vertex_risk: the weighted risk at e_t (evaluated at softmax(60·e_t)).
        gap: vertex_risk − risk; > 0 means a point beats the vertex.
        vertex_is_minimiser: no point found beats e_t by more than the tolerance.
    """

    weights: np.ndarray = field(repr=False)
    target: int
    point: np.ndarray
    risk: float
    vertex_risk: float
    gap: float
    vertex_is_minimiser: bool


def _starts(w: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    K = w.size
    S = [np.full(K, 1.0 / K)]
    js = np.arange(K) if K <= 12 else np.concatenate([[t], np.argsort(-w)[:7]])
    for j in np.unique(js):
        u = np.full(K, 0.01 / (K - 1))
        u[j] = 0.99
        S.append(u)
    rest = np.where(np.arange(K) == t, 0.0, w + 1e-3)
    rest = rest / rest.sum()
    for ut in (0.3, 0.6, 0.9, 0.999):
        u = (1 - ut) * rest
        u[t] = ut
        S.append(u)
    n = 8 if K <= 12 else 4  # large K: fewer random starts (each costs K rows per evaluation)
    S.extend(rng.dirichlet(np.ones(K), size=n))
    S.extend(rng.dirichlet(np.full(K, 0.2), size=n))
    S = np.asarray(S)
    S = np.clip(S, 1e-300, None)
    return S / S.sum(axis=1, keepdims=True)


def minimise_rows(objective, rows: np.ndarray, targets, *, seed: int = 0, max_iter: int = 800,
                  tol: float = 1e-9) -> list[SimplexMinimum]:
    """Minimise Σ_k rows[i, k] L(u, k) for every row i, all starts batched together."""
    rng = np.random.default_rng(seed)
    rows = np.asarray(rows, dtype=np.float64)
    K = rows.shape[1]
    starts, owner = [], []
    for i, (w, t) in enumerate(zip(rows, targets)):
        S = _starts(w, int(t), rng)
        starts.append(S)
        owner.append(np.full(len(S), i))
    U = np.concatenate(starts)
    owner = np.concatenate(owner)
    W = rows[owner]
    Z = _normalise(np.log(U))
    U = np.exp(Z)
    R, G = objective.risk_grad(U, W)
    R = np.where(np.isfinite(R), R, np.inf)
    eta = np.full(len(U), 0.5)
    checkpoint = R.copy()
    for it in range(max_iter):
        if it % 25 == 24:  # a start that gained < 1e-9 (relative) in 25 iterations has converged
            stalled = checkpoint - R <= 1e-9 * np.maximum(1.0, np.abs(R))
            eta[stalled] = 0.0
            checkpoint = R.copy()
        act = np.flatnonzero(eta > 1e-12)  # converged starts are left alone
        if act.size == 0:
            break
        Ua, Ga = U[act], G[act]
        D = Ga - (Ua * Ga).sum(axis=1, keepdims=True)
        scale = np.abs(D).max(axis=1, keepdims=True)
        scale[~(scale > 0)] = 1.0
        Zn = _normalise(Z[act] - eta[act, None] * D / scale)
        Un = np.exp(Zn)
        Rn, Gn = objective.risk_grad(Un, W[act])
        ok = np.isfinite(Rn) & (Rn < R[act] - 1e-15 * np.maximum(1.0, np.abs(R[act])))
        sel = act[ok]
        Z[sel], U[sel], R[sel], G[sel] = Zn[ok], Un[ok], Rn[ok], Gn[ok]
        eta[act] = np.where(ok, np.minimum(eta[act] * 2.0, 64.0), eta[act] / 4.0)
    V = np.stack([vertex(K, int(t)) for t in targets])
    vr = (rows * objective.losses(V)).sum(axis=1)
    out = []
    for i, t in enumerate(targets):
        mine = np.flatnonzero(owner == i)
        b = mine[np.argmin(R[mine])]
        risk, vrisk, point = float(R[b]), float(vr[i]), U[b].copy()
        gap = vrisk - risk
        if gap <= 0:  # nothing beats the vertex: report the vertex itself
            risk, point = vrisk, V[i].copy()
        ok = gap <= tol * max(1.0, abs(vrisk))
        out.append(SimplexMinimum(rows[i].copy(), int(t), point, risk, vrisk, gap, bool(ok)))
    return out
