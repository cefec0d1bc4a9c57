"""Training throughput: the asymloss engine against a reference-style pipeline, in the same run.

The reference-style pipeline is what the paper's public code does: a ``torch.utils.data.DataLoader``
with worker processes over a dataset that turns each sample into a PIL image and applies per-sample
transforms (random crop with padding and horizontal flip for CIFAR-10, none for MNIST), ``ToTensor``
and ``Normalize`` equivalents, batch 128, and ``loss.item()`` after every step. The same model,
loss, optimiser, batch size and images are used by both; each side runs in its own subprocess so its
peak memory (max RSS, workers included) can be reported.

    python bench/train.py                         # MNIST CNN and CIFAR-10 CNN, 2 workers
    python bench/train.py --datasets mnist --images 60000

Prints images/s of each side and the ratio engine / reference, for the engine in float32 (exact) and
with bf16 autocast (``amp=True``: the model in bf16 where the CPU has native bf16, the loss in float32).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets"


def _peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024.0


def _setup(dataset: str, images: int, data_dir: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    from asymloss.train import get_protocol

    protocol = {"mnist": "paper-mnist", "cifar10": "paper-cifar10"}[dataset]
    cfg = get_protocol(protocol, loss="ce", epochs=1, subset=images, data_dir=data_dir, device="cpu")
    return cfg


def run_engine(dataset: str, images: int, data_dir: str, threads: int, amp: bool = False) -> dict:
    from asymloss.train import train

    cfg = _setup(dataset, images, data_dir, threads).replace(amp=amp)
    record = train(cfg, progress=False)
    return {"images_per_s": record["final"]["images_per_s"], "seconds": record["final"]["train_time_s"]}


class _PILDataset:
    """Per-sample PIL transforms, as the reference code's torchvision pipeline does them."""

    def __init__(self, x, y, mean, std, crop_padding: int, hflip: bool, seed: int = 0):
        self.x, self.y = x, y  # NHWC / NHW uint8 numpy
        self.mean, self.std = mean, std
        self.crop_padding, self.hflip = crop_padding, hflip
        self.seed = seed

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        import random

        import numpy as np
        import torch
        from PIL import Image, ImageOps

        img = Image.fromarray(self.x[i])
        if self.crop_padding:
            p = self.crop_padding
            w, h = img.size
            img = ImageOps.expand(img, border=p, fill=0)
            left, top = random.randint(0, 2 * p), random.randint(0, 2 * p)
            img = img.crop((left, top, left + w, top + h))
        if self.hflip and random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        t = torch.from_numpy(arr)
        t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (t - mean) / std, int(self.y[i])


def run_reference(dataset: str, images: int, data_dir: str, threads: int, workers: int) -> dict:
    import torch

    from asymloss import create_loss
    from asymloss.data import load
    from asymloss.models import create_model

    cfg = _setup(dataset, images, data_dir, threads)
    ds = load(cfg.dataset, root=data_dir)
    x = ds.x_train[:images].permute(0, 2, 3, 1).numpy()
    if x.shape[-1] == 1:
        x = x[..., 0]
    y = ds.y_train[:images].numpy()
    data = _PILDataset(x, y, ds.mean, ds.std, cfg.crop_padding, cfg.hflip)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                         num_workers=workers, persistent_workers=False)
    torch.manual_seed(0)
    model = create_model(cfg.model, num_classes=ds.num_classes, in_channels=ds.x_train.shape[1],
                         image_size=ds.x_train.shape[-1])
    loss_fn = create_loss("ce")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    model.train()
    seen, seconds = reference_epoch(model, loader, loss_fn, opt, cfg.grad_clip)
    return {"images_per_s": seen / seconds, "seconds": seconds}


def reference_epoch(model, loader, loss_fn, opt, grad_clip, device=None) -> tuple[int, float]:
    """One epoch of the reference codes' loop (DataLoader batches, a host sync per step for the
    logged loss); returns (images seen, wall seconds). Shared with bench/pack.py."""
    from torch import nn

    seen, t0 = 0, time.perf_counter()
    for xb, yb in loader:
        if device is not None:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        loss.item()  # the reference logs the loss every step
        seen += len(yb)
    return seen, time.perf_counter() - t0


def _child(args) -> None:
    if args.child in ("engine", "engine-bf16"):
        out = run_engine(args.dataset, args.images, args.data_dir, args.threads, amp=args.child == "engine-bf16")
    else:
        out = run_reference(args.dataset, args.images, args.data_dir, args.threads, args.workers)
    out["peak_rss_mib"] = _peak_rss_mib()
    print("RESULT " + json.dumps(out))


def _spawn(side: str, dataset: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--datasets", dataset, "--images", str(args.images[dataset]),
           "--data-dir", args.data_dir, "--threads", str(args.threads), "--workers", str(args.workers)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{side} on {dataset} failed:\n{res.stderr[-3000:]}")
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="mnist,cifar10")
    p.add_argument("--images", default=None, help="images per epoch (default: mnist 60000, cifar10 5120)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference pipeline")
    p.add_argument("--child", choices=["engine", "engine-bf16", "reference"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.dataset, args.images = args.datasets, int(args.images)
        _child(args)
        return
    datasets = args.datasets.split(",")
    defaults = {"mnist": 60000, "cifar10": 5120}
    args.images = {d: int(args.images) if args.images else defaults[d] for d in datasets}

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"One training epoch, CPU ({args.threads} threads; reference: {args.workers} DataLoader workers)")
    for col in ("model", "images", "reference img/s", "asymloss fp32 img/s", "speed-up", "asymloss bf16 img/s",
                "speed-up", "peak RSS ref / fp32 / bf16"):
        table.add_column(col, justify="right")
    for d in datasets:
        ref = _spawn("reference", d, args)
        eng = _spawn("engine", d, args)
        bf16 = _spawn("engine-bf16", d, args)
        model = {"mnist": "MNIST CNN (cnn4)", "cifar10": "CIFAR-10 CNN (cnn8)"}[d]
        table.add_row(model, f"{args.images[d]:,}", f"{ref['images_per_s']:,.0f}", f"{eng['images_per_s']:,.0f}",
                      f"{eng['images_per_s'] / ref['images_per_s']:.2f}×", f"{bf16['images_per_s']:,.0f}",
                      f"{bf16['images_per_s'] / ref['images_per_s']:.2f}×",
                      f"{ref['peak_rss_mib']:,.0f} / {eng['peak_rss_mib']:,.0f} / {bf16['peak_rss_mib']:,.0f} MiB")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
