"""The sweep checks what ``train`` checks, for every run, before anything starts (and ``--dry-run``
with it): settings the engine refuses, the model, noise against the dataset, the device, each
dataset once, and the checkpoints of unfinished runs."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import asymloss.data
from asymloss.cli import app
from asymloss.data import DatasetNotFoundError
from asymloss.sweep import ResultsStore, build_grid, check_sweep, expand_grid, run_sweep
from asymloss.train import CheckpointError

runner = CliRunner()


def _dry_run(tmp_path, *args):
    res = runner.invoke(app, ["sweep", *args, "--out", str(tmp_path / "s"), "--dry-run"], env={"COLUMNS": "200"})
    assert "Traceback" not in res.output
    return res.exit_code, " ".join(res.output.split())


def test_settings_the_engine_refuses_fail_the_expansion_and_the_dry_run(tmp_path):
    with pytest.raises(NotImplementedError, match="configuration only"):
        expand_grid(build_grid(protocol="paper-webvision", losses="ce"))
    code, out = _dry_run(tmp_path, "--protocol", "paper-webvision", "--losses", "ce")
    assert code == 2 and "error: random_resized_crop and color_jitter" in out


def test_unknown_model_and_real_noise_on_another_dataset_fail_the_expansion(tmp_path):
    with pytest.raises(KeyError, match="unknown model 'resnt34'"):
        expand_grid(build_grid(protocol="demo-digits", losses="ce", overrides={"model": "resnt34"}))
    with pytest.raises(ValueError, match="noise 'cifar10n:worst' on dataset 'digits'"):
        expand_grid(build_grid(protocol="demo-digits", losses="ce", noise="clean,cifar10n:worst"))
    code, out = _dry_run(tmp_path, "--protocol", "demo-digits", "--losses", "ce", "--set", "model=resnt34")
    assert code == 2 and "Did you mean 'resnet34'" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_on_a_cpu_machine_fails_before_anything_is_written(tmp_path):
    grid = build_grid(protocol="demo-digits", losses="ce", overrides={"device": "cuda", "epochs": 1})
    with pytest.raises(RuntimeError, match="no CUDA device is available"):
        run_sweep(grid, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
    code, out = _dry_run(tmp_path, "--protocol", "demo-digits", "--losses", "ce", "--set", "device=cuda")
    assert code == 2 and "no CUDA device is available" in out


def test_missing_dataset_fails_the_dry_run_and_the_sweep(tmp_path):
    grid = build_grid(protocol="paper-mnist", losses="ce,agce", overrides={"data_dir": str(tmp_path / "none")})
    with pytest.raises(DatasetNotFoundError, match="MNIST not found in the data root"):
        run_sweep(grid, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
    code, out = _dry_run(tmp_path, "--protocol", "paper-mnist", "--losses", "ce", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "MNIST not found in the data root" in out


def test_each_dataset_is_loaded_once_and_every_run_checked_against_it(monkeypatch):
    calls = []
    real = asymloss.data.load
    monkeypatch.setattr(asymloss.data, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    runs = expand_grid(build_grid(protocol="demo-digits", losses="ce,agce,gce", noise="clean,symmetric:0.4",
                                  seeds="0,1"))
    check_sweep(runs)
    assert calls == [("digits",)]
    too_big = expand_grid(build_grid(protocol="demo-digits", losses="ce", overrides={"subset": 5000}))
    with pytest.raises(ValueError, match=r"run CE / clean / seed 0: subset=5000 is larger than the training set"):
        check_sweep(too_big)


def test_unreadable_checkpoint_of_an_unfinished_run_stops_the_sweep_until_restarted(tmp_path):
    grid = build_grid(protocol="demo-digits", losses="ce", overrides={"epochs": 2})
    store = ResultsStore(tmp_path / "s")
    (run,) = expand_grid(grid)
    run_sweep(grid, store.root, progress=False, max_workers=1)
    rec = json.loads(store.record_path(run.id).read_text())
    rec["status"], rec["epochs"] = "running", rec["epochs"][:1]
    store.record_path(run.id).write_text(json.dumps(rec))
    (store.run_dir(run.id) / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=f"1 unfinished run.*{run.id}.*--restart-unreadable"):
        run_sweep(grid, store.root, progress=False)
    res = runner.invoke(app, ["sweep", "--protocol", "demo-digits", "--losses", "ce", "--epochs", "2",
                              "--out", str(store.root), "--no-progress"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "--restart-unreadable" in res.output and "Traceback" not in res.output
    summary = run_sweep(grid, store.root, progress=False, restart_unreadable=True, max_workers=1)
    assert summary.completed == 1 and store.status(run.id) == "complete"
    assert (store.run_dir(run.id) / "checkpoint.pt.damaged").read_bytes() == b""
