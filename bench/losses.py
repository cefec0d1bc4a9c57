"""Forward+backward time of every asymloss loss relative to ``F.cross_entropy``.

The baseline is measured in the same run, interleaved with each loss (CE, loss, CE, loss, ...). Each
pass is timed in process CPU time (``time.process_time``: robust on a shared machine, where wall
time mostly measures the other tenants) and the ratio of the fastest passes is reported::

    python bench/losses.py                      # all losses, 3 shapes, rich table
    python bench/losses.py --repeat 30 --markdown
    python bench/losses.py --losses agce,nce+agce --threads 2
    python bench/losses.py --compiled           # also each loss under torch.compile / compiled CE

Shapes: (N=4096, C=10), (N=1024, C=1000) and segmentation (N=4, C=19, 256x256).
"""
from __future__ import annotations

import argparse
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

SHAPES = {
    "N=4096,C=10": (4096, 10),
    "N=1024,C=1000": (1024, 1000),
    "seg 4x19x256x256": (4, 19, 256, 256),
}


#: extra rows: a loss with non-default settings, to show what the reference clamps/options cost
VARIANTS = {
    "rce (eps=0)": ("rce", {"eps": 0.0}),
    "nce+rce (eps=0)": ("nce+rce", {"eps": 0.0}),
    "nfl (detach=True)": ("nfl", {"detach": True}),
    "ngce (eps=0)": ("ngce", {"eps": 0.0}),
}


def _build(name):
    base, kw = VARIANTS.get(name, (name, {}))
    return asymloss.create_loss(base, **kw)


def _with_mechanics(loss, z, y):
    """``loss`` as a function of ``(z, y)`` with the inputs its training mechanics call for
    (docs/training-mechanics.md), or None where they do not apply to this shape: GJS gets
    ``num_views`` views (a (M, N, C) leaf; the ratio is per M views), ALDR-KL the positions of a
    training set of N samples, NLNL complementary labels."""
    need = loss.mechanics()
    if not need:
        return loss
    if z.dim() != 2 and ("views" in need or "index" in need):
        return None
    kw = {}
    if "complementary" in need:
        kw["complementary"] = (y + 1) % z.shape[1]
        loss.bind_training_set(y.flatten(), z.shape[1])
    if "index" in need:
        kw["index"] = torch.arange(z.shape[0])
        loss.bind_training_set(y, z.shape[1])
    if "views" in need:
        views = torch.stack([z.detach() * (1 + 0.1 * i) for i in range(loss.num_views)]).requires_grad_(True)

        def fn(_z, _y):
            views.grad = None
            return loss(views, _y)
        return fn
    return lambda _z, _y: loss(_z, _y, **kw)


def _fmt(r: float) -> str:
    return "n/a" if r != r else f"{r:.2f}"


def _step(fn, z, y):
    z.grad = None
    fn(z, y).backward()


def _time(fn, z, y, warmup: int = 2) -> float:
    for _ in range(warmup):
        _step(fn, z, y)
    t = time.process_time()
    _step(fn, z, y)
    return time.process_time() - t


