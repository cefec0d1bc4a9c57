"""Eager forward+backward time of every loss now against the same loss at an earlier git revision.

The earlier ``asymloss.losses`` is extracted from git (``git archive``) into a temporary folder
under another package name and imported beside the current one; both are timed in the same run,
interleaved (the order alternating), in process CPU time (fastest of ``--repeat`` passes; with
``--rounds R`` the median of R such ratios), so the ratio new/old does not depend on the machine's
load. Against ``HEAD`` with a clean tree it compares the code with itself: that run's spread is the
noise floor of the cells (on a shared 2-core machine, ±10% at the larger shapes)::

    python bench/regression.py 6b03648                 # every loss of both, 3 shapes
    python bench/regression.py 6b03648 --losses agce,nce --repeat 20
    python bench/regression.py 6b03648 --repeat 9 --rounds 3
    python bench/regression.py HEAD --repeat 9 --rounds 3   # the noise floor (A/A)
    python bench/regression.py 6b03648 --repeat 9 --rounds 3 --steady-malloc

At the larger shapes the same kernel can take twice as long in one run as in the other: glibc
hands a freed multi-MB buffer back to the system and the next one is faulted in page by page,
depending on how many large temporaries each version keeps alive. ``--steady-malloc`` restarts
the script with glibc's mmap and trim thresholds raised (``GLIBC_TUNABLES``), so that freed
memory is reused and the ratio measures the computation.
"""
from __future__ import annotations

import argparse
import importlib
import io
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import asymloss  # noqa: E402

#: glibc tunables of ``--steady-malloc``: freed buffers stay in the heap (1 GiB mmap, 4 GiB trim)
STEADY = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"
SHAPES = {"4096x10": (4096, 10), "1024x1000": (1024, 1000), "seg": (4, 19, 256, 256)}


def load_revision(rev: str, where: Path):
    """Import ``src/asymloss`` of ``rev`` as package ``asymloss_rev`` (relative imports only)."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src/asymloss"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(where, filter="data")
    (where / "src" / "asymloss").rename(where / "asymloss_rev")
    sys.path.insert(0, str(where))
    return importlib.import_module("asymloss_rev")


def _time(fn, z, y) -> float:
    z.grad = None
    t = time.process_time()
    fn(z, y).backward()
    return time.process_time() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev", help="the git revision to compare with (e.g. a commit or a tag)")
    ap.add_argument("--repeat", type=int, default=15, help="timed passes per round (the fastest counts)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per cell; the median ratio is shown")
    ap.add_argument("--losses", default="all")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steady-malloc", action="store_true",
                    help="rerun with glibc's mmap/trim thresholds raised (no page-fault noise)")
    args = ap.parse_args(argv)
    if args.steady_malloc and STEADY not in os.environ.get("GLIBC_TUNABLES", ""):
        env = dict(os.environ, GLIBC_TUNABLES=STEADY)
        os.execve(sys.executable, [sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)], env)
    if min(args.repeat, args.rounds, args.threads) < 1:
        ap.error("--repeat, --rounds and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        old = load_revision(args.rev, Path(tmp))
        common = sorted(set(asymloss.list_losses()) & set(old.list_losses()))
        names = common if args.losses == "all" else args.losses.split(",")
        g = torch.Generator().manual_seed(0)
        ratio = {}
        cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*cols, transient=True) as bar:
            task = bar.add_task("timing", total=len(SHAPES) * len(names))
            for label, shape in SHAPES.items():
                z = (torch.randn(shape, generator=g) * 3).requires_grad_(True)
                y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
                for n in names:
                    bar.update(task, description=f"{label} {n}")
                    new_fn, old_fn = asymloss.create_loss(n), old.create_loss(n)
                    for fn in (new_fn, old_fn, new_fn, old_fn):
                        _time(fn, z, y)
                    ratios = []
                    for _ in range(args.rounds):
                        best = {new_fn: math.inf, old_fn: math.inf}
                        for i in range(args.repeat):   # the order alternates: no first-mover bias
                            for fn in ((new_fn, old_fn) if i % 2 == 0 else (old_fn, new_fn)):
                                best[fn] = min(best[fn], _time(fn, z, y))
                        ratios.append(best[new_fn] / best[old_fn])
                    ratio[(label, n)] = statistics.median(ratios)
                    bar.advance(task)
    rounds = f", median of {args.rounds} rounds" if args.rounds > 1 else ""
    table = Table(title=f"eager fwd+bwd time, now / {args.rev} (fastest of {args.repeat}{rounds})")
    table.add_column("loss")
    for label in SHAPES:
        table.add_column(label, justify="right")
    for n in names:
        cells = [ratio[(lab, n)] for lab in SHAPES]
        table.add_row(n, *[f"[red]{c:.2f}[/]" if c > 1.1 else f"{c:.2f}" for c in cells])
    Console().print(table)
    worst = max((r, n, lab) for (lab, n), r in ratio.items())
    print(f"\nslowest: {worst[1]} at {worst[2]}: {worst[0]:.2f}x {args.rev}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
