"""Generate the README's outputs: the demo table, its spread across CPUs, the digits sweep and the
MNIST sweep, each with the machine and thread count that produced it.

    python bench/readme.py demo              # `asymloss demo`'s table (the README's main job)
    python bench/readme.py spread            # how much the demo moves between CPUs (emulated)
    python bench/readme.py digits            # the digits sweep: table (and, with --figures, its plots)
    python bench/readme.py mnist-mini        # the 32-run MNIST sweep into results/mnist-mini (about 20 minutes
                                             # on 2 cores; remove that store first to recompute it)
    python bench/readme.py later-losses      # grid later-losses-mnist on a subset (under an hour on 2 cores)
    python bench/readme.py paper-mnist       # the two full paper-mnist runs (CE, AGCE; about 45 minutes on
                                             # 2 cores; remove results/paper-mnist/<run> to recompute it)
    python bench/readme.py all               # all of the above

``spread`` runs the demo (every loss × noise × seed, one thread per run) once per *CPU flavour*: this
CPU as it is, and this CPU made to take the code paths of older ones — PyTorch's kernels limited
to AVX2 or to no AVX (``ATEN_CPU_CAPABILITY``), and MKL and oneDNN to the same instruction sets
(``MKL_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``). Different vector widths round differently,
as different CPUs do, and 40 epochs of SGD on noisy labels amplify that. It reports, per table
cell, how far a single seed and the mean over seeds move between the flavours, and whether the
demo's message holds in each: under both noises an asymmetric/normalised loss (NCE+RCE or
NCE+AGCE) has the best mean, ahead of CE.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets"

FLAVOURS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "no-avx": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
ROBUST = ("nce+rce", "nce+agce")


def _env(extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(extra or {})
    return env


def machine() -> str:
    """CPU model, cores, PyTorch version and its CPU capability."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {cores} cores available, torch {torch.__version__} "
            f"(CPU capability {torch.backends.cpu.get_cpu_capability()}), Python {platform.python_version()}")


def _cli(*args: str, env: dict | None = None) -> str:
    res = subprocess.run([sys.executable, "-m", "asymloss", *args], env=_env({"COLUMNS": "100", **(env or {})}),
                         capture_output=True, text=True, cwd=REPO)
    if res.returncode != 0:
        raise SystemExit(f"asymloss {' '.join(args)} failed:\n{res.stdout}{res.stderr}")
    return res.stdout


def demo() -> None:
    print(f"machine: {machine()}; one thread per run")
    print(_cli("demo"))


_SPREAD_CHILD = """
import json, sys
from asymloss.train.demo import demo_accuracies
res = demo_accuracies(seeds=(0, 1, 2))
json.dump({f"{k[0]}|{k[1]}": v for k, v in res.items()}, sys.stdout)
"""


