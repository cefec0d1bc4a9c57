"""Vectorised label samplers (no per-sample Python loops)."""
from __future__ import annotations

import numpy as np

__all__ = ["exact_counts", "sample_exact", "sample_independent", "sample_rows", "legacy_sequential_flips",
           "reference_sampler"]


def exact_counts(T: np.ndarray, n_per_class: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Counts ``C[y, k]`` (samples of clean class y sent to k) of the exact sampler.

    Each row flips exactly ``round(η_y · n_y)`` samples in total (η_y = 1 − T[y, y]), shared among
    the targets k ≠ y by largest remainders: ``C[y, k]`` is ``floor`` or ``ceil`` of
    ``T[y, k] · n_y``, and equals ``round(T[y, k] · n_y)`` whenever those products are integers or
    a row has a single target (pairflip, asymmetric). Ties between equal remainders (symmetric
    noise) are broken at random with ``rng`` (by index when ``rng`` is None), so no class is
    favoured. Rounding is half-up with a 1e-9 tolerance against products like ``0.45 · 2000``
    landing a hair below an integer.
    """
    T = np.asarray(T, dtype=np.float64)
    K = T.shape[0]
    n = np.asarray(n_per_class, dtype=np.int64)
    want = T * n[:, None]
    np.fill_diagonal(want, 0.0)
    base = np.floor(want + 1e-9).astype(np.int64)
    frac = np.where(want - base > 1e-9, want - base, 0.0)
    total = np.floor(want.sum(axis=1) + 0.5 + 1e-9).astype(np.int64)
    total = np.minimum(total, n)
    deficit = np.clip(total - base.sum(axis=1), 0, None)
    tie = rng.random((K, K)) if rng is not None else np.zeros((K, K))
    order = np.lexsort((tie, -frac), axis=-1)  # per row: largest remainder first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(K)[None, :].repeat(K, axis=0), axis=-1)
    C = base + ((rank < deficit[:, None]) & (frac > 0))
    C[np.arange(K), np.arange(K)] = n - C.sum(axis=1)
    return C


def sample_exact(y: np.ndarray, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per clean class y, send exactly ``exact_counts(T, n, rng)[y, k]`` random samples to k.

    One random permutation of all samples, a stable sort by class, then the sorted positions of
    each class are filled with ``C[y, 0]`` zeros, ``C[y, 1]`` ones, … (``np.repeat``).
    """
    K = T.shape[0]
    n = np.bincount(y, minlength=K)
    C = exact_counts(T, n, rng)
    perm = rng.permutation(y.size)
    order = perm[np.argsort(y[perm], kind="stable")]
    out = np.empty_like(y)
    out[order] = np.repeat(np.tile(np.arange(K, dtype=y.dtype), K), C.ravel())
    return out


def sample_independent(y: np.ndarray, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each sample drawn independently from its row ``T[y_i]`` (inverse CDF of one uniform each)."""
    u = rng.random(y.size)
    cum = np.cumsum(T, axis=1)
    cum[:, -1] = 1.0
    out = np.empty_like(y)
    order = np.argsort(y, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(y, minlength=T.shape[0]))))
    for c in np.flatnonzero(np.diff(bounds)):  # per class, vectorised over its samples
        idx = order[bounds[c]: bounds[c + 1]]
        out[idx] = np.searchsorted(cum[c], u[idx], side="right")
    return out


def sample_rows(P: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw one label per row of the (m, K) probability matrix ``P`` from uniforms ``u`` (m,)."""
    cum = np.cumsum(P, axis=1)
    k = (u[:, None] >= cum).sum(axis=1)
    return np.minimum(k, P.shape[1] - 1)


def legacy_sequential_flips(y: np.ndarray, pairs, rate: float, sampler: str,
                            rng: np.random.Generator) -> np.ndarray:
    """The reference's in-place CIFAR-10 loop: for each (source, target) in order, flip
    ``int(rate * #current source labels)`` of the *current* source labels (``exact``; the
    reference's ``int`` truncation) or each with probability ``rate`` (``independent``)."""
    out = y.copy()
    for s, t in pairs:  # 5 pairs, not samples
        idx = np.flatnonzero(out == s)
        if sampler == "exact":
            chosen = rng.choice(idx, int(rate * idx.size), replace=False)
        else:
            chosen = idx[rng.random(idx.size) < rate]
        out[chosen] = t
    return out


def reference_sampler(dataset: str | None, kind: str) -> str:
    """The sampler the reference code uses for this dataset and noise kind (docs/noise.md, 'Which sampler a protocol uses').

    MNIST (and Fashion-MNIST): ``"independent"`` draws; CIFAR-100 asymmetric
    noise: ``"independent"`` (the reference builds the matrix and draws per sample); everything
    else (CIFAR-10, CIFAR-100 symmetric): ``"exact"`` per-class counts.

    >>> reference_sampler("mnist", "symmetric"), reference_sampler("cifar10", "asymmetric")
    ('independent', 'exact')
    """
    name = (dataset or "").lower()
    if name in ("mnist", "fashion-mnist"):
        return "independent"
    if name == "cifar100" and kind == "asymmetric":
        return "independent"
    return "exact"
