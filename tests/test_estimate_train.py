"""k-fold out-of-sample predictions through the engine (train(..., data=...)), the noise estimate
record, the `estimate-noise` / `advise --estimate` commands, and evidence on real MNIST."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from asymloss.cli import app
from asymloss.train import cross_val_predict, estimate_noise, get_protocol, train
from asymloss.train.crossval import fold_ids
from asymloss.train.engine import prepare_data

runner = CliRunner()


def _digits(**kw):
    base = dict(noise="symmetric:0.4", epochs=3, device="cpu")
    base.update(kw)
    return get_protocol("demo-digits", **base)


def test_train_on_prepared_data_uses_it():
    cfg = _digits(epochs=1)
    data = prepare_data(cfg)
    small = replace(data, x_train=data.x_train[:300], y_noisy=data.y_noisy[:300], y_clean=data.y_clean[:300],
                    x_test=data.x_test[:50], y_test=data.y_test[:50])
    rec = train(cfg, progress=False, data=small)
    assert rec["data"]["train_size"] == 300 and rec["data"]["test_size"] == 50


def test_fold_ids_are_stratified_and_seeded():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    ids = fold_ids(y, 5, seed=0)
    assert set(ids) == set(range(5))
    for k in range(5):
        np.testing.assert_array_equal(np.bincount(y[ids == k], minlength=4), [10, 6, 4, 2])
    np.testing.assert_array_equal(ids, fold_ids(y, 5, seed=0))
    assert not np.array_equal(ids, fold_ids(y, 5, seed=1))
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fold_ids(y, 1, seed=0)


def test_cross_val_predict_on_digits(tmp_path):
    cfg = _digits()
    cv = cross_val_predict(cfg, 3, tmp_path, progress=False)
    N = len(cv.noisy_labels)
    assert cv.pred_probs.shape == (N, 10) and N == 1438
    np.testing.assert_allclose(cv.pred_probs.sum(1), 1.0, atol=1e-5)
    assert np.bincount(cv.fold_ids).tolist() == [len(cv.noisy_labels[cv.fold_ids == k]) for k in range(3)]
    assert len(cv.fold_records) == 3 and all(r["status"] == "complete" for r in cv.fold_records)
    for k, rec in enumerate(cv.fold_records):
        assert rec["data"]["train_size"] + int((cv.fold_ids == k).sum()) == N
        assert rec["noise"]["cross_validation"]["fold"] == k
        assert (tmp_path / "folds" / f"3-fold-{k}" / "record.json").is_file()
    # out-of-sample predictions beat chance clearly on the clean labels
    assert np.mean(cv.pred_probs.argmax(1) == cv.clean_labels) > 0.6
    # complete folds are reused: same predictions
    again = cross_val_predict(cfg, 3, tmp_path, progress=False)
    np.testing.assert_allclose(again.pred_probs, cv.pred_probs)


def test_estimate_noise_record(tmp_path):
    pytest.importorskip("cleanlab")
    cfg = _digits(noise="pairflip:0.3", epochs=4)
    rec = estimate_noise(cfg, 3, tmp_path, progress=False)
    on_disk = json.loads((tmp_path / "estimate.json").read_text())
    assert on_disk["kind"] == "noise-estimate" and on_disk["status"] == "complete"
    assert on_disk["estimate"]["transition"] == rec["estimate"]["transition"]
    T = np.array(rec["estimate"]["transition"])
    assert T.shape == (10, 10)
    np.testing.assert_allclose(T.sum(1), 1.0, atol=1e-9)
    assert rec["estimate"]["folds"]["count"] == 3
    assert rec["truth"]["nominal"]["noise_ratio"] == pytest.approx(0.3 / 0.7)
    err = rec["error"]["realised"]["max_abs_error"]
    assert err == pytest.approx(np.abs(T - np.array(rec["truth"]["realised"]["transition"])).max())
    assert err < 0.35  # 1,438 images, 4 epochs: rough, but it sees the pair-flip structure
    assert np.all(np.diag(T) > 0.4)
    z = np.load(tmp_path / "pred_probs.npz")
    assert set(z.files) == {"pred_probs", "noisy_labels", "clean_labels", "fold_ids"}
    assert len(rec["fold_runs"]) == 3 and all(0 <= f["held_out_acc_clean"] <= 1 for f in rec["fold_runs"])


def test_estimate_noise_and_advise_cli(tmp_path):
    pytest.importorskip("cleanlab")
    out = tmp_path / "est"
    res = runner.invoke(app, ["estimate-noise", "--protocol", "demo-digits", "--noise", "symmetric:0.4",
                              "--folds", "3", "--epochs", "2", "--device", "cpu", "--out", str(out)],
                        env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "r̃(T̂) = " in res.output and "max |T̂ − T|" in res.output
    assert (out / "estimate.json").is_file() and (out / "pred_probs.npz").is_file()
    res = runner.invoke(app, ["advise", "--estimate", str(out), "--json", str(tmp_path / "a.json")],
                        env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(cell_len(line) for line in res.output.splitlines()) <= 80  # r̃ is 2 code points, 1 cell
    adv = json.loads((tmp_path / "a.json").read_text())
    assert adv["noise_ratio_se"] is not None and adv["candidates"]
    # the same from the predicted probabilities with their fold ids
    res = runner.invoke(app, ["advise", "--pred-probs", str(out / "pred_probs.npz"), "--json", str(tmp_path / "b.json")],
                        env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    adv_b = json.loads((tmp_path / "b.json").read_text())
    np.testing.assert_allclose(adv_b["transition"], adv["transition"], atol=1e-6)


@pytest.mark.parametrize("args,message", [
    (["--noise", "symetric:0.4"], "unknown noise kind"),
    (["--noise", "symmetric:0.4", "--folds", "1"], "--folds must be >= 2"),
    (["--noise", "symmetric:0.4", "--protocol", "nope"], "unknown protocol"),
    (["--noise", "symmetric:0.4", "--loss", "agc"], "unknown loss"),
])
def test_estimate_noise_cli_errors(args, message):
    res = runner.invoke(app, ["estimate-noise", "--device", "cpu", *args], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and message in res.output, res.output


@pytest.mark.shared
@pytest.mark.slow
def test_estimation_on_real_mnist(shared_datasets, tmp_path):
    """3,000 MNIST images under symmetric 0.6, 3 folds of 3 epochs: T̂ is close to the realised
    matrix and the advice says what the theory says for the paper's MNIST AGCE."""
    pytest.importorskip("cleanlab")
    from asymloss import theory
    from asymloss.noise import TransitionEstimate

    cfg = get_protocol("paper-mnist", loss="ce", noise="symmetric:0.6", epochs=3, subset=3000,
                       data_dir=str(shared_datasets), device="cpu")
    rec = estimate_noise(cfg, 3, tmp_path, progress=False)
    assert rec["error"]["realised"]["max_abs_error"] < 0.15
    assert abs(rec["estimate"]["rate"] - rec["truth"]["realised"]["rate"]) < 0.08
    est = TransitionEstimate.from_summary(rec["estimate"])
    adv = theory.advise(est, ["agce@paper:mnist", "ce"])
    assert adv.status == "dominant"
    verdicts = {c.label: c.verdict for c in adv.candidates}
    assert verdicts == {"AGCE(a=4, q=0.2)": "yes", "CE": "no"}
