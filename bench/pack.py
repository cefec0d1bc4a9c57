"""Packed training throughput: R runs as one packed model against one run per process, in one run.

For the paper's MNIST CNN (cnn4) and CIFAR-10 CNN (cnn8) this measures, each in its own subprocess
(so peak memory is its own):

- ``reference``: the reference-style pipeline of bench/train.py (a DataLoader with worker processes
  and per-sample PIL transforms, ``loss.item()`` every step), moved to the device batch by batch;
- ``engine``: the single-run engine (``asymloss.train.train``, one run);
- ``pack R``: ``asymloss.train.pack.train_pack`` with R different runs (the paper's losses in turn,
  seeds 0..R-1), for R = 1, 2, 4, 8, ... (``--runs``; on CUDA it keeps doubling past the list while
  memory allows, up to ``--max-runs``).

Throughput is *aggregate* training images per second (R × images / seconds) of the fastest of
``--epochs`` epochs after the first (which warms up; on a shared machine the fastest epoch is the
least disturbed one); the per-epoch test evaluation is left out on every side. Ratios are against the single-run engine (and the reference) measured in the same invocation;
absolute numbers are only printed as such for a GPU, which is named.

    python bench/pack.py --device cpu --datasets mnist --runs 1,2,4 --images 1024        # short CPU form
    python bench/pack.py --device cuda --json results/gpu/pack_bench.json               # on a GPU
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's asymloss, here and (PYTHONPATH) in the children
DEFAULT_DATA = REPO.parent / "shared" / "datasets"
PROTOCOL = {"mnist": "paper-mnist", "cifar10": "paper-cifar10"}
MODEL = {"mnist": "MNIST CNN (cnn4)", "cifar10": "CIFAR-10 CNN (cnn8)"}
LOSSES = ("ce", "focal", "gce", "sce", "nfl+rce", "nce+mae", "nce+rce", "agce", "aul", "ael",
          "nce+agce", "nce+aul", "nce+ael")


# -- the child: one measurement ---------------------------------------------------------------------

def _configs(args, runs: int):
    from asymloss.train import get_protocol

    base = get_protocol(PROTOCOL[args.dataset], epochs=args.epochs, subset=args.images, data_dir=args.data_dir,
                        device=args.device, amp=args.amp, noise="symmetric:0.4")
    return [base.replace(loss=LOSSES[i % len(LOSSES)], seed=i) for i in range(runs)]


def _no_evaluation() -> None:
    """The benchmark measures training: the per-epoch test evaluation is skipped on every side."""
    from asymloss.train import engine, pack

    engine._evaluate = lambda *a, **k: 0.0

    def no_eval(p, *a, **k):
        import torch

        return torch.zeros(p.R, dtype=torch.float64)

    pack._evaluate_pack = no_eval


def _timed(epochs: list) -> float:
    """Seconds of the fastest epoch after the first (warm-up): on a shared machine the least disturbed."""
    return min(e["seconds"] for e in (epochs[1:] or epochs))


def _peak(device) -> dict:
    import torch

    out = {"peak_rss_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0}
    if device.type == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def child_engine(args) -> dict:
    from asymloss.train import train
    from asymloss.train.engine import resolve_device

    _no_evaluation()
    cfg = _configs(args, 1)[0].replace(loss="ce")
    rec = train(cfg, progress=False)
    return {"images_per_s": rec["data"]["train_size"] / _timed(rec["epochs"]), **_peak(resolve_device(cfg.device))}


def child_pack(args) -> dict:
    from asymloss.train.engine import resolve_device
    from asymloss.train.pack import train_pack

    _no_evaluation()
    cfgs = _configs(args, args.r)
    recs = train_pack(cfgs)
    failed = [r for r in recs if r["status"] != "complete"]
    if failed:
        raise SystemExit(f"pack run failed: {failed[0]['error']}")
    return {"images_per_s": args.r * recs[0]["data"]["train_size"] / _timed(recs[0]["epochs"]),
            **_peak(resolve_device(cfgs[0].device))}


def child_reference(args) -> dict:
    """bench/train.py's reference pipeline (its dataset class and epoch loop), on ``args.device``."""
    import torch

    from asymloss import create_loss
    from asymloss.data import load
    from asymloss.models import create_model
    from asymloss.train.engine import resolve_device

    spec = importlib.util.spec_from_file_location("bench_train", Path(__file__).with_name("train.py"))
    bench_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_train)
    cfg = _configs(args, 1)[0]
    device = resolve_device(cfg.device)
    ds = load(cfg.dataset, root=args.data_dir)
    x = ds.x_train[: args.images].permute(0, 2, 3, 1).numpy()
    if x.shape[-1] == 1:
        x = x[..., 0]
    y = ds.y_train[: args.images].numpy()
    data = bench_train._PILDataset(x, y, ds.mean, ds.std, cfg.crop_padding, cfg.hflip)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True, num_workers=args.workers,
                                         persistent_workers=args.workers > 0, pin_memory=device.type == "cuda")
    torch.manual_seed(0)
    model = create_model(cfg.model, num_classes=ds.num_classes, in_channels=ds.x_train.shape[1],
                         image_size=ds.x_train.shape[-1]).to(device)
    loss_fn = create_loss("ce")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    model.train()
    rates = []
    for _ in range(args.epochs):  # the fastest epoch after the first is measured
        seen, seconds = bench_train.reference_epoch(model, loader, loss_fn, opt, cfg.grad_clip, device)
        rates.append(seen / seconds)
    return {"images_per_s": max(rates[1:] or rates), **_peak(device)}


