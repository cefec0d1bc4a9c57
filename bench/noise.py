"""Benchmark: label corruption with asymloss.noise against the reference code's per-sample loop.

The baseline, measured in the same run, is the approach of the reference code (the
``multiclass_noisify`` of the normalized-loss / asymmetric-loss repositories, and Xia et al.'s
instance-noise generator): a Python ``for`` loop over the samples drawing from ``np.random`` for
each one. asymloss draws vectorised with NumPy (``sampler="exact"`` and ``"independent"``).

Run (about a minute on 2 shared CPU cores):

    PYTHONPATH=src python bench/noise.py            # 50,000 and 1,000,000 labels
    PYTHONPATH=src python bench/noise.py --sizes 50000 --repeat 1   # quicker

Prints a Markdown table: seconds per call (best of ``--repeat`` for asymloss, one run for the loop)
and the ratio loop / asymloss (how many times faster).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from asymloss.noise import corrupt, transition_matrix

KINDS = [  # (label, spec, dataset)
    ("symmetric:0.4", "symmetric:0.4", None),
    ("pairflip:0.45", "pairflip:0.45", None),
    ("asymmetric:0.4 (cifar10)", "asymmetric:0.4", "cifar10"),
    ("uniform:0.5", "uniform:0.5", None),
]


def loop_reference(y: np.ndarray, P: np.ndarray, seed: int) -> np.ndarray:
    """The reference's ``multiclass_noisify``: one ``RandomState.multinomial`` per sample."""
    flipper = np.random.RandomState(seed)
    new_y = y.copy()
    for idx in range(y.shape[0]):
        flipped = flipper.multinomial(1, P[y[idx], :], 1)[0]
        new_y[idx] = np.where(flipped == 1)[0][0]
    return new_y


def loop_instance_reference(y: np.ndarray, x: np.ndarray, rate: float, K: int, seed: int) -> np.ndarray:
    """Xia et al.'s generator (CPU NumPy port): per-sample matmul, softmax and ``np.random.choice``."""
    from scipy import stats

    np.random.seed(seed)
    q = stats.truncnorm(-rate / 0.1, (1 - rate) / 0.1, loc=rate, scale=0.1).rvs(y.shape[0])
    W = np.random.randn(K, x[0].size, K)
    P = []
    for i in range(y.shape[0]):
        a = (x[i].reshape(1, -1) / 255.0) @ W[y[i]]
        a = a[0]
        a[y[i]] = -np.inf
        e = np.exp(a - a.max())
        a = q[i] * e / e.sum()
        a[y[i]] += 1 - q[i]
        P.append(a)
    return np.array([np.random.choice(K, p=p) for p in P])


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls (after one untimed warm-up call when repeat > 1)."""
    if repeat > 1:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3, help="best of this many asymloss calls")
    ap.add_argument("--no-instance", action="store_true", help="skip instance noise (50,000 CIFAR images)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    cases = [(label, spec, ds, n) for n in args.sizes for label, spec, ds in KINDS]
    if not args.no_instance:
        cases.append(("instance:0.4 (3x32x32 uint8)", "instance:0.4", None, 50_000))
    rows = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("noise bench", total=len(cases))
        for label, spec, ds, n in cases:
            bar.update(task, description=f"{label}, N={n:,}")
            y = rng.integers(0, 10, n)
            if spec.startswith("instance"):
                x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
                t_exact = best_of(lambda: corrupt(y, spec, seed=1, features=x), args.repeat)
                t_ind = t_exact
                t_loop = best_of(lambda: loop_instance_reference(y, x, 0.4, 10, 1), 1)
            else:
                kind, rate = spec.split(":")
                P = transition_matrix(kind, float(rate), num_classes=10, dataset=ds)
                t_exact = best_of(lambda: corrupt(y, spec, seed=1, dataset=ds), args.repeat)
                t_ind = best_of(lambda: corrupt(y, spec, seed=1, dataset=ds, sampler="independent"), args.repeat)
                t_loop = best_of(lambda: loop_reference(y, P, 1), 1)
            rows.append((label, n, t_exact, t_ind, t_loop))
            bar.advance(task)

    print("| noise | N | asymloss exact (s) | asymloss independent (s) | per-sample loop (s) | loop / exact | loop / independent |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    def ratio(r: float) -> str:
        return f"{r:.1f}×" if r < 10 else f"{r:,.0f}×"

    for label, n, te, ti, tl in rows:
        inst = label.startswith("instance")
        print(f"| {label} | {n:,} | {te:.4f} | {'—' if inst else f'{ti:.4f}'} | {tl:.2f} | "
              f"{ratio(tl / te)} | {'—' if inst else ratio(tl / ti)} |")


if __name__ == "__main__":
    main()
