"""Reports: the table's numbers against hand-written run records, and the plots."""
from __future__ import annotations

import csv
import io
import json
import statistics
import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from typer.testing import CliRunner

from asymloss._io import atomic_write_json
from asymloss.cli import app
from asymloss.report import noise_label, noise_order, plot_curves, results_table, summarise
from asymloss.train import get_protocol

# (loss, noise) -> last-epoch accuracies (fractions) per seed; the agce/symmetric:0.8 cell has 2 seeds
ACCS = {
    ("ce", "clean"): [0.9912, 0.9890, 0.9901],
    ("ce", "symmetric:0.8"): [0.2210, 0.3050, 0.2480],
    ("ce", "asymmetric:0.4"): [0.8100, 0.8230, 0.8020],
    ("ce", "symmetric:0.2"): [0.9400, 0.9500, 0.9300],
    ("agce", "clean"): [0.9890, 0.9885, 0.9870],
    ("agce", "symmetric:0.8"): [0.7012, 0.7211],
    ("agce", "asymmetric:0.4"): [0.9310, 0.9402, 0.9388],
    ("agce", "symmetric:0.2"): [0.9850, 0.9810, 0.9820],
}


def _write_run(store, loss, noise, seed, last, *, status="complete", epochs=3, best=None, **cfg_over):
    cfg = get_protocol("paper-mnist", loss=loss, noise=noise, seed=seed, epochs=epochs, **cfg_over)
    accs = [last - 0.05 * (epochs - 1 - i) for i in range(epochs)]
    if best is not None:
        accs[0] = best
    rec = {
        "status": status, "config": cfg.to_dict(),
        "epochs": [{"epoch": i + 1, "lr": 0.01, "train_loss": 1.0, "train_acc_noisy": 0.5,
                    "train_acc_clean": 0.5, "test_acc": a, "seconds": 1.0} for i, a in enumerate(accs)],
        "final": ({"last_test_acc": accs[-1], "best_test_acc": max(accs), "best_epoch": accs.index(max(accs)) + 1,
                   "wall_time_s": 3.0, "images_per_s": 100.0} if status == "complete" else None),
    }
    atomic_write_json(store / "runs" / cfg.config_hash() / "record.json", rec)
    return cfg


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "store"
    for (loss, noise), accs in ACCS.items():
        for seed, a in enumerate(accs):
            _write_run(root, loss, noise, seed, a, best=min(a + 0.01 * (seed + 1), 1.0))
    # runs that must not count: an unfinished one and a failed one
    _write_run(root, "ce", "clean", 7, 0.10, status="running")
    cfg = _write_run(root, "agce", "clean", 8, 0.10, status="running")
    atomic_write_json(root / "runs" / cfg.config_hash() / "error.json", {"error": "RuntimeError: x"})
    return root


def _expected(loss, noise, metric="last"):
    accs = ACCS[(loss, noise)]
    if metric == "best":
        accs = [max(min(a + 0.01 * (s + 1), 1.0), a) for s, a in enumerate(accs)]
    pct = [100 * a for a in accs]
    return statistics.fmean(pct), statistics.stdev(pct), len(pct)


def test_summary_numbers_match_an_independent_computation(store):
    summ = summarise(store, "last")
    assert len(summ) == len(ACCS)
    for _, row in summ.iterrows():
        mean, std, n = _expected(row.loss, row.noise)
        assert row["mean"] == pytest.approx(mean, abs=1e-9)
        assert row["std"] == pytest.approx(std, abs=1e-9)  # sample std, ddof = 1
        assert row["n"] == n
    best = summarise(store, "best")
    for _, row in best.iterrows():
        mean, std, _ = _expected(row.loss, row.noise, "best")
        assert row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(std)
    pop = summarise(store, "last", ddof=0)  # population std on request
    row = pop[(pop.loss == "ce") & (pop.noise == "clean")].iloc[0]
    assert row["std"] == pytest.approx(statistics.pstdev([100 * a for a in ACCS[("ce", "clean")]]))


