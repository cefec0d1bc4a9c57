"""Readable at 80 columns: the main listings, the training progress bar, theory and tables wrap or
stack rather than cut (no "…", no line wider than the terminal, every name whole)."""
from __future__ import annotations

import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from asymloss.cli import app
from asymloss.losses import list_losses
from asymloss.sweep import PAPER_NOISES
from asymloss.train import get_protocol, list_protocols

runner = CliRunner()


def _render(*args: str, width: int = 80) -> str:
    res = runner.invoke(app, list(args), env={"COLUMNS": str(width)})
    assert res.exit_code == 0, res.output
    _readable(res.output, width)
    return res.output


def _readable(text: str, width: int) -> None:
    cut = [line for line in text.splitlines() if re.search(r"…\s*([│┃|]|$)", line)]  # a cell cut short
    assert not cut, "\n".join(cut)
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, "\n".join(too_wide)
    open_right = [line for line in text.splitlines()
                  if line[:1] and line[0] in "│┃┏┡└" and line.rstrip()[-1] not in "│┃┓┩┘"]
    assert not open_right, "a table cropped at the right:\n" + "\n".join(open_right)


def _cells(text: str) -> set[str]:
    """Every whitespace-separated word inside a table's cells."""
    return set(re.split(r"[\s│┃|,]+", text))


def test_protocols_at_80_columns_stack_their_settings():
    out = _render("protocols")
    words = _cells(out)
    for name in list_protocols():
        c = get_protocol(name)
        assert {name, c.dataset, c.model, str(c.loss_preset), c.noise_sampler} <= words, name
    wide = _render("protocols", width=220)  # a wide terminal keeps one row per protocol
    assert len(wide.splitlines()) < len(out.splitlines())


def test_losses_at_80_columns_keep_every_name_whole():
    out = _render("losses")
    words = _cells(out)
    assert set(list_losses()) <= words
    assert {"paper:cifar100", "paper:webvision", "active+passive"} <= words
    _render("losses", "--preset", "paper:cifar10")


@pytest.mark.parametrize("args", [
    ["theory", "agce", "--a", "0.6", "--q", "0.6", "--noise", "symmetric:0.8", "--classes", "10"],
    ["theory", "nce+agce", "--preset", "paper:cifar10", "--noise", "asymmetric:0.4", "--dataset", "cifar10"],
    ["theory", "aul", "--param", "a=5.5", "--param", "q=3", "--noise", "pairflip:0.45", "--classes", "100"],
])
def test_theory_at_80_columns(args):
    out = _render(*args)
    assert "verdict" in out


def test_table_at_80_columns_is_split_by_columns(tmp_path):
    from test_report import _write_run

    root = tmp_path / "store"
    for loss in ("ce", "nce+agce", "nce+rce", "agce"):
        for nz in PAPER_NOISES:
            for seed in (0, 1):
                _write_run(root, loss, nz, seed, 0.5 + 0.01 * seed + 0.001 * len(loss))
    out = _render("table", str(root), "--width", "80")
    assert out.count("| loss |") >= 2  # several tables, each with the loss column
    for label in ("CE", "NCE+AGCE", "NCE+RCE", "AGCE", "clean", "sym 0.8", "asym 0.4"):
        assert f"| {label} |" in out or f" {label} |" in out
    one = runner.invoke(app, ["table", str(root)]).output  # not a terminal, no --width: one table
    assert one.count("| loss |") == 1


def test_train_progress_bar_at_80_columns_wraps_the_epoch_figures():
    from asymloss.train.engine import _progress_bar

    console = Console(width=80, record=True, force_terminal=True, color_system=None)
    bar = _progress_bar(get_protocol("demo-digits", loss="nce+agce", noise="asymmetric:0.4"))
    task = bar.add_task("train", total=920, info="ep 12/40 loss 0.513 acc 0.836 test 0.972")
    bar.advance(task, 300)
    console.print(bar.make_tasks_table(bar.tasks))
    text = console.export_text()
    _readable(text, 80)
    assert "nce+agce asymmetric:0.4" in text and "300/920" in text and "ETA" in text
    assert "test 0.972" in " ".join(text.split())


def test_sweep_dry_run_at_80_columns(tmp_path):
    out = _render("sweep", "--protocol", "demo-digits", "--losses", "ce,nce+agce,ce_eps+mae", "--noise",
                  "clean,asymmetric:0.4", "--out", str(tmp_path / "s"), "--dry-run")
    assert {"NCE+AGCE", "CE_EPS+MAE", "asymmetric:0.4"} <= _cells(out)
