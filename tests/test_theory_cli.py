"""The `asymloss theory` command (typer's CliRunner; numbers from docs/theory.md, 'Worked values')."""
from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from asymloss.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["theory", *args], env={"COLUMNS": "160"})


def _row(output: str, label: str) -> str:
    line = next(l for l in output.splitlines() if label in l)
    return re.sub(r"\s+", " ", line)


def test_agce_under_symmetric_noise():
    res = _run("agce", "--a", "0.6", "--q", "0.6", "--noise", "symmetric:0.8", "--classes", "10")
    assert res.exit_code == 0, res.output
    assert "AGCE(a=0.6, q=0.6) under symmetric:0.8 (K = 10)" in res.output
    assert "0.675480" in _row(res.output, "asymmetry ratio r") and "closed form" in _row(res.output, "asymmetry ratio r")
    assert "0.444444" in _row(res.output, "noise ratio")
    assert "asymmetric" in _row(res.output, "verdict") and "not asymmetric" not in res.output
    # smallest a at q = 0.6: t = r̃^(1/0.4), a = t/(1 − t)
    t = (0.8 / 1.8) ** (1 / 0.4)
    assert f"a ≥ {t / (1 - t):.4g}" in res.output


def test_preset_asymmetric_noise_and_min_parameter():
    res = _run("aul", "--preset", "paper:cifar10", "--noise", "asymmetric:0.4", "--dataset", "cifar10")
    assert res.exit_code == 0, res.output
    assert "AUL(a=5.5, q=3) under asymmetric:0.4 (K = 10)" in res.output
    assert "0.669421" in res.output and "0.666667" in res.output
    assert "asymmetric" in _row(res.output, "verdict") and "not asymmetric" not in res.output
    assert "a ≥ 5.449" in res.output  # docs/theory.md, 'Worked values'
    assert "q ≤ " in res.output  # AUL: smaller q is safer


def test_not_asymmetric_and_numerical_verdict():
    res = _run("agce", "--a", "0.1", "--q", "0.1", "--noise", "symmetric:0.8", "--classes", "10")
    assert res.exit_code == 0 and "not asymmetric" in _row(res.output, "verdict")
    res = _run("nce+agce", "--preset", "paper:cifar10", "--noise", "symmetric:0.8", "--classes", "10")
    assert res.exit_code == 0, res.output
    assert "not of the form" in _row(res.output, "asymmetry ratio r")
    assert "numerical: argmin = e_y?" in _row(res.output, "verdict") and "not asymmetric" not in res.output
    assert "Σ_k T[y, k] L(u, k)" in re.sub(r"\s+", " ", res.output)  # the reason, printed verbatim
    assert "no closed form for nce+agce" in res.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["agc", "--noise", "symmetric:0.8", "--classes", "10"], "unknown loss 'agc'. Did you mean 'agce'"),
        (["agce", "--noise", "symetric:0.8", "--classes", "10"], "unknown noise kind 'symetric'"),
        (["agce", "--noise", "symmetric:1.5", "--classes", "10"], "must be >= 0.0 and < 1.0"),
        (["agce", "--noise", "symmetric:0.8"], "num_classes (or dataset) is required"),
        (["aul", "--a", "0.9", "--noise", "symmetric:0.8", "--classes", "10"], "a must be > 1"),
        (["agce", "--noise", "instance:0.4", "--classes", "10"], "no fixed transition matrix"),
        (["agce", "--param", "x", "--noise", "symmetric:0.8", "--classes", "10"], "--param expects key=value"),
        (["agce", "--method", "exact", "--noise", "symmetric:0.8", "--classes", "10"], "--method must be one of"),
    ],
)
def test_bad_arguments_fail_clearly(args, message):
    res = _run(*args)
    assert res.exit_code == 2
    assert "error:" in res.output and message in re.sub(r"\s+", " ", res.output)