def test_markdown_table_cells_bold_order_and_n(store):
    text = results_table(store, metric="last", fmt="markdown")
    lines = text.splitlines()
    assert lines[0] == "| loss | clean | sym 0.2 | sym 0.8 | asym 0.4 |"
    assert lines[1] == "|---|---:|---:|---:|---:|"
    assert [l.split("|")[1].strip() for l in lines[2:]] == ["CE", "AGCE"]  # the paper's row order

    def cell(loss, noise, bold):
        m, s, n = _expected(loss, noise)
        text = f"{m:.2f} ± {s:.2f} (n={n})"  # n differs between cells, so every cell shows it
        return f"**{text}**" if bold else text

    assert lines[2] == "| CE | " + " | ".join([
        cell("ce", "clean", True), cell("ce", "symmetric:0.2", False), cell("ce", "symmetric:0.8", False),
        cell("ce", "asymmetric:0.4", False)]) + " |"
    assert lines[3] == "| AGCE | " + " | ".join([
        cell("agce", "clean", False), cell("agce", "symmetric:0.2", True), cell("agce", "symmetric:0.8", True),
        cell("agce", "asymmetric:0.4", True)]) + " |"
    # spot-check one cell by hand: CE clean = mean(99.12, 98.90, 99.01) ± stdev
    assert "**99.01 ± 0.11 (n=3)**" in lines[2]
    assert "71.12 ± 1.41 (n=2)" in lines[3]


def test_n_is_hidden_when_all_cells_have_the_same_number_of_seeds(store):
    _write_run(store, "agce", "symmetric:0.8", 2, 0.7100)
    text = results_table(store)
    assert "(n=" not in text
    m = statistics.fmean([70.12, 72.11, 71.00])
    s = statistics.stdev([70.12, 72.11, 71.00])
    assert f"**{m:.2f} ± {s:.2f}**" in text


def test_csv_and_latex(store):
    rows = list(csv.reader(io.StringIO(results_table(store, fmt="csv"))))
    assert rows[0] == ["loss", "clean", "sym 0.2", "sym 0.8", "asym 0.4"]
    m, s, n = _expected("agce", "asymmetric:0.4")
    assert rows[2][4] == f"{m:.2f} ± {s:.2f} (n={n})"  # no markup in CSV
    tex = results_table(store, fmt="latex")
    assert tex.startswith("\\begin{tabular}{lcccc}") and tex.rstrip().endswith("\\end{tabular}")
    assert f"\\textbf{{{m:.2f} $\\pm$ {s:.2f} (n={n})}}" in tex
    assert tex.count("\\textbf") == 4


def test_best_metric_changes_the_numbers(store):
    last, best = results_table(store, metric="last"), results_table(store, metric="best")
    m, s, _ = _expected("ce", "symmetric:0.8", "best")
    assert f"{m:.2f} ± {s:.2f}" in best and f"{m:.2f} ± {s:.2f}" not in last


def test_mixed_runs_are_refused_and_bad_arguments_named(tmp_path, store):
    _write_run(store, "ce", "clean", 0, 0.5, epochs=4)
    with pytest.raises(ValueError, match="differ in epochs"):
        results_table(store)
    with pytest.raises(ValueError, match="metric must be one of 'last', 'best'; got 'final'"):
        results_table(tmp_path, metric="final")
    with pytest.raises(ValueError, match="fmt must be one of 'markdown', 'csv', 'latex'; got 'html'"):
        results_table(store, fmt="html")
    with pytest.raises(FileNotFoundError, match="not found"):
        results_table(tmp_path / "nope")
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    with pytest.raises(ValueError, match="no complete runs"):
        results_table(empty)


