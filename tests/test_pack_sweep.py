"""Packed sweeps: the sweep groups compatible runs into packs; store, resume and retries stay per run."""
from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

import sweep_fakes
from asymloss.cli import app
from asymloss.sweep import Executor, build_grid, expand_grid, load_results, run_sweep
from asymloss.sweep.executors import execute_any
from asymloss.sweep.packs import AUTO_PACK_CUDA, PackTask, check_pack, plan_packs, resolve_pack_size
from asymloss.train import get_protocol, train
from asymloss.train import pack as pack_mod


def _digits_grid(losses="ce,agce", noise="clean,symmetric:0.4", seeds="0", epochs=2, **over):
    return build_grid(protocol="demo-digits", losses=losses, noise=noise, seeds=seeds,
                      overrides={"epochs": epochs, "model": "cnn4", "channels_last": True, "lr": 0.01, **over})


class InlineExecutor(Executor):
    """Runs each task at once in this process (so a test can patch the engine)."""

    name = "inline"
    capacity = 2

    def submit(self, task):
        fut = cf.Future()
        fut.set_result(execute_any(None, task))
        return fut

    def wait(self, handles, timeout):
        return list(handles)

    def result(self, handle):
        return handle.result()


def test_pack_sizes_auto_and_explicit():
    cfg = get_protocol("paper-cifar10")
    cfgs = [cfg.replace(seed=s) for s in range(13)]
    assert resolve_pack_size("auto", cfgs, cuda=False) == 1  # a CPU: one run per process
    assert resolve_pack_size("auto", cfgs, cuda=True, slots=1) == 13 <= AUTO_PACK_CUDA["cnn8"]
    assert resolve_pack_size("auto", cfgs, cuda=True, slots=2) == 7  # both GPU slots get a pack
    assert resolve_pack_size("auto", cfgs, cuda=True, custom_run_fn=True) == 1
    assert resolve_pack_size("auto", [c.replace(device="cpu") for c in cfgs], cuda=True) == 1
    assert resolve_pack_size("auto", [c.replace(model="resnet34") for c in cfgs], cuda=True) == 1
    assert resolve_pack_size(4, cfgs, cuda=False) == resolve_pack_size("4", cfgs, cuda=True) == 4
    assert check_pack("AUTO") == "auto" and check_pack(None) == 1
    for bad in (0, "0", "x", 1.5):
        with pytest.raises((ValueError, TypeError), match="pack"):
            check_pack(bad)
    runs = expand_grid(build_grid(protocol="paper-mnist", losses="ce,agce,gce", noise="clean,symmetric:0.8",
                                  seeds="0,1", overrides={"epochs": 3}))
    runs += expand_grid(build_grid(protocol="paper-mnist", losses="ce", noise="clean", seeds="0",
                                   overrides={"epochs": 4}))  # another pack key
    groups = plan_packs(runs, 8, cuda=False)
    assert [len(g) for g in groups] == [6, 6, 1]
    assert all(len({pack_mod.pack_key(r.config) for r in g}) == 1 for g in groups)
    assert plan_packs(runs, "auto", cuda=False) == [[r] for r in runs]


def test_fake_runs_in_packs_run_one_after_the_other_and_fail_per_run(tmp_path):
    runs = expand_grid(build_grid(protocol="paper-mnist", losses="ce,boom", noise="clean,symmetric:0.4",
                                  seeds="0", overrides={"epochs": 2}), validate=False)
    summary = run_sweep(runs, tmp_path / "store", run_fn=sweep_fakes.fake_run, pack=4, max_workers=1, progress=False)
    assert (summary.completed, summary.failed) == (2, 2)
    assert "4 runs in 1 packs" in summary.executor  # a custom run_fn's "pack" runs its runs one by one
    df = load_results(tmp_path / "store")
    assert sorted(df.status) == ["complete", "complete", "failed", "failed"]
    assert df[df.loss == "boom"].error.str.contains("RuntimeError: boom").all()


