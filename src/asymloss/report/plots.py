"""Plots of sweep results (matplotlib's object-oriented API, no pyplot; PNG or SVG).

- :func:`plot_curves`: test accuracy per epoch, one panel per noise setting, one line per loss
  (mean over seeds) with a band of ± one sample std (ddof=1) where there are ≥ 2 seeds.
- :func:`plot_ratio`: final test accuracy against the asymmetry ratio r(ℓ) of the asymmetric
  losses (AGCE, AUL, AEL runs; r from :func:`asymloss.theory.asymmetry_ratio` with the run's
  resolved hyperparameters), one panel per noise setting, with the noise ratio r̃(T) marked when the
  theory part can compute it (the paper: the loss is asymmetric on T iff r̃(T) ≤ r(ℓ)).
- :func:`plot_loss_shapes`: for each loss of the form L(u, y) = ℓ(u_y), ℓ(u) and its *gradient
  weight* w(u) = −ℓ′(u)·u against u = p_y. With ∂L/∂z_j = ℓ′(p_y)·p_y·(1[j=y] − p_j) (docs/losses.md, 'Gradient of an ℓ(p_y) loss'),
  ∇_z L = w(p_y)·∇_z CE: w is the factor by which the loss scales the cross-entropy gradient
  (CE: w ≡ 1; MAE: w = 2u). It is measured from the loss module by autograd, as
  w = −(∂L/∂z_y)/(1 − p_y).
- :func:`plot_results`: all three for a results store.

    >>> from asymloss.report import plot_results
    >>> plot_results("store", "figures", fmt="png")        # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .._extras import require
from .._validation import check_choice
from .table import METRICS, _as_frame, loss_order, noise_label, noise_order

__all__ = ["plot_curves", "plot_ratio", "plot_loss_shapes", "plot_results", "loss_shape", "ratio_table",
           "PLOT_FORMATS", "ASYMMETRIC_LOSSES"]

PLOT_FORMATS = ("png", "svg")
ASYMMETRIC_LOSSES = ("agce", "aul", "ael")


def _matplotlib():
    """matplotlib's ``Figure``, or an ImportError naming the extra that installs matplotlib."""
    require("matplotlib")
    from matplotlib.figure import Figure

    return Figure


