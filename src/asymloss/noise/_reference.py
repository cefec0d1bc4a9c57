"""Replays of the reference codes' own label-noise generators (``sampler="alfs"`` and ``"apl"``).

The reference codes (ALFs, hitcszx/ALFs, ``lnl/dataset.py`` and ``lnl/data/utils.py``; APL,
HanxunH/Active-Passive-Losses, ``dataset.py``) draw their noisy labels from NumPy's legacy RNG:
``np.random.seed(seed)`` followed by ``np.random.choice`` calls, or a ``np.random.RandomState``
drawing one ``multinomial`` per label. A replay makes the same calls in the same order on a
*private* ``RandomState(seed)``. The global ``np.random`` functions are methods of one hidden
``RandomState``, so ``np.random.seed(s)`` then ``np.random.choice(...)`` gives the same stream as
``RandomState(s).choice(...)``, and the caller's global RNG state is never read or changed. Between
``np.random.seed`` and the first draw the references only build transforms and read the dataset
files: nothing draws from the global RNG in between.

Three procedures cover everything the two generators do (docs/noise.md, "Reference samplers"):

* ``per_class`` (symmetric noise, global RNG): ``c = int(int(rate * N) / K)`` samples of every class,
  picked with ``choice(indices of class d, c, replace=False)`` for d = 0, 1, …, K − 1; then, in
  that order, each picked sample gets ``choice(the K − 1 other classes)``, which is one
  ``randint(0, K − 1)`` per sample (the same stream as a vector of them).
* ``sequential`` (CIFAR-10 asymmetric, global RNG): for (9→1, 2→0, 3→5, 5→3, 4→7) in turn,
  ``choice(indices currently labelled s, int(rate * their count), replace=False)`` are relabelled t
  in place, so dog→cat draws from the dogs *and* the cats just relabelled.
* ``rows`` (matrix noise, ``RandomState(seed)``): one ``multinomial(1, P[y_i], 1)`` per label, in
  index order. How many uniforms a draw uses depends on its own values, so this one is a loop.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice
from ._matrices import ASYMMETRIC_MAPS, DATASET_CLASSES

__all__ = ["REFERENCE_SAMPLERS", "REFERENCE_DATASETS", "check_replay", "replay", "replay_kinds", "replay_seed"]

#: The reference generators asymloss replays bit for bit.
REFERENCE_SAMPLERS = ("alfs", "apl")
#: The datasets both references generate noise for.
REFERENCE_DATASETS = ("mnist", "cifar10", "cifar100")
#: ALFs's MNIST loader (``lnl/data/mnist.py``) draws with its own ``random_state=0``; ``--seed``
#: never reaches it.
ALFS_MNIST_SEED = 0
_MAX_SEED = 2**32  # RandomState seeds are 32-bit


# -- the references' matrices, built with the same float operations --------------------------------

def _symmetric_matrix(rate: float, K: int) -> np.ndarray:
    P = (rate / (K - 1)) * np.ones((K, K))
    np.fill_diagonal(P, 1.0 - rate)
    return P


def _pairflip_matrix(rate: float, K: int) -> np.ndarray:
    P = np.eye(K)
    for i in range(K):  # K rows, not samples
        P[i, i], P[i, (i + 1) % K] = 1.0 - rate, rate
    return P


def _mnist_matrix(rate: float, K: int) -> np.ndarray:
    P = np.eye(K)
    for s, t in ASYMMETRIC_MAPS["mnist"]:
        P[s, s], P[s, t] = 1.0 - rate, rate
    return P


def _blocks_of_five_matrix(rate: float, K: int) -> np.ndarray:
    """CIFAR-100 "superclasses" as the references build them: blocks 0–4, 5–9, …, each class to the
    next one of its block, cyclically (not the real CIFAR-100 superclasses)."""
    block = (1.0 - rate) * np.eye(5)
    for i in range(5):
        block[i, (i + 1) % 5] = rate
    P = np.eye(K)
    for b in range(0, K, 5):
        P[b:b + 5, b:b + 5] = block
    return P


# -- the three procedures --------------------------------------------------------------------------

def _per_class(y, rate, K, rs, what):
    c = int(int(rate * y.size) / K)
    members = [np.flatnonzero(y == d) for d in range(K)]
    short = [d for d in range(K) if members[d].size < c]
    if short:
        d = short[0]
        raise ValueError(
            f"{what} flips int(int(rate * N) / K) = {c} labels of every class, but class {d} has only "
            f"{members[d].size} samples (the reference code fails here too); pass the full training labels."
        )
    picked = np.concatenate([rs.choice(members[d], c, replace=False) for d in range(K)])
    r = rs.randint(0, K - 1, size=picked.size)  # choice(other classes): one randint(0, K-1) each
    current = y[picked]
    out = y.copy()
    out[picked] = r + (r >= current)  # the r-th class of range(K) without the current one
    return out


def _sequential(y, rate, rs):
    out = y.copy()
    for s, t in ASYMMETRIC_MAPS["cifar10"]:  # 5 pairs, not samples
        members = np.flatnonzero(out == s)
        out[rs.choice(members, int(rate * members.shape[0]), replace=False)] = t
    return out


def _rows(y, P, rs):
    out = np.empty_like(y)
    rows = [P[k] for k in range(P.shape[0])]
    for i, label in enumerate(y.tolist()):  # the reference's per-sample multinomial, in index order
        out[i] = rs.multinomial(1, rows[label], 1)[0].argmax()
    return out


# (reference, dataset, kind) -> (procedure, matrix builder for "rows"). MNIST's pairflip is the ALFs
# MNIST loader's ``noise_type="pairflip"``; its training script never selects it (see docs/noise.md).
_GLOBAL_CIFAR = {("cifar10", "symmetric"): ("per_class", None), ("cifar10", "asymmetric"): ("sequential", None),
                 ("cifar100", "symmetric"): ("per_class", None),
                 ("cifar100", "asymmetric"): ("rows", _blocks_of_five_matrix)}
_REPLAYS = {
    "alfs": {**_GLOBAL_CIFAR, ("mnist", "symmetric"): ("rows", _symmetric_matrix),
             ("mnist", "asymmetric"): ("rows", _mnist_matrix), ("mnist", "pairflip"): ("rows", _pairflip_matrix)},
    "apl": {**_GLOBAL_CIFAR, ("mnist", "symmetric"): ("per_class", None),
            ("mnist", "asymmetric"): ("rows", _mnist_matrix)},
}


def replay_kinds(sampler: str, dataset: str) -> tuple[str, ...]:
    """The noise kinds (besides ``clean``) that reference ``sampler`` generates for ``dataset``.

    >>> replay_kinds("alfs", "mnist"), replay_kinds("apl", "mnist")
    (('symmetric', 'asymmetric', 'pairflip'), ('symmetric', 'asymmetric'))
    """
    check_choice("sampler", sampler, REFERENCE_SAMPLERS)
    return tuple(kind for (name, kind) in _REPLAYS[sampler] if name == dataset)


def check_replay(sampler: str, kind: str, dataset) -> None:
    """Raise a clear error unless reference ``sampler`` generates noise ``kind`` for ``dataset``."""
    check_choice("sampler", sampler, REFERENCE_SAMPLERS)
    if kind == "clean":
        return
    if dataset is None:
        raise ValueError(
            f"sampler {sampler!r} replays the reference's generator of one dataset: pass dataset=, one of "
            f"{', '.join(repr(d) for d in REFERENCE_DATASETS)}."
        )
    if dataset not in REFERENCE_DATASETS:
        raise ValueError(
            f"sampler {sampler!r} has no generator for dataset {dataset!r}; it replays "
            f"{', '.join(repr(d) for d in REFERENCE_DATASETS)} only."
        )
    kinds = replay_kinds(sampler, dataset)
    if kind not in kinds:
        raise ValueError(
            f"sampler {sampler!r} has no {kind!r} noise for dataset {dataset!r}: the reference generates "
            f"{', '.join(repr(k) for k in ('clean', *kinds))} there. Use sampler='exact' or 'independent' "
            f"for other noise."
        )


def replay_seed(sampler: str, dataset: str, seed: int) -> int:
    """The seed the reference really draws with: ``seed`` (its ``--seed``), except ALFs on MNIST,
    whose loader always uses ``random_state=0``."""
    check_choice("sampler", sampler, REFERENCE_SAMPLERS)
    if sampler == "alfs" and dataset == "mnist":
        return ALFS_MNIST_SEED
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(
            f"seed must be < 2**32 for sampler {sampler!r} (NumPy's legacy RandomState takes 32-bit seeds); "
            f"got {seed}."
        )
    return seed


def replay(sampler: str, y: np.ndarray, kind: str, rate: float, dataset: str, seed: int) -> tuple[np.ndarray, int]:
    """Noisy labels of reference ``sampler`` for clean labels ``y`` (int64, original training order).

    ``seed`` is the reference's ``--seed``. Returns ``(noisy, reference_seed)``, the second being the
    seed the reference really uses (:func:`replay_seed`). The caller's global NumPy RNG is untouched.
    """
    check_replay(sampler, kind, dataset)
    procedure, build = _REPLAYS[sampler][(dataset, kind)]
    K = DATASET_CLASSES[dataset]
    used = replay_seed(sampler, dataset, seed)
    rs = np.random.RandomState(used)
    if procedure == "per_class":
        noisy = _per_class(y, rate, K, rs, f"sampler {sampler!r}: {kind}:{rate:g} on {dataset}")
    elif procedure == "sequential":
        noisy = _sequential(y, rate, rs)
    else:
        noisy = _rows(y, build(rate, K), rs)
    return noisy, used
