"""The fused loss paths against the plain composite formula, eager and compiled, in one run.

For each loss that goes through a hand-fused autograd Function of ``asymloss.losses._core``
(``clamped_off_target``, ``square_mass``, ``log_prob_sum``, ``row_sum``), four implementations are
timed forward+backward, interleaved with ``F.cross_entropy`` (eager and compiled), in process CPU
time, fastest of ``--repeat`` passes::

    composite eager     the formula written with plain torch ops, autograd's backward
    composite compiled  the same under torch.compile (inductor)
    fused eager         asymloss's loss (the fused Function)
    fused compiled      asymloss's loss under torch.compile

Ratios are against ``F.cross_entropy`` eager (the first four columns) and compiled (the last
two). The decision rule (docs/losses.md, "Compiler, transforms and higher-order gradients"): a
fused Function stays only where it beats the composite formula in eager mode by more than 10%.

    python bench/fused.py                    # every fused loss, 3 shapes
    python bench/fused.py --losses rce,nce --shapes 0 --repeat 5
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import asymloss  # noqa: E402

SHAPES = [(4096, 10), (1024, 1000), (4, 19, 256, 256)]
A = -math.log(1e-4)
EPS = 1e-7


def _parts(z, y):
    logp = torch.log_softmax(z, 1)
    p = logp.exp()
    idx = y.unsqueeze(1)
    return logp, p, idx, logp.gather(1, idx).squeeze(1)


def c_rce(z, y):
    _, p, idx, _ = _parts(z, y)
    return (A * p.clamp_min(EPS).scatter(1, idx, 0.0).sum(1)).mean()


def c_nrce(z, y):
    _, p, idx, _ = _parts(z, y)
    v = p.clamp_min(EPS)
    off = v.scatter(1, idx, 0.0).sum(1)
    return (off / ((z.shape[1] - 1) * v.sum(1))).mean()


def c_sce(z, y, alpha=0.1, beta=1.0):
    _, p, idx, lpy = _parts(z, y)
    return (-alpha * lpy + beta * A * p.clamp_min(EPS).scatter(1, idx, 0.0).sum(1)).mean()


def c_nce(z, y):
    logp, _, _, lpy = _parts(z, y)
    return (lpy / logp.sum(1)).mean()


def c_nce_rce(z, y):
    logp, p, idx, lpy = _parts(z, y)
    return (lpy / logp.sum(1) + A * p.clamp_min(EPS).scatter(1, idx, 0.0).sum(1)).mean()


def c_amse(z, y, a=30.0):
    _, p, _, _ = _parts(z, y)
    p_y = p.gather(1, y.unsqueeze(1)).squeeze(1)
    return (((p * p).sum(1) - 2 * a * p_y + a * a) / z.shape[1]).mean()


def c_jal_ce(z, y, a=30.0):
    logp, p, idx, lpy = _parts(z, y)
    p_y = lpy.exp()
    return (lpy / logp.sum(1) + ((p * p).sum(1) - 2 * a * p_y + a * a) / z.shape[1]).mean()


def c_ngce(z, y, q=0.7):
    _, p, idx, _ = _parts(z, y)
    v = p.clamp_min(EPS) ** q
    return ((1 - v.gather(1, idx).squeeze(1)) / (z.shape[1] - v.sum(1))).mean()


def c_nfl(z, y, gamma=0.5):
    logp, p, idx, _ = _parts(z, y)
    fl = -((1 - p).clamp_min(1e-38) ** gamma) * logp
    return (fl.gather(1, idx).squeeze(1) / fl.sum(1)).mean()


def c_nnce(z, y, lmin=math.log(1e-7)):
    logp, _, idx, _ = _parts(z, y)
    v = logp.clamp_min(lmin) - lmin
    return (1 - v.gather(1, idx).squeeze(1) / v.sum(1)).mean()


def c_anl_ce(z, y, alpha=5.0, beta=5.0, lmin=math.log(1e-7)):
    logp, _, idx, lpy = _parts(z, y)
    v = logp.clamp_min(lmin) - lmin
    return (alpha * lpy / logp.sum(1) + beta * (1 - v.gather(1, idx).squeeze(1) / v.sum(1))).mean()


#: loss name -> (composite formula, asymloss loss with the same hyperparameters)
CASES = {
    "rce": (c_rce, lambda: asymloss.create_loss("rce")),
    "nrce": (c_nrce, lambda: asymloss.create_loss("nrce")),
    "sce": (c_sce, lambda: asymloss.create_loss("sce", alpha=0.1, beta=1.0)),
    "nce": (c_nce, lambda: asymloss.create_loss("nce")),
    "nce+rce": (c_nce_rce, lambda: asymloss.create_loss("nce+rce", alpha=1.0, beta=1.0)),
    "amse": (c_amse, lambda: asymloss.create_loss("amse", a=30.0)),
    "jal_ce": (c_jal_ce, lambda: asymloss.create_loss("jal_ce", alpha=1.0, beta=1.0, a=30.0)),
    "ngce": (c_ngce, lambda: asymloss.create_loss("ngce", q=0.7)),
    "nfl": (c_nfl, lambda: asymloss.create_loss("nfl", gamma=0.5)),
    "nnce": (c_nnce, lambda: asymloss.create_loss("nnce")),
    "anl_ce": (c_anl_ce, lambda: asymloss.create_loss("anl_ce", alpha=5.0, beta=5.0)),
}


def _time(fn, z, y) -> float:
    z.grad = None
    t = time.process_time()
    fn(z, y).backward()
    return time.process_time() - t


def measure(fns: dict, z, y, repeat: int) -> dict:
    """Fastest forward+backward CPU time of each function, interleaved."""
    for fn in fns.values():          # warm-up (and compilation)
        for _ in range(2):
            _time(fn, z, y)
    best = {k: math.inf for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            best[k] = min(best[k], _time(fn, z, y))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--losses", default="all", help="comma-separated names (default: every fused loss)")
    ap.add_argument("--shapes", default="0,1,2", help="indices into the shapes (4096x10, 1024x1000, seg)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.threads < 1:
        ap.error("--repeat and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    names = list(CASES) if args.losses == "all" else args.losses.split(",")
    for n in names:
        if n not in CASES:
            ap.error(f"unknown fused loss {n!r}; choose from {', '.join(CASES)}")
    shapes = [SHAPES[int(i)] for i in args.shapes.split(",")]
    g = torch.Generator().manual_seed(0)
    rows = []
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*cols, transient=True) as bar:
        task = bar.add_task("benchmarking", total=len(shapes) * len(names))
        for shape in shapes:
            z = (torch.randn(shape, generator=g) * 3).requires_grad_(True)
            y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
            for n in names:
                bar.update(task, description=f"{'x'.join(map(str, shape))} {n}")
                torch._dynamo.reset()            # a fresh cache per loss: no recompile limit
                ce_c = torch.compile(F.cross_entropy)
                comp, make = CASES[n]
                fused = make()
                t = measure({"ce": F.cross_entropy, "ce_c": ce_c, "comp": comp, "comp_c": torch.compile(comp),
                             "fused": fused, "fused_c": torch.compile(fused)}, z, y, args.repeat)
                rows.append(("x".join(map(str, shape)), n, t))
                bar.advance(task)
    table = Table(title=f"fused vs composite: forward+backward CPU time ratios (fastest of {args.repeat}, "
                        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s))")
    for c in ("shape", "loss", "comp/ce", "fused/ce", "comp/fused", "comp_c/ce_c", "fused_c/ce_c"):
        table.add_column(c, justify="right" if "/" in c else "left")
    for shape, n, t in rows:
        table.add_row(shape, n, f"{t['comp'] / t['ce']:.2f}", f"{t['fused'] / t['ce']:.2f}",
                      f"{t['comp'] / t['fused']:.2f}", f"{t['comp_c'] / t['ce_c']:.2f}",
                      f"{t['fused_c'] / t['ce_c']:.2f}")
    Console().print(table)
    keep = [(s, n) for s, n, t in rows if t["comp"] > 1.1 * t["fused"]]
    print(f"\nfused beats the eager composite by >10% in {len(keep)} of {len(rows)} (shape, loss) cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
