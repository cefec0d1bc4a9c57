"""Dataset names and class counts: the one table every part of asymloss reads.

A dataset is named by its canonical name (``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``,
``digits``; ``webvision-mini`` is known by its class count only) or by a path (``npz:<path>``,
``folder:<path>``). Aliases (``cifar-100``, ``FashionMNIST``, ``MNIST``) resolve to the canonical
name before anything else sees them, so a run's id never depends on the spelling.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["NUM_CLASSES", "DATASET_ALIASES", "PATH_PREFIXES", "canonical_dataset", "dataset_num_classes"]

#: Class counts of the datasets known by name.
NUM_CLASSES: dict[str, int] = {
    "mnist": 10,
    "fashion-mnist": 10,
    "digits": 10,
    "cifar10": 10,
    "cifar100": 100,
    "webvision-mini": 50,
}

#: Other spellings of the names above (compared lower-case).
DATASET_ALIASES: dict[str, str] = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "cifar-100": "cifar100",
    "cifar_100": "cifar100",
    "webvision": "webvision-mini",
}

#: Datasets named by a path after the prefix: ``npz:<path>``, ``folder:<path>``.
PATH_PREFIXES = ("npz", "folder")


def canonical_dataset(name: str) -> str:
    """The canonical spelling of a dataset name (unknown names are returned lower-cased).

    >>> canonical_dataset("CIFAR-100"), canonical_dataset("npz:Data/My.npz")
    ('cifar100', 'npz:Data/My.npz')
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset must be a name (str); got {name!r} ({type(name).__name__}).")
    prefix, sep, rest = name.partition(":")
    if sep and prefix.strip().lower() in PATH_PREFIXES:
        return f"{prefix.strip().lower()}:{rest}"  # the path keeps its case
    key = name.strip().lower()
    return DATASET_ALIASES.get(key, key)


def dataset_num_classes(name: str) -> Optional[int]:
    """The class count of a dataset known by name; ``None`` when only its files can tell
    (``npz:``/``folder:`` datasets and unknown names)."""
    return NUM_CLASSES.get(canonical_dataset(name))
