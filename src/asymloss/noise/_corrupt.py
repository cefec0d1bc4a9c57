"""``corrupt``: apply a noise model to clean labels and record what was done."""
from __future__ import annotations

import hashlib
import math
import operator
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_choice
from ._instance import instance_noise, prepare_features
from ._matrices import (
    ASYMMETRIC_MAPS,
    DATASET_CLASSES,
    check_transition,
    transition_matrix,
    warn_if_not_dominant,
)
from ._real import load_cifar_n
from ._reference import REFERENCE_SAMPLERS, check_replay, replay
from ._sampling import legacy_sequential_flips, sample_exact, sample_independent
from ._spec import NoiseSpec, parse_noise

__all__ = ["corrupt", "NoisyLabels", "labels_sha256", "empirical_transition"]

SAMPLERS = ("exact", "independent", *REFERENCE_SAMPLERS)


def labels_sha256(labels) -> str:
    """sha256 hex digest of a label array as int64 little-endian bytes (C order).

    For int64 arrays on little-endian machines this is the "raw sha256" of the datasets MANIFEST.
    """
    return hashlib.sha256(np.ascontiguousarray(labels, dtype="<i8").tobytes()).hexdigest()


def empirical_transition(clean: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalised counts ``[y, k] = #(clean = y, noisy = k) / #(clean = y)``; absent rows are 0."""
    K = num_classes
    counts = np.bincount(clean * K + noisy, minlength=K * K).reshape(K, K).astype(np.float64)
    n = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """The result of :func:`corrupt`.

    Attributes
    ----------
    noisy_labels, clean_labels : int64 arrays, shape (N,).
    seed : the seed used. sampler : ``"exact"``, ``"independent"`` (also for ``instance``: every
        sample has its own row), ``"alfs"`` or ``"apl"`` (a reference's replay), ``"file"`` (CIFAR-N)
        or ``None`` (``clean``).
    reference_seed : for ``alfs``/``apl``, the seed the reference really draws with (``seed``, except
        ALFs on MNIST: 0); ``None`` otherwise.
    rate : realised overall noise rate, ``mean(noisy != clean)``.
    per_class_rate : (K,) realised rate per clean class (NaN for a class with no samples).
    transition : (K, K) empirical transition matrix (rows: clean class, row-normalised counts).
    sha256 : :func:`labels_sha256` of ``noisy_labels`` (int64 little-endian bytes).
    spec : the :class:`NoiseSpec` (kind ``"transition"`` for a user matrix).
    legacy, dataset, source : the switches used; ``source`` names the CIFAR-N file read.
    """

    noisy_labels: np.ndarray
    clean_labels: np.ndarray
    seed: int
    sampler: str | None
    rate: float
    per_class_rate: np.ndarray
    transition: np.ndarray
    sha256: str
    spec: NoiseSpec
    legacy: bool = False
    dataset: str | None = None
    source: str | None = None
    reference_seed: int | None = None
    expected_transition: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return int(self.transition.shape[0])

    @property
    def num_flipped(self) -> int:
        return int(np.count_nonzero(self.noisy_labels != self.clean_labels))

    def summary(self) -> dict:
        """JSON-able record for run records: spec, seed, sampler, reference_seed, rate, per_class_rate,
        transition, sha256, num_flipped, plus n, num_classes, legacy, dataset and source. No label arrays."""
        def num(v):
            v = float(v)
            return None if math.isnan(v) else v

        return {
            "spec": str(self.spec),
            "seed": self.seed,
            "sampler": self.sampler,
            "reference_seed": self.reference_seed,
            "legacy": self.legacy,
            "dataset": self.dataset,
            "source": self.source,
            "n": int(self.noisy_labels.size),
            "num_classes": self.num_classes,
            "num_flipped": self.num_flipped,
            "rate": num(self.rate),
            "per_class_rate": [num(v) for v in self.per_class_rate],
            "transition": [[float(v) for v in row] for row in self.transition],
            "sha256": self.sha256,
        }


def _as_labels(labels) -> np.ndarray:
    if hasattr(labels, "detach") and hasattr(labels, "device"):  # torch tensor, without importing torch
        if labels.device.type != "cpu":
            raise ValueError(f"labels must be a CPU tensor or NumPy array; got a tensor on {labels.device}.")
        labels = labels.detach().numpy()
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices; got shape {y.shape}.")
    if y.size and (y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer)):
        raise TypeError(f"labels must be integers (class indices); got dtype {y.dtype}.")
    return y.astype(np.int64, copy=True)


