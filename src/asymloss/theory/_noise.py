"""Transition matrices: validation and the noise ratio r̃ (docs/theory.md, 'Noise ratio')."""
from __future__ import annotations

import warnings

import numpy as np

from .._validation import check_number
from ..noise import check_transition
from ..noise import noise_ratio as _noise_ratio

__all__ = ["as_transition_matrix", "noise_ratio"]

_ATOL = 1e-6  # rows may come from float32 computations


def as_transition_matrix(T, num_classes: int | None = None, dataset: str | None = None) -> np.ndarray:
    """Return ``T`` as a validated row-stochastic ``(K, K)`` float64 matrix.

    ``T`` is an array-like (NumPy, list, torch tensor) with rows = clean class and columns = noisy
    class, or a noise spec string such as ``"symmetric:0.8"`` (then ``num_classes`` is required,
    and ``dataset`` for ``asymmetric``), built by :func:`asymloss.noise.transition_matrix`.

    Raises ``ValueError`` naming the problem: not square, fewer than 2 classes, non-finite or
    negative entries, or a row whose sum differs from 1 by more than 1e-6.
    """
    if isinstance(T, str):
        return _from_spec(T, num_classes, dataset)
    if num_classes is not None or dataset is not None:
        raise ValueError(
            "num_classes and dataset are only used with a noise spec string; "
            f"got a matrix together with num_classes={num_classes!r}, dataset={dataset!r}."
        )
    return check_transition(T, "T", min_classes=2, atol=_ATOL)


def _from_spec(spec: str, num_classes, dataset) -> np.ndarray:
    from ..noise import parse_noise, transition_matrix

    if num_classes is None and dataset is None:
        raise ValueError(f"num_classes (or dataset) is required with a noise spec (T={spec!r}); got None.")
    if num_classes is not None:
        check_number("num_classes", num_classes, ge=2, integer=True)
    parsed = parse_noise(spec)
    kind, rate = parsed.kind, parsed.rate
    if kind == "clean":
        kind, rate = "symmetric", 0.0
    elif kind not in ("symmetric", "uniform", "pairflip", "asymmetric"):
        raise ValueError(
            f"T={spec!r}: {kind} noise has no fixed transition matrix; use a spec of kind symmetric, "
            "uniform, pairflip or asymmetric (e.g. 'symmetric:0.8'), or pass the (K, K) matrix."
        )
    with warnings.catch_warnings():  # r̃ >= 1 is reported by the theory's answers themselves
        warnings.simplefilter("ignore", UserWarning)
        M = transition_matrix(kind, rate, num_classes=num_classes, dataset=dataset)
    return as_transition_matrix(M)


def noise_ratio(T, num_classes: int | None = None, dataset: str | None = None) -> float:
    """The noise ratio r̃(T) = max_y max_{k≠y} T[y, k] / T[y, y] of a transition matrix.

    Args:
        T: row-stochastic ``(K, K)`` array-like (rows = clean class), or a noise spec string
            (``"symmetric:0.8"``) with ``num_classes`` (and ``dataset`` for ``asymmetric``).

    Returns:
        A float; ``inf`` when some row has ``T[y, y] = 0`` with off-diagonal mass. The noise is
        clean-labels-dominant iff r̃ < 1. Symmetric noise η over K classes gives
        η / ((K − 1)(1 − η)); pair-flip or one-target asymmetric noise η gives η / (1 − η).

    Example:
        >>> import numpy as np
        >>> K, eta = 10, 0.8
        >>> T = (1 - eta) * np.eye(K) + eta / (K - 1) * (np.ones((K, K)) - np.eye(K))
        >>> round(noise_ratio(T), 6)
        0.444444
    """
    return _noise_ratio(as_transition_matrix(T, num_classes, dataset))
