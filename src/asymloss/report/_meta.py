"""The trajectory of meta-learned loss hyperparameters (docs/meta.md) over the epochs of runs.

Built with matplotlib's object-oriented ``Figure`` API (no pyplot state, no backend switch), so it
is safe in any process, thread or notebook.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

__all__ = ["plot_meta_trajectory"]


def plot_meta_trajectory(records: Union[dict, Sequence[dict]], *, labels: Optional[Sequence[str]] = None,
                         title: Optional[str] = None, ncols: int = 3):
    """A ``matplotlib.figure.Figure``: one panel per meta-learned hyperparameter (``loss: name`` when
    the runs' losses differ), its value against the epoch (0 = the start value), one line per run
    record (``labels``; default: noise and seed; one colour per label across the panels), the start
    value dashed.

    Raises ``ValueError`` when no record holds meta-learned hyperparameters."""
    from .._extras import require
    from ..train.meta import meta_trajectory

    require("matplotlib")
    import matplotlib
    from matplotlib.figure import Figure

    records = [records] if isinstance(records, dict) else list(records)
    if labels is not None and len(labels) != len(records):
        raise ValueError(f"labels: one per record ({len(records)}); got {len(labels)}.")
    losses = {(r.get("config") or {}).get("loss") for r in records}
    panels: dict[str, list] = {}
    for i, rec in enumerate(records):
        cfg = rec.get("config") or {}
        label = labels[i] if labels is not None else f"{cfg.get('noise', '?')}, seed {cfg.get('seed', '?')}"
        for name, values in meta_trajectory(rec).items():
            key = f"{cfg.get('loss')}: {name}" if len(losses) > 1 else name
            panels.setdefault(key, []).append((i, label, values))
    if not panels:
        raise ValueError("records: none holds meta-learned hyperparameters (train with meta_set=...).")
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.1 * nrows + (0.4 if title else 0)), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    cmap = matplotlib.colormaps["tab10"]
    colours = {}   # one colour per label, the same in every panel
    for lines in panels.values():
        for _, label, _ in lines:
            colours.setdefault(label, cmap(len(colours) % 10))
    for ax, (key, lines) in zip(axes, panels.items()):
        for i, label, values in lines:
            ax.plot(range(len(values)), values, marker="o", ms=3, lw=1.4, color=colours[label], label=label)
        starts = {round(v[0], 12) for _, _, v in lines}
        for s in starts:
            ax.axhline(s, color="grey", lw=1, ls="--", zorder=0)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", ms=3, lw=1.4, label=lab) for lab, c in colours.items()]
    handles.append(Line2D([], [], color="grey", lw=1, ls="--", label="start value"))
    axes[0].legend(handles=handles, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