def _as_seed(seed) -> int:
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be a non-negative integer; got {seed!r} ({type(seed).__name__}).") from None
    if isinstance(seed, bool) or s < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")
    return int(s)


def _resolve_classes(y: np.ndarray, num_classes, dataset, matrix_k=None) -> int:
    K = num_classes
    if K is not None:
        try:
            K = operator.index(K)
        except TypeError:
            raise TypeError(f"num_classes must be an integer; got {num_classes!r}.") from None
        if K < 1:
            raise ValueError(f"num_classes must be >= 1; got {K}.")
    if K is not None and matrix_k is not None and K != matrix_k:
        raise ValueError(f"noise is a {matrix_k}x{matrix_k} matrix but num_classes is {K}.")
    known = DATASET_CLASSES.get(dataset)
    if known is not None and K is not None and K != known:
        raise ValueError(f"num_classes={K} does not match dataset {dataset!r} ({known} classes).")
    if K is None and matrix_k is not None:
        K = matrix_k
    if K is None and dataset in DATASET_CLASSES:
        K = DATASET_CLASSES[dataset]
    if K is None:
        K = int(y.max()) + 1 if y.size else 1
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= K:
            bad = lo if lo < 0 else hi
            raise ValueError(f"labels must lie in [0, {K - 1}] for {K} classes; found label {bad}.")
    return K