def _child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    fn = {"engine": child_engine, "pack": child_pack, "reference": child_reference}[args.child]
    print("RESULT " + json.dumps(fn(args)), flush=True)


# -- the layout question: grouped convolutions or torch.func.vmap over stacked parameters -------------

def layout_microbench(dataset: str, runs: int, device: str, steps: int = 10, amp: bool = False,
                      rounds: int = 5) -> dict:
    """Seconds per forward+backward step of R models on their own batches of 128, three ways: R
    single models one after the other, the packed model (grouped convolutions, batched linear
    layers; asymloss.models.packed) and ``torch.func.functional_call`` + ``vmap`` over stacked
    parameters and buffers. The losses are cross-entropy per run in every case. The three are timed
    in interleaved rounds and each one's best round is kept."""
    import copy
    import contextlib

    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, stack_module_state, vmap

    from asymloss.models import create_model
    from asymloss.models.packed import pack_models

    c, s = (1, 28) if dataset == "mnist" else (3, 32)
    model = {"mnist": "cnn4", "cifar10": "cnn8"}[dataset]
    dev = torch.device(device)
    cl = torch.channels_last
    models = [create_model(model, 10, c, s).to(dev, memory_format=cl) for _ in range(runs)]
    xs = torch.randn(runs, 128, c, s, s, device=dev)
    ys = torch.randint(0, 10, (runs, 128), device=dev)
    ac = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    packed = pack_models(models).to(memory_format=cl)
    xp = xs.transpose(0, 1).reshape(128, runs * c, s, s).contiguous(memory_format=cl)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def single():
        for m, x, y in zip(models, xs, ys):
            with ac():
                out = m(x.contiguous(memory_format=cl))
            F.cross_entropy(out.float(), y).backward()

    def grouped():
        with ac():
            out = packed(xp)
        sum(F.cross_entropy(out[r].float(), ys[r]) for r in range(runs)).backward()

    def vmapped():
        with ac():
            out = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))(params, buffers, xs)
        sum(F.cross_entropy(out[r].float(), ys[r]) for r in range(runs)).backward()

    fns = {"single models": single, "grouped (packed)": grouped, "torch.func vmap": vmapped}
    res: dict = {}
    for name, fn in fns.items():  # warm up; a method that fails is reported as such
        try:
            fn()
        except Exception as e:  # vmap may not support a layer or a loss
            res[name] = f"{type(e).__name__}: {str(e)[:200]}"
    best = {name: float("inf") for name in fns if name not in res}
    for _ in range(rounds):  # interleaved rounds, the best of each: fair on a shared machine
        for name in best:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            for _ in range(steps):
                fns[name]()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    return {**best, **res}


# -- the parent: every measurement in its own process -----------------------------------------------

def _spawn(side: str, dataset: str, args, r: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--datasets", dataset, "--images", str(args.images[dataset]),
           "--data-dir", args.data_dir, "--threads", str(args.threads), "--workers", str(args.workers),
           "--device", args.device, "--epochs", str(args.epochs), "--r", str(r)] + (["--amp"] if args.amp else [])
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not lines:
        tail = res.stderr[-1500:]
        oom = "out of memory" in res.stderr.lower() or "OutOfMemoryError" in res.stderr
        return {"error": "out of memory" if oom else tail, "oom": oom}
    out = json.loads(lines[-1][len("RESULT "):])
    out["wall_s"] = time.perf_counter() - t0
    return out


