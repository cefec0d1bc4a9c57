"""asymloss.theory.advise, the advice figure and the `asymloss advise` command (numbers from the
closed forms of docs/estimation.md and the theory section of the README)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from asymloss import theory
from asymloss.cli import app
from asymloss.noise import transition_matrix

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def _by_label(adv):
    return {c.label: c for c in adv.candidates}


def test_asymmetric_noise_verdicts_margins_and_bounds():
    adv = theory.advise("asymmetric:0.4", ["ael,a=2", "ael,a=3", "agce,a=0.6,q=0.6", "aul@paper:cifar10"],
                        dataset="mnist")
    assert adv.status == "dominant" and adv.noise_ratio == pytest.approx(2 / 3)
    assert adv.noise_ratio_se is None and adv.interval is None
    c = _by_label(adv)
    assert c["AEL(a=2)"].verdict == "no" and c["AEL(a=3)"].verdict == "yes"
    assert c["AEL(a=2)"].margin == pytest.approx(math.exp(-0.5) - 2 / 3)
    assert c["AEL(a=3)"].bound.value == pytest.approx(2.466, abs=1e-3)  # −1/ln r̃
    assert c["AGCE(a=0.6, q=0.6)"].bound.value == pytest.approx(0.5696, abs=1e-4)
    assert c["AGCE(a=0.6, q=0.6)"].verdict == "yes"  # r = 0.675480 ≥ 2/3
    aul = c["AUL(a=5.5, q=3)"]
    assert aul.sources == ("paper:cifar10",) and aul.bound.value == pytest.approx(5.449, abs=1e-3)
    assert aul.verdict == "yes" and aul.ratio == pytest.approx(0.669421, abs=1e-6)
    assert "1 candidate" not in adv.message and "3 candidate(s) asymmetric" in adv.message


def test_default_candidates_merge_presets_and_cover_the_pointwise_losses():
    cands = theory.default_candidates()
    assert "agce@paper:mnist" in cands and "ael@paper:cifar10" in cands
    assert {"loss": "ce", "source": "default"} in cands
    adv = theory.advise("symmetric:0.8", num_classes=10)
    c = _by_label(adv)
    assert c["AGCE(a=0.6, q=0.6)"].sources == ("paper:cifar10", "paper:cifar100")
    assert c["AGCE(a=4, q=0.2)"].sources == ("paper:mnist",)
    assert c["CE"].verdict == "no" and c["CE"].ratio == 0.0 and c["CE"].bound is None
    assert c["MAE(scale=2)"].verdict == "yes"
    assert c["GCE(q=0.7)"].param == "q" and c["GCE(q=0.7)"].bound.value == 1.0
    # SPEC-style worked values at K = 10, symmetric 0.8 (r̃ = 4/9)
    assert c["AGCE(a=0.6, q=0.6)"].verdict == "yes"
    assert c["AGCE(a=1e-05, q=0.5)"].verdict == "no"
    json.dumps(adv.summary())


def test_not_clean_labels_dominant_says_so():
    T = np.array([[0.4, 0.6], [0.3, 0.7]])
    adv = theory.advise(T, ["mae", "agce,a=0.6,q=0.6"])
    assert adv.status == "not-dominant" and adv.noise_ratio == pytest.approx(1.5)
    assert all(c.verdict == "no" for c in adv.candidates)
    assert "NO loss of the form ℓ(p_y) can be asymmetric" in adv.message
    agce = _by_label(adv)["AGCE(a=0.6, q=0.6)"]
    assert agce.bound.kind == "none"


def test_uncertainty_from_folds():
    T = transition_matrix("pairflip", 0.4, num_classes=4)  # r̃ = 2/3
    folds = np.stack([transition_matrix("pairflip", e, num_classes=4) for e in (0.39, 0.40, 0.41)])
    adv = theory.advise(T, ["ael,a=2.4", "ael,a=4", "ael,a=1"], fold_transitions=folds)
    assert adv.noise_ratio_se > 0 and adv.interval[0] < 2 / 3 < adv.interval[1]
    c = _by_label(adv)
    assert c["AEL(a=2.4)"].verdict == "uncertain"  # r = 0.659 lies inside the interval
    assert c["AEL(a=4)"].verdict == "yes" and c["AEL(a=1)"].verdict == "no"
    lo, hi = c["AEL(a=4)"].bound_range
    assert lo < c["AEL(a=4)"].bound.value < hi
    # the interval straddles 1: T̂ too uncertain to decide anything
    T = transition_matrix("pairflip", 0.48, num_classes=4)
    with pytest.warns(UserWarning, match="clean labels are not dominant"):
        folds = np.stack([transition_matrix("pairflip", e, num_classes=4) for e in (0.40, 0.48, 0.53)])
    adv = theory.advise(T, ["mae", "ce"], fold_transitions=folds)
    assert adv.status == "uncertain" and "too uncertain to decide" in adv.message
    assert {c.verdict for c in adv.candidates} == {"uncertain"}


def test_estimate_input_and_nonpointwise_candidate():
    pytest.importorskip("cleanlab")
    from asymloss.noise import estimate_transition

    rng = np.random.default_rng(0)
    K, n = 4, 2000
    clean = rng.integers(0, K, n)
    T = transition_matrix("symmetric", 0.3, num_classes=K)
    noisy = np.array([rng.choice(K, p=T[c]) for c in clean])
    P = 0.2 * rng.dirichlet(np.ones(K), size=n)
    P[np.arange(n), clean] += 0.8
    est = estimate_transition(P, noisy, folds=4)
    adv = theory.advise(est, ["nce+rce", "agce,a=0.6,q=0.6"])
    assert adv.noise_ratio_se == pytest.approx(est.noise_ratio_se)
    assert adv.transition_se.shape == (K, K) and "estimate" in adv.source
    nce = _by_label(adv)["NCE+RCE(alpha=1, beta=1)"]
    assert nce.ratio is None and nce.margin is None and nce.method == "simplex" and nce.bound is None
    with pytest.raises(ValueError, match="fold_transitions is taken from the estimate"):
        theory.advise(est, ["ce"], fold_transitions=est.fold_transitions)


@pytest.mark.parametrize("spec,exc,match", [
    ("agce,a", ValueError, "key=value pairs"),
    (",a=1", ValueError, "a loss name comes first"),
    (3, TypeError, "a candidate must be"),
    ({"name": "agce"}, ValueError, "needs 'loss'"),
    ({"loss": "agce", "weight": 1}, ValueError, "may have 'preset', 'params' and 'source' only"),
])
def test_parse_candidate_errors(spec, exc, match):
    with pytest.raises(exc, match=match):
        theory.parse_candidate(spec)


def test_parse_candidate_forms_and_unknown_loss():
    assert theory.parse_candidate("agce@paper:cifar10,q=0.5") == ("agce", "paper:cifar10", {"q": 0.5}, "user")
    assert theory.parse_candidate("ce") == ("ce", None, {}, "user")
    assert theory.parse_candidate({"loss": "ce", "source": "default"}) == ("ce", None, {}, "default")
    assert theory.parse_candidate(("ael", {"a": 2})) == ("ael", None, {"a": 2}, "user")
    with pytest.raises(KeyError, match="candidate 'agc'"):
        theory.advise("symmetric:0.2", ["agc"], num_classes=10)
    with pytest.raises(ValueError, match="candidate 'ael,a=-1'"):
        theory.advise("symmetric:0.2", ["ael,a=-1"], num_classes=10)


def test_figure_uses_the_object_api_and_saves(tmp_path):
    code = (
        "import sys\n"
        "from asymloss import theory\n"
        "from asymloss.report import plot_advice, save_figure\n"
        "import numpy as np\n"
        "from asymloss.noise import transition_matrix as tm\n"
        "T = tm('pairflip', 0.4, num_classes=10)\n"
        "F = np.stack([tm('pairflip', e, num_classes=10) for e in (0.38, 0.4, 0.42)])\n"
        "adv = theory.advise(T, fold_transitions=F)\n"
        "fig = plot_advice(adv, title='t')\n"
        f"save_figure(fig, {str(tmp_path / 'a.png')!r}); save_figure(fig, {str(tmp_path / 'a.svg')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "print(type(fig).__module__, len(fig.axes))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0] == "matplotlib.figure"
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "a.svg").stat().st_size > 1000
    from asymloss.report import save_figure

    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        save_figure(None, tmp_path / "a.gif")


def _cli(*args):
    return runner.invoke(app, ["advise", *args], env={"COLUMNS": "80"})


def test_cli_with_a_transition_file(tmp_path):
    T = transition_matrix("asymmetric", 0.4, dataset="mnist")
    np.savetxt(tmp_path / "t.csv", T, delimiter=",")
    res = _cli("--transition", str(tmp_path / "t.csv"), "-c", "ael,a=3", "-c", "nce+agce@paper:cifar10",
               "--figure", str(tmp_path / "f.png"), "--json", str(tmp_path / "a.json"))
    assert res.exit_code == 0, res.output
    assert max(cell_len(line) for line in res.output.splitlines()) <= 80
    assert "r̃(T̂) = 0.667 no uncertainty" in res.output
    assert "AEL(a=3)" in res.output and "a≥2.47" in res.output
    assert "Clean labels dominate" in res.output and "No uncertainty is available" in res.output
    adv = json.loads((tmp_path / "a.json").read_text())
    assert adv["status"] == "dominant" and (tmp_path / "f.png").is_file()
    labels = [c["label"] for c in adv["candidates"]]
    assert "AEL(a=3)" in labels and "AGCE(a=4, q=0.2)" in labels  # user candidates after the defaults


def test_cli_not_dominant_is_plain(tmp_path):
    np.save(tmp_path / "t.npy", np.array([[0.45, 0.55], [0.2, 0.8]]))
    res = _cli("--transition", str(tmp_path / "t.npy"), "--no-defaults", "-c", "mae")
    assert res.exit_code == 0, res.output
    assert "not clean-labels-dominant" in res.output and "NO loss" in res.output


@pytest.mark.parametrize("args,message", [
    ([], "give exactly one source of T̂"),
    (["--transition", "a.npy", "--noise", "symmetric:0.2"], "got --transition, --noise"),
    (["--transition", "nope.npy"], "transition file not found"),
    (["--noise", "symmetric:0.2", "--no-defaults"], "--no-defaults needs at least one --candidate"),
    (["--noise", "symmetric:0.2", "-c", "agce,a"], "key=value pairs"),
    (["--noise", "symmetric:0.2", "--figure", "x.gif"], "--figure must end in .png"),
    (["--noise", "symetric:0.2"], "unknown noise kind"),
    (["--estimate", "nowhere"], "estimate record not found"),
])
def test_cli_errors(args, message):
    res = runner.invoke(app, ["advise", *args], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and message in res.output, res.output


def test_cli_bad_pred_probs(tmp_path):
    pytest.importorskip("cleanlab")
    np.savez(tmp_path / "p.npz", pred_probs=np.array([[0.5, 0.7], [0.2, 0.8]]), noisy_labels=np.array([0, 1]))
    res = runner.invoke(app, ["advise", "--pred-probs", str(tmp_path / "p.npz")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "pred_probs must be a probability matrix" in res.output, res.output
    np.savez(tmp_path / "q.npz", pred_probs=np.array([[0.5, 0.5], [0.2, 0.8]]), noisy_labels=np.array([0, 2]))
    res = runner.invoke(app, ["advise", "--pred-probs", str(tmp_path / "q.npz")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "noisy_labels must be class indices in [0, 1]" in res.output, res.output
