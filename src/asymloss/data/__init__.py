"""asymloss.data: datasets in memory and batched augmentation.

>>> import asymloss.data as data
>>> ds = data.load("digits")            # bundled with scikit-learn: no download
>>> ds.x_train.dtype, tuple(ds.x_train.shape)
(torch.uint8, (1438, 1, 8, 8))

``load("mnist")``, ``load("fashion-mnist")``, ``load("cifar10")``, ``load("cifar100")`` read the
original files (or the offline ``.npz`` copies) from the data root; see
:mod:`asymloss.data.registry` for the layout and :mod:`asymloss.data.augment` for augmentation.
"""
from __future__ import annotations

from . import augment, readers
from ._dataset import ImageDataset, stratified_indices
from .augment import Augment
from .download import ChecksumError, DatasetNotFoundError, DownloadError
from .readers import FormatError
from .registry import DATASETS, JPEG_NOTE, download, list_datasets, load

__all__ = [
    "load",
    "list_datasets",
    "download",
    "ImageDataset",
    "Augment",
    "augment",
    "readers",
    "stratified_indices",
    "DATASETS",
    "JPEG_NOTE",
    "ChecksumError",
    "DatasetNotFoundError",
    "DownloadError",
    "FormatError",
]
