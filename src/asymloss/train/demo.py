"""The demo: a small, real noisy-label experiment that needs no download.

It trains an MLP on the handwritten digits shipped with asymloss (the UCI set that scikit-learn
bundles: 8×8 images, 10 classes) with several losses under clean, symmetric and asymmetric label
noise, for several seeds, and returns the test accuracies.

Why several seeds: 40 epochs of SGD on noisy labels amplify the last-bit differences between CPUs
(vector widths, BLAS kernels) into accuracy differences of several points for a single run. The mean
over seeds moves much less, so the demo's message — the asymmetric losses resist the noise — does
not depend on the machine. The runs are independent, one CPU thread each, so they are spread over
worker processes (one per core, at most four); each run gives exactly what it gives alone.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
from typing import Callable, Optional, Sequence

import torch

from .config import TrainConfig, get_protocol
from .engine import train

__all__ = ["DEMO_LOSSES", "DEMO_NOISE", "DEMO_SEEDS", "demo_configs", "demo_accuracies", "run_demo",
           "demo_workers"]

DEMO_LOSSES = ("ce", "gce", "sce", "nce+rce", "nce+agce")
DEMO_NOISE = ("clean", "symmetric:0.6", "asymmetric:0.4")
DEMO_SEEDS = (0, 1, 2)


def demo_configs(losses: Sequence[str] = DEMO_LOSSES, noise: Sequence[str] = DEMO_NOISE,
                 seed: int = 0, *, seeds: Optional[Sequence[int]] = None, **overrides) -> list[TrainConfig]:
    """One config of the ``demo-digits`` protocol per (loss, noise, seed); ``seeds`` (default: just
    ``seed``) in the outer loop."""
    seeds = (seed,) if seeds is None else tuple(seeds)
    return [get_protocol("demo-digits", loss=loss, noise=nz, seed=s, **overrides)
            for s in seeds for nz in noise for loss in losses]


def demo_workers(num_runs: int) -> int:
    """Worker processes for ``num_runs`` one-thread runs: one per available core, at most four."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4, num_runs))


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent, which stops us
    torch.set_num_threads(1)


def _last_test_acc(config: dict) -> float:
    return train(TrainConfig.from_dict(config), progress=False)["final"]["last_test_acc"]


def demo_accuracies(losses: Sequence[str] = DEMO_LOSSES, noise: Sequence[str] = DEMO_NOISE,
                    seeds: Sequence[int] = DEMO_SEEDS, *, workers: Optional[int] = None,
                    on_run: Optional[Callable[[int, int, TrainConfig], None]] = None,
                    **overrides) -> dict[tuple[str, str], list[float]]:
    """Train every (loss, noise, seed); returns ``{(loss, noise): [last test accuracy per seed]}``
    (seeds in the order given).

    ``workers`` processes run them (default :func:`demo_workers`; ``1`` runs them here, one after
    the other — the numbers are the same). ``on_run(done, total, config)`` is called as each run
    finishes (for progress reporting).
    """
    configs = demo_configs(losses, noise, seeds=seeds, **overrides)
    workers = demo_workers(len(configs)) if workers is None else workers
    accs: dict[int, float] = {}
    if workers <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the demo's MLP is too small to gain from threads; they only contend
        try:
            for i, cfg in enumerate(configs):
                accs[i] = train(cfg, progress=False)["final"]["last_test_acc"]
                if on_run is not None:
                    on_run(i + 1, len(configs), cfg)
        finally:
            torch.set_num_threads(threads)
    else:
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                      initializer=_init_worker)
        try:
            futures = {pool.submit(_last_test_acc, cfg.to_dict()): i for i, cfg in enumerate(configs)}
            for fut in cf.as_completed(futures):
                i = futures[fut]
                accs[i] = fut.result()
                if on_run is not None:
                    on_run(len(accs), len(configs), configs[i])
        except BaseException:  # Ctrl-C or a failing run: stop the workers at once
            procs = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.terminate()
            raise
        pool.shutdown(wait=True)
    out: dict[tuple[str, str], list[float]] = {}
    for i, cfg in enumerate(configs):
        out.setdefault((cfg.loss, cfg.noise), []).append(accs[i])
    return out


def run_demo(losses: Sequence[str] = DEMO_LOSSES, noise: Sequence[str] = DEMO_NOISE, seed: int = 0,
             on_run: Optional[Callable[[int, int, TrainConfig], None]] = None, *,
             seeds: Optional[Sequence[int]] = None, workers: Optional[int] = 1, **overrides) -> dict:
    """Train every (loss, noise) pair; returns ``{(loss, noise): last test accuracy}`` — the mean over
    ``seeds`` when given, else the run with ``seed``. See :func:`demo_accuracies`."""
    per_seed = demo_accuracies(losses, noise, (seed,) if seeds is None else seeds, workers=workers,
                               on_run=on_run, **overrides)
    return {key: sum(v) / len(v) for key, v in per_seed.items()}
