"""One prepared GPU check: CUDA tests, the pack benchmark, then as many full-length paper-cifar10 runs
as fit in the time left (the symmetric-0.8 column of the paper's table first), packed.

Run it through ``bench/gpu_check.sh [OUT_DIR]`` (which installs the project without touching a CUDA
torch) or directly::

    PYTHONPATH=src python bench/gpu_check.py --out results/gpu/h200 --budget 450
    PYTHONPATH=src python bench/gpu_check.py --out dry-run --dry-run      # end to end on a CPU, tiny

Everything it writes goes under ``--out`` (default ``$OUT``), small enough to commit under
``results/gpu/``: ``env.json``, ``tests.txt``, ``bench.txt``/``bench.json`` (aggregate img/s and
peak memory per pack size, measured here), ``plan.json`` (how the runs were sized to the time),
``store/`` (the sweep's results store: each run's ``record.json``, ``config.json``, and
``results.sqlite``; checkpoints are deleted at the end), ``table.md`` and ``summary.json``.
The check measures its own speed first and sizes the work to ``--budget`` seconds of wall time
(default 450: under 8 minutes with the install). Runs left unfinished at the deadline keep their
records; a later invocation on the same ``--out`` resumes them only if their checkpoints are kept
(``--keep-checkpoints``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
T0 = time.monotonic()


def _elapsed() -> float:
    return time.monotonic() - T0


def _log(msg: str) -> None:
    print(f"[gpu_check {_elapsed():6.1f}s] {msg}", flush=True)


def _env() -> dict:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(cmd: list[str], timeout: float, log: Path, env=None) -> tuple[int, float]:
    """Run ``cmd`` (its own process group) with a timeout; output appended to ``log``."""
    t = time.monotonic()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env or _env(),
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = 124
            f.write(f"\n[gpu_check] timed out after {timeout:.0f} s\n")
    return rc, time.monotonic() - t


def find_data_dir(given: str | None) -> str | None:
    """The first directory with CIFAR-10 in a form asymloss reads (the offline copies, or originals)."""
    cands = [given, os.environ.get("ASYMLOSS_DATA"), str(REPO.parent / "shared" / "datasets"),
             str(REPO / "shared" / "datasets"), str(Path.home() / ".cache" / "asymloss")]
    for c in cands:
        if not c:
            continue
        p = Path(c)
        if (p / "cifar10_jpeg.npz").is_file() or (p / "cifar10").is_dir() or (p / "cifar-10-batches-py").is_dir() \
                or (p / "cifar-10-python.tar.gz").is_file():
            return str(p)
    return None


def environment(out: Path, device: str) -> dict:
    import torch

    info = {
        "python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(), "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_memory_gib": (torch.cuda.get_device_properties(0).total_memory / 2**30) if torch.cuda.is_available() else None,
        "cpus": os.cpu_count(),
    }
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                     timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git"] = None
    if shutil.which("nvidia-smi"):
        try:
            info["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                                 "--format=csv,noheader"], capture_output=True, text=True,
                                                timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    (out / "env.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def candidate_runs(args) -> list:
    """Full-length paper-cifar10 runs in priority order: the symmetric-0.8 column (the paper's 13
    losses, seed 0) first, then the other noise columns of the paper's table."""
    from asymloss.sweep import PAPER_NOISES, PAPER_TABLE_LOSSES, build_grid, expand_grid

    noises = ["symmetric:0.8"] + [n for n in PAPER_NOISES if n != "symmetric:0.8"]
    overrides = {"data_dir": args.data_dir, "amp": not args.fp32}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.subset:
        overrides["subset"] = args.subset
    if args.device == "cpu":
        overrides["device"] = "cpu"
    runs = []
    for noise in noises:
        grid = build_grid(protocol="paper-cifar10", losses=",".join(PAPER_TABLE_LOSSES), noise=noise, seeds="0",
                          overrides=overrides)
        runs += expand_grid(grid)
    return runs


