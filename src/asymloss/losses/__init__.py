"""Robust loss functions for learning with noisy labels.

- :mod:`asymloss.losses.functional` (also ``asymloss.functional``): one function per loss.
- ``nn.Module`` classes (``CE``, ``FocalLoss``, ..., ``AGCE``, ``AUL``, ``AEL``, ``ActivePassive``,
  ``NCEandAGCE``, ...), exported at the top level of ``asymloss``.
- The registry: :func:`create_loss`, :func:`list_losses`, :func:`list_presets`, :func:`get_preset`.
"""
from __future__ import annotations

from . import functional
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .registry import (create_loss, describe_loss, get_preset, list_losses, list_presets,
                       preset_engine_settings)

__all__ = [*_modules_all, "Loss", "create_loss", "list_losses", "list_presets", "get_preset", "describe_loss",
           "preset_engine_settings"]
from .modules import Loss  # noqa: E402
