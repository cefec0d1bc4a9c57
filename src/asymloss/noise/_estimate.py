"""Estimating the noise transition matrix from predicted probabilities: the confident joint.

The estimator is cleanlab's (Northcutt et al., JAIR 2021, "Confident Learning"), used as it is;
this module validates the inputs, converts cleanlab's orientation to asymloss's and measures the
spread of the estimate over folds. Given out-of-sample predicted probabilities ``P`` (N, K) and
noisy labels ``s``:

1. per-class thresholds t_j = mean of P[i, j] over the examples labelled j;
2. each example is counted in the confident joint at (noisy label, likeliest class among those
   whose probability reaches its threshold); the counts are calibrated to the label counts;
3. the noise matrix P(s = k | y = j) is the column-normalised joint, and the prior P(y) the
   calibrated column counts.

cleanlab's noise matrix has **columns = true class**; asymloss's transition matrices have
**rows = clean class** (T[y, k] = P(noisy = k | clean = y)), so T̂ is its transpose. The
predicted probabilities must be out-of-sample (cross-validated): in-sample probabilities of a model
that fitted the noisy labels make every label look right. :func:`asymloss.train.estimate_noise`
produces them by k-fold training; see ``docs/estimation.md``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_number
from ._matrices import noise_ratio

__all__ = ["TransitionEstimate", "estimate_transition", "check_pred_probs", "check_noisy_labels", "load_estimate",
           "read_transition", "read_pred_probs"]

EXTRA = "estimate"  # the optional dependency group that installs cleanlab
_PROB_ATOL = 1e-3  # rows of float32 softmax outputs (and rounded files) sum to 1 within this


def _cleanlab_count():
    try:
        from cleanlab import count
    except ImportError as exc:
        raise ImportError(
            "estimating the noise needs cleanlab, an optional dependency of asymloss: install the "
            f"'{EXTRA}' extra (pip install 'asymloss[{EXTRA}]', or pip install 'cleanlab>=2.6')."
        ) from exc
    return count


def _cleanlab_version() -> str:
    try:
        import cleanlab

        return str(getattr(cleanlab, "__version__", "unknown"))
    except ImportError:  # pragma: no cover - guarded by _cleanlab_count
        return "missing"


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------


def _to_numpy(x, arg: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{arg} must be an array; got {type(x).__name__}.") from None


def check_pred_probs(pred_probs, arg: str = "pred_probs", num_classes: int | None = None) -> np.ndarray:
    """Validate an (N, K) matrix of predicted probabilities; return it as float64.

    Every row must be finite, non-negative and sum to 1 within 1e-3 (float32 softmax outputs pass).
    Errors name ``arg``, the offending row and what is allowed.
    """
    P = _to_numpy(pred_probs, arg)
    if P.dtype == object or not (np.issubdtype(P.dtype, np.number) or P.dtype == bool):
        raise TypeError(f"{arg} must be a numeric (N, K) array of probabilities; got dtype {P.dtype}.")
    if P.ndim != 2:
        raise ValueError(f"{arg} must be a 2-D (N, K) array (one row of class probabilities per example); "
                         f"got shape {P.shape}.")
    if P.shape[0] == 0:
        raise ValueError(f"{arg} is empty (shape {P.shape}); it needs one row per example.")
    if P.shape[1] < 2:
        raise ValueError(f"{arg} must have at least 2 columns (classes); got shape {P.shape}.")
    if num_classes is not None and P.shape[1] != num_classes:
        raise ValueError(f"{arg} has {P.shape[1]} columns but num_classes is {num_classes}.")
    P = P.astype(np.float64, copy=False)
    if not np.isfinite(P).all():
        i, j = np.argwhere(~np.isfinite(P))[0]
        raise ValueError(f"{arg} must be finite; {arg}[{i}, {j}] = {float(P[i, j])!r}.")
    if (P < 0).any():
        i, j = np.argwhere(P < 0)[0]
        raise ValueError(f"{arg} must be non-negative probabilities; {arg}[{i}, {j}] = {float(P[i, j])!r} "
                         "(logits? apply a softmax first).")
    sums = P.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _PROB_ATOL)
    if bad.size:
        raise ValueError(f"{arg} must be a probability matrix (each row summing to 1 within {_PROB_ATOL:g}); "
                         f"row {bad[0]} sums to {float(sums[bad[0]]):.6g} ({bad.size} bad row(s)).")
    return P


def check_noisy_labels(labels, num_classes: int, arg: str = "noisy_labels", n: int | None = None) -> np.ndarray:
    """Validate a 1-D array of integer labels in [0, num_classes − 1]; return it as int64."""
    y = _to_numpy(labels, arg)
    if y.ndim != 1:
        raise ValueError(f"{arg} must be a 1-D array of class indices; got shape {y.shape}.")
    if y.size == 0:
        raise ValueError(f"{arg} is empty; it needs one label per example.")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"{arg} must hold integer class indices; got dtype {y.dtype}.")
    if n is not None and y.size != n:
        raise ValueError(f"{arg} has {y.size} labels but pred_probs has {n} rows; they must match.")
    out = (y < 0) | (y >= num_classes)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"{arg} must be class indices in [0, {num_classes - 1}]; {arg}[{i}] = {int(y[i])} "
                         f"({int(out.sum())} out of range).")
    return y.astype(np.int64, copy=False)


def _check_folds(folds, n: int, seed: int) -> np.ndarray | None:
    if folds is None:
        return None
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        k = check_number("folds", int(folds), ge=2, integer=True)
        if k > n:
            raise ValueError(f"folds must be at most the number of examples ({n}); got {k}.")
        ids = np.arange(n) % k
        np.random.default_rng(seed).shuffle(ids)
        return ids
    ids = _to_numpy(folds, "folds")
    if ids.ndim != 1 or ids.size != n:
        raise ValueError(f"folds must be an int (number of random parts) or a 1-D array of {n} fold ids; "
                         f"got shape {ids.shape}.")
    if not np.issubdtype(ids.dtype, np.integer) or ids.dtype == bool:
        raise TypeError(f"folds must hold integer fold ids; got dtype {ids.dtype}.")
    if np.unique(ids).size < 2:
        raise ValueError("folds must contain at least 2 distinct fold ids to measure a spread.")
    return ids.astype(np.int64, copy=False)


# ------------------------------------------------------------------------------------------------
# the estimate
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TransitionEstimate:
    """An estimated noise transition matrix and what comes with it.

    Attributes:
        transition: (K, K) T̂, rows = clean class: T̂[y, k] = P(noisy label = k | clean label = y).
        prior: (K,) estimated clean-class prior P(y).
        noise_rates: (K,) per clean class, 1 − T̂[y, y] (the chance that a class-y label is wrong).
        rate: overall estimated noise rate Σ_y prior[y] · noise_rates[y].
        noise_ratio: r̃(T̂) = max_y max_{k≠y} T̂[y, k] / T̂[y, y] (``inf`` if some T̂[y, y] = 0).
        confident_joint: (K, K) calibrated confident-joint counts, rows = clean class (the
            transpose of cleanlab's, whose rows are the noisy label).
        num_examples: N.
        fold_transitions: (F, K, K) leave-one-fold-out estimates: T̂ from all folds but fold f,
            or None without folds.
        fold_noise_ratios: (F,) r̃ of each leave-one-fold-out T̂, or None.
        method: the estimator and the cleanlab version.
        options: the options used (calibrate, number and source of the folds).

    The uncertainty is the fold jackknife: with θ_f the estimate without fold f and θ̄ their mean,
    SE = sqrt((F − 1)/F · Σ_f (θ_f − θ̄)²) (:attr:`noise_ratio_se`, :attr:`transition_se`).
    """

    transition: np.ndarray
    prior: np.ndarray
    noise_rates: np.ndarray
    rate: float
    noise_ratio: float
    confident_joint: np.ndarray
    num_examples: int
    fold_transitions: np.ndarray | None = None
    fold_noise_ratios: np.ndarray | None = None
    method: str = "confident-joint"
    options: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.transition.shape[0])

    @property
    def num_folds(self) -> int:
        return 0 if self.fold_noise_ratios is None else int(len(self.fold_noise_ratios))

    @staticmethod
    def _jackknife(values: np.ndarray) -> np.ndarray | float:
        v = np.asarray(values, dtype=np.float64)
        F = v.shape[0]
        with np.errstate(invalid="ignore"):
            dev = v - v.mean(axis=0)
            se = np.sqrt((F - 1) / F * np.sum(dev * dev, axis=0))
        return np.where(np.isfinite(v).all(axis=0), se, np.inf)

    @property
    def noise_ratio_se(self) -> float | None:
        """Fold-jackknife standard error of r̃(T̂), or None without folds."""
        if self.fold_noise_ratios is None:
            return None
        return float(self._jackknife(self.fold_noise_ratios))

    @property
    def transition_se(self) -> np.ndarray | None:
        """(K, K) fold-jackknife standard error of each entry of T̂, or None without folds."""
        if self.fold_transitions is None:
            return None
        return self._jackknife(self.fold_transitions)

    def noise_ratio_interval(self, z: float = 2.0) -> tuple[float, float] | None:
        """r̃ ± z·SE (lower end clipped at 0), or None without folds."""
        se = self.noise_ratio_se
        if se is None:
            return None
        return max(0.0, self.noise_ratio - z * se), self.noise_ratio + z * se

    def max_abs_error(self, T) -> float:
        """max |T̂ − T| over all entries, against a reference matrix (rows = clean class)."""
        T = np.asarray(T, dtype=np.float64)
        if T.shape != self.transition.shape:
            raise ValueError(f"T must have shape {self.transition.shape}; got {T.shape}.")
        return float(np.max(np.abs(self.transition - T)))

    def summary(self) -> dict:
        """A JSON-able dict of everything above (matrices as nested lists; ``inf`` as None)."""
        def f(x):
            x = float(x)
            return x if math.isfinite(x) else None

        def mat(M):
            return [[f(v) for v in row] for row in M]

        folds = None
        if self.fold_transitions is not None:
            folds = {
                "count": self.num_folds,
                "kind": "leave-one-fold-out (jackknife)",
                "noise_ratios": [f(v) for v in self.fold_noise_ratios],
                "noise_ratio_se": f(self.noise_ratio_se),
                "transition_se": mat(self.transition_se),
                "transitions": [mat(M) for M in self.fold_transitions],
            }
        return {
            "method": self.method,
            "options": dict(self.options),
            "num_examples": self.num_examples,
            "num_classes": self.num_classes,
            "transition": mat(self.transition),
            "prior": [float(v) for v in self.prior],
            "noise_rates": [float(v) for v in self.noise_rates],
            "rate": float(self.rate),
            "noise_ratio": f(self.noise_ratio),
            "confident_joint": [[int(v) for v in row] for row in self.confident_joint],
            "folds": folds,
        }

    @classmethod
    def from_summary(cls, d: dict) -> "TransitionEstimate":
        """Rebuild an estimate from :meth:`summary` (e.g. the ``estimate`` of an estimate record)."""
        def arr(x):
            return np.array([[np.inf if v is None else v for v in row] for row in x], dtype=np.float64)

        try:
            T = arr(d["transition"])
            folds = d.get("folds")
            ft = fr = None
            if folds:
                ft = np.stack([arr(M) for M in folds["transitions"]])
                fr = np.array([np.inf if v is None else v for v in folds["noise_ratios"]], dtype=np.float64)
            rt = d.get("noise_ratio")
            return cls(
                transition=T, prior=np.asarray(d["prior"], dtype=np.float64),
                noise_rates=np.asarray(d["noise_rates"], dtype=np.float64), rate=float(d["rate"]),
                noise_ratio=float("inf") if rt is None else float(rt),
                confident_joint=np.asarray(d["confident_joint"], dtype=np.int64),
                num_examples=int(d["num_examples"]), fold_transitions=ft, fold_noise_ratios=fr,
                method=str(d.get("method", "confident-joint")), options=dict(d.get("options") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an estimate summary (TransitionEstimate.summary()): {exc!r}") from exc


def _estimate(count, P: np.ndarray, s: np.ndarray, calibrate: bool):
    K = P.shape[1]
    cj = count.compute_confident_joint(s, P, calibrate=calibrate)  # rows = noisy label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        py, noise_matrix, _inv = count.estimate_latent(cj, s, py_method="cnt", converge_latent_estimates=False)
    T = np.asarray(noise_matrix, dtype=np.float64).T.copy()  # cleanlab: columns = true class
    T /= T.sum(axis=1, keepdims=True)  # exact row sums (cleanlab normalises its columns already)
    return T, np.asarray(py, dtype=np.float64).reshape(K), np.asarray(cj, dtype=np.int64).T.copy()


def _require_every_class(s: np.ndarray, K: int, where: str) -> None:
    missing = np.flatnonzero(np.bincount(s, minlength=K) == 0)
    if missing.size:
        raise ValueError(
            f"{where} has no example labelled {', '.join(map(str, missing[:10]))}"
            f"{' …' if missing.size > 10 else ''}: the confident joint cannot estimate "
            f"{'that row' if missing.size == 1 else 'those rows'} of T (every class needs noisy labels)."
        )


def estimate_transition(pred_probs, noisy_labels, *, num_classes: int | None = None, folds=None,
                        seed: int = 0, calibrate: bool = True) -> TransitionEstimate:
    """Estimate the noise transition matrix T̂ (rows = clean class) by the confident joint.

    Args:
        pred_probs: (N, K) out-of-sample predicted probabilities (NumPy, nested lists or a CPU
            tensor; each row a probability vector). Use cross-validated predictions: a model's
            in-sample predictions on the labels it was trained on say nothing about the noise.
        noisy_labels: (N,) the noisy labels, integers in [0, K − 1]; every class must occur.
        num_classes: K, checked against ``pred_probs`` when given.
        folds: None, an int F ≥ 2 (the examples are split into F random parts with ``seed``), or
            an (N,) array of fold ids (those of the cross-validation that produced ``pred_probs``).
            T̂ is then also estimated without each fold in turn, and the spread of these F
            leave-one-fold-out estimates gives jackknife standard errors of T̂ and r̃.
        seed: seed of the random parts when ``folds`` is an int.
        calibrate: calibrate the confident joint to the label counts (cleanlab's default).

    Returns:
        :class:`TransitionEstimate` with ``transition`` (T̂), ``prior``, ``noise_rates``, ``rate``,
        ``noise_ratio`` (r̃(T̂)), the confident joint and, with ``folds``, the leave-one-fold-out
        estimates and standard errors.

    Raises:
        ImportError: cleanlab is not installed (the ``estimate`` extra).
        ValueError / TypeError: ``pred_probs`` is not a probability matrix, a label is out of
            range, the inputs are empty or their lengths differ, a class has no example.

    Example (the worked example of ``docs/estimation.md``):
        >>> import numpy as np
        >>> s = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
        >>> P = [[.4, .3, .3], [.8, .1, .1], [.7, .2, .1], [.2, .7, .1], [.6, .3, .1], [.1, .8, .1],
        ...      [.3, .6, .1], [.1, .2, .7], [.1, .1, .8], [.2, .2, .6], [.6, .2, .2]]
        >>> est = estimate_transition(P, s)
        >>> np.round(est.transition, 6)
        array([[0.8     , 0.      , 0.2     ],
               [0.333333, 0.666667, 0.      ],
               [0.      , 0.333333, 0.666667]])
    """
    if num_classes is not None:
        check_number("num_classes", num_classes, ge=2, integer=True)
    check_number("seed", seed, ge=0, integer=True)
    P = check_pred_probs(pred_probs, "pred_probs", num_classes)
    N, K = P.shape
    s = check_noisy_labels(noisy_labels, K, "noisy_labels", n=N)
    ids = _check_folds(folds, N, seed)
    _require_every_class(s, K, "noisy_labels")
    count = _cleanlab_count()

    T, py, cj = _estimate(count, P, s, bool(calibrate))
    fold_T = fold_r = None
    if ids is not None:
        mats = []
        for f in np.unique(ids):
            m = ids != f  # leave fold f out
            _require_every_class(s[m], K, f"the examples outside fold {int(f)}")
            mats.append(_estimate(count, P[m], s[m], bool(calibrate))[0])
        fold_T = np.stack(mats)
        fold_r = np.array([noise_ratio(M) for M in fold_T])
    rates = 1.0 - np.diag(T)
    return TransitionEstimate(
        transition=T, prior=py, noise_rates=rates, rate=float(np.dot(py, rates)),
        noise_ratio=noise_ratio(T), confident_joint=cj, num_examples=int(N),
        fold_transitions=fold_T, fold_noise_ratios=fold_r,
        method=f"confident-joint (cleanlab {_cleanlab_version()})",
        options={"calibrate": bool(calibrate), "folds": None if ids is None else int(np.unique(ids).size),
                 "fold_source": None if folds is None else ("random" if isinstance(folds, (int, np.integer)) else "given"),
                 "seed": seed if isinstance(folds, (int, np.integer)) else None},
    )


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------


def load_estimate(path) -> "TransitionEstimate":
    """The estimate of an estimate record (``estimate.json`` written by
    :func:`asymloss.train.estimate_noise`, or its directory)."""
    import json
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        p = p / "estimate.json"
    if not p.is_file():
        raise FileNotFoundError(f"estimate record not found: {str(p)!r} (write one with `asymloss estimate-noise --out DIR`).")
    with open(p, encoding="utf-8") as f:
        d = json.load(f)
    if not isinstance(d, dict) or "estimate" not in d:
        raise ValueError(f"{str(p)!r} is not an estimate record (no 'estimate' key).")
    return TransitionEstimate.from_summary(d["estimate"])


def read_transition(path):
    """A transition matrix from a file: ``.npy``; ``.csv`` / ``.txt`` (K rows of K numbers, comma or
    whitespace separated); ``.json`` holding a (K, K) list, an estimate record, an estimate summary
    or an advice record. Returns a :class:`TransitionEstimate` when the file has one (so its folds
    give the uncertainty), else the validated float64 matrix."""
    import json
    from pathlib import Path

    from ._matrices import check_transition

    p = Path(path)
    if p.is_dir():
        return load_estimate(p)
    if not p.is_file():
        raise FileNotFoundError(f"transition file not found: {str(p)!r}.")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        M = np.load(p, allow_pickle=False)
    elif suffix in (".csv", ".txt", ".tsv"):
        text = p.read_text(encoding="utf-8")
        rows = [r for r in (line.split("#")[0].strip() for line in text.splitlines()) if r]
        try:
            M = np.array([[float(v) for v in r.replace(",", " ").split()] for r in rows], dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"{str(p)!r}: every line must hold K numbers ({exc}).") from None
    elif suffix == ".json":
        with open(p, encoding="utf-8") as f:
            d = json.load(f)
        if isinstance(d, dict) and "estimate" in d:
            return TransitionEstimate.from_summary(d["estimate"])
        if isinstance(d, dict) and "confident_joint" in d:
            return TransitionEstimate.from_summary(d)
        if isinstance(d, dict) and "transition" in d:
            M = d["transition"]
        else:
            M = d
    else:
        raise ValueError(f"transition file must be .npy, .csv, .txt or .json; got {str(p)!r}.")
    return check_transition(M, "transition", min_classes=2)


def read_pred_probs(path, labels_path=None):
    """(pred_probs, noisy_labels, fold_ids or None) from ``pred_probs.npz`` (as written by
    :func:`asymloss.train.estimate_noise`: keys ``pred_probs``, ``noisy_labels``, optional
    ``fold_ids``) or from a ``.npy`` of probabilities plus a ``.npy`` (or ``.txt``) of labels."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        p = p / "pred_probs.npz"
    if not p.is_file():
        raise FileNotFoundError(f"predicted-probabilities file not found: {str(p)!r}.")
    folds = None
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "pred_probs" not in z:
                raise ValueError(f"{str(p)!r} has no array 'pred_probs' (keys: {', '.join(z.files)}).")
            P = z["pred_probs"]
            s = z["noisy_labels"] if "noisy_labels" in z else None
            folds = z["fold_ids"] if "fold_ids" in z else None
        if labels_path is not None:
            s = _read_labels(labels_path)
        if s is None:
            raise ValueError(f"{str(p)!r} has no array 'noisy_labels'; pass the labels file too.")
    elif p.suffix.lower() == ".npy":
        P = np.load(p, allow_pickle=False)
        if labels_path is None:
            raise ValueError("pred_probs given as .npy need the noisy labels too (a .npy or .txt file).")
        s = _read_labels(labels_path)
    else:
        raise ValueError(f"pred_probs file must be .npz or .npy; got {str(p)!r}.")
    return P, s, folds


def _read_labels(path):
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labels file not found: {str(p)!r}.")
    if p.suffix.lower() == ".npy":
        return np.load(p, allow_pickle=False)
    return np.loadtxt(p, dtype=np.int64, ndmin=1)