def throughput_model(bench: dict) -> dict[int, float]:
    """Measured aggregate img/s of CIFAR-10 packs by R (from bench.json)."""
    packs = ((bench or {}).get("datasets", {}).get("cifar10") or {}).get("packs") or {}
    return {int(r): float(v["images_per_s"]) for r, v in packs.items() if v.get("images_per_s")}


def predict_rate(model: dict[int, float], r: int) -> float | None:
    """Aggregate img/s of a pack of ``r``: interpolated in log R between measured sizes; beyond the
    largest measured size, the largest one's rate (no extrapolated gains)."""
    if not model:
        return None
    rs = sorted(model)
    if r <= rs[0]:
        return model[rs[0]] * r / rs[0] if r < rs[0] else model[rs[0]]
    if r >= rs[-1]:
        return model[rs[-1]]
    for a, b in zip(rs, rs[1:]):
        if a <= r <= b:
            w = (math.log(r) - math.log(a)) / (math.log(b) - math.log(a))
            return model[a] * (1 - w) + model[b] * w
    return model[rs[-1]]


def plan(runs: list, model: dict[int, float], seconds: float, *, max_pack: int, overhead_s: float,
         train_size: int, test_size: int, safety: float = 0.8, per_run_epoch_s: float = 0.03) -> dict:
    """The largest number of runs (a prefix of ``runs``) predicted to finish in ``safety`` × ``seconds``
    (the benchmark's short epochs flatter a long run a little: the margin keeps the runs complete)."""
    best = {"runs": 0, "pack": 0, "predicted_s": 0.0}
    for n in range(1, len(runs) + 1):
        packs = math.ceil(n / max_pack)
        r = math.ceil(n / packs)
        rate = predict_rate(model, r)
        if not rate:
            break
        epochs = runs[0].config.epochs
        # training images, plus the per-epoch test evaluation (a forward only: about a third of a
        # step), plus each run's per-epoch record and checkpoint (written and fsynced)
        images = n * epochs * (train_size + test_size / 3.0)
        predicted = overhead_s * packs + images / rate + n * epochs * per_run_epoch_s
        if predicted <= safety * seconds:
            best = {"runs": n, "pack": r, "packs": packs, "predicted_s": predicted, "rate": rate}
    return best


