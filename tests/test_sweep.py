"""Sweeps: grid expansion, run ids, the results store, failures and retries (local executor)."""
from __future__ import annotations

import json
import sqlite3

import pytest

from asymloss.sweep import (GRIDS, PAPER_NOISES, PAPER_TABLE_LOSSES, ResultsStore, build_grid,
                            expand_grid, get_grid, list_grids, load_epochs, load_grid,
                            load_results, run_sweep)
from asymloss.train import get_protocol

import sweep_fakes


# -- grids and ids ---------------------------------------------------------------------------------

def test_expand_grid_is_the_cartesian_product_with_resolved_configs():
    grid = build_grid(protocol="paper-mnist", losses="ce,agce,nce+agce", noise="symmetric:0.6,asymmetric:0.4",
                      seeds="0,1,2", overrides={"epochs": 3, "subset": 100})
    runs = expand_grid(grid)
    assert len(runs) == 3 * 2 * 3 == len(grid)
    combos = {(r.config.loss, r.config.noise, r.config.seed) for r in runs}
    assert combos == {(l, n, s) for l in ("ce", "agce", "nce+agce")
                      for n in ("symmetric:0.6", "asymmetric:0.4") for s in (0, 1, 2)}
    for r in runs:  # everything else is the protocol's, with the overrides
        expected = get_protocol("paper-mnist", loss=r.config.loss, noise=r.config.noise, seed=r.config.seed,
                                epochs=3, subset=100)
        assert r.config == expected
        assert r.id == expected.config_hash()


def test_run_ids_are_stable_and_differ_in_every_field():
    grid = build_grid(protocol="paper-mnist", losses="ce", noise="clean", seeds="0")
    (run,) = expand_grid(grid)
    # stable: same value across calls and equal to the hash of the resolved config
    assert run.id == expand_grid(grid)[0].id == get_protocol("paper-mnist").config_hash()
    assert len(run.id) == 12 and all(c in "0123456789abcdef" for c in run.id)
    ids = {run.id}
    variants = [dict(losses="agce"), dict(noise="symmetric:0.2"), dict(seeds="1"),
                dict(overrides={"epochs": 49}), dict(overrides={"lr": 0.02}), dict(overrides={"subset": 10}),
                dict(protocol="paper-cifar10"), dict(losses=[{"loss": "ce", "params": {"x": 1}}]),
                dict(overrides={"noise_seed": 5})]
    for v in variants:
        kw = dict(protocol="paper-mnist", losses="ce", noise="clean", seeds="0")
        kw.update(v)
        (other,) = expand_grid(build_grid(**kw), validate=False)
        assert other.id not in ids, v
        ids.add(other.id)


def test_duplicates_are_removed_and_lists_may_be_strings_or_lists():
    grid = build_grid(protocol="paper-mnist", losses=["ce", "ce", "gce"], noise=["clean", "clean"], seeds=[0, 0, 1])
    assert [l.name for l in grid.losses] == ["ce", "gce"]
    assert grid.noise == ("clean",) and grid.seeds == (0, 1)
    assert len(expand_grid(grid, validate=False)) == 4


def test_named_paper_grids_follow_the_spec():
    assert [g for g in list_grids() if g.startswith("paper-")] == [
        "paper-cifar10-table", "paper-cifar100-table", "paper-mnist-table"]
    for name, protocol in (("paper-mnist-table", "paper-mnist"), ("paper-cifar10-table", "paper-cifar10"),
                           ("paper-cifar100-table", "paper-cifar100")):
        g = get_grid(name)
        assert g.protocol == protocol and g.seeds == (0, 1, 2)
        assert g.noise == ("clean", "symmetric:0.2", "symmetric:0.4", "symmetric:0.6", "symmetric:0.8",
                           "asymmetric:0.1", "asymmetric:0.2", "asymmetric:0.3", "asymmetric:0.4")
        assert {"ce", "focal", "gce", "sce", "nce+rce", "nce+mae", "nfl+rce", "agce", "aul", "ael",
                "nce+agce", "nce+aul", "nce+ael"} == {l.name for l in g.losses}
        runs = expand_grid(g, validate=False)
        assert len(runs) == 13 * 9 * 3 == len({r.id for r in runs})
        assert {r.config.loss_preset for r in runs} == {get_protocol(protocol).loss_preset}
    # a named grid with explicit replacements
    g = build_grid("paper-mnist-table", losses="ce", seeds="0", overrides={"epochs": 1})
    assert len(expand_grid(g, validate=False)) == 9 and g.overrides == {"epochs": 1}


