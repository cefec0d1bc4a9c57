"""The demo: a small, real noisy-label experiment that needs no download.

It trains an MLP on scikit-learn's bundled handwritten digits (8×8 images, 10 classes) with several
losses under clean, symmetric and asymmetric label noise, and returns the table of test accuracies.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from .config import TrainConfig, get_protocol
from .engine import train

__all__ = ["DEMO_LOSSES", "DEMO_NOISE", "demo_configs", "run_demo"]

DEMO_LOSSES = ("ce", "gce", "sce", "nce+rce", "nce+agce")
DEMO_NOISE = ("clean", "symmetric:0.6", "asymmetric:0.4")


def demo_configs(losses: Sequence[str] = DEMO_LOSSES, noise: Sequence[str] = DEMO_NOISE,
                 seed: int = 0, **overrides) -> list[TrainConfig]:
    """One config of the ``demo-digits`` protocol per (loss, noise) pair."""
    return [get_protocol("demo-digits", loss=loss, noise=nz, seed=seed, **overrides)
            for nz in noise for loss in losses]


def run_demo(losses: Sequence[str] = DEMO_LOSSES, noise: Sequence[str] = DEMO_NOISE, seed: int = 0,
             on_run: Optional[Callable[[int, int, TrainConfig], None]] = None, **overrides) -> dict:
    """Train every (loss, noise) pair; returns ``{(loss, noise): last test accuracy}``.

    ``on_run(i, total, config)`` is called before each run (for progress reporting).
    """
    configs = demo_configs(losses, noise, seed, **overrides)
    results = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the demo's MLP is too small to gain from threads; they only contend
    try:
        for i, cfg in enumerate(configs):
            if on_run is not None:
                on_run(i, len(configs), cfg)
            record = train(cfg, progress=False)
            results[(cfg.loss, cfg.noise)] = record["final"]["last_test_acc"]
    finally:
        torch.set_num_threads(threads)
    return results
