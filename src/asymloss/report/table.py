"""Paper-style tables: losses × noise settings, mean ± std over seeds.

    >>> from asymloss.report import results_table
    >>> print(results_table("store", metric="last", fmt="markdown"))      # doctest: +SKIP

Conventions (documented in the README):

- only ``complete`` runs count; accuracy is shown in percent with 2 decimals;
- the std is the *sample* standard deviation over seeds (``ddof=1``, what ``numpy.std(ddof=1)``
  and ``pandas.Series.std`` give); a cell with a single seed shows the mean only;
- the best mean of each column is bold (all tied cells, compared at the shown precision);
- when the number of seeds differs between cells, every cell shows ``(n=k)``;
- columns follow the paper's order: clean, symmetric 0.2…0.8, asymmetric 0.1…0.4, then others.
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional, Union

from .._extras import require
from .._validation import check_choice, check_number

__all__ = ["summarise", "results_table", "noise_label", "noise_order", "loss_order", "METRICS", "FORMATS"]

METRICS = ("last", "best")
FORMATS = ("markdown", "csv", "latex")
_KIND_ORDER = {"clean": 0, "symmetric": 1, "asymmetric": 2}
_SHORT = {"symmetric": "sym", "asymmetric": "asym", "pairflip": "pair", "uniform": "unif", "instance": "inst"}


def _split_noise(spec: str) -> tuple[str, Optional[float]]:
    kind, _, rest = str(spec).partition(":")
    try:
        return kind.strip().lower(), float(rest)
    except ValueError:
        return kind.strip().lower(), None


def noise_order(spec: str) -> tuple:
    """Sort key putting noise settings in the paper's order (clean, sym ↑, asym ↑, others)."""
    kind, rate = _split_noise(spec)
    return (_KIND_ORDER.get(kind, 3), kind if kind not in _KIND_ORDER else "", rate if rate is not None else -1.0, str(spec))


def noise_label(spec: str) -> str:
    """Column header: ``"symmetric:0.6"`` → ``"sym 0.6"``; ``"clean"`` stays."""
    kind, rate = _split_noise(spec)
    if kind in _SHORT and rate is not None:
        return f"{_SHORT[kind]} {rate:g}"
    return str(spec)


def loss_order(loss: str, label: str) -> tuple:
    """Sort key putting losses in the order of the paper's tables, then the others."""
    from ..sweep.grid import PAPER_TABLE_LOSSES

    idx = PAPER_TABLE_LOSSES.index(loss) if loss in PAPER_TABLE_LOSSES else len(PAPER_TABLE_LOSSES)
    return (idx, loss, label)


def _as_frame(results: Any):
    pd = require("pandas")

    if isinstance(results, pd.DataFrame):
        return results
    from ..sweep.store import load_results

    return load_results(results)


_IGNORED_FOR_GROUPING = {"seed", "noise_seed", "data_dir", "device", "noise", "loss", "loss_params", "protocol"}


def summarise(results: Any, metric: str = "last", *, ddof: int = 1):
    """Mean, std (``ddof``) and count of the metric, in percent, per (row, noise) cell.

    ``results`` is a store directory, its SQLite file, or a :func:`~asymloss.sweep.load_results`
    DataFrame. Returns a DataFrame with columns ``row, loss, noise, mean, std, n`` (accuracy in
    percent; ``std`` is NaN when n ≤ ddof). Raises ``ValueError`` when two complete runs share a
    cell and a seed but differ in another config field (the table would mix them).
    """
    import json

    pd = require("pandas")

    check_choice("metric", metric, METRICS)
    check_number("ddof", ddof, ge=0, integer=True)
    df = _as_frame(results)
    df = df[df["status"] == "complete"].copy()
    cols = ["row", "loss", "noise", "mean", "std", "n"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    multi = df["protocol"].nunique() > 1
    df["row"] = [f"{p} / {l}" if multi else l for p, l in zip(df["protocol"], df["loss_label"])]
    dup = df.duplicated(["row", "noise", "seed"], keep=False)
    if dup.any():
        a, b = df[dup].sort_values(["row", "noise", "seed"]).iloc[:2]["config"]
        ca, cb = json.loads(a), json.loads(b)
        diff = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k) and k not in _IGNORED_FOR_GROUPING)
        raise ValueError(
            "results mix runs that share loss, noise and seed but differ in "
            f"{', '.join(diff) or 'their config'}; select one set of runs (filter the DataFrame) first."
        )
    col = f"{metric}_test_acc"
    df["value"] = df[col].astype(float) * 100.0
    g = df.groupby(["row", "loss", "noise"], sort=False)["value"]
    out = g.agg(mean="mean", n="count").reset_index()
    out["std"] = g.std(ddof=ddof).values
    out = out[cols]
    order = sorted(range(len(out)), key=lambda i: (loss_order(out["loss"].iat[i], out["row"].iat[i]),
                                                   noise_order(out["noise"].iat[i])))
    return out.iloc[order].reset_index(drop=True)