def _device_name(device: str) -> str:
    import platform

    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu:{platform.machine()}"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="mnist,cifar10")
    p.add_argument("--runs", default="1,2,4,8,16,32", help="pack sizes R to measure")
    p.add_argument("--max-runs", type=int, default=256, help="CUDA: keep doubling R past --runs up to this")
    p.add_argument("--images", default=None, help="images per epoch per run (default: cpu 1024, cuda 16384)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the fastest after the first is timed")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--amp", action="store_true", help="bf16 autocast (the loss stays float32)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference pipeline")
    p.add_argument("--no-reference", action="store_true", help="skip the reference pipeline")
    p.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    p.add_argument("--budget", type=float, default=None, help="stop adding measurements after this many seconds")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--layouts", default=None, help="also time grouped convolutions vs torch.func vmap vs single "
                   "models for these pack sizes (e.g. 4,16), per forward+backward step")
    p.add_argument("--child", choices=["engine", "pack", "reference"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--r", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.dataset, args.images = args.datasets, int(args.images)
        _child(args)
        return {}
    import torch

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    args.device = "cuda" if cuda else "cpu"
    datasets = args.datasets.split(",")
    default_images = 16384 if cuda else 1024
    args.images = {d: int(args.images) if args.images else default_images for d in datasets}
    sizes = [int(r) for r in args.runs.split(",")]
    start = time.perf_counter()
    device_name = _device_name(args.device)
    results = {"device": device_name, "threads": args.threads, "amp": args.amp, "epochs": args.epochs,
               "torch": torch.__version__, "datasets": {}}

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)

    def over_budget() -> bool:
        return args.budget is not None and time.perf_counter() - start > args.budget

    for d in datasets:
        rows = []
        engine = _spawn("engine", d, args)
        ref = None if args.no_reference else _spawn("reference", d, args)
        rows.append(("engine (1 run)", 1, engine))
        if ref is not None:
            rows.append((f"reference ({args.workers} workers)", 1, ref))
        r_list = list(sizes)
        i = 0
        while i < len(r_list):
            if over_budget():
                break
            r = r_list[i]
            res = _spawn("pack", d, args, r)
            rows.append((f"pack R={r}", r, res))
            if res.get("error"):
                break  # out of memory (or a failure): larger packs will not fit either
            if cuda and i == len(r_list) - 1 and r * 2 <= args.max_runs:
                r_list.append(r * 2)  # beyond the list while memory allows
            i += 1
        base = engine.get("images_per_s")
        ref_rate = ref.get("images_per_s") if ref else None
        table = Table(title=f"{MODEL[d]}: aggregate training images/s, {args.images[d]:,} images per run and epoch, "
                            f"{device_name}{' bf16' if args.amp else ' fp32'} ({args.threads} CPU threads)")
        for col in ("side", "runs", "img/s" if cuda else "img/s (this CPU)", "× engine", "× reference", "peak memory"):
            table.add_column(col, justify="right")
        for name, r, res in rows:
            if res.get("error"):
                table.add_row(name, str(r), "—", "—", "—", "out of memory" if res.get("oom") else "failed")
                continue
            rate = res["images_per_s"]
            mem = (f"{res['peak_gpu_gib']:.2f} GiB GPU" if "peak_gpu_gib" in res else "") + \
                  (f" / " if "peak_gpu_gib" in res else "") + f"{res['peak_rss_mib']:,.0f} MiB RSS"
            table.add_row(name, str(r), f"{rate:,.0f}", f"{rate / base:.2f}×" if base else "—",
                          f"{rate / ref_rate:.2f}×" if ref_rate else "—", mem)
        console.print(table)
        packs = {r: res for name, r, res in rows if name.startswith("pack") and not res.get("error")}
        best = max(packs, key=lambda r: packs[r]["images_per_s"]) if packs else None
        results["datasets"][d] = {
            "images": args.images[d], "engine": engine, "reference": ref,
            "packs": {str(r): res for r, res in packs.items()},
            "failed_packs": {str(r): res.get("error", "")[:300] for n, r, res in rows if n.startswith("pack") and res.get("error")},
            "best_r": best,
            "best_speedup_vs_engine": (packs[best]["images_per_s"] / base) if best and base else None,
        }
        if best:
            console.print(f"best pack size for {MODEL[d]}: R={best}, {results['datasets'][d]['best_speedup_vs_engine']:.2f}× "
                          f"the single-run engine")
    if args.layouts:
        import torch

        torch.set_num_threads(args.threads)
        results["layouts"] = {}
        for d in datasets:
            for r in (int(x) for x in args.layouts.split(",")):
                if over_budget():
                    break
                lay = layout_microbench(d, r, args.device, steps=2 if args.device == "cpu" else 20, amp=args.amp)
                results["layouts"][f"{d}/R={r}"] = lay
                t = lay.get("single models")
                parts = [f"{k} {v * 1000:.1f} ms" + (f" ({t / v:.2f}× single)" if isinstance(t, float) else "")
                         if isinstance(v, float) else f"{k}: {v}" for k, v in lay.items()]
                console.print(f"layouts {MODEL[d]}, R={r}, batch 128 per run, forward+backward: " + "; ".join(parts))
    results["seconds"] = time.perf_counter() - start
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