def _grid(n: int, ncols: int = 3, w: float = 4.2, h: float = 3.2):
    # matplotlib's object-oriented API: no pyplot, so the caller's backend and figures are left alone
    Figure = _matplotlib()
    ncols = max(1, min(ncols, 2 if n == 4 else n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(w * ncols, h * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(fig, out_dir: Union[str, os.PathLike], name: str, fmt: str) -> Path:
    from .._io import atomic_path

    check_choice("fmt", fmt, PLOT_FORMATS)
    path = Path(out_dir) / f"{name}.{fmt}"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=130, bbox_inches="tight")
    return path


def _colors(labels: Sequence[str]) -> dict:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def _ordered_rows(df) -> list[str]:
    pairs = dict.fromkeys(zip(df["loss"], df["loss_label"]))
    return [lab for _, lab in sorted(pairs, key=lambda p: loss_order(*p))]


def _title(df) -> str:
    bits = []
    for col in ("protocol", "dataset", "model"):
        vals = sorted(set(str(v) for v in df[col].dropna()))
        if vals:
            bits.append("/".join(vals))
    return ", ".join(bits)


def plot_curves(results: Any, out_dir: Union[str, os.PathLike], fmt: str = "png") -> Optional[Path]:
    """Test accuracy (%) per epoch; one panel per noise setting; mean ± std band over seeds.

    Returns the written file (``out_dir/curves.<fmt>``), or ``None`` when no run has epochs.
    """
    import numpy as np

    from ..sweep.store import load_epochs

    check_choice("fmt", fmt, PLOT_FORMATS)
    runs = _as_frame(results)
    epochs = load_epochs(results)
    if epochs.empty:
        return None
    df = epochs.merge(runs[["id", "loss", "loss_label", "noise", "seed"]], on="id")
    noises = sorted(df["noise"].unique(), key=noise_order)
    labels = _ordered_rows(df)
    colors = _colors(labels)
    fig, axes = _grid(len(noises))
    for ax, nz in zip(axes, noises):
        sub = df[df["noise"] == nz]
        for lab in labels:
            s = sub[sub["loss_label"] == lab]
            if s.empty:
                continue
            g = s.groupby("epoch")["test_acc"]
            mean = g.mean() * 100
            std = g.std(ddof=1).fillna(0.0) * 100
            ax.plot(mean.index, mean.values, color=colors[lab], lw=1.6, label=lab)
            if g.count().max() >= 2:
                ax.fill_between(mean.index, (mean - std).values, (mean + std).values, color=colors[lab],
                                alpha=0.18, lw=0)
        ax.set_title(noise_label(nz))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labs = axes[0].get_legend_handles_labels()
    seen = dict(zip(labs, handles))
    for ax in axes[1:]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(l, h)
    fig.legend([seen[l] for l in labels if l in seen], [l for l in labels if l in seen],
               loc="upper center", ncol=min(len(seen), 7), bbox_to_anchor=(0.5, 0.0), frameon=False)
    n_seeds = df.groupby(["loss_label", "noise"])["seed"].nunique()
    fig.suptitle(f"Test accuracy per epoch — {_title(runs)} (mean ± std over {n_seeds.min()}"
                 f"{'' if n_seeds.min() == n_seeds.max() else '–' + str(n_seeds.max())} seed(s))")
    fig.tight_layout()
    return _save(fig, out_dir, "curves", fmt)


def _loss_module(config: dict, num_classes: Optional[int] = None):
    """The loss module a run used (built as the engine builds it; no loss needs the class count)."""
    from .._datasets import dataset_num_classes
    from ..train import TrainConfig
    from ..train.loss import build_loss

    cfg = TrainConfig.from_dict(config)
    return build_loss(cfg, num_classes or dataset_num_classes(cfg.dataset))[0]


def _class_count(runs, dataset: str) -> Optional[int]:
    """The class count of ``dataset`` as the runs' records give it (else the dataset table's)."""
    from .._datasets import dataset_num_classes

    if "num_classes" in runs:
        known = runs.loc[runs["dataset"] == dataset, "num_classes"].dropna()
        if len(known):
            return int(known.iloc[0])
    return dataset_num_classes(dataset)


def _resolved_params(module, names: Sequence[str] = ("a", "q")) -> dict:
    return {k: float(getattr(module, k)) for k in names if hasattr(module, k)}


def _noise_ratio(spec: str, num_classes: int, dataset: str) -> Optional[float]:
    """r̃(T) of a noise spec (asymloss.theory.noise_ratio), or None when it cannot be computed."""
    from .. import theory

    if str(spec).split(":")[0] not in ("symmetric", "asymmetric", "pairflip", "uniform"):
        return None
    try:
        return float(theory.noise_ratio(spec, num_classes=num_classes, dataset=dataset))
    except Exception:  # e.g. asymmetric noise of a dataset without a class mapping
        return None


def ratio_table(results: Any, metric: str = "last"):
    """Accuracy (%) against the asymmetry ratio for the complete AGCE/AUL/AEL runs.

    One row per (loss with its resolved hyperparameters, noise setting): columns ``point`` (e.g.
    ``"AGCE(a=0.6, q=0.6)"``), ``label`` (the loss's label in the tables and curves, e.g. ``"AGCE"``), ``loss``, ``noise``, ``ratio`` (r(ℓ) from
    :func:`asymloss.theory.asymmetry_ratio`), ``mean``, ``std`` (ddof=1) and ``n`` over seeds.
    The hyperparameters are read from the loss module the engine builds for the run (preset and
    explicit ``loss_params`` resolved).
    """
    pd = require("pandas")

    from .. import theory

    check_choice("metric", metric, METRICS)
    runs = _as_frame(results)
    df = runs[(runs["status"] == "complete") & runs["loss"].isin(ASYMMETRIC_LOSSES)].copy()
    cols = ["point", "label", "loss", "noise", "dataset", "ratio", "mean", "std", "n"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    ratio_of: dict[str, tuple[float, str]] = {}
    for cfg_json in df["config"].unique():
        cfg = json.loads(cfg_json)
        params = _resolved_params(_loss_module(cfg))
        r = float(theory.asymmetry_ratio(cfg["loss"], **params))
        ratio_of[cfg_json] = (r, cfg["loss"].upper() + "(" + ", ".join(f"{k}={v:g}" for k, v in params.items()) + ")")
    df["ratio"] = [ratio_of[c][0] for c in df["config"]]
    df["point"] = [ratio_of[c][1] for c in df["config"]]
    df["label"] = df["loss_label"]  # the label of the loss's row in the tables and its line in the curves
    df["acc"] = df[f"{metric}_test_acc"].astype(float) * 100
    g = df.groupby(["point", "label", "loss", "noise", "dataset", "ratio"])["acc"]
    out = g.agg(mean="mean", n="count").reset_index()
    out["std"] = g.std(ddof=1).values
    return out[cols]


def plot_ratio(results: Any, out_dir: Union[str, os.PathLike], fmt: str = "png",
               metric: str = "last") -> Optional[Path]:
    """Final test accuracy (%) against the asymmetry ratio r(ℓ) for AGCE/AUL/AEL runs.

    One panel per noise setting; a point per (loss, hyperparameters) with a ± std error bar over
    seeds (:func:`ratio_table`), and the noise ratio r̃(T) as a dashed line where it is defined:
    points right of it are asymmetric on that noise (docs/theory.md, 'The asymmetry condition'). Returns ``out_dir/ratio.<fmt>``, or
    ``None`` when the results hold no complete AGCE/AUL/AEL run.
    """
    check_choice("fmt", fmt, PLOT_FORMATS)
    stats = ratio_table(results, metric)
    if stats.empty:
        return None
    noises = sorted(stats["noise"].unique(), key=noise_order)
    markers = {"agce": "o", "aul": "s", "ael": "^"}
    labels = [lab for _, lab in sorted(dict.fromkeys(zip(stats["loss"], stats["label"])),
                                       key=lambda p: loss_order(*p))]
    colors = _colors(labels)
    fig, axes = _grid(len(noises))
    runs = _as_frame(results)
    for ax, nz in zip(axes, noises):
        sub = stats[stats["noise"] == nz].sort_values(["ratio", "label"])
        xs, place = _spread(sub["ratio"].tolist())
        for x, where, (_, row) in zip(xs, place, sub.iterrows()):
            ax.errorbar(x, row["mean"], yerr=None if math.isnan(row["std"]) else row["std"],
                        fmt=markers.get(row["loss"], "o"), color=colors[row["label"]], ms=8, capsize=3,
                        label=row["label"])
            if where:  # points at (nearly) the same ratio are spread apart and named, outwards
                offset, ha = {"left": ((-7, -3), "right"), "right": ((7, -3), "left"),
                              "above": ((0, 9), "center")}[where]
                top = row["mean"] + (0 if where != "above" or math.isnan(row["std"]) else row["std"])
                ax.annotate(row["label"], (x, top), xytext=offset, textcoords="offset points",
                            fontsize=7, ha=ha, color=colors[row["label"]])
        dataset = str(sub["dataset"].iloc[0])
        K = _class_count(runs, dataset)
        rt = _noise_ratio(nz, K, dataset) if K else None
        if rt is not None and rt <= 1.0:
            ax.axvline(rt, color="0.35", ls="--", lw=1)
            ax.annotate(f"r̃(T) = {rt:.3g}", (rt, 0.03), xycoords=("data", "axes fraction"),
                        xytext=(4, 0), textcoords="offset points", color="0.3", fontsize=8)
        ax.set_title(noise_label(nz))
        ax.set_xlabel("asymmetry ratio r(ℓ)")
        ax.set_ylabel(f"{metric}-epoch test accuracy (%)")
        ax.set_xlim(-0.02, 1.08)
        ax.grid(alpha=0.3)
    seen: dict = {}
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(l, h)
    shown = [l for l in labels if l in seen]
    fig.legend([seen[l] for l in shown], shown, loc="upper center", ncol=min(len(shown), 4),
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    used = dict.fromkeys(f"{lab}: {pt[pt.index('(') + 1:-1]}, r = {r:.3g}" for lab, pt, r in
                         zip(stats["label"], stats["point"], stats["ratio"]))
    fig.suptitle(f"Accuracy vs asymmetry ratio — {_title(runs[runs['loss'].isin(ASYMMETRIC_LOSSES)])} "
                 "(mean ± std over seeds)")
    fig.tight_layout()
    rows = math.ceil(len(shown) / 4)
    fig.text(0.5, -0.03 - 0.09 * rows * 3.2 / fig.get_figheight(), "Hyperparameters used: " + "; ".join(used) + ".",
             ha="center", va="top", fontsize=8, wrap=True)
    return _save(fig, out_dir, "ratio", fmt)


def _spread(ratios: Sequence[float], gap: float = 0.03, step: float = 0.03) -> tuple[list, list]:
    """x positions for points at these (sorted) ratios: points closer than ``gap`` form a cluster,
    spread symmetrically by ``step`` around its mean; and where each clustered point's name goes
    (``"left"`` of the first, ``"right"`` of the last, ``"above"`` the others; ``None`` alone)."""
    clusters: list[list[int]] = []
    for i, r in enumerate(ratios):
        if clusters and r - ratios[clusters[-1][-1]] < gap:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    xs, place = [0.0] * len(ratios), [None] * len(ratios)
    for c in clusters:
        mid = sum(ratios[i] for i in c) / len(c)
        for k, i in enumerate(c):
            xs[i] = mid + (k - (len(c) - 1) / 2) * step if len(c) > 1 else ratios[i]
            if len(c) > 1:
                place[i] = "left" if k == 0 else "right" if k == len(c) - 1 else "above"
    return xs, place


def loss_shape(module, num_classes: int = 10, u=None, *, tol: float = 1e-4):
    """``(u, ℓ(u), w(u))`` of a loss module of the form ℓ(p_y), or ``None`` if it is not of that form.

    ``u`` (default 200 points in [0.001, 0.999]) is p_y. The form is checked numerically: the
    loss must not change when the remaining probability mass is spread differently over the other
    classes. ``w(u) = −ℓ′(u)·u = −(∂L/∂z_y)/(1 − u)`` by autograd (float64).
    """
    import numpy as np
    import torch

    if u is None:
        u = np.linspace(0.001, 0.999, 200)
    u_t = torch.as_tensor(np.asarray(u, dtype=np.float64))
    K = int(num_classes)
    rest_even = torch.full((K - 1,), 1.0 / (K - 1), dtype=torch.float64)
    rest_skew = torch.arange(1, K, dtype=torch.float64)
    rest_skew = rest_skew / rest_skew.sum()
    for m in module.modules():
        if hasattr(m, "reduction"):
            m.reduction = "none"
    target = torch.zeros(len(u_t), dtype=torch.long)

    def evaluate(rest):
        p = torch.cat([u_t[:, None], (1 - u_t)[:, None] * rest[None, :]], dim=1)
        z = p.log().requires_grad_(True)
        values = module(z, target)
        if values.shape != (len(u_t),):
            raise ValueError("the loss module did not honour reduction='none'")
        values.sum().backward()
        return values.detach().double(), z.grad[:, 0].double()

    with torch.enable_grad():
        l_even, g_even = evaluate(rest_even)
        l_skew, _ = evaluate(rest_skew)
    if not torch.allclose(l_even, l_skew, rtol=tol, atol=tol):
        return None
    w = -g_even / (1 - u_t)
    return u_t.numpy(), l_even.numpy(), w.numpy()


def plot_loss_shapes(configs: Sequence[dict], out_dir: Union[str, os.PathLike], fmt: str = "png") -> Optional[Path]:
    """ℓ(u) and the gradient weight w(u) = −ℓ′(u)·u of each ℓ(p_y) loss among ``configs``.

    ``configs`` are run configs (dicts); each distinct (loss, hyperparameters, preset) gives one
    panel with the loss built as the engine builds it. Losses that are not of the form ℓ(p_y)
    (NCE, NFL and most active–passive pairs) are listed in the figure's footnote instead.
    Returns ``out_dir/loss_shapes.<fmt>`` or ``None`` when there is nothing to draw.
    """
    from ..sweep.grid import loss_label

    check_choice("fmt", fmt, PLOT_FORMATS)
    from .._datasets import dataset_num_classes

    uniq: dict[tuple, dict] = {}
    for cfg in configs:
        # ℓ(p_y) does not depend on the class count; K only places the other classes' mass for the
        # check that a loss has that form (10 when the dataset's files alone know its count)
        key = (cfg["loss"], json.dumps(cfg.get("loss_params") or {}, sort_keys=True), cfg.get("loss_preset"),
               dataset_num_classes(cfg["dataset"]) or 10)
        uniq.setdefault(key, cfg)
    shapes, skipped = [], []
    for key in sorted(uniq, key=lambda k: loss_order(k[0], k[0])):
        cfg = uniq[key]
        module = _loss_module(cfg, key[3])
        # a loss that needs training mechanics (views, positions, complementary labels) is not ℓ(p_y)
        shape = None if module.mechanics() else loss_shape(module, key[3])
        label = loss_label(cfg["loss"], cfg.get("loss_params"))  # as in the tables and the curves
        params = _resolved_params(module, ("a", "q", "gamma", "alpha", "beta", "A"))
        if params:  # the hyperparameters the run used (preset and explicit ones resolved)
            label += "\n" + ", ".join(f"{k}={v:g}" for k, v in params.items())
        (shapes.append((label, shape)) if shape is not None else skipped.append(loss_label(cfg["loss"], cfg.get("loss_params"))))
    if not shapes:
        return None
    fig, axes = _grid(len(shapes), ncols=4, w=3.6, h=2.8)
    for ax, (label, (u, l, w)) in zip(axes, shapes):
        ax.plot(u, l, color="tab:blue", lw=1.8)
        ax.set_ylabel("ℓ(u)", color="tab:blue")
        ax.tick_params(axis="y", colors="tab:blue")
        ax2 = ax.twinx()
        ax2.plot(u, w, color="tab:orange", lw=1.6, ls="--")
        ax2.set_ylabel("w(u) = −ℓ′(u)·u", color="tab:orange")
        ax2.tick_params(axis="y", colors="tab:orange")
        lo, hi = float(min(w.min(), 0)), float(max(w.max(), 0))
        ax2.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
        ax.set_xlabel("u = p_y")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    note = "w(u): the factor on the cross-entropy gradient, ∇_z L = w(p_y)·(p − e_y)."
    if skipped:
        note += "  Not of the form ℓ(p_y), not drawn: " + ", ".join(sorted(set(skipped))) + "."
    fig.suptitle("Loss shapes ℓ(u) (solid) and gradient weights (dashed)")
    fig.tight_layout()
    fig.text(0.5, -0.01, note, ha="center", va="top", fontsize=8)
    return _save(fig, out_dir, "loss_shapes", fmt)


def plot_results(results: Any, out_dir: Union[str, os.PathLike], fmt: str = "png",
                 metric: str = "last") -> dict[str, Optional[Path]]:
    """Write ``curves``, ``ratio`` and ``loss_shapes`` for a results store into ``out_dir``.

    Returns ``{name: path or None}`` (``None``: nothing to draw, e.g. no AGCE/AUL/AEL runs).
    """
    check_choice("fmt", fmt, PLOT_FORMATS)
    check_choice("metric", metric, METRICS)
    _matplotlib()  # a missing matplotlib is reported before anything is read
    runs = _as_frame(results)
    if runs.empty:
        raise ValueError("the results hold no runs: nothing to plot.")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    configs = [json.loads(c) for c in runs["config"].unique() if c and c != "{}"]
    return {
        "curves": plot_curves(results, out_dir, fmt),
        "ratio": plot_ratio(results, out_dir, fmt, metric),
        "loss_shapes": plot_loss_shapes(configs, out_dir, fmt),
    }