def bench(names, repeat: int, progress: bool = True, compiled: bool = False):
    """Return {shape: {name: (ratio, loss_ms, ce_ms[, compiled ratio])}} from the minimum CPU time
    of ``repeat`` passes (``compiled``: the loss under ``torch.compile`` against compiled CE)."""
    results = {}
    g = torch.Generator().manual_seed(0)
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
    with Progress(*cols, disable=not progress, transient=True) as bar:
        task = bar.add_task("benchmarking", total=len(SHAPES) * len(names), rate="")
        for label, shape in SHAPES.items():
            z = (torch.randn(shape, generator=g) * 3).requires_grad_(True)
            y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
            results[label] = {}
            for name in names:
                bar.update(task, description=f"{label} {name}")
                loss = _with_mechanics(_build(name), z, y)
                if loss is None:                      # a mechanic that does not apply to this shape
                    results[label][name] = (float("nan"), float("nan"), float("nan"), float("nan"))
                    bar.update(task, advance=1)
                    continue
                ce_t, l_t = [], []
                _time(F.cross_entropy, z, y)
                _time(loss, z, y)
                for _ in range(repeat):
                    ce_t.append(_time(F.cross_entropy, z, y, warmup=0))
                    l_t.append(_time(loss, z, y, warmup=0))
                ce_m, l_m = min(ce_t), min(l_t)
                results[label][name] = (l_m / ce_m, l_m * 1e3, ce_m * 1e3)
                if compiled:
                    torch._dynamo.reset()         # a fresh cache per loss: no recompile limit
                    ce_c = torch.compile(F.cross_entropy)
                    _time(ce_c, z, y)
                    loss_c = torch.compile(loss)
                    _time(loss_c, z, y)
                    cc = [(_time(ce_c, z, y, warmup=0), _time(loss_c, z, y, warmup=0)) for _ in range(repeat)]
                    results[label][name] += (min(t for _, t in cc) / min(t for t, _ in cc),)
                done = bar.tasks[0].completed + 1
                bar.update(task, advance=1, rate=f"{done / max(bar.tasks[0].elapsed or 1e-9, 1e-9):.2f} losses/s")
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="timed forward+backward passes per loss and shape (the fastest counts)")
    ap.add_argument("--losses", default="all", help="comma-separated loss names (default: every registered loss)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    ap.add_argument("--no-variants", action="store_true", help="skip the extra rows (rce eps=0, nfl detach=True, ...)")
    ap.add_argument("--compiled", action="store_true",
                    help="also time each loss under torch.compile against compiled F.cross_entropy")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1; got {args.repeat}")
    if args.threads < 1:
        ap.error(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    names = asymloss.list_losses() if args.losses == "all" else [
        asymloss.losses.registry.resolve_name(n) for n in args.losses.split(",")]
    if args.losses == "all" and not args.no_variants:
        names += list(VARIANTS)
    res = bench(names, args.repeat, compiled=args.compiled)
    labels = list(SHAPES)
    ce_ms = {lab: min(v[2] for v in res[lab].values() if v[2] == v[2]) for lab in labels}
    title = (f"forward+backward CPU time / F.cross_entropy (fastest of {args.repeat}, "
             f"torch {torch.__version__}, {torch.get_num_threads()} thread(s))")
    if args.markdown:
        print(f"{title}\n")
        heads = [h for lab in labels for h in ((lab, f"{lab} compiled") if args.compiled else (lab,))]
        print("| loss | " + " | ".join(heads) + " |")
        print("|---|" + "---:|" * len(heads))
        print("| F.cross_entropy (ms) | " + " | ".join(
            f"{ce_ms[lab]:.2f} ms" + (" | " if args.compiled else "") for lab in labels).replace("|  |", "| |")
            + " |")
        for n in names:
            cells = [c for lab in labels for c in ((_fmt(res[lab][n][0]), _fmt(res[lab][n][3]))
                                                   if args.compiled else (_fmt(res[lab][n][0]),))]
            print(f"| {n} | " + " | ".join(cells) + " |")
    else:
        table = Table(title=title)
        table.add_column("loss")
        for lab in labels:
            table.add_column(lab, justify="right")
        table.add_row("F.cross_entropy", *[f"{ce_ms[lab]:.2f} ms" for lab in labels])
        for n in names:
            cells = []
            for lab in labels:
                r = res[lab][n][0]
                cells.append(f"[red]{r:.2f}[/]" if r > 2 else _fmt(r))
            table.add_row(n, *cells)
        Console().print(table)
    worst = max((res[lab][n][0], n, lab) for lab in labels for n in names if res[lab][n][0] == res[lab][n][0])
    print(f"\nslowest ratio: {worst[1]} at {worst[2]}: {worst[0]:.2f}x cross-entropy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
