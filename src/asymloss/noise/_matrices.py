"""Transition matrices (rows = clean class, columns = noisy class) of the synthetic noise models."""
from __future__ import annotations

import warnings

import numpy as np

from .._validation import check_choice, check_number, unknown_name_error

__all__ = [
    "transition_matrix",
    "noise_ratio",
    "check_transition",
    "CIFAR100_COARSE",
    "ASYMMETRIC_MAPS",
    "DATASET_CLASSES",
]

#: Official CIFAR-100 fine label -> coarse label (superclass) map, indexed by fine label.
#: Checked against the CIFAR-100N file's ``clean_label`` / ``clean_coarse_label`` in the tests.
CIFAR100_COARSE = np.array([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
], dtype=np.int64)
CIFAR100_COARSE.setflags(write=False)

#: Class counts of the datasets asymloss knows by name.
DATASET_CLASSES = {"mnist": 10, "fashion-mnist": 10, "digits": 10, "cifar10": 10, "cifar100": 100}

#: Asymmetric (class-conditional) flips source -> target, as in the reference code.
ASYMMETRIC_MAPS = {
    "mnist": ((7, 1), (2, 7), (5, 6), (6, 5), (3, 8)),
    # truck -> automobile, bird -> airplane, cat -> dog, dog -> cat, deer -> horse
    "cifar10": ((9, 1), (2, 0), (3, 5), (5, 3), (4, 7)),
}
# scikit-learn's digits are the same ten digit classes as MNIST: the MNIST map applies.
ASYMMETRIC_MAPS["digits"] = ASYMMETRIC_MAPS["mnist"]
_KINDS = ("symmetric", "uniform", "pairflip", "asymmetric")


def cifar100_next_in_superclass(legacy: bool = False) -> np.ndarray:
    """For each CIFAR-100 fine class, the class it flips to under asymmetric noise.

    Default: the next fine class (by index) of the same real superclass, cyclically.
    ``legacy=True``: the reference code's blocks of 5 consecutive indices (0–4, 5–9, …).
    """
    if legacy:
        i = np.arange(100)
        return 5 * (i // 5) + (i % 5 + 1) % 5
    target = np.empty(100, dtype=np.int64)
    for c in range(20):  # 20 superclasses, not samples
        members = np.flatnonzero(CIFAR100_COARSE == c)
        target[members] = np.roll(members, -1)
    return target


def noise_ratio(T) -> float:
    """The noise ratio r̃(T) = max_y max_{k≠y} T[y,k] / T[y,y] (docs/theory.md, 'Noise ratio'); ``inf`` if some T[y,y] = 0.

    >>> round(noise_ratio(transition_matrix("symmetric", 0.8, num_classes=10)), 6)
    0.444444
    """
    T = np.asarray(T, dtype=np.float64)
    off = T - np.diag(np.diag(T))
    diag = np.diag(T)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diag > 0, off.max(axis=1) / np.where(diag > 0, diag, 1.0), np.inf)
    return float(r.max()) if r.size else 0.0


def check_transition(T, arg: str = "noise", num_classes: int | None = None, *, min_classes: int = 1,
                     atol: float = 1e-6) -> np.ndarray:
    """Validate a row-stochastic (K, K) matrix (NumPy, nested lists or a torch tensor); return it
    as float64. Rows may sum to 1 within ``atol`` (float32 matrices pass). Clear errors otherwise."""
    if hasattr(T, "detach") and hasattr(T, "cpu"):  # a torch tensor
        T = T.detach().cpu().numpy()
    try:
        M = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{arg} must be a (K, K) array of probabilities; got {type(T).__name__}.") from None
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] < 1:
        raise ValueError(f"{arg} must be a square (K, K) transition matrix; got shape {M.shape}.")
    if M.shape[0] < min_classes:
        raise ValueError(f"{arg} must have at least {min_classes} classes; got shape {M.shape}.")
    if num_classes is not None and M.shape[0] != num_classes:
        raise ValueError(
            f"{arg} is {M.shape[0]}x{M.shape[0]} but num_classes is {num_classes}."
        )
    if not np.isfinite(M).all():
        r, c = np.argwhere(~np.isfinite(M))[0]
        raise ValueError(f"{arg} must be finite; {arg}[{r}, {c}] = {float(M[r, c])!r}.")
    if (M < 0).any():
        r, c = np.argwhere(M < 0)[0]
        raise ValueError(f"{arg} must be non-negative; {arg}[{r}, {c}] = {float(M[r, c])!r}.")
    sums = M.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(
            f"{arg} must be row-stochastic (rows = clean class, each summing to 1 within {atol:g}); "
            f"row {bad[0]} sums to {float(sums[bad[0]]):.10g} ({bad.size} bad row(s))."
        )
    return M


