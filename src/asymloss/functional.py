"""Functional API of the losses: a re-export of :mod:`asymloss.losses.functional`."""
from .losses.functional import *  # noqa: F401,F403
from .losses.functional import __all__  # noqa: F401
from .losses._mechanics import aldr_kl, ce_sr, fl_sr, gce_sr, gjs, nlnl  # noqa: E402,F401  (docs/training-mechanics.md)

__all__ = [*__all__, "ce_sr", "fl_sr", "gce_sr", "gjs", "aldr_kl", "nlnl"]
