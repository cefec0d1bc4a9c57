"""Evidence for meta-learned loss hyperparameters on real MNIST (CPU-sized; docs/meta.md, 'Evidence').

For symmetric 0.8 and asymmetric 0.4 noise and two seeds, on a fixed random subset of MNIST's
training set with a short schedule of the ``paper-mnist`` protocol:

- CE, and GCE, AGCE and AUL with their fixed ``paper:mnist`` presets (trained on the whole subset);
- GCE, AGCE and AUL meta-learned from the same start values, with ``META`` clean-labelled images of
  the subset held out as the meta set (class-balanced; the rest of the subset is trained on).

The cost of meta-learning is measured in the same process, on the same thread: a meta run's
seconds per epoch (and per training image) over those of the same loss with fixed hyperparameters,
same noise and seed. Writes ``results/meta/`` (``results.json``, ``table.md``,
``trajectory.png``), the table into docs/meta.md, 'Evidence' and the README and the figure to
``docs/img/meta-trajectory.png``; run records and checkpoints go to ``runs/meta/`` (git-ignored; re-running
resumes them).

    OMP_NUM_THREADS=1 python bench/meta.py                 # everything (about 25 min of one core)
    OMP_NUM_THREADS=1 python bench/meta.py --epochs 2      # a quicker, smaller check
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "meta"
DOC = REPO / "docs" / "meta.md"
IMG = REPO / "docs" / "img"
WORK = REPO / "runs" / "meta"

NOISES = ("symmetric:0.8", "asymmetric:0.4")
SEEDS = (0, 1)
LOSSES = ("ce", "gce", "agce", "aul")
META_LOSSES = ("gce", "agce", "aul")
RUN = dict(subset=3000, epochs=6, lr=0.1)   # short schedule: lr 0.1 (the protocol's 0.01 is for 50 epochs)
META = dict(meta_set=200, meta_every=1, meta_lr=0.05, meta_optimizer="adam")  # lr 0.05: the short schedule (default 0.01)
TEST_IMAGES = 2000                           # the first 2,000 test images, evaluated every epoch


def _threads() -> None:
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _config(noise: str, seed: int, loss: str, data_dir: str, epochs: int, meta: bool):
    from asymloss.train import get_protocol

    extra = META if meta else {}
    return get_protocol("paper-mnist", noise=noise, seed=seed, loss=loss, data_dir=data_dir, device="cpu",
                        subset=RUN["subset"], epochs=epochs, lr=RUN["lr"], **extra)


def run_all(data_dir: str, epochs: int) -> list[dict]:
    from asymloss.train import train
    from asymloss.train.engine import prepare_data

    rows = []
    for noise in NOISES:
        for seed in SEEDS:
            data = prepare_data(_config(noise, seed, "ce", data_dir, epochs, False))
            data = replace(data, x_test=data.x_test[:TEST_IMAGES], y_test=data.y_test[:TEST_IMAGES])
            for loss, meta in [(x, False) for x in LOSSES] + [(x, True) for x in META_LOSSES]:
                cfg = _config(noise, seed, loss, data_dir, epochs, meta)
                t0 = time.time()
                rec = train(cfg, WORK / cfg.config_hash(), progress=False, data=data)
                row = {"noise": noise, "seed": seed, "loss": loss, "meta": meta,
                       "last_test_acc": rec["final"]["last_test_acc"], "best_test_acc": rec["final"]["best_test_acc"],
                       "test_acc": [e["test_acc"] for e in rec["epochs"]],
                       "epoch_seconds": [e["seconds"] for e in rec["epochs"]],
                       "meta_seconds": [e["meta"]["seconds"] for e in rec["epochs"]] if meta else None,
                       "train_size": rec["data"]["train_size"], "hparams": rec["loss"]["hparams"],
                       "record": rec}
                rows.append(row)
                print(f"{noise:15s} seed {seed} {loss:5s}{' meta' if meta else '     '} "
                      f"last {100 * row['last_test_acc']:.2f}%  {statistics.mean(row['epoch_seconds']):.2f} s/epoch "
                      f"({time.time() - t0:.0f} s)", flush=True)
    return rows


def _cost(rows: list[dict]) -> list[dict]:
    """Per meta run: its epochs' seconds over their seconds without the meta steps (the same epochs,
    so load from other processes hits both alike), and over the fixed run of the same loss (per
    epoch and per training image)."""
    fixed = {(r["noise"], r["seed"], r["loss"]): r for r in rows if not r["meta"]}
    out = []
    for r in rows:
        if not r["meta"]:
            continue
        f = fixed[(r["noise"], r["seed"], r["loss"])]
        sm, sf = statistics.mean(r["epoch_seconds"]), statistics.mean(f["epoch_seconds"])
        total, meta = sum(r["epoch_seconds"]), sum(r["meta_seconds"])
        out.append({"noise": r["noise"], "seed": r["seed"], "loss": r["loss"], "meta_s_per_epoch": sm,
                    "in_run_ratio": total / (total - meta),
                    "fixed_s_per_epoch": sf, "ratio_per_epoch": sm / sf,
                    "ratio_per_image": (sm / r["train_size"]) / (sf / f["train_size"])})
    return out


def report(rows: list[dict], epochs: int) -> None:
    from asymloss.report import plot_meta_trajectory, save_figure
    from asymloss.train.meta import meta_trajectory

    RESULTS.mkdir(parents=True, exist_ok=True)
    cost = _cost(rows)
    names = {"ce": "CE", "gce": "GCE", "agce": "AGCE", "aul": "AUL"}

    def acc(noise, loss, meta):
        vals = [100 * r["last_test_acc"] for r in rows if (r["noise"], r["loss"], r["meta"]) == (noise, loss, meta)]
        m = statistics.mean(vals)
        return f"{m:.2f} ± {statistics.stdev(vals):.2f}" if len(vals) > 1 else f"{m:.2f}"

    def moved(noise, loss):
        parts = []
        for r in rows:
            if (r["noise"], r["loss"], r["meta"]) == (noise, loss, True):
                traj = meta_trajectory(r["record"])
                parts.append(", ".join(f"{k} {v[0]:.3g}→{v[-1]:.3g}" for k, v in traj.items()))
        return "; ".join(parts)

    lines = [
        f"MNIST, a fixed random subset of {RUN['subset']:,} training images (noise drawn on it), paper-mnist protocol "
        f"(CNN-4, SGD momentum 0.9, cosine) with {epochs} epochs at lr {RUN['lr']}; last-epoch test accuracy (%) on the "
        f"first {TEST_IMAGES:,} test images, mean ± std over seeds {', '.join(map(str, SEEDS))}. Fixed: the paper:mnist "
        f"preset, trained on all {RUN['subset']:,} images. Meta: the same start values, {META['meta_set']} clean "
        f"images held out (class-balanced) and {RUN['subset'] - META['meta_set']:,} trained on; Adam lr "
        f"{META['meta_lr']} on the unconstrained parameters, a meta step every {META['meta_every']} step(s). "
        "2-core CPU VM, 1 thread.",
        "",
        "| loss | " + " | ".join(NOISES) + " |",
        "|---|" + "---|" * len(NOISES),
    ]
    for loss in LOSSES:
        lines.append(f"| {names[loss]} (fixed) | " + " | ".join(acc(n, loss, False) for n in NOISES) + " |")
        if loss in META_LOSSES:
            lines.append(f"| {names[loss]} (meta) | " + " | ".join(acc(n, loss, True) for n in NOISES) + " |")
    lines += ["", "Meta-learned hyperparameters, start → end of training (seed 0; seed 1):", ""]
    for noise in NOISES:
        for loss in META_LOSSES:
            lines.append(f"- {noise}, {names[loss]}: {moved(noise, loss)}")
    lines += ["", "Cost of meta-learning (mean over seeds): a meta run's epoch time over the same epochs without "
              "their meta steps (timed inside the run); in parentheses, its seconds per epoch over those of the "
              "fixed run of the same loss, noise and seed (same process, one thread; sensitive to other load on "
              "the machine).", "", "| loss | " + " | ".join(NOISES) + " |", "|---|" + "---|" * len(NOISES)]
    for loss in META_LOSSES:
        cells = []
        for noise in NOISES:
            cs = [c for c in cost if (c["noise"], c["loss"]) == (noise, loss)]
            cells.append(f"×{statistics.mean(c['in_run_ratio'] for c in cs):.2f} "
                         f"(×{statistics.mean(c['ratio_per_epoch'] for c in cs):.2f})")
        lines.append(f"| {names[loss]} | " + " | ".join(cells) + " |")
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    slim = [{k: v for k, v in r.items() if k != "record"} | {"trajectory": meta_trajectory(r["record"]) if r["meta"] else None}
            for r in rows]
    (RESULTS / "results.json").write_text(json.dumps(
        {"settings": {"run": RUN, "epochs": epochs, "meta": META, "noises": NOISES, "seeds": SEEDS,
                      "test_images": TEST_IMAGES, "machine": "2-core CPU VM, 1 thread"},
         "runs": slim, "cost": cost}, indent=1) + "\n", encoding="utf-8")
    metas = [r for r in rows if r["meta"]]
    fig = plot_meta_trajectory([r["record"] for r in metas],
                               labels=[f"{r['noise']}, seed {r['seed']}" for r in metas],
                               title=f"Meta-learned hyperparameters on MNIST ({RUN['subset']:,} images, {epochs} epochs)")
    save_figure(fig, RESULTS / "trajectory.png")
    save_figure(fig, IMG / "meta-trajectory.png")
    start, end = "<!-- meta-evidence -->", "<!-- /meta-evidence -->"
    for page in (DOC, REPO / "README.md"):   # the table between the markers
        text = page.read_text(encoding="utf-8")
        if start in text and end in text:
            head, rest = text.split(start, 1)
            page.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1],
                            encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.relpath(REPO.parent / "shared" / "datasets"),
                    help="Directory of mnist.npz (default: ../shared/datasets).")
    ap.add_argument("--epochs", type=int, default=RUN["epochs"], help=f"Epochs per run (default {RUN['epochs']}).")
    args = ap.parse_args()
    _threads()
    t0 = time.time()
    print(f"{len(NOISES) * len(SEEDS) * (len(LOSSES) + len(META_LOSSES))} runs on one thread: subset "
          f"{RUN['subset']}, {args.epochs} epochs, {TEST_IMAGES} test images", flush=True)
    rows = run_all(args.data_dir, args.epochs)
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)
    report(rows, args.epochs)


if __name__ == "__main__":
    main()