@pytest.mark.parametrize("suffix", ["yaml", "toml"])
def test_grid_files_yaml_and_toml(tmp_path, suffix):
    text = {
        "yaml": ("protocol: paper-mnist\nlosses: [ce, {loss: agce, params: {a: 1.0, q: 0.5}}]\n"
                 "noise: [clean, 'symmetric:0.6']\nseeds: [0, 1]\noverrides: {epochs: 2, subset: 64}\n"),
        "toml": ('protocol = "paper-mnist"\nlosses = ["ce", {loss = "agce", params = {a = 1.0, q = 0.5}}]\n'
                 'noise = ["clean", "symmetric:0.6"]\nseeds = [0, 1]\n[overrides]\nepochs = 2\nsubset = 64\n'),
    }[suffix]
    path = tmp_path / f"g.{suffix}"
    path.write_text(text)
    grid = load_grid(path)
    assert grid.name == "g" and grid.protocol == "paper-mnist"
    runs = expand_grid(grid, validate=False)
    assert len(runs) == 8
    agce = [r for r in runs if r.config.loss == "agce"]
    assert all(r.config.loss_params == {"a": 1.0, "q": 0.5} and r.config.epochs == 2 for r in agce)
    assert agce[0].label == "AGCE(a=1.0, q=0.5)"
    assert build_grid(str(path)).to_dict() == grid.to_dict()


def test_bad_grids_fail_with_clear_messages(tmp_path):
    with pytest.raises(KeyError, match="unknown protocol 'paper-mnst'.*paper-mnist"):
        expand_grid(build_grid(protocol="paper-mnst", losses="ce"))
    with pytest.raises(KeyError, match="unknown config field 'epoch'.*epochs"):
        expand_grid(build_grid(protocol="paper-mnist", losses="ce", overrides={"epoch": 3}))
    with pytest.raises(ValueError, match="seeds must be"):
        build_grid(protocol="paper-mnist", losses="ce", seeds="0,x")
    with pytest.raises(ValueError, match="seeds must be >= 0"):
        build_grid(protocol="paper-mnist", losses="ce", seeds=[-1])
    with pytest.raises(ValueError, match="losses are required"):
        build_grid(protocol="paper-mnist")
    with pytest.raises(ValueError, match="'noise' is set by the grid"):
        build_grid(protocol="paper-mnist", losses="ce", overrides={"noise": "clean"})
    with pytest.raises(KeyError, match="unknown grid.*paper-mnist-table"):
        build_grid("paper-mnist-tabel")
    bad = tmp_path / "bad.yaml"
    bad.write_text("protocol: paper-mnist\nlosses: [ce]\nseed: [0]\n")
    with pytest.raises(KeyError, match="'seed'.*Did you mean 'seeds'"):
        load_grid(bad)
    with pytest.raises(FileNotFoundError, match="grid file"):
        load_grid(tmp_path / "missing.yaml")


# -- running with hand-written run functions --------------------------------------------------------

def _grid(losses="ce,agce", noise="clean,symmetric:0.4", seeds="0,1", epochs=3):
    return build_grid(protocol="paper-mnist", losses=losses, noise=noise, seeds=seeds, overrides={"epochs": epochs})