def child_sweep(args) -> None:
    """Run the first ``args.n`` candidate runs as packs of ``args.pack`` (a subprocess, killed at the deadline)."""
    from asymloss.sweep import run_sweep

    runs = candidate_runs(args)[: args.n]
    summary = run_sweep(runs, args.store, pack=args.pack, max_workers=args.workers, progress=False)
    print(json.dumps({"completed": summary.completed, "failed": summary.failed, "seconds": summary.seconds,
                      "executor": summary.executor, "failed_ids": summary.failed_ids}), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT"), help="output folder (default $OUT)")
    p.add_argument("--budget", type=float, default=450.0, help="seconds of wall time for the whole check")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dry-run", action="store_true", help="CPU, a 300 s budget, a tiny benchmark and runs (1 epoch, 128 images): checks the pipeline end to end")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None, help="override the protocol's 120 epochs (not full-length then)")
    p.add_argument("--subset", type=int, default=None, help="train on a subset (not full-length then)")
    p.add_argument("--fp32", action="store_true", help="train in float32 (default: bf16 autocast, float32 losses)")
    p.add_argument("--max-pack", type=int, default=64, help="largest pack")
    p.add_argument("--keep-checkpoints", action="store_true")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--child-sweep", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--pack", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_sweep:
        child_sweep(args)
        return 0
    if args.dry_run:
        args.device = "cpu"
        args.budget = min(args.budget, 300.0)
        args.epochs = args.epochs or 1
        args.subset = args.subset or 128
    if not args.out:
        p.error("--out is required (or set $OUT)")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    deadline = args.budget
    summary: dict = {"budget_s": args.budget, "device": args.device, "dry_run": args.dry_run,
                     "full_length": not (args.epochs or args.subset), "steps": {}}

    def save() -> None:
        summary["elapsed_s"] = _elapsed()
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    # 1. environment
    try:
        info = environment(out, args.device)
    except Exception as e:  # torch missing: nothing else can run
        summary["error"] = f"environment: {type(e).__name__}: {e}"
        save()
        _log(summary["error"])
        return 2
    summary["gpu"] = info.get("gpu")
    if args.device == "cuda" and not info["cuda_available"]:
        summary["error"] = "no CUDA device visible to torch; use --dry-run (CPU) to check the pipeline"
        save()
        _log(summary["error"])
        return 2
    args.data_dir = find_data_dir(args.data_dir)
    summary["data_found"] = args.data_dir is not None
    _log(f"device {args.device} {info.get('gpu') or ''}; torch {info['torch']}; CIFAR-10 data: "
         f"{'found' if args.data_dir else 'NOT FOUND (runs will be skipped)'}")
    env = _env()

    # 2. the CUDA tests (the pack against single runs on the GPU, CUDA graphs, augmentation)
    if not args.skip_tests:
        t_budget = min(150.0, 0.25 * deadline)
        rc, secs = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_pack.py",
                         "tests/test_data_augment.py", "-k", "cuda", "-rs"], t_budget, out / "tests.txt", env)
        summary["steps"]["tests"] = {"rc": rc, "seconds": secs}
        _log(f"CUDA tests: rc={rc} in {secs:.0f} s (tests.txt)")
        if rc not in (0, 5):  # a failure: train the runs without CUDA graphs, to be safe
            env["ASYMLOSS_CUDA_GRAPHS"] = "0"
            summary["cuda_graphs"] = False
        save()

    # 3. the benchmark, short form: CIFAR-10 first (it sizes the runs), then MNIST
    left = deadline - _elapsed()
    b_budget = max(20.0, min(170.0, 0.35 * left))
    bench_cmd = [sys.executable, "bench/pack.py", "--device", args.device, "--datasets", "cifar10,mnist",
                 "--json", str(out / "bench.json"), "--budget", str(b_budget * 0.8), "--timeout", str(b_budget * 0.6)]
    if args.data_dir:
        bench_cmd += ["--data-dir", args.data_dir]
    if args.device == "cuda":
        bench_cmd += ["--runs", "1,4,16,64", "--max-runs", str(args.max_pack), "--images", "8192", "--epochs", "2",
                      "--workers", "4", "--threads", str(min(8, os.cpu_count() or 1)), "--layouts", "4,16"]
    else:
        bench_cmd += ["--runs", "1,2", "--images", "128", "--epochs", "2", "--threads", "1", "--workers", "1"]
        bench_cmd[bench_cmd.index("cifar10,mnist")] = "cifar10"
    if not args.fp32:
        bench_cmd.append("--amp")
    if not args.data_dir:
        bench_cmd[bench_cmd.index("cifar10,mnist")] = "mnist"
    rc, secs = _run(bench_cmd, b_budget, out / "bench.txt", env)
    summary["steps"]["bench"] = {"rc": rc, "seconds": secs}
    _log(f"benchmark: rc={rc} in {secs:.0f} s (bench.txt, bench.json)")
    bench = json.loads((out / "bench.json").read_text()) if (out / "bench.json").is_file() else {}
    save()

    # 4. size the runs to the time left, from the measured CIFAR-10 throughput
    if not args.data_dir:
        summary["runs"] = "skipped: no CIFAR-10 data found (give --data-dir or $ASYMLOSS_DATA)"
        _log(summary["runs"])
        save()
        return 0 if summary["steps"].get("tests", {}).get("rc", 0) in (0, 5) else 1
    runs = candidate_runs(args)
    model = throughput_model(bench)
    left = deadline - _elapsed() - 25.0  # the table and the summary at the end
    train_size = args.subset or 50000
    overhead = 45.0 if args.device == "cuda" else 20.0  # process start, data, CUDA init, graph capture
    decision = plan(runs, model, left, max_pack=args.max_pack, overhead_s=overhead, train_size=train_size,
                    test_size=10000)
    column = plan(runs[:13], model, float("inf"), max_pack=args.max_pack, overhead_s=overhead,
                  train_size=train_size, test_size=10000)
    decision.update({"seconds_left": left, "measured_img_per_s": model, "candidates": len(runs),
                     "full_column_predicted_s": column.get("predicted_s"), "mode": "full-length"})
    if not decision["runs"] and model and left > 60:
        # not even one full-length run fits: train the symmetric-0.8 column packed for the time
        # there is (its records show the epochs done and the real per-epoch time of the pack)
        decision.update({"runs": min(13, len(runs)), "pack": min(13, len(runs), args.max_pack), "packs": 1,
                         "predicted_s": column.get("predicted_s"),
                         "mode": "time-limited (runs stop unfinished at the deadline)"})
    (out / "plan.json").write_text(json.dumps(decision, indent=2) + "\n")
    summary["plan"] = decision
    save()
    if not decision["runs"]:
        _log(f"no run fits in {left:.0f} s at the measured speed {model} (plan.json)")
    else:
        _log(f"{decision['runs']} runs in packs of {decision['pack']} ({decision['mode']}), predicted "
             f"{decision['predicted_s']:.0f} s of {left:.0f} s left; the whole symmetric-0.8 column would take "
             f"{(decision['full_column_predicted_s'] or float('nan')):.0f} s")
        store = out / "store"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-sweep", "--store", str(store), "--n",
               str(decision["runs"]), "--pack", str(decision["pack"]), "--device", args.device,
               "--workers", str(decision.get("packs", 1))]
        for flag, val in (("--data-dir", args.data_dir), ("--epochs", args.epochs), ("--subset", args.subset)):
            if val:
                cmd += [flag, str(val)]
        if args.fp32:
            cmd.append("--fp32")
        rc, secs = _run(cmd, deadline - _elapsed() - 20.0, out / "sweep.txt", env)
        summary["steps"]["runs"] = {"rc": rc, "seconds": secs}
        _log(f"runs: rc={rc} in {secs:.0f} s (sweep.txt)")
        _finish_store(store, out, summary, keep_checkpoints=args.keep_checkpoints)
    save()
    ok = summary["steps"].get("tests", {}).get("rc", 0) in (0, 5) and summary["steps"]["bench"]["rc"] == 0
    _log(f"done in {_elapsed():.0f} s: {out}")
    return 0 if ok else 1