def _demo_values(env: dict) -> dict:
    res = subprocess.run([sys.executable, "-c", _SPREAD_CHILD], env=_env(env), capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return {tuple(k.split("|")): v for k, v in json.loads(res.stdout).items()}


def _message_holds(values: dict, pick) -> bool:
    for nz in ("symmetric:0.6", "asymmetric:0.4"):
        cell = {loss: pick(v) for (loss, n), v in values.items() if n == nz}
        best = max(cell, key=cell.get)
        if best not in ROBUST or cell[best] <= cell["ce"]:
            return False
    return True


def spread() -> dict:
    print(f"machine: {machine()}; one thread per run")
    runs = {}
    for name, env in FLAVOURS.items():
        t0 = time.perf_counter()
        runs[name] = _demo_values(env)
        print(f"  {name}: {time.perf_counter() - t0:.0f} s")
    keys = list(runs["native"])
    single = {k: [100 * runs[f][k][0] for f in runs] for k in keys}
    mean = {k: [100 * statistics.fmean(runs[f][k]) for f in runs] for k in keys}
    print("\n| loss | noise | seed 0: " + " / ".join(runs) + " | spread | mean of seeds 0–2: " + " / ".join(runs)
          + " | spread |")
    print("|---|---|---|---:|---|---:|")
    for k in keys:
        s, m = single[k], mean[k]
        print(f"| {k[0]} | {k[1]} | {' / '.join(f'{v:.1f}' for v in s)} | {max(s) - min(s):.1f} | "
              f"{' / '.join(f'{v:.1f}' for v in m)} | {max(m) - min(m):.1f} |")
    worst_single = max(max(v) - min(v) for v in single.values())
    worst_mean = max(max(v) - min(v) for v in mean.values())
    holds_single = {f: _message_holds(runs[f], lambda v: v[0]) for f in runs}
    holds_mean = {f: _message_holds(runs[f], statistics.fmean) for f in runs}
    print(f"\nlargest move of a cell between flavours: {worst_single:.1f} points for one seed, "
          f"{worst_mean:.1f} for the mean of three")
    print(f"message holds (best under both noises is NCE+RCE or NCE+AGCE, ahead of CE): one seed {holds_single}, "
          f"mean of three {holds_mean}")
    return {"single": worst_single, "mean": worst_mean, "holds_single": holds_single, "holds_mean": holds_mean}


def digits(figures: bool, flavour: str = "native") -> None:
    env = FLAVOURS[flavour]
    print(f"machine: {machine()}; 2 workers × 1 thread; CPU flavour {flavour}")
    with tempfile.TemporaryDirectory(prefix="asymloss-readme-") as tmp:
        store = Path(tmp) / "digits-sweep"
        print(_cli("sweep", "--grid", str(REPO / "examples" / "digits-grid.yaml"), "--out", str(store),
                   "--max-workers", "2", "--threads-per-run", "1", "--no-progress", env=env))
        print(_cli("table", str(store)))
        if figures:
            out = Path(tmp) / "fig"
            print(_cli("plot", str(store), "--out", str(out)))
            target = REPO / "docs" / "img" / "sweep-digits-ratio.png"
            target.write_bytes((out / "ratio.png").read_bytes())
            print(f"wrote {target.relative_to(REPO)}")


#: the committed 32-run MNIST sweep (resumable; remove it first to recompute every run)
MNIST_MINI_STORE = REPO / "results" / "mnist-mini"


def mnist_mini(data_dir: str, figures: bool) -> None:
    print(f"machine: {machine()}; 2 workers × 1 thread")
    store = MNIST_MINI_STORE
    print(_cli("sweep", "--protocol", "paper-mnist", "--losses", "ce,gce,sce,nce+rce,agce,aul,ael,nce+agce",
               "--noise", "clean,symmetric:0.4,symmetric:0.8,asymmetric:0.4", "--seeds", "0", "--epochs", "15",
               "--subset", "10000", "--data-dir", data_dir, "--out", str(store), "--max-workers", "2",
               "--threads-per-run", "1", "--no-progress"))
    print(_cli("table", str(store)))
    print(_cli("table", str(store), "--metric", "best"))
    if figures:
        _figures(store, "mnist-mini")


def _figures(store: Path, prefix: str) -> None:
    """The sweep's curves and ratio figures, as docs/img/<prefix>-curves.png and -ratio.png."""
    with tempfile.TemporaryDirectory(prefix="asymloss-readme-") as tmp:
        out = Path(tmp) / "fig"
        print(_cli("plot", str(store), "--out", str(out)))
        for name in ("curves", "ratio"):
            target = REPO / "docs" / "img" / f"{prefix}-{name}.png"
            target.write_bytes((out / f"{name}.png").read_bytes())
            print(f"wrote {target.relative_to(REPO)}")


#: the README's two full paper-mnist runs (CE and AGCE, symmetric 0.8, seed 0): 50 epochs on all of
#: MNIST, about 40 minutes each on one thread; remove a run's directory to recompute it
PAPER_MNIST = {"ce": "CE", "agce": "AGCE (a=4, q=0.2)"}


def paper_mnist(data_dir: str) -> None:
    print(f"machine: {machine()}; the two runs at once, 1 thread each")
    runs = {}
    for loss in PAPER_MNIST:
        out = REPO / "results" / "paper-mnist" / f"{loss}-symmetric0.8-seed0"
        args = ["train", "--protocol", "paper-mnist", "--loss", loss, "--noise", "symmetric:0.8", "--seed", "0",
                "--data-dir", data_dir, "--out", str(out.relative_to(REPO))]
        runs[loss] = (out, subprocess.Popen([sys.executable, "-m", "asymloss", *args], cwd=REPO,
                                            env=_env({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for loss, (out, proc) in runs.items():
        if proc.wait() != 0:
            raise SystemExit(f"the {loss} run failed:\n{proc.stderr.read()}")
    print(paper_mnist_table({PAPER_MNIST[k]: out / "record.json" for k, (out, _) in runs.items()}))


def paper_mnist_table(records: dict) -> str:
    """The README's table of the full paper-mnist runs, from their records."""
    lines = ["| loss | last-epoch test accuracy | best (epoch) | test accuracy at epochs 1, 6, 11, …, 46 |",
             "|---|---:|---:|---|"]
    notes, rate = [], None
    for label, path in records.items():
        rec = json.loads(Path(path).read_text())
        rate = rec["noise"]["rate"]                      # the same noise draw for every run
        fin, eps = rec["final"], rec["epochs"]
        every = ", ".join(f"{100 * e['test_acc']:.1f}" for e in eps[::5])
        lines.append(f"| {label} | **{100 * fin['last_test_acc']:.2f}%** | {100 * fin['best_test_acc']:.2f}% "
                     f"({fin['best_epoch']}) | {every} |")
        notes.append(f"{label}: train accuracy against the noisy labels at the end "
                     f"{100 * eps[-1]['train_acc_noisy']:.1f}%, {fin['wall_time_s'] / 60:.0f} min")
    return "\n".join(lines + ["", f"realised noise rate {100 * rate:.2f}%"] + notes)


#: the committed sweep of the later losses (resumable: an interrupted run of this target continues it)
LATER_STORE = REPO / "results" / "later-losses-mnist"


def later_losses(data_dir: str, figures: bool, workers: int = 2) -> None:
    print(f"machine: {machine()}; {workers} workers × 1 thread")
    print(_cli("sweep", "--grid", "later-losses-mnist", "--epochs", "10", "--subset", "5000",
               "--data-dir", data_dir, "--out", str(LATER_STORE), "--max-workers", str(workers),
               "--threads-per-run", "1", "--no-progress"))
    print(_cli("table", str(LATER_STORE)))
    if figures:
        _figures(LATER_STORE, "later-losses")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("demo", "spread", "digits", "mnist-mini", "later-losses", "paper-mnist", "all"))
    ap.add_argument("--workers", type=int, default=2, help="later-losses: runs at a time (one thread each).")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA), help="Where mnist.npz is (mnist-mini).")
    ap.add_argument("--figures", action="store_true", help="Also write the README's figures into docs/img/.")
    ap.add_argument("--flavour", choices=sorted(FLAVOURS), default="native",
                    help="digits: run the sweep as another CPU would (see spread).")
    a = ap.parse_args(argv)
    # the commands run in the repository; a data directory beside it is recorded relative to it,
    # so that committed run records name no path of the machine that produced them
    a.data_dir = os.path.relpath(os.path.abspath(a.data_dir), REPO)
    if a.what in ("demo", "all"):
        demo()
    if a.what in ("spread", "all"):
        spread()
    if a.what in ("digits", "all"):
        digits(a.figures, a.flavour)
    if a.what in ("mnist-mini", "all"):
        mnist_mini(a.data_dir, a.figures)
    if a.what in ("later-losses", "all"):
        later_losses(a.data_dir, a.figures, a.workers)
    if a.what in ("paper-mnist", "all"):
        paper_mnist(a.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