def test_local_sweep_runs_everything_records_failures_and_skips_on_rerun(tmp_path):
    store = tmp_path / "store"
    grid = _grid(losses="ce,boom", seeds="0,1")
    runs = expand_grid(grid, validate=False)
    summary = run_sweep(runs, store, run_fn=sweep_fakes.fake_run, max_workers=2, progress=False)
    assert (summary.total, summary.completed, summary.failed, summary.skipped) == (8, 4, 4, 0)
    df = load_results(store)
    assert len(df) == 8 and set(df.columns) >= {"id", "protocol", "loss", "noise", "seed", "status", "last_test_acc",
                                               "best_test_acc", "epochs_done", "wall_time_s"}
    ok = df[df.loss == "ce"]
    assert (ok.status == "complete").all() and (ok.epochs_done == 3).all()
    for _, row in ok.iterrows():
        cfg = json.loads(row.config)
        assert row.last_test_acc == pytest.approx(sweep_fakes.fake_accuracy(cfg, 3))
    bad = df[df.loss == "boom"]
    assert (bad.status == "failed").all()
    assert bad.error.str.contains("RuntimeError: boom").all()
    err = json.loads((store / "runs" / bad.id.iloc[0] / "error.json").read_text())
    assert "Traceback" in err["traceback"] and "fake_run" in err["traceback"]
    # the SQLite file holds the same table
    with sqlite3.connect(store / "results.sqlite") as con:
        n, n_ok = con.execute("SELECT COUNT(*), SUM(status = 'complete') FROM runs").fetchone()
        n_epochs = con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    assert (n, n_ok, n_epochs) == (8, 4, 12)
    assert load_results(store / "results.sqlite").sort_values("id").status.tolist() == df.sort_values("id").status.tolist()
    assert len(load_epochs(store)) == 12
    # re-run: complete and failed runs are skipped, nothing starts again
    summary = run_sweep(runs, store, run_fn=sweep_fakes.fake_run, progress=False)
    assert (summary.completed, summary.failed, summary.skipped) == (0, 0, 8)
    starts = {r.id: (store / "runs" / r.id / "starts.txt").read_text().splitlines() for r in runs}
    assert all(len(s) == 1 for s in starts.values())
    # --retry-failed: only the failed ones run again (and fail again)
    summary = run_sweep(runs, store, run_fn=sweep_fakes.fake_run, retry_failed=True, max_workers=1, progress=False)
    assert (summary.completed, summary.failed, summary.skipped) == (0, 4, 4)
    for r in runs:
        n_starts = len((store / "runs" / r.id / "starts.txt").read_text().splitlines())
        assert n_starts == (2 if r.config.loss == "boom" else 1)


def test_retry_failed_can_complete_a_run_that_failed_before(tmp_path):
    store = ResultsStore(tmp_path / "store")
    runs = expand_grid(_grid(losses="gce", noise="clean", seeds="0"), validate=False)
    rid = runs[0].id
    store.register(None, runs)
    store.write_error(rid, {"error": "RuntimeError: transient"})
    assert store.status(rid) == "failed"
    assert run_sweep(runs, store.root, run_fn=sweep_fakes.fake_run, progress=False).skipped == 1
    summary = run_sweep(runs, store.root, run_fn=sweep_fakes.fake_run, retry_failed=True, progress=False)
    assert summary.completed == 1 and store.status(rid) == "complete"
    assert not store.error_path(rid).exists()


def test_unfinished_run_resumes_from_its_checkpoint(tmp_path):
    runs = expand_grid(_grid(losses="ce", noise="clean", seeds="0", epochs=4), validate=False)
    run_dir = tmp_path / "store" / "runs" / runs[0].id
    # an interrupted run: two epochs done, record still "running"
    cfg = runs[0].config.to_dict()
    partial = dict(cfg, epochs=2)
    rec = sweep_fakes.fake_run(partial, str(run_dir))
    (run_dir / "record.json").write_text(json.dumps(dict(rec, status="running", config=cfg)))
    assert ResultsStore(tmp_path / "store").status(runs[0].id) == "incomplete"
    import io

    from rich.console import Console

    buf = io.StringIO()
    summary = run_sweep(runs, tmp_path / "store", run_fn=sweep_fakes.fake_run, console=Console(file=buf, width=120))
    assert summary.completed == 1
    assert (run_dir / "starts.txt").read_text().splitlines() == ["0", "2"]  # resumed after epoch 2
    shown = buf.getvalue()  # the sweep's progress: runs done / running / failed and an ETA
    assert "1 runs: 0 complete, 0 failed (skipped), 1 to run on local" in shown
    assert "1/1 done · 0 running · 0 failed" in shown and "ETA" in shown
    df = load_results(tmp_path / "store")
    assert df.epochs_done.tolist() == [4] and df.status.tolist() == ["complete"]


