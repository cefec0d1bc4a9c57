"""Where ``log p_y``'s two forward paths cross: ``logsumexp`` against ``log_softmax``.

Every ℓ(p_y) loss (CE, GCE, AGCE, AUL, AEL, ...) with fewer than 64 classes computes ``log p_y``
in one autograd Function whose forward is either one ``logsumexp`` reduction or ``log_softmax``'s
fused kernel followed by a gather; ``LSE_MAX_CLASSES`` (in ``asymloss/losses/_core.py``) picks
the first for fewer classes than that. This script times forward + backward of the mean of
``-log p_y`` through each path, interleaved in the same run, in process CPU time (fastest of
``--repeat`` passes), and prints each against ``F.cross_entropy`` (the baseline)::

    python bench/logprob.py                 # one thread
    python bench/logprob.py --threads 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from asymloss.losses import _core  # noqa: E402  (the private path is what is measured)
from regression import _time  # noqa: E402  (bench/: forward + backward in process CPU time)

SHAPES = [(1024, 10), (4096, 10), (16384, 10), (4096, 19), (16384, 19), (32768, 10), (65536, 10),
          (262144, 19), (1024, 50), (8192, 50), (4, 19, 64, 64), (4, 19, 128, 128), (4, 19, 256, 256)]


def _path(threshold: int):
    def f(z, y):
        old = _core.LSE_MAX_CLASSES
        _core.LSE_MAX_CLASSES = threshold
        try:
            return -_core._LogProbY.apply(z, y.unsqueeze(1))[0].mean()
        finally:
            _core.LSE_MAX_CLASSES = old
    return f


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.threads < 1:
        ap.error("--repeat and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    paths = {"F.cross_entropy": F.cross_entropy, "logsumexp": _path(1 << 62), "log_softmax": _path(0)}
    g = torch.Generator().manual_seed(0)
    table = Table(title=f"-log p_y, forward + backward, {args.threads} thread(s); "
                        f"LSE_MAX_CLASSES = {_core.LSE_MAX_CLASSES}")
    for col in ("shape", "C", "logsumexp / CE", "log_softmax / CE", "chosen"):
        table.add_column(col, justify="right")
    for shape in SHAPES:
        z = (torch.randn(shape, generator=g) * 3).requires_grad_(True)
        y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(args.repeat):
            for name, fn in paths.items():
                best[name] = min(best[name], _time(fn, z, y))
        base = best["F.cross_entropy"]
        chosen = "logsumexp" if shape[1] < _core.LSE_MAX_CLASSES else "log_softmax"
        table.add_row("×".join(map(str, shape)), str(shape[1]), f"{best['logsumexp'] / base:.2f}",
                      f"{best['log_softmax'] / base:.2f}", chosen)
    Console(width=80).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