def _finish_store(store: Path, out: Path, summary: dict, keep_checkpoints: bool) -> None:
    """Consolidate the store, write table.md and the per-run summary; drop checkpoints (size)."""
    if not store.is_dir():
        return
    from asymloss.report import results_table
    from asymloss.sweep import ResultsStore, load_results

    st = ResultsStore(store)
    df = st.consolidate()
    rows = []
    for _, r in df.iterrows():
        rows.append({"id": r.id, "loss": r.loss_label, "noise": r.noise, "status": r.status,
                     "epochs_done": int(r.epochs_done) if r.epochs_done == r.epochs_done else 0,
                     "last_test_acc": None if r.last_test_acc != r.last_test_acc else float(r.last_test_acc),
                     "images_per_s": None if r.images_per_s != r.images_per_s else float(r.images_per_s)})
    summary["runs"] = rows
    complete = [r for r in rows if r["status"] == "complete"]
    summary["complete_runs"] = len(complete)
    if complete:
        summary["aggregate_images_per_s"] = sum(r["images_per_s"] or 0 for r in complete)
        try:
            (out / "table.md").write_text(results_table(store, metric="last") + "\n")
        except Exception as e:  # a table needs complete runs; say why not
            (out / "table.md").write_text(f"(no table: {type(e).__name__}: {e})\n")
    if not keep_checkpoints:
        for ck in store.glob("runs/*/checkpoint.pt"):
            ck.unlink()
    for lock in store.glob("runs/*/.lock"):
        lock.unlink()
    load_results(store)  # still readable


if __name__ == "__main__":
    sys.exit(main())