def test_executor_and_arguments_are_validated(tmp_path):
    runs = expand_grid(_grid(), validate=False)
    with pytest.raises(ValueError, match="executor must be one of 'local', 'ray'; got 'slurm'"):
        run_sweep(runs, tmp_path, executor="slurm")
    with pytest.raises(ValueError, match="max_workers must be >= 1; got 0"):
        run_sweep(runs, tmp_path, max_workers=0, run_fn=sweep_fakes.fake_run, progress=False)
    with pytest.raises(ValueError, match="out: the results store directory is required"):
        run_sweep(runs, None)


def test_loss_names_and_noise_specs_are_validated_before_anything_runs(tmp_path):
    with pytest.raises(KeyError, match="'agc'.*Did you mean.*'agce'"):
        expand_grid(build_grid(protocol="paper-mnist", losses="ce,agc"))
    with pytest.raises(ValueError, match=r"'symmetric:1.5' must be >= 0.0 and < 1.0; got 1.5"):
        expand_grid(build_grid(protocol="paper-mnist", losses="ce", noise="clean,symmetric:1.5"))
    with pytest.raises(KeyError, match="unknown noise kind 'symetric'. Did you mean 'symmetric'"):
        expand_grid(build_grid(protocol="paper-mnist", losses="ce", noise="symetric:0.4"))
    with pytest.raises(ValueError, match=r"loss 'AUL\(a=0.5\)' \(preset 'paper:mnist'\): a must be > 1; got 0.5"):  # AUL with a <= 1 is outside its domain (docs/losses.md, 'Domains are enforced')
        expand_grid(build_grid(protocol="paper-mnist", losses=[{"loss": "aul", "params": {"a": 0.5}}]))
    with pytest.raises(ValueError, match="noise 'asymmetric:0.4' on dataset 'fashion-mnist': dataset must be one of"):
        expand_grid(build_grid(protocol="paper-mnist", losses="ce", noise="asymmetric:0.4",
                               overrides={"dataset": "fashion-mnist"}))
    # nothing was written: validation happens before the store is touched
    with pytest.raises(KeyError):
        run_sweep(build_grid(protocol="paper-mnist", losses="agc"), tmp_path / "s", run_fn=sweep_fakes.fake_run)
    assert not (tmp_path / "s").exists()