def test_a_packed_sweep_trains_each_run_as_alone_and_skips_on_rerun(tmp_path):
    runs = expand_grid(_digits_grid())
    summary = run_sweep(runs, tmp_path / "packed", pack=4, threads_per_run=1, progress=False)
    assert (summary.completed, summary.failed) == (4, 0) and "4 runs in 1 packs" in summary.executor
    a = load_results(tmp_path / "packed").set_index("id")
    assert (a.status == "complete").all() and (a.epochs_done == 2).all()
    for run in runs:
        alone = train(run.config, progress=False)
        assert a.loc[run.id].last_test_acc == pytest.approx(alone["final"]["last_test_acc"], abs=2.5 / 359)
    for run in runs:
        rec = json.loads((tmp_path / "packed" / "runs" / run.id / "record.json").read_text())
        assert rec["pack"] == {"runs": 4} and rec["config"] == run.config.to_dict()
    again = run_sweep(runs, tmp_path / "packed", pack=4, progress=False)
    assert (again.completed, again.skipped) == (0, 4)
    # the table reads packed runs like any others
    from asymloss.report import results_table

    assert "AGCE" in results_table(tmp_path / "packed")


def test_a_diverging_run_fails_alone_in_a_packed_sweep_and_retry_failed_reruns_it(tmp_path, monkeypatch):
    import dataclasses

    runs = expand_grid(_digits_grid(losses="ce,agce,gce", noise="symmetric:0.4"))
    real = pack_mod.resolve_loss

    class NaNLoss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def hparams(self):
            return self.inner.hparams()

        def forward(self, x, y):
            return self.inner(x, y) * float("nan")

    def resolve(config, k):
        r = real(config, k)
        return dataclasses.replace(r, module=NaNLoss(r.module)) if config.loss == "gce" else r

    monkeypatch.setattr(pack_mod, "resolve_loss", resolve)
    store = tmp_path / "store"
    summary = run_sweep(runs, store, executor=InlineExecutor(), pack=3, progress=False)
    assert (summary.completed, summary.failed) == (2, 1)
    df = load_results(store).set_index("loss")
    assert df.loc["gce"].status == "failed" and "non-finite" in df.loc["gce"].error
    assert (df.loc[["ce", "agce"]].status == "complete").all()
    assert run_sweep(runs, store, executor=InlineExecutor(), pack=3, progress=False).skipped == 3
    monkeypatch.setattr(pack_mod, "resolve_loss", real)  # the cause is fixed: retry the failed run
    retry = run_sweep(runs, store, executor=InlineExecutor(), pack=3, retry_failed=True, progress=False)
    assert (retry.completed, retry.failed, retry.skipped) == (1, 0, 2)
    assert (load_results(store).status == "complete").all()


def test_a_pack_that_fails_as_a_whole_fails_each_of_its_runs(tmp_path, monkeypatch):
    runs = expand_grid(_digits_grid(noise="clean"))

    def broken(*a, **k):
        raise MemoryError("out of memory (simulated)")

    monkeypatch.setattr(pack_mod, "train_pack", broken)
    task = PackTask(tuple(r.id for r in runs), tuple(r.config.to_dict() for r in runs),
                    tuple(str(tmp_path / r.id) for r in runs))
    outcomes = execute_any(None, task)
    assert [o["status"] for o in outcomes] == ["failed", "failed"]
    for r in runs:
        err = json.loads((tmp_path / r.id / "error.json").read_text())
        assert "MemoryError" in err["error"] and err["pack"] == list(task.run_ids)


def test_sweep_cli_pack_option(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", "--out", str(tmp_path / "s"), "--protocol", "demo-digits", "--losses", "ce",
                              "--pack", "0", "--dry-run"])
    assert res.exit_code != 0 and "--pack" in res.output
    res = runner.invoke(app, ["sweep", "--out", str(tmp_path / "s"), "--protocol", "demo-digits", "--losses", "ce,gce",
                              "--noise", "clean", "--epochs", "1", "--set", "model=cnn4", "--pack", "2",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 run(s) completed" in res.output
    recs = [json.loads(p.read_text()) for p in (tmp_path / "s" / "runs").glob("*/record.json")]
    assert [r["pack"] for r in recs] == [{"runs": 2}] * 2


if importlib.util.find_spec("ray") is not None:
    from test_sweep_ray import ray_address  # noqa: F401  (the module's Ray cluster fixture)

    @pytest.mark.ray
    def test_packs_run_as_ray_tasks(ray_address, tmp_path):  # noqa: F811
        runs = expand_grid(_digits_grid(losses="ce,agce,gce", noise="symmetric:0.4"))
        summary = run_sweep(runs, tmp_path / "store", executor="ray", address=ray_address, pack=2, progress=False)
        assert (summary.completed, summary.failed) == (3, 0) and "3 runs in 2 packs" in summary.executor
        recs = [json.loads((tmp_path / "store" / "runs" / r.id / "record.json").read_text()) for r in runs]
        assert sorted(r.get("pack", {}).get("runs", 1) for r in recs) == [1, 2, 2]  # a pack of one is a plain run
