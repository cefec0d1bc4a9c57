"""The in-memory dataset record returned by :func:`asymloss.data.load`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from .._validation import check_number

__all__ = ["ImageDataset", "stratified_indices"]


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a stratified random sample of ``n`` of ``labels``, sorted ascending.

    Each class ``c`` with ``n_c`` members gets ``floor(n * n_c / N)`` places; the ``n - sum``
    places left over go to the classes with the largest remainders (ties: lower class index).
    Within a class the members are drawn without replacement by ``numpy.random.default_rng(seed)``
    (PCG64, stable across NumPy versions). The result keeps the original order.

    >>> stratified_indices(np.array([0, 0, 1, 1]), 2, seed=0).shape
    (2,)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array; got shape {labels.shape}.")
    total = labels.shape[0]
    n = check_number("n", n, ge=0, le=total, integer=True)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n / total)
    alloc = np.floor(exact).astype(np.int64)
    left = n - int(alloc.sum())
    if left > 0:
        order = np.lexsort((np.arange(len(classes)), -(exact - alloc)))
        alloc[order[:left]] += 1
    rng = np.random.default_rng(seed)
    # One permutation of everything, then a stable sort by class: within each class the members
    # come in random order, so the first ``alloc[c]`` of each class form the sample (vectorised).
    perm = rng.permutation(total)
    by_class = perm[np.argsort(labels[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(total) - np.repeat(starts, counts)
    keep = rank < np.repeat(alloc, counts)
    return np.sort(by_class[keep])


@dataclass
class ImageDataset:
    """An image classification dataset held in memory.

    Attributes:
        name: registry name (``"mnist"``, ``"cifar10"``, ``"npz:<path>"`` ...).
        x_train, x_test: ``uint8`` tensors of shape ``(N, C, H, W)``.
        y_train, y_test: ``int64`` tensors of shape ``(N,)`` with values in ``[0, num_classes)``.
        classes: class names, ``len(classes) == num_classes``.
        mean, std: per-channel normalisation constants in ``[0, 1]`` pixel units (tuples of length C).
        note: provenance caveat to report with any result (e.g. the JPEG-degraded CIFAR-10 copy);
            ``""`` when the data are the exact originals.
        source: which files the data were read from (relative to the data root where possible).
        y_train_coarse, y_test_coarse, coarse_classes: CIFAR-100 superclass labels (else ``None``).

    Example::

        ds = asymloss.data.load("digits")
        ds.x_train.shape   # torch.Size([1438, 1, 8, 8])
        small = ds.subset(100, seed=0)
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    note: str = ""
    source: str = ""
    y_train_coarse: torch.Tensor | None = None
    y_test_coarse: torch.Tensor | None = None
    coarse_classes: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise ValueError(f"x_{split} must be a uint8 (N, C, H, W) tensor; got {x.dtype} {tuple(x.shape)}.")
            if y.dtype != torch.int64 or y.dim() != 1 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y_{split} must be an int64 (N,) tensor with N = {x.shape[0]}; got {y.dtype} {tuple(y.shape)}."
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"train and test images differ in shape: {tuple(self.x_train.shape[1:])} vs {tuple(self.x_test.shape[1:])}."
            )
        self.classes = tuple(self.classes)
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        c = self.x_train.shape[1]
        if len(self.mean) != c or len(self.std) != c:
            raise ValueError(f"mean and std need {c} entries (one per channel); got {self.mean}, {self.std}.")
        for split in ("train", "test"):
            y = getattr(self, f"y_{split}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                raise ValueError(
                    f"y_{split} has labels outside [0, {len(self.classes)}): min {int(y.min())}, max {int(y.max())}."
                )

    # -- derived -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def summary(self) -> dict:
        """A JSON-able description for run records: name, note, source, sizes, constants."""
        return {
            "name": self.name,
            "note": self.note,
            "source": self.source,
            "num_train": int(self.x_train.shape[0]),
            "num_test": int(self.x_test.shape[0]),
            "shape": list(self.x_train.shape[1:]),
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    # -- helpers -------------------------------------------------------------------------------
    def subset(self, n: int, seed: int | None = 0, *, n_test: int | None = None) -> "ImageDataset":
        """A smaller copy with ``n`` training images (and ``n_test`` test images if given).

        With an integer ``seed`` the sample is stratified (class proportions kept, see
        :func:`stratified_indices`) and in original order; with ``seed=None`` it is simply the
        first ``n`` images. The test set is kept whole unless ``n_test`` is given (same rule).
        CIFAR-100 coarse labels follow the selection.

        >>> ds = load("digits").subset(100, seed=0)  # doctest: +SKIP
        """
        n = check_number("n", n, ge=1, le=int(self.x_train.shape[0]), integer=True)
        if seed is not None:
            check_number("seed", seed, ge=0, integer=True)
        if n_test is not None:
            n_test = check_number("n_test", n_test, ge=1, le=int(self.x_test.shape[0]), integer=True)

        def pick(y: torch.Tensor, k: int) -> torch.Tensor:
            if seed is None:
                return torch.arange(k)
            return torch.from_numpy(stratified_indices(y.cpu().numpy(), k, seed)).to(y.device)

        tr = pick(self.y_train, n)
        changes = {"x_train": self.x_train[tr], "y_train": self.y_train[tr]}
        if self.y_train_coarse is not None:
            changes["y_train_coarse"] = self.y_train_coarse[tr]
        if n_test is not None:
            te = pick(self.y_test, n_test)
            changes.update(x_test=self.x_test[te], y_test=self.y_test[te])
            if self.y_test_coarse is not None:
                changes["y_test_coarse"] = self.y_test_coarse[te]
        return dataclasses.replace(self, **changes)

    def to(self, device: str | torch.device) -> "ImageDataset":
        """A copy with every tensor on ``device`` (images stay uint8: 1 byte per pixel)."""
        device = torch.device(device)
        changes = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        note = f", note={self.note!r}" if self.note else ""
        return (
            f"ImageDataset(name={self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
            f"num_classes={self.num_classes}{note})"
        )
