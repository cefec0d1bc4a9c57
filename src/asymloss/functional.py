"""Functional API of the losses: a re-export of :mod:`asymloss.losses.functional`."""
from .losses.functional import *  # noqa: F401,F403
from .losses.functional import __all__  # noqa: F401