def _fmt_cell(mean: float, std: float, n: int, show_n: bool) -> str:
    text = f"{mean:.2f}" if (std is None or math.isnan(std)) else f"{mean:.2f} ± {std:.2f}"
    return f"{text} (n={n})" if show_n else text


def _markdown_blocks(header: list[str], rows: list[list[str]], width: Optional[int]) -> list[str]:
    """Markdown tables of ``rows``; with ``width``, the noise columns are split over as many tables
    as it takes for every line to fit (each repeats the loss column), so nothing is cut or wrapped."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    need = [max(len(c) for c in [h] + [r[j] for r in rows]) + 3 for j, h in enumerate(header)]
    groups: list[list[int]] = [[]]
    used = 1 + need[0]
    for j in range(1, len(header)):
        if width is not None and groups[-1] and used + need[j] > width:
            groups.append([])
            used = 1 + need[0]
        groups[-1].append(j)
        used += need[j]
    blocks = []
    for cols in groups:
        lines = [line([header[0]] + [header[j] for j in cols]), "|---|" + "---:|" * len(cols)]
        lines += [line([r[0]] + [r[j] for j in cols]) for r in rows]
        blocks.append("\n".join(lines))
    return blocks


def results_table(results: Any, metric: str = "last", fmt: str = "markdown", *, ddof: int = 1,
                  width: Optional[int] = None) -> str:
    """The paper-style table as text: rows = losses, columns = noise settings.

    Cells are mean ± std of the ``metric`` (``"last"`` or ``"best"`` epoch test accuracy) over
    seeds, in percent with 2 decimals; the best mean of each column is bold (``**…**`` in
    Markdown, ``\\textbf{…}`` in LaTeX; CSV carries no markup); ``(n=k)`` follows every cell when
    the number of seeds is not the same in all cells; a missing cell is ``–``. With ``width``
    (characters), a Markdown table wider than that is split into several tables by columns, each
    repeating the loss column (for a terminal; CSV and LaTeX are never split).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": ["a", "b", "c"], "protocol": "p", "loss": "ce", "loss_label": "CE",
    ...     "noise": "clean", "seed": [0, 1, 2], "status": "complete", "config": "{}",
    ...     "last_test_acc": [0.90, 0.92, 0.94], "best_test_acc": [0.9, 0.92, 0.94]})
    >>> print(results_table(df))
    | loss | clean |
    |---|---:|
    | CE | **92.00 ± 2.00** |
    """
    check_choice("fmt", fmt, FORMATS)
    if width is not None:
        check_number("width", width, ge=20, integer=True)
    summ = summarise(results, metric, ddof=ddof)
    if summ.empty:
        raise ValueError("no complete runs in the results: nothing to tabulate.")
    noises = sorted(summ["noise"].unique(), key=noise_order)
    rows = list(dict.fromkeys(summ["row"]))
    cells = {(r, n): (m, s, k) for r, n, m, s, k in zip(summ["row"], summ["noise"], summ["mean"], summ["std"], summ["n"])}
    show_n = summ["n"].nunique() > 1
    best = {}
    for n in noises:
        means = [round(cells[(r, n)][0], 2) for r in rows if (r, n) in cells]
        best[n] = max(means) if means else None

    def cell(r: str, n: str, markup: str) -> str:
        if (r, n) not in cells:
            return "–"
        m, s, k = cells[(r, n)]
        text = _fmt_cell(m, s, int(k), show_n)
        if markup == "latex":
            text = text.replace("±", "$\\pm$")
        if round(m, 2) == best[n]:
            if markup == "markdown":
                return f"**{text}**"
            if markup == "latex":
                return f"\\textbf{{{text}}}"
        return text

    header = ["loss"] + [noise_label(n) for n in noises]
    if fmt == "markdown":
        return "\n\n".join(_markdown_blocks(header, [[r] + [cell(r, n, "markdown") for n in noises] for r in rows],
                                               width))
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([r] + [cell(r, n, "csv") for n in noises])
        return buf.getvalue().rstrip("\n")
    esc = lambda s: s.replace("&", "\\&").replace("_", "\\_").replace("%", "\\%")  # noqa: E731
    lines = ["\\begin{tabular}{l" + "c" * len(noises) + "}", "\\hline",
             " & ".join(esc(h) for h in header) + " \\\\", "\\hline"]
    lines += [" & ".join([esc(r)] + [cell(r, n, "latex") for n in noises]) + " \\\\" for r in rows]
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines)