def user_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside ``asymloss.noise``."""
    import sys

    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("asymloss.noise"):
        level += 1
        frame = frame.f_back
    return level


def warn_if_not_dominant(T: np.ndarray, what: str) -> None:
    """Warn when r̃(T) >= 1: clean labels are then not the most likely label of their class."""
    r = noise_ratio(T)
    if r >= 1.0 - 1e-12:
        warnings.warn(
            f"{what}: clean labels are not dominant (noise ratio r̃ = {r:.4g} >= 1: some class is "
            f"labelled as another class at least as often as as itself); no loss can be "
            f"noise-tolerant here.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _num_classes(num_classes, dataset, kind) -> int:
    if dataset is not None:
        known = DATASET_CLASSES.get(dataset)
        if num_classes is None:
            if known is None:
                raise ValueError(
                    f"num_classes is needed for dataset {dataset!r} (known datasets: "
                    f"{', '.join(DATASET_CLASSES)})."
                )
            return known
        if known is not None and num_classes != known:
            raise ValueError(f"num_classes={num_classes} does not match dataset {dataset!r} ({known} classes).")
    if num_classes is None:
        raise ValueError(f"transition_matrix({kind!r}) needs num_classes (or a known dataset).")
    check_number("num_classes", num_classes, ge=2, integer=True)
    return int(num_classes)


def transition_matrix(kind: str, rate: float, num_classes: int | None = None, dataset: str | None = None,
                      legacy: bool = False) -> np.ndarray:
    """The (K, K) row-stochastic float64 transition matrix of a synthetic noise model (docs/noise.md, 'Noise models').

    Parameters
    ----------
    kind : ``"symmetric"`` (flip to a uniformly chosen *different* class),
        ``"uniform"`` (new label uniform over all classes: realised rate η(K−1)/K),
        ``"pairflip"`` (y → (y+1) mod K) or ``"asymmetric"`` (the class maps of the paper for
        ``dataset`` in ``mnist`` (also ``digits``: the same ten digit classes), ``cifar10``,
        ``cifar100``).
    rate : the nominal noise rate η, ``0 <= rate < 1``.
    num_classes : K; optional when ``dataset`` names a known dataset.
    dataset : needed for ``asymmetric``.
    legacy : reference-code behaviour for ``asymmetric``. CIFAR-100: the reference's blocks of 5
        consecutive fine labels instead of the real superclasses. CIFAR-10: the *expected* matrix of
        the reference's in-place sequential flips (cat → dog with probability η(1−η), dog → cat η).
        No effect elsewhere.

    Returns
    -------
    ``(K, K)`` float64 array, ``T[y, k] = P(noisy = k | clean = y)``.

    Warns (``UserWarning``) when clean labels are not dominant (noise ratio r̃ ≥ 1).

    >>> transition_matrix("pairflip", 0.2, num_classes=3)
    array([[0.8, 0.2, 0. ],
           [0. , 0.8, 0.2],
           [0.2, 0. , 0.8]])
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string; got {type(kind).__name__}.")
    if kind not in _KINDS:
        raise unknown_name_error("transition-matrix kind", kind, _KINDS)
    check_number("rate", rate, ge=0.0, lt=1.0)
    if dataset is not None:
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be a string; got {type(dataset).__name__}.")
        dataset = dataset.lower()
    if kind == "asymmetric":
        if dataset is None:
            raise ValueError(
                "asymmetric noise needs dataset=, one of 'mnist', 'digits', 'cifar10', 'cifar100' "
                "(or pass your own transition matrix)."
            )
        check_choice("dataset", dataset, ("mnist", "digits", "cifar10", "cifar100"))
    K = _num_classes(num_classes, dataset, kind)
    eta = float(rate)
    eye = np.eye(K)
    if kind == "symmetric":
        T = (1.0 - eta) * eye + eta / (K - 1) * (1.0 - eye)
    elif kind == "uniform":
        T = (1.0 - eta) * eye + eta / K
    elif kind == "pairflip":
        T = (1.0 - eta) * eye + eta * np.roll(eye, 1, axis=1)
    else:
        T = eye.copy()
        if dataset == "cifar100":
            src = np.arange(100)
            dst = cifar100_next_in_superclass(legacy)
            T[src, src] = 1.0 - eta
            T[src, dst] = eta
        elif dataset == "cifar10" and legacy:
            # expected effect of the reference's in-place loop over (9→1, 2→0, 3→5, 5→3, 4→7):
            # 3→5 first, then 5→3 draws η of the enlarged dog set, sending η of the new dogs back.
            for s, t in ((9, 1), (2, 0), (4, 7)):
                T[s, s], T[s, t] = 1.0 - eta, eta
            T[3, 3], T[3, 5] = 1.0 - eta + eta * eta, eta * (1.0 - eta)
            T[5, 5], T[5, 3] = 1.0 - eta, eta
        else:
            for s, t in ASYMMETRIC_MAPS[dataset]:
                T[s, s], T[s, t] = 1.0 - eta, eta
    warn_if_not_dominant(T, f"{kind} noise at rate {eta:g} with {K} classes")
    return T
