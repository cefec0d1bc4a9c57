"""Benchmark asymloss.data: loading and batched augmentation, as ratios against baselines in the same run.

    python bench/data.py [--root ../shared/datasets] [--batch 512] [--repeats 5] [--device cpu]

1. Loading: ``asymloss.data.load(name)`` against a bare ``np.load`` of the same offline ``.npz``
   (the floor: decompression only). The ratio is the cost of our checks and the NCHW tensor copy.
2. Augmentation (``--device``, CPU by default; float32 batch of CIFAR-shaped images): the batched ``Augment`` against a
   per-sample Python loop applying the same operations image by image (what a torchvision
   ``transforms.Compose`` in a ``Dataset.__getitem__`` does).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import asymloss.data as data
from asymloss.data import Augment

REPO = Path(__file__).resolve().parents[1]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def per_sample_reference(x: torch.Tensor, g: torch.Generator, padding: int, rotation: float) -> torch.Tensor:
    """Crop / flip / rotate one image at a time (the per-image transform pipeline)."""
    out = torch.empty_like(x)
    _, _, h, w = x.shape
    for i in range(x.shape[0]):
        img = F.pad(x[i], (padding, padding, padding, padding))
        top = int(torch.randint(0, 2 * padding + 1, (1,), generator=g))
        left = int(torch.randint(0, 2 * padding + 1, (1,), generator=g))
        img = img[:, top : top + h, left : left + w]
        if float(torch.rand(1, generator=g)) < 0.5:
            img = img.flip(-1)
        if rotation:
            a = math.radians((float(torch.rand(1, generator=g)) * 2 - 1) * rotation)
            theta = torch.tensor([[[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]], device=x.device)
            grid = F.affine_grid(theta, [1, *img.shape], align_corners=False)
            img = F.grid_sample(img[None], grid, align_corners=False)[0]
        out[i] = img
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="device of the augmentation batch (cpu, cuda)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; median of {args.repeats} runs")

    root = Path(args.root)
    print("\n== loading (offline npz copies) ==")
    for name, fname in (("mnist", "mnist.npz"), ("fashion-mnist", "fashion_mnist.npz"), ("cifar10", "cifar10_jpeg.npz")):
        if not (root / fname).is_file():
            print(f"{name:14s} skipped ({fname} not in {root})")
            continue

        def bare():
            with np.load(root / fname) as z:
                return [z[k] for k in ("x_train", "y_train", "x_test", "y_test")]

        t_base = timeit(bare, max(1, args.repeats // 2))
        t_ours = timeit(lambda: data.load(name, root=root), max(1, args.repeats // 2))
        print(f"{name:14s} np.load {t_base:6.3f} s   asymloss.data.load {t_ours:6.3f} s   ratio {t_ours / t_base:5.2f}x")

    print(f"\n== augmentation, batch {args.batch}x3x32x32 float32, {args.device} ==")
    x = torch.rand(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(args.device)
    for label, rot in (("crop 4 + flip", 0.0), ("crop 4 + flip + rotation 20", 20.0)):
        aug = Augment(crop_padding=4, hflip=True, rotation=rot)
        t_batched = timeit(lambda: aug(x, generator=torch.Generator().manual_seed(1)), args.repeats)
        t_loop = timeit(lambda: per_sample_reference(x, torch.Generator().manual_seed(1), 4, rot), args.repeats)
        print(
            f"{label:30s} per-sample loop {t_loop * 1e3:8.1f} ms   batched {t_batched * 1e3:7.1f} ms   "
            f"speed-up {t_loop / t_batched:5.1f}x   ({args.batch / t_batched:,.0f} images/s)"
        )


if __name__ == "__main__":
    main()
