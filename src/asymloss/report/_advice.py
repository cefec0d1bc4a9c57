"""The advice figure: T̂ as a heatmap beside the candidates' asymmetry ratios against r̃(T̂).

Built with matplotlib's object-oriented ``Figure`` API (no pyplot state, no backend switch), so it
is safe in any process, thread or notebook.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

__all__ = ["plot_advice", "save_figure"]

_COLOURS = {"yes": "#1a9850", "no": "#d73027", "uncertain": "#f39c12"}


def plot_advice(advice, *, title: Optional[str] = None, annotate: Optional[bool] = None):
    """A two-panel ``matplotlib.figure.Figure`` for an :class:`asymloss.theory.Advice`.

    Left: T̂ (rows = clean class, columns = noisy label) as a heatmap, its entries written in the
    cells when K ≤ 12 (``annotate``). Right: the asymmetry ratio r of every candidate with one
    (coloured by verdict: asymmetric, not, uncertain) against r̃(T̂), dashed, with its interval
    r̃ ± z·SE shaded when there is one: a candidate right of the line is asymmetric on T̂.
    """
    from matplotlib.figure import Figure

    T = np.asarray(advice.transition, dtype=np.float64)
    K = T.shape[0]
    rated = [c for c in advice.candidates if c.ratio is not None]
    height = max(4.0, 1.2 + 0.32 * len(rated), 0.3 * K + 1.5 if K <= 20 else 4.0)
    fig = Figure(figsize=(13.0, min(height, 9.0)), layout="constrained")
    ax_t, ax_r = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.6]})

    im = ax_t.imshow(T, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    if annotate is None:
        annotate = K <= 12
    if annotate:
        for y in range(K):
            for k in range(K):
                v = T[y, k]
                ax_t.text(k, y, f"{v:.2f}".lstrip("0") if v < 1 else "1", ha="center", va="center",
                          fontsize=7 if K > 8 else 8, color="white" if v > 0.55 else "#222222")
    if K <= 20:
        ax_t.set_xticks(range(K))
        ax_t.set_yticks(range(K))
    ax_t.set_xlabel("noisy label k")
    ax_t.set_ylabel("clean class y")
    rt = advice.noise_ratio
    se = advice.noise_ratio_se
    pm = "" if se is None else f" ± {se:.3f}"
    ax_t.set_title(f"T̂  (r̃ = {rt:.3f}{pm})" if math.isfinite(rt) else "T̂  (r̃ = ∞)", fontsize=11)
    fig.colorbar(im, ax=ax_t, shrink=0.85, label="T̂[y, k]")

    if rated:
        ys = np.arange(len(rated))[::-1]
        for y, c in zip(ys, rated):
            ax_r.scatter([c.ratio], [y], s=46, color=_COLOURS.get(c.verdict, "grey"), zorder=3,
                         edgecolor="black", linewidth=0.4)
        labels = [c.label + ("" if c.sources == ("default",) else f"  [{', '.join(_short(s) for s in c.sources)}]")
                  for c in rated]
        ax_r.set_yticks(ys, labels, fontsize=8)
        ax_r.set_ylim(-0.7, len(rated) - 0.3)
    else:
        ax_r.set_yticks([])
        ax_r.text(0.5, 0.5, "no candidate of the form ℓ(p_y)", ha="center", va="center", transform=ax_r.transAxes)
    right = 1.05
    if math.isfinite(rt):
        ax_r.axvline(min(rt, right), color="black", ls="--", lw=1.2, label="r̃(T̂)" + (" (≥ 1)" if rt >= 1 else ""))
    if advice.interval is not None:
        lo, hi = advice.interval
        ax_r.axvspan(min(lo, right), min(hi, right), color="grey", alpha=0.22, lw=0,
                     label=f"r̃ ± {advice.z:g}·SE (folds)")
    for verdict, colour in _COLOURS.items():
        if any(c.verdict == verdict for c in rated):
            ax_r.scatter([], [], s=46, color=colour, edgecolor="black", linewidth=0.4,
                         label={"yes": "asymmetric", "no": "not asymmetric", "uncertain": "uncertain"}[verdict])
    ax_r.set_xlim(-0.03, right)
    ax_r.set_xlabel("asymmetry ratio r(ℓ)   (asymmetric on T̂ iff r ≥ r̃)")
    ax_r.grid(axis="x", alpha=0.3)
    ax_r.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_r.set_title({"dominant": "candidates", "not-dominant": "r̃ ≥ 1: no ℓ(p_y) loss is asymmetric",
                    "uncertain": "T̂ too uncertain to decide"}[advice.status], fontsize=11)
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def _short(source: str) -> str:
    return source.replace("paper:", "")


def save_figure(fig, path: Union[str, os.PathLike], *, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` atomically; the format is the file's suffix (png, svg, pdf)."""
    from .._io import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"path must end in .png, .svg or .pdf; got {str(path)!r}.")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path
