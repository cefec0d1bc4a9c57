"""Robust loss functions for learning with noisy labels.

- :mod:`asymloss.losses.functional` (also ``asymloss.functional``): one function per loss.
- ``nn.Module`` classes (``CE``, ``FocalLoss``, ..., ``AGCE``, ``AUL``, ``AEL``, ``ActivePassive``,
  ``NCEandAGCE``, ...), exported at the top level of ``asymloss``.
- The registry: :func:`create_loss`, :func:`list_losses`, :func:`list_presets`, :func:`get_preset`.
- Declarations (docs/adding-a-loss.md): :func:`loss`, :func:`combination`, :class:`Param`
  (:func:`Real`, :func:`Int`, :func:`Bool`), :func:`get_definition`.
"""
from __future__ import annotations

from . import functional
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from ._define import Bool, Int, LossDef, Param, Real, combination, get_definition, loss
from .registry import (create_loss, describe_loss, get_preset, list_losses, list_presets,
                       preset_engine_settings, presets_defining)

__all__ = [*_modules_all, "Loss", "create_loss", "list_losses", "list_presets", "get_preset", "describe_loss",
           "preset_engine_settings", "presets_defining",
           "get_definition", "LossDef", "Param", "Real", "Int", "Bool", "loss", "combination"]
from .modules import Loss  # noqa: E402