def test_noise_columns_follow_the_paper_order():
    specs = ["asymmetric:0.4", "symmetric:0.8", "pairflip:0.45", "clean", "asymmetric:0.1", "symmetric:0.2"]
    assert sorted(specs, key=noise_order) == ["clean", "symmetric:0.2", "symmetric:0.8", "asymmetric:0.1",
                                             "asymmetric:0.4", "pairflip:0.45"]
    assert [noise_label(s) for s in ("clean", "symmetric:0.6", "asymmetric:0.4", "pairflip:0.45", "cifar10n:worst")] == [
        "clean", "sym 0.6", "asym 0.4", "pair 0.45", "cifar10n:worst"]


def test_table_cli(store):
    runner = CliRunner()
    res = runner.invoke(app, ["table", str(store), "--metric", "last", "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == results_table(store)
    res = runner.invoke(app, ["table", str(store), "--format", "html"])
    assert res.exit_code == 2 and "--format must be one of markdown, csv, latex; got 'html'" in res.output


def test_sqlite_file_gives_the_same_table(store):
    from asymloss.sweep import ResultsStore

    ResultsStore(store).consolidate()
    assert results_table(store / "results.sqlite", fmt="csv") == results_table(store, fmt="csv")


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_curves_plot_is_a_valid_image(store, tmp_path, fmt):
    path = plot_curves(store, tmp_path / "fig", fmt=fmt)
    assert path == tmp_path / "fig" / f"curves.{fmt}" and path.stat().st_size > 5000
    if fmt == "png":
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 800 and im.size[1] > 300
    else:
        root = ET.parse(path).getroot()
        assert root.tag.endswith("svg")
        assert "sym 0.8" in path.read_text()


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(
    st.tuples(st.sampled_from(["ce", "gce", "agce"]), st.sampled_from(["clean", "symmetric:0.4", "asymmetric:0.2"])),
    st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=4), min_size=1))
def test_table_property_mean_std_bold_against_numpy(cells):
    import numpy as np
    import pandas as pd

    rows = []
    for (loss, noise), accs in cells.items():
        for seed, a in enumerate(accs):
            rows.append({"id": f"{loss}{noise}{seed}", "protocol": "p", "loss": loss, "loss_label": loss.upper(),
                         "noise": noise, "seed": seed, "status": "complete", "config": "{}",
                         "last_test_acc": a, "best_test_acc": a})
    df = pd.DataFrame(rows)
    summ = summarise(df).set_index(["loss", "noise"])
    for key, accs in cells.items():
        pct = 100 * np.asarray(accs)
        assert summ.loc[key, "mean"] == pytest.approx(pct.mean(), abs=1e-9)
        assert summ.loc[key, "n"] == len(accs)
        if len(accs) > 1:
            assert summ.loc[key, "std"] == pytest.approx(pct.std(ddof=1), abs=1e-9)
        else:
            assert np.isnan(summ.loc[key, "std"])
    lines = results_table(df).splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        parts = [p.strip() for p in line.strip("|").split("|")]
        loss = parts[0].lower()
        for noise_col, cell in zip(header[1:], parts[1:]):
            noise = {"clean": "clean", "sym 0.4": "symmetric:0.4", "asym 0.2": "asymmetric:0.2"}[noise_col]
            if (loss, noise) not in cells:
                assert cell == "–"
                continue
            column = [round(100 * float(np.mean(v)), 2) for (l, n), v in cells.items() if n == noise]
            is_best = round(100 * float(np.mean(cells[(loss, noise)])), 2) == max(column)
            assert cell.startswith("**") == is_best
            # the cell shows the mean rounded to 2 decimals (compare numerically: a mean that sits on a
            # rounding boundary, e.g. 62.175, may round either way depending on summation order)
            shown = float(cell.strip("*").split()[0])
            assert abs(shown - 100 * np.mean(cells[(loss, noise)])) <= 0.005 + 1e-9
            n_differ = len({len(v) for v in cells.values()}) > 1
            assert ("(n=" in cell) == n_differ
