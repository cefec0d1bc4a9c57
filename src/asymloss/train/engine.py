"""The training engine (being written)."""
from __future__ import annotations

from .config import TrainConfig


def train(config: TrainConfig, out_dir=None, *, progress: bool = True, resume: bool = True) -> dict:
    """Train one run and return its run record (see docs/ARCHITECTURE.md)."""
    raise NotImplementedError("the training engine is not written yet")