def test_paper_grids_validate_against_the_loss_registry_and_presets():
    for name in ("paper-mnist-table", "paper-cifar10-table", "paper-cifar100-table"):
        runs = expand_grid(get_grid(name))  # builds every loss with the dataset's preset
        assert len(runs) == 351


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "cifar100"])
def test_later_losses_grids_take_each_methods_preset_for_the_dataset(dataset):
    from asymloss.losses import get_preset, list_losses
    from asymloss.sweep.grid import LATER_TABLE_LOSSES

    g = get_grid(f"later-losses-{dataset}")
    assert g.protocol == f"paper-{dataset}" and g.seeds == (0, 1)
    assert g.noise == ("clean", "symmetric:0.8", "asymmetric:0.4")
    runs = expand_grid(g)                         # every loss built with its preset, checked
    assert len(runs) == len(LATER_TABLE_LOSSES) * 3 * 2 == len({r.id for r in runs})
    later = set(list_losses()) - {"ce", "gce", "nce+rce", "agce", "aul", "ael", "nce+agce"}
    assert {"anl_ce", "jal_fl", "js", "ldr_kl", "ce_sr", "gjs", "aldr_kl", "nlnl", "ce_lc", "bi_tempered"} <= \
        {l.name for l in g.losses} <= set(list_losses())
    assert later  # the registry has later losses to compare
    presets = {l.name: l.preset for l in g.losses}
    assert presets["ce"] is None and presets["nce+agce"] is None          # the protocol's paper: preset
    for name in ("anl_ce", "ldr_kl", "ce_sr", "aldr_kl"):
        assert presets[name].endswith(":" + dataset)                         # published for every dataset
    assert presets["ce_lc"] == ("lc:cifar100" if dataset == "cifar100" else "lc:cifar10")
    run = next(r for r in runs if r.config.loss == "anl_ce")
    assert run.config.loss_preset == f"anl:{dataset}" and run.config.loss_params == {}
    assert get_preset(f"anl:{dataset}", "anl_ce")                         # it defines the loss


def test_ray_missing_gives_a_clear_error(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'asymloss\[ray\]'"):
        run_sweep(expand_grid(_grid(), validate=False), tmp_path / "s", executor="ray", run_fn=sweep_fakes.fake_run)
    assert not (tmp_path / "s").exists()  # nothing written when the executor cannot start


def test_sweep_cli_dry_run_and_bad_arguments(tmp_path):
    from typer.testing import CliRunner

    from asymloss.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["sweep", "--protocol", "demo-digits", "--losses", "ce,nce+agce", "--noise",
                              "clean,pairflip:0.4", "--seeds", "0,1", "--epochs", "2", "--out", str(tmp_path / "s"),
                              "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "8 runs of demo-digits" in res.output and "NCE+AGCE" in res.output and "pending" in res.output
    res = runner.invoke(app, ["sweep", "--protocol", "demo-digits", "--losses", "ce,agc", "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "unknown loss 'agc'" in " ".join(res.output.split())
    res = runner.invoke(app, ["sweep", "--grid", "paper-mnist-tabel", "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "paper-mnist-table" in res.output
    res = runner.invoke(app, ["sweep", "--protocol", "demo-digits", "--losses", "ce", "--executor", "slurm",
                              "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "--executor must be one of local, ray; got 'slurm'" in res.output
    res = runner.invoke(app, ["sweep", "--protocol", "demo-digits", "--losses", "ce", "--set", "epoch=3",
                              "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "unknown config field 'epoch'" in res.output
    assert not (tmp_path / "s").exists()


def test_cancelling_the_local_executor_stops_its_workers_at_once(tmp_path, monkeypatch):
    """Workers ignore SIGINT/SIGTERM (the sweep process handles them), so ``close(cancel=True)`` must
    kill them: a worker left running would go on training after an interrupted sweep counted its runs."""
    import os
    import time

    from asymloss._io import read_json
    from asymloss.sweep import LocalExecutor, RunTask

    monkeypatch.setenv("FAKE_EPOCH_S", "0.3")  # inherited by the spawned worker
    out = tmp_path / "run"
    ex = LocalExecutor(sweep_fakes.fake_run, max_workers=1, threads_per_run=1)
    ex.submit(RunTask("r", {"loss": "ce", "noise": "clean", "seed": 0, "epochs": 100}, str(out)))
    deadline = time.time() + 60
    while not (out / "record.json").exists():
        assert time.time() < deadline, "the worker never wrote its record"
        time.sleep(0.05)
    pid = read_json(out / "record.json")["worker"]["pid"]
    t0 = time.time()
    ex.close(cancel=True)
    assert time.time() - t0 < 3
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    epochs = len(read_json(out / "record.json")["epochs"])
    time.sleep(1.0)  # three more epochs' time: nothing may be written any more
    rec = read_json(out / "record.json")
    assert rec["status"] == "running" and len(rec["epochs"]) == epochs < 100