def corrupt(labels, noise, *, seed, dataset=None, sampler="exact", legacy=False, features=None,
            num_classes=None, data_dir=None) -> NoisyLabels:
    """Corrupt clean labels with a noise model; return a :class:`NoisyLabels` record.

    Parameters
    ----------
    labels : (N,) integer class indices (NumPy array or CPU torch tensor). Not modified.
    noise : a spec string (see :func:`parse_noise`), a :class:`NoiseSpec`, or a (K, K)
        row-stochastic transition matrix (rows = clean class).
    seed : non-negative int; all randomness comes from ``numpy.random.Generator(PCG64(seed))``.
    dataset : ``mnist``, ``cifar10`` or ``cifar100`` for ``asymmetric`` (also sets K for known names).
    sampler : ``"exact"`` — per clean class y, exactly ``round((1 − T[y, y]) · n_y)`` randomly chosen
        samples change label, ``round(T[y, k] · n_y)`` of them to k (floor or ceiling by largest
        remainder when those products are not integers; the reference's CIFAR approach) — or
        ``"independent"`` — each sample is drawn from its row ``T[y]`` (the reference's MNIST approach). Instance noise always samples per
        sample; CIFAR-N labels come from the file. ``"alfs"`` or ``"apl"`` — replay that reference's
        own generator bit for bit (NumPy's legacy RNG, same calls, same order, quirks included) on a
        private ``RandomState``; ``seed`` is then the reference's ``--seed`` (ALFs 123, APL 0 by
        default; ALFs's MNIST loader always uses 0), ``dataset`` must be ``mnist``, ``cifar10`` or
        ``cifar100`` and ``labels`` the full training labels in original order. See docs/noise.md,
        "Reference samplers".
    legacy : reproduce the reference code's quirks for ``asymmetric`` noise: CIFAR-10 in-place
        sequential flips (≈24% of cats mislabelled at 0.4, not 40%), CIFAR-100 consecutive-index
        blocks instead of the real superclasses. Default ``False``: the correct models. No effect
        with ``sampler="alfs"``/``"apl"``, which always have the reference's quirks.
    features : (N, ...) inputs for ``instance`` noise (uint8 pixels, divided by 255, or floats in
        [0, 1]), flattened per sample in C order.
    num_classes : K; default from the matrix, the dataset, or ``max(labels) + 1``.
    data_dir : where the CIFAR-N label files are (default :func:`asymloss._paths.data_root`).

    Returns
    -------
    :class:`NoisyLabels` with ``noisy_labels`` (int64 NumPy array) and the realised rates.

    Example
    -------
    >>> import numpy as np
    >>> y = np.repeat(np.arange(10), 100)
    >>> r = corrupt(y, "symmetric:0.4", seed=0)
    >>> r.rate, r.per_class_rate[:3]
    (0.4, array([0.4, 0.4, 0.4]))
    """
    y = _as_labels(labels)
    seed = _as_seed(seed)
    check_choice("sampler", sampler, SAMPLERS)
    if not isinstance(legacy, (bool, np.bool_)):
        raise TypeError(f"legacy must be True or False; got {legacy!r}.")
    legacy = bool(legacy)
    dataset_given = dataset
    if dataset is not None:
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be a string such as 'cifar10'; got {type(dataset).__name__}.")
        dataset = dataset.lower()

    matrix = None
    if isinstance(noise, (str, NoiseSpec)):
        spec = parse_noise(noise)
        if spec.kind == "transition":
            raise ValueError("for a transition matrix, pass the (K, K) array itself as noise=.")
    else:
        matrix = check_transition(noise, "noise")
        spec = NoiseSpec("transition")
    replaying = sampler in REFERENCE_SAMPLERS
    if replaying:
        if matrix is not None:
            raise ValueError(f"sampler {sampler!r} replays the reference's own noise models; it takes a noise "
                             f"spec such as 'symmetric:0.4', not a transition matrix.")
        check_replay(sampler, spec.kind, dataset)
    K = _resolve_classes(y, num_classes, dataset, None if matrix is None else matrix.shape[0])
    rng = np.random.Generator(np.random.PCG64(seed))
    used_sampler = sampler
    source = None
    reference_seed = None
    T = None

    if spec.kind == "clean":
        noisy = y.copy()
        used_sampler = None
        T = np.eye(K)
    elif spec.kind in ("cifar10n", "cifar100n"):
        file_clean, noisy, source = load_cifar_n(spec, data_dir)
        if file_clean.shape != y.shape or not np.array_equal(file_clean, y):
            where = (
                f"shape {y.shape} vs {file_clean.shape}" if file_clean.shape != y.shape
                else f"{int(np.count_nonzero(file_clean != y))} labels differ, first at index "
                     f"{int(np.flatnonzero(file_clean != y)[0])}"
            )
            raise ValueError(
                f"{spec}: the labels given are not the clean labels of {source} ({where}); pass the "
                f"training labels of the dataset in original order."
            )
        used_sampler = "file"
        if num_classes is None:
            K = max(K, 100 if spec.kind == "cifar100n" else 10)
    elif replaying:
        T = transition_matrix(spec.kind, spec.rate, num_classes=K,
                              dataset=dataset if spec.kind == "asymmetric" else None, legacy=True)
        noisy, reference_seed = replay(sampler, y, spec.kind, spec.rate, dataset, seed)
    elif spec.kind == "instance":
        if K < 2:
            raise ValueError(f"instance noise needs at least 2 classes; got num_classes={K}.")
        x = prepare_features(features, y.size)
        noisy = instance_noise(y, x, spec.rate, K, rng)
        used_sampler = "independent"
    else:
        if matrix is not None:
            T = matrix
            warn_if_not_dominant(T, "the transition matrix given")
        else:
            if spec.kind == "asymmetric" and dataset is None:
                raise ValueError(
                    f"noise {str(spec)!r} needs dataset= ('mnist', 'cifar10' or 'cifar100'), or pass a "
                    f"transition matrix."
                )
            if K < 2:
                raise ValueError(f"{spec.kind} noise needs at least 2 classes; got num_classes={K}.")
            T = transition_matrix(spec.kind, spec.rate, num_classes=K,
                                  dataset=dataset if spec.kind == "asymmetric" else None, legacy=legacy)
        if legacy and spec.kind == "asymmetric" and dataset == "cifar10":
            noisy = legacy_sequential_flips(y, ASYMMETRIC_MAPS["cifar10"], spec.rate, sampler, rng)
        elif sampler == "exact":
            noisy = sample_exact(y, T, rng)
        else:
            noisy = sample_independent(y, T, rng)

    emp = empirical_transition(y, noisy, K)
    n = np.bincount(y, minlength=K)
    flipped = np.bincount(y[noisy != y], minlength=K)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(n > 0, flipped / np.maximum(n, 1), np.nan)
    return NoisyLabels(
        noisy_labels=noisy,
        clean_labels=y,
        seed=seed,
        sampler=used_sampler,
        rate=float(np.mean(noisy != y)) if y.size else 0.0,
        per_class_rate=per_class,
        transition=emp,
        sha256=labels_sha256(noisy),
        spec=spec,
        legacy=legacy,
        dataset=dataset_given,
        source=source,
        reference_seed=reference_seed,
        expected_transition=T,
    )
