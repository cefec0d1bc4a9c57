"""Instance-dependent (part-dependent) label noise of Xia et al. (NeurIPS 2020), vectorised on CPU."""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import truncnorm

from ._matrices import user_stacklevel
from ._sampling import sample_rows

__all__ = ["instance_noise", "prepare_features"]

#: Standard deviation of the per-sample flip rate q_i ~ N(η, STD²) truncated to [0, 1] (Xia et al.).
RATE_STD = 0.1
_CHUNK = 2048  # rows per matmul block: 2048 x 3072 float64 = 48 MiB


def prepare_features(features, n: int):
    """Check ``features`` and return a 2-D array view ``(n, d)`` (scaling happens per chunk).

    Accepted: a NumPy array or CPU torch tensor with ``n`` rows, any trailing shape (flattened in
    C order, so an ``(N, C, H, W)`` image tensor is flattened like the reference's ``x.view(1, -1)``
    of a ``ToTensor`` image). ``uint8`` input is divided by 255; float input is used as given and
    should hold pixels in [0, 1] (a warning is issued if it does not).
    """
    if features is None:
        raise ValueError(
            "instance noise needs features=: the inputs (e.g. images) of the labelled samples, "
            "shape (N, ...), uint8 pixels or floats in [0, 1]."
        )
    if hasattr(features, "detach") and hasattr(features, "device"):  # torch tensor
        if features.device.type != "cpu":
            raise ValueError(f"features must be on the CPU; got a tensor on {features.device}.")
        features = features.detach().numpy()
    x = np.asarray(features)
    if x.ndim < 2 or x.shape[0] != n:
        raise ValueError(
            f"features must have shape (N, ...) with N = {n} rows (one per label); got {x.shape}."
        )
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"features must be uint8 pixels or floats in [0, 1]; got dtype {x.dtype}.")
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        raise TypeError(
            f"integer features must be uint8 pixels (divided by 255); got dtype {x.dtype}. "
            f"Convert to floats in [0, 1] first."
        )
    x = x.reshape(n, -1)
    if x.dtype != np.uint8:
        if not np.isfinite(x).all():
            raise ValueError("features must be finite; found NaN or infinite values.")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            warnings.warn(
                f"instance noise expects pixels scaled to [0, 1] (docs/noise.md, 'Instance-dependent noise'); features range over "
                f"[{lo:.3g}, {hi:.3g}]. The noise is still defined but differs from the reference's.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    return x


def instance_noise(y: np.ndarray, x: np.ndarray, rate: float, num_classes: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Xia et al. (2020) instance-dependent noise.

    Draw order from ``rng`` (this fixes the result for a seed): (1) q ~ N(rate, 0.1²) truncated to
    [0, 1], shape (N,), by ``scipy.stats.truncnorm.rvs(random_state=rng)``; (2) W ~ N(0, 1) of shape
    (K, d, K), float64, in one draw; (3) one uniform per sample. Then for each sample
    ``p = q_i · softmax(x_i · W[y_i] with logit y_i = −∞)`` plus ``1 − q_i`` on ``y_i`` and the noisy
    label is drawn from ``p`` by inverse CDF. Computed in float64 as one matmul per class and chunk.
    ``rate = 0`` gives q = 0 (no noise). Because of the truncation at 0, the realised rate exceeds
    ``rate`` for small rates (E[q] ≈ 0.129 at 0.1, 0.206 at 0.2, 0.300 at 0.3).
    """
    n, d = x.shape
    K = num_classes
    if rate == 0.0 or n == 0:  # "instance:0" is clean (the formula alone would give E[q] ≈ 0.08)
        q = np.zeros(n)
    else:
        q = truncnorm.rvs((0.0 - rate) / RATE_STD, (1.0 - rate) / RATE_STD, loc=rate, scale=RATE_STD,
                          size=n, random_state=rng)
    W = rng.standard_normal((K, d, K))
    u = rng.random(n)
    out = np.empty_like(y)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    order = np.argsort(y, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(y, minlength=K))))
    for c in np.flatnonzero(np.diff(bounds)):  # per class (and chunk), vectorised over samples
        members = order[bounds[c]: bounds[c + 1]]
        for start in range(0, members.size, _CHUNK):
            idx = members[start: start + _CHUNK]
            logits = (x[idx].astype(np.float64) * scale) @ W[c]  # (m, K)
            logits[:, c] = -np.inf
            logits -= logits.max(axis=1, keepdims=True)
            P = np.exp(logits)
            P *= (q[idx] / P.sum(axis=1))[:, None]
            P[:, c] += 1.0 - q[idx]
            out[idx] = sample_rows(P, u[idx])
    return out
