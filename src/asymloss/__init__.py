"""asymloss: robust loss functions for learning with noisy labels.

Losses are drop-in replacements for ``torch.nn.CrossEntropyLoss``::

    import asymloss
    loss_fn = asymloss.create_loss("nce+agce", num_classes=10, preset="paper:cifar10")
    loss = loss_fn(logits, target)

Sub-packages (imported on first use): ``functional``, ``theory``, ``noise``, ``data``, ``models``,
``train``, ``sweep``, ``report``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .losses import *  # noqa: F401,F403  (loss modules, create_loss, list_losses)
from .losses import __all__ as _loss_all

_SUBMODULES = {"functional", "theory", "noise", "data", "models", "train", "sweep", "report", "cli"}

__all__ = ["__version__", *_loss_all, *sorted(_SUBMODULES - {"cli"})]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'asymloss' has no attribute {name!r}")
