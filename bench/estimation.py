"""Evidence for noise estimation and advice on real MNIST and Fashion-MNIST (CPU-sized).

Regenerates ``results/estimation/`` (JSON, a markdown summary, one advice figure per setting) and
the figures ``docs/img/estimation-*.png`` that the README shows:

1. **Estimation.** For each setting (dataset × noise) ``asymloss.train.estimate_noise``: a fixed
   random subset of the training set, the noise drawn on it, 5-fold cross-validated CE models of the
   ``paper-mnist`` protocol (short schedule), the confident joint. T̂ is compared with the realised
   transition matrix of the subset (clean labels are known here) and with the nominal one.
2. **Advice.** ``asymloss.theory.advise`` on T̂ (with its fold jackknife): the smallest a that makes
   AGCE (q = 0.2, the paper's MNIST value) and AEL asymmetric.
3. **Grid.** AGCE and AEL trained for real at four values of a around the theory's threshold for the
   nominal noise (×1/3, ×2/3, ×3/2, ×3): does the test accuracy jump where the theory says?

    python bench/estimation.py                        # everything (about 25 min of one core)
    python bench/estimation.py --workers 2            # two processes of one thread each
    python bench/estimation.py --only estimate        # or: grid, report

Intermediate runs (fold models, grid runs with checkpoints) go to ``runs/estimation/`` (git-ignored);
re-running resumes them and only rewrites the results.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import math
import multiprocessing as mp
import os
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "estimation"
IMG = REPO / "docs" / "img"
WORK = REPO / "runs" / "estimation"

SETTINGS = [  # (dataset, noise)
    ("mnist", "symmetric:0.6"),
    ("mnist", "asymmetric:0.4"),
    ("mnist", "pairflip:0.4"),
    ("fashion-mnist", "symmetric:0.6"),
    ("fashion-mnist", "pairflip:0.4"),
]
EST = dict(subset=8000, folds=5, epochs=5, loss="ce")  # the protocol's lr 0.01
GRID = dict(subset=4000, epochs=8, lr=0.1, test_images=2000)  # lr 0.1: 8 epochs of 4,000 images
GRID_FACTORS = (1 / 3, 2 / 3, 3 / 2, 3)
AGCE_Q = 0.2  # paper:mnist's AGCE(a=4, q=0.2)
SEED = 0


def _key(dataset: str, noise: str) -> str:
    return f"{dataset}-{noise.replace(':', '')}"


def _label(dataset: str, noise: str) -> str:
    kind, rate = noise.split(":")
    names = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
    return f"{names[dataset]}, {kind} {rate}"


def _threads() -> None:
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _config(dataset: str, noise: str, data_dir: str, **kw):
    from asymloss.train import get_protocol

    return get_protocol("paper-mnist", dataset=dataset, noise=noise, seed=SEED, data_dir=data_dir, device="cpu", **kw)


# ------------------------------------------------------------------------------------------------
# jobs (each runs in its own process, one thread)
# ------------------------------------------------------------------------------------------------


def estimate_job(dataset: str, noise: str, data_dir: str) -> dict:
    _threads()
    from asymloss.train import estimate_noise

    cfg = _config(dataset, noise, data_dir, loss=EST["loss"], epochs=EST["epochs"], subset=EST["subset"])
    rec = estimate_noise(cfg, EST["folds"], WORK / "estimate" / _key(dataset, noise), progress=False)
    run_s = sum(f["wall_time_s"] for f in rec["fold_runs"])  # the engine's times, summed over resumes
    return {"dataset": dataset, "noise": noise, "record": rec, "run_s": run_s}


def nominal_threshold(loss: str, dataset: str, noise: str) -> float:
    from asymloss import theory

    fixed = {"q": AGCE_Q} if loss == "agce" else {}
    ds = dataset if noise.startswith("asymmetric") else None
    return float(theory.min_parameter(loss, "a", noise, num_classes=10 if ds is None else None, dataset=ds, **fixed))


def grid_points(loss: str, dataset: str, noise: str) -> list[float]:
    a = nominal_threshold(loss, dataset, noise)
    return [float(f"{a * f:.3g}") for f in GRID_FACTORS]


def grid_job(dataset: str, noise: str, loss: str, a: float, data_dir: str) -> dict:
    _threads()
    from asymloss.train import train
    from asymloss.train.engine import prepare_data

    params = {"a": a, "q": AGCE_Q} if loss == "agce" else {"a": a}
    cfg = _config(dataset, noise, data_dir, loss=loss, loss_params=params, epochs=GRID["epochs"],
                  subset=GRID["subset"], lr=GRID["lr"])
    data = prepare_data(cfg)
    n = GRID["test_images"]
    data = replace(data, x_test=data.x_test[:n], y_test=data.y_test[:n])
    rec = train(cfg, WORK / "grid" / cfg.config_hash(), progress=False, data=data)
    return {"dataset": dataset, "noise": noise, "loss": loss, "a": a, "params": params,
            "last_test_acc": rec["final"]["last_test_acc"], "best_test_acc": rec["final"]["best_test_acc"],
            "test_acc": [e["test_acc"] for e in rec["epochs"]],
            "train_acc_clean": rec["epochs"][-1]["train_acc_clean"],
            "train_acc_noisy": rec["epochs"][-1]["train_acc_noisy"],
            "realised_rate": rec["noise"]["rate"], "run_s": rec["final"]["wall_time_s"]}


def _run(jobs, workers: int):
    if workers <= 1:
        return [fn(*args) for fn, args in jobs]
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        futs = [ex.submit(fn, *args) for fn, args in jobs]
        out = []
        for i, f in enumerate(futs):
            out.append(f.result())
            print(f"  {i + 1}/{len(futs)} done", flush=True)
        return out


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


def _f(x, nd=3):
    return "∞" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def report(estimates: list[dict], grid: list[dict]) -> None:
    import numpy as np

    from asymloss import theory
    from asymloss._io import atomic_write_json, atomic_write_text
    from asymloss.noise import TransitionEstimate
    from asymloss.report import plot_advice, save_figure

    RESULTS.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    rows, advice_rows, summary = [], [], []
    advices = {}
    for e in estimates:
        ds, nz, rec = e["dataset"], e["noise"], e["record"]
        est = TransitionEstimate.from_summary(rec["estimate"])
        cands = [f"agce,a={a},q={AGCE_Q}" for a in grid_points("agce", ds, nz)] + \
                [f"ael,a={a}" for a in grid_points("ael", ds, nz)] + ["agce@paper:mnist", "ael@paper:mnist", "ce"]
        adv = theory.advise(est, cands, source=f"{_label(ds, nz)}: {EST['folds']}-fold CE, {EST['subset']:,} images")
        advices[(ds, nz)] = adv
        key = _key(ds, nz)
        atomic_write_json(RESULTS / f"advice-{key}.json", adv.summary())
        save_figure(plot_advice(adv, title=f"{_label(ds, nz)} — T̂ from {EST['subset']:,} images, "
                                          f"{EST['folds']} folds"), RESULTS / f"advice-{key}.png")
        real, nom = rec["truth"]["realised"], rec["truth"]["nominal"]
        err = rec["error"]
        se = est.noise_ratio_se
        acc = [f["held_out_acc_clean"] for f in rec["fold_runs"]]
        rows.append(f"| {_label(ds, nz)} | {_f(err['realised']['max_abs_error'])} | {_f(err['nominal']['max_abs_error'])} "
                    f"| {_f(nom['noise_ratio'])} | {_f(real['noise_ratio'])} | {_f(est.noise_ratio)} ± {_f(se)} "
                    f"| {real['rate']:.3f} / {est.rate:.3f} | {min(acc):.3f}–{max(acc):.3f} | {e['run_s'] / 60:.1f} |")
        bounds = {}
        for c in adv.candidates:
            if c.name in ("agce", "ael") and c.bound is not None and c.name not in bounds:
                bounds[c.name] = c
        for loss in ("agce", "ael"):
            c = bounds[loss]
            lo, hi = c.bound_range
            advice_rows.append((ds, nz, loss, nominal_threshold(loss, ds, nz), c.bound.value, lo, hi))
        summary.append({
            "dataset": ds, "noise": nz, "config": rec["config"], "folds": rec["folds"],
            "nominal_transition": nom["transition"], "realised_transition": real["transition"],
            "estimated_transition": rec["estimate"]["transition"],
            "transition_se": rec["estimate"]["folds"]["transition_se"],
            "noise_ratio": {"nominal": nom["noise_ratio"], "realised": real["noise_ratio"],
                            "estimated": est.noise_ratio, "estimated_se": se},
            "rate": {"realised": real["rate"], "estimated": est.rate},
            "max_abs_error": {"realised": err["realised"]["max_abs_error"], "nominal": err["nominal"]["max_abs_error"]},
            "held_out_acc_clean": acc, "run_s": e["run_s"], "method": rec["estimate"]["method"],
            "versions": rec["versions"], "git": rec["git"],
        })
    atomic_write_json(RESULTS / "estimation.json", {"settings": summary, "estimation": EST, "seed": SEED})
    atomic_write_json(RESULTS / "grid.json", {"grid": GRID, "factors": GRID_FACTORS, "agce_q": AGCE_Q, "seed": SEED,
                                              "runs": grid})

    md = ["# Noise estimation and advice on MNIST and Fashion-MNIST", "",
          "Generated by `python bench/estimation.py`; see docs/estimation.md.", "",
          f"Estimation: {EST['subset']:,}-image subsets, {EST['folds']}-fold CE models of `paper-mnist` for "
          f"{EST['epochs']} epochs, confident joint (cleanlab). T: realised = the subset's own clean→noisy counts, "
          "nominal = the noise model's matrix. r̃ ± fold-jackknife SE.", "",
          "| setting | max\\|T̂−T\\| realised | max\\|T̂−T\\| nominal | r̃ nominal | r̃ realised | r̃ estimated "
          "| noise rate realised / est. | held-out acc (clean) | train min |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]
    md += ["Advice: the smallest a that makes the loss asymmetric — from the nominal T (the truth) and from T̂ "
           "(in brackets: at the ends of r̃ ± 2·SE). AGCE with q = 0.2.", "",
           "| setting | loss | a* nominal | a* advised (from T̂) |", "|---|---|---:|---:|"]
    for ds, nz, loss, a_nom, a_est, lo, hi in advice_rows:
        rng = f" [{_f(lo)}, {_f(hi)}]" if isinstance(lo, float) and isinstance(hi, float) else ""
        shown = "none (r̃ ≥ 1)" if a_est is None else f"{a_est:.3f}"
        md.append(f"| {_label(ds, nz)} | {loss.upper()} | {a_nom:.3f} | {shown}{rng} |")
    md += ["", f"Grid: {GRID['subset']:,}-image subsets, {GRID['epochs']} epochs of `paper-mnist` with lr "
           f"{GRID['lr']}, last-epoch accuracy (%) on the first {GRID['test_images']:,} test images; a at ×1/3, "
           "×2/3, ×3/2, ×3 the nominal threshold a*. ✓ = asymmetric on the nominal T.", ""]
    for loss in ("agce", "ael"):
        md.append(f"| {loss.upper()} | a (accuracy %) | | | | a* nominal | a* advised |")
        md.append("|---|---|---|---|---|---:|---:|")
        for ds, nz in SETTINGS:
            runs = sorted((g for g in grid if g["dataset"] == ds and g["noise"] == nz and g["loss"] == loss),
                          key=lambda g: g["a"])
            a_nom = nominal_threshold(loss, ds, nz)
            a_est = next(r[4] for r in advice_rows if r[:3] == (ds, nz, loss))
            cells = [f"{g['a']:g}{' ✓' if g['a'] >= a_nom else ''}: {100 * g['last_test_acc']:.1f}" for g in runs]
            shown = "none" if a_est is None else f"{a_est:.3g}"
            md.append(f"| {_label(ds, nz)} | " + " | ".join(cells) + f" | {a_nom:.3g} | {shown} |")
        md.append("")
    atomic_write_text(RESULTS / "summary.md", "\n".join(md) + "\n")
    print("\n".join(md))

    _figures(summary, grid, advice_rows, advices, np)


def _figures(summary, grid, advice_rows, advices, np) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from asymloss.report import plot_advice, save_figure

    n = len(summary)
    fig = Figure(figsize=(3.0 * n, 6.2), layout="constrained")
    axes = fig.subplots(2, n)
    for j, s in enumerate(summary):
        for i, (M, name) in enumerate(((s["realised_transition"], "realised T"), (s["estimated_transition"], "T̂"))):
            ax = axes[i, j]
            im = ax.imshow(np.asarray(M), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{_label(s['dataset'], s['noise'])}\n{name}, r̃ = {s['noise_ratio']['realised']:.2f}",
                             fontsize=9)
            else:
                r = s["noise_ratio"]
                ax.set_title(f"{name}, r̃ = {r['estimated']:.2f} ± {r['estimated_se']:.2f}\n"
                             f"max|T̂−T| = {s['max_abs_error']['realised']:.3f}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.6, label="T[y, k] (rows: clean class)")
    save_figure(fig, IMG / "estimation-transitions.png")

    fig = Figure(figsize=(3.0 * n, 5.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i, loss in enumerate(("agce", "ael")):
        for j, (ds, nz) in enumerate(SETTINGS):
            ax = axes[i, j]
            runs = sorted((g for g in grid if g["dataset"] == ds and g["noise"] == nz and g["loss"] == loss),
                          key=lambda g: g["a"])
            if not runs:
                continue
            a = [g["a"] for g in runs]
            ax.plot(a, [100 * g["last_test_acc"] for g in runs], "o-", color="#1f77b4", label="last epoch")
            ax.plot(a, [100 * g["best_test_acc"] for g in runs], "s--", color="#9ecae1", ms=4, label="best epoch")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(a, [f"{v:g}" for v in a])
            row = next(r for r in advice_rows if r[:3] == (ds, nz, loss))
            ax.axvline(row[3], color="black", ls="--", lw=1.2, label="a* (nominal T)")
            if row[4] is not None and math.isfinite(row[4]):
                lo, hi = row[5], row[6]
                if isinstance(lo, float) and isinstance(hi, float):
                    ax.axvspan(lo, hi, color="#e6550d", alpha=0.15, lw=0, label="a* at r̃ ± 2·SE")
                ax.axvline(row[4], color="#e6550d", lw=1.6, label="a* advised (T̂)")
            shown = [v for v in (*a, row[3], row[4]) if v is not None and math.isfinite(v)]
            ax.set_xlim(min(shown) / 1.4, max(shown) * 1.4)
            ax.set_title(f"{_label(ds, nz)}\n{loss.upper()}{'(q=0.2)' if loss == 'agce' else ''}", fontsize=9)
            ax.set_xlabel("a", fontsize=8)
            if j == 0:
                ax.set_ylabel("test accuracy (%)")
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    save_figure(fig, IMG / "estimation-grid.png")

    adv = advices.get(("mnist", "pairflip:0.4"))
    if adv is not None:
        save_figure(plot_advice(adv, title=f"MNIST, pair-flip 0.4 — T̂ from {EST['subset']:,} images, "
                                           f"{EST['folds']} folds"), IMG / "estimation-advice-mnist-pairflip.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.relpath(REPO.parent / "shared" / "datasets"),
                    help="Directory of mnist.npz and fashion_mnist.npz (default: ../shared/datasets).")
    ap.add_argument("--workers", type=int, default=1, help="Processes of one thread each.")
    ap.add_argument("--only", choices=("estimate", "grid", "report"), default=None)
    args = ap.parse_args()
    _threads()
    t0 = time.time()
    jobs = []
    if args.only in (None, "estimate", "report"):
        jobs += [(estimate_job, (ds, nz, args.data_dir)) for ds, nz in SETTINGS]
    if args.only in (None, "grid", "report"):
        for ds, nz in SETTINGS:
            for loss in ("agce", "ael"):
                jobs += [(grid_job, (ds, nz, loss, a, args.data_dir)) for a in grid_points(loss, ds, nz)]
    print(f"{len(jobs)} jobs on {args.workers} worker(s)", flush=True)
    results = _run(jobs, args.workers)
    estimates = [r for r in results if "record" in r]
    grid = [r for r in results if "loss" in r]
    run = sum(r["run_s"] for r in results)
    print(f"done in {time.time() - t0:.0f} s wall; the runs took {run / 60:.1f} min (one thread each)", flush=True)
    if estimates and grid:
        report(estimates, grid)


if __name__ == "__main__":
    main()
