"""Meta-learned loss hyperparameters (docs/meta.md): the bilevel hypergradient, the ranges, the meta
set, the engine's record and resume, and the errors of bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import asymloss
from asymloss.cli import app
from asymloss.train import TrainConfig, get_protocol, train
from asymloss.train.meta import (Constraint, MetaLearner, learnable_hparams, meta_objective, meta_trajectory,
                                 select_meta_set, swapped_hparams)

runner = CliRunner()


def _digits(**kw) -> TrainConfig:
    return get_protocol("demo-digits", **{"epochs": 2, "noise": "symmetric:0.4", "device": "cpu", "meta_set": 100,
                                          **kw})


# -- the hypergradient -----------------------------------------------------------------------------

def _tiny_problem(seed=0, n=12, m=9, d=5, K=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, K, (n,), generator=g)
    xm = torch.randn(m, d, generator=g, dtype=torch.float64)
    ym = torch.randint(0, K, (m,), generator=g)
    model = nn.Linear(d, K).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(K, d, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(K, generator=g, dtype=torch.float64))
    return model, x, y, xm, ym


def _independent_meta_loss(u: float, model, x, y, xm, ym, lr, momentum, wd, bufs) -> float:
    """GCE(q = sigmoid(u)) on a linear softmax model, its gradient by hand (no autograd): the virtual
    SGD step with momentum buffers and weight decay, then the cross-entropy on the meta batch."""
    q = 1.0 / (1.0 + math.exp(-u))
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    X, Y = x.numpy(), y.numpy()
    z = X @ W.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    py = p[np.arange(len(Y)), Y]
    onehot = np.eye(W.shape[0])[Y]
    gz = -(py ** q)[:, None] * (onehot - p) / len(Y)    # d/dz of mean((1 - p_y^q) / q)
    new = []
    for theta, grad, buf in ((W, gz.T @ X, bufs[0]), (b, gz.sum(0), bufs[1])):
        d = grad + wd * theta
        d = momentum * buf + d
        new.append(theta - lr * d)
    zm = xm.numpy() @ new[0].T + new[1]
    zm = zm - zm.max(1, keepdims=True)
    logp = zm - np.log(np.exp(zm).sum(1, keepdims=True))
    return float(-logp[np.arange(len(ym)), ym.numpy()].mean())


def test_hypergradient_matches_finite_differences_of_an_independent_computation():
    model, x, y, xm, ym = _tiny_problem()
    loss = asymloss.create_loss("gce", q=0.6, eps=0.0)
    learned, _ = learnable_hparams(loss, ["q"], num_classes=4)
    (h,) = learned
    assert h.constraint.kind == "interval" and (h.constraint.lo, h.constraint.hi) == (0.0, 1.0)
    g = torch.Generator().manual_seed(1)
    bufs = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in model.parameters()]
    lr, mom, wd = 0.7, 0.9, 0.01
    u = torch.tensor(h.constraint.raw(0.6), dtype=torch.float64, requires_grad=True)
    meta = meta_objective(model, loss, learned, [h.constraint.value(u)], x, y, xm, ym, lr=lr, momentum=mom,
                          weight_decay=wd, momentum_buffers=bufs)
    (grad,) = torch.autograd.grad(meta, u)
    ind = lambda v: _independent_meta_loss(v, model, x, y, xm, ym, lr, mom, wd, [b.numpy() for b in bufs])  # noqa: E731
    u0 = float(u.detach())
    assert float(meta.detach()) == pytest.approx(ind(u0), rel=1e-12)
    step = 1e-5
    fd = (ind(u0 + step) - ind(u0 - step)) / (2 * step)
    assert abs(fd) > 1e-4                                   # a real signal, not 0 == 0
    assert float(grad) == pytest.approx(fd, rel=1e-6)
    assert loss.q == 0.6                                    # the loss module is left as it was


@pytest.mark.parametrize("name, params", [
    ("agce", {"a": 0.6, "q": 0.6}), ("aul", {"a": 5.5, "q": 3.0}), ("ael", {"a": 2.5}),
    ("sce", {"alpha": 0.5, "beta": 1.0}), ("nce+agce", {"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5}),
    ("nce+aul", {}), ("nce+ael", {}), ("nce+rce", {}),
])
def test_hypergradient_of_each_loss_matches_central_differences(name, params):
    model, x, y, xm, ym = _tiny_problem(seed=3)
    loss = asymloss.create_loss(name, **params)
    learned, _ = learnable_hparams(loss, num_classes=4)
    raw = [torch.tensor(h.constraint.raw(getattr(h.owner, h.attr)), dtype=torch.float64, requires_grad=True)
           for h in learned]

    def f(us):
        return meta_objective(model, loss, learned, [h.constraint.value(u) for h, u in zip(learned, us)],
                              x, y, xm, ym, lr=0.5, momentum=0.9, weight_decay=1e-3)

    grads = torch.autograd.grad(f(raw), raw)
    for i, h in enumerate(learned):
        step = 1e-5
        up = [r.detach().clone() for r in raw]
        down = [r.detach().clone() for r in raw]
        up[i] += step
        down[i] -= step
        fd = (float(f(up).detach()) - float(f(down).detach())) / (2 * step)
        assert float(grads[i]) == pytest.approx(fd, rel=1e-5, abs=1e-9), h.name
    assert any(abs(float(g)) > 1e-6 for g in grads)


# -- the ranges ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("gce", {"q": "(0, 1]"}), ("agce", {"a": "> 0", "q": "> 0"}), ("aul", {"a": "> 1", "q": "> 0"}),
    ("ael", {"a": "> 0"}), ("sce", {"alpha": ">= 0", "beta": ">= 0"}),
    ("nce+agce", {"alpha": ">= 0", "beta": ">= 0", "a": "> 0", "q": "> 0"}),
    ("nce+aul", {"alpha": ">= 0", "beta": ">= 0", "a": "> 1", "q": "> 0"}),
])
def test_ranges_are_read_from_the_losses_own_checks(name, expected):
    learned, skipped = learnable_hparams(asymloss.create_loss(name), num_classes=10)
    assert {h.name: h.constraint.describe() for h in learned} == expected
    assert all("safeguard" in why for k, why in skipped.items() if k in ("eps", "A"))


def test_an_ad_hoc_combination_gives_its_ranges_through_its_checks():
    loss = asymloss.ActivePassive(asymloss.create_loss("nce"), asymloss.create_loss("aul"), alpha=1, beta=2)
    learned, _ = learnable_hparams(loss)
    assert {h.name: h.constraint.describe() for h in learned} == {"alpha": ">= 0", "beta": ">= 0", "a": "> 1",
                                                                  "q": "> 0"}


@pytest.mark.parametrize("c, inside", [
    (Constraint(0.0, True, 1.0, False), lambda v: 0 < v <= 1),
    (Constraint(1.0, True), lambda v: v > 1),
    (Constraint(0.0, False), lambda v: v >= 0),
    (Constraint(None, True, 2.0, True), lambda v: v < 2),
])
def test_transforms_keep_every_value_inside_its_range(c, inside):
    for u in (-1e4, -800.0, -50.0, -1.0, 0.0, 3.0, 50.0, 800.0, 1e4):
        v = float(c.value(torch.tensor(u, dtype=torch.float64)))
        assert math.isfinite(v) and inside(v), (u, v)
    for v in (0.3, 0.9):   # the inverse: value(raw(v)) = v
        v = v if c.lo is None or c.lo < v else c.lo + v
        v = v if c.hi is None or v < c.hi else c.hi - 0.5
        assert float(c.value(torch.tensor(c.raw(v), dtype=torch.float64))) == pytest.approx(v, rel=1e-12)


def test_huge_meta_steps_keep_the_hyperparameters_valid():
    rec = train(_digits(loss="aul", loss_params={"a": 1.05, "q": 0.05}, meta_lr=50.0, meta_optimizer="sgd",
                        epochs=1), progress=False)
    hp = rec["epochs"][-1]["meta"]["hparams"]
    assert hp["a"] > 1 and hp["q"] > 0
    assert (hp["a"], hp["q"]) != (1.05, 0.05)


def test_unlearnable_losses_and_names_are_refused():
    with pytest.raises(ValueError, match="no continuous hyperparameter"):
        learnable_hparams(asymloss.create_loss("ce"))
    with pytest.raises(ValueError, match="not differentiable in 'gamma'"):
        learnable_hparams(asymloss.create_loss("nfl+agce"), ["gamma"])
    learned, skipped = learnable_hparams(asymloss.create_loss("nfl+agce"))   # the rest is learned
    assert [h.name for h in learned] == ["alpha", "beta", "a", "q"] and "constant" in skipped["gamma"]
    with pytest.raises(KeyError, match="Did you mean 'q'"):
        learnable_hparams(asymloss.create_loss("agce"), ["qq"])
    # a coefficient at 0 (its term off) is not learned by default
    learned, skipped = learnable_hparams(asymloss.create_loss("nce+agce", preset="paper:mnist"))
    assert "alpha" not in [h.name for h in learned] and "term is off" in skipped["alpha"]


def test_swapped_hparams_restores_the_values():
    loss = asymloss.create_loss("nce+agce")
    learned, _ = learnable_hparams(loss)
    before = loss.hparams()
    with pytest.raises(RuntimeError):
        with swapped_hparams(learned, [torch.tensor(0.5)] * len(learned)):
            assert isinstance(loss.passive.a, torch.Tensor)
            raise RuntimeError("inside")
    assert loss.hparams() == before


# -- the meta set ----------------------------------------------------------------------------------

def test_meta_set_is_class_balanced_and_seeded():
    y = np.repeat(np.arange(10), 50)
    a = select_meta_set(105, y, 10, seed=0)
    counts = np.bincount(y[a], minlength=10)
    assert len(a) == 105 and sorted(counts.tolist()) == [10] * 5 + [11] * 5
    assert np.array_equal(a, select_meta_set(105, y, 10, seed=0))
    assert not np.array_equal(a, select_meta_set(105, y, 10, seed=1))
    assert np.array_equal(select_meta_set([3, 1, 60, 120, 170, 210, 260, 310, 360, 410, 460], y, 10, seed=0),
                          [1, 3, 60, 120, 170, 210, 260, 310, 360, 410, 460])


def test_meta_set_images_are_held_out_of_training():
    from asymloss.train.engine import prepare_data
    from asymloss.train.loss import resolve_loss

    cfg = _digits(loss="gce")
    data = prepare_data(cfg)
    # tag every image by its index so that the split can be traced
    n = len(data.y_clean)
    tagged = torch.zeros_like(data.x_train)
    tagged.view(n, -1)[:, 0] = torch.arange(n) % 256
    tagged.view(n, -1)[:, 1] = torch.arange(n) // 256
    from dataclasses import replace
    data = replace(data, x_train=tagged)
    learner, kept = MetaLearner.create(cfg, data, resolve_loss(cfg, 10), torch.device("cpu"), lambda x: x.float(),
                                       torch.contiguous_format)

    def ids(x):
        flat = x.reshape(len(x), -1).long()
        return set((flat[:, 0] + 256 * flat[:, 1]).tolist())

    meta_ids, train_ids = ids(learner.x_meta), ids(kept.x_train)
    assert len(meta_ids) == 100 and not meta_ids & train_ids and len(meta_ids | train_ids) == n
    assert learner.y_meta.tolist() == data.y_clean[sorted(meta_ids)].tolist()   # the clean labels
    assert np.bincount(learner.y_meta.numpy(), minlength=10).tolist() == [10] * 10


# -- the engine: record, trajectory, resume --------------------------------------------------------

def test_record_holds_the_meta_set_and_the_trajectory(tmp_path):
    cfg = _digits(loss="agce")
    rec = train(cfg, tmp_path / "run", progress=False)
    plain = train(cfg.replace(meta_set=None), progress=False)
    meta = rec["meta"]
    assert meta["size"] == 100 and meta["per_class"] == [10] * 10
    assert rec["data"]["train_size"] == plain["data"]["train_size"] - 100
    assert set(meta["learned"]) == {"a", "q"} and meta["learned"]["a"]["range"] == "> 0"
    assert meta["learned"]["a"]["initial"] == rec["loss"]["hparams"]["a"]
    traj = meta_trajectory(rec)
    assert set(traj) == {"a", "q"} and len(traj["a"]) == 3
    assert traj["a"][-1] != traj["a"][0]
    steps = sum(e["meta"]["meta_steps"] for e in rec["epochs"])
    assert all(0 < e["meta"]["seconds"] < e["seconds"] for e in rec["epochs"])
    assert steps > 0 and all(e["meta"]["meta_loss"] > 0 for e in rec["epochs"])
    assert json.loads((tmp_path / "run" / "record.json").read_text()) == json.loads(json.dumps(rec))
    every = train(cfg.replace(meta_every=3, epochs=1), progress=False)
    assert every["epochs"][0]["meta"]["meta_steps"] == math.ceil(steps / 2 / 3)


def test_meta_run_keeps_the_plain_run_id_space():
    cfg = get_protocol("paper-mnist")
    d = {k: v for k, v in cfg.to_dict().items()
         if not k.startswith("meta_") and k not in ("data_dir", "device", "loss_schedule")}   # the fields' defaults
    import hashlib
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    assert cfg.config_hash() == hashlib.sha256(blob.encode()).hexdigest()[:12]   # ids of earlier runs unchanged
    assert cfg.replace(meta_set=100).config_hash() != cfg.config_hash()
    assert cfg.replace(meta_set=100, meta_lr=0.1).config_hash() != cfg.replace(meta_set=100).config_hash()
    assert TrainConfig.from_dict(cfg.replace(meta_set=[1, 2, 3], meta_params=["q"]).to_dict()).meta_set == (1, 2, 3)


def test_interrupted_meta_run_resumes_to_the_identical_record(tmp_path, monkeypatch):
    import asymloss.train.engine as engine

    cfg = _digits(loss="nce+agce", epochs=3)
    whole = train(cfg, tmp_path / "whole", progress=False)
    real = engine.atomic_write_json
    calls = []

    def write_then_stop(path, obj):
        real(path, obj)
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt  # after epoch 1's checkpoint and record

    monkeypatch.setattr(engine, "atomic_write_json", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setattr(engine, "atomic_write_json", real)
    assert len(json.loads((tmp_path / "cut" / "record.json").read_text())["epochs"]) == 1
    resumed = train(cfg, tmp_path / "cut", progress=False)

    def strip(rec):  # without the timings
        return [{**{k: v for k, v in e.items() if k != "seconds"},
                 "meta": {k: v for k, v in e["meta"].items() if k != "seconds"}} for e in rec["epochs"]]

    assert strip(resumed) == strip(whole)
    assert resumed["meta"] == whole["meta"]


def test_trajectory_figure(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    from asymloss.report import plot_meta_trajectory, save_figure

    backend = matplotlib.get_backend()
    rec = train(_digits(loss="aul", epochs=1), progress=False)
    fig = plot_meta_trajectory([rec, rec], labels=["one", "two"], title="t")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["a", "q"]
    assert len(fig.axes[0].get_lines()) >= 2
    assert save_figure(fig, tmp_path / "t.png").stat().st_size > 0
    assert matplotlib.get_backend() == backend
    with pytest.raises(ValueError, match="meta-learned"):
        plot_meta_trajectory(train(_digits(meta_set=None, epochs=1), progress=False))


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, exc, match", [
    ({"meta_set": 0}, ValueError, r"meta_set must be >= 1; got 0"),
    ({"meta_set": 2.5}, TypeError, r"meta_set must be an integer"),
    ({"meta_set": []}, ValueError, "at least one training index"),
    ({"meta_set": [1, 2, 1]}, ValueError, "index 1 more than once"),
    ({"meta_set": [1, -2]}, ValueError, r"meta_set index must be >= 0"),
    ({"meta_lr": 0}, ValueError, r"meta_lr must be > 0"),
    ({"meta_every": 0}, ValueError, r"meta_every must be >= 1"),
    ({"meta_batch_size": 0}, ValueError, r"meta_batch_size must be >= 1"),
    ({"meta_optimizer": "adamw"}, ValueError, "meta_optimizer must be one of 'adam', 'sgd'"),
    ({"meta_params": []}, TypeError, "meta_params must be a non-empty list"),
    ({"meta_set": 10, "compile": True}, ValueError, "compile=True is not supported"),
    ({"meta_set": 10, "loss_schedule": {"q": {"factor": 2, "every": 1}}}, ValueError, "with a loss_schedule"),
])
def test_config_errors_name_the_argument(kw, exc, match):
    with pytest.raises(exc, match=match):
        get_protocol("demo-digits", **kw)


@pytest.mark.parametrize("kw, exc, match", [
    ({"meta_set": 5000}, ValueError, "meta_set=5000 is larger than the data"),
    ({"meta_set": 5}, ValueError, "cannot hold every class"),
    ({"meta_set": list(range(0, 1400, 150))[:3]}, ValueError, "meta_set misses class"),
    ({"meta_set": [99999]}, ValueError, "out of range"),
    ({"loss": "ce"}, ValueError, "loss 'ce' has no continuous hyperparameter"),
    ({"loss": "agce", "meta_params": ["qq"]}, KeyError, "Did you mean 'q'"),
    ({"loss": "gjs"}, ValueError, "needs training mechanics"),
])
@pytest.mark.filterwarnings("ignore:.*augmented views")  # gjs on un-augmented digits
def test_training_errors_name_the_argument(kw, exc, match):
    with pytest.raises(exc, match=match):
        train(_digits(epochs=1, **{"loss": "gce", **kw}), progress=False)


def test_packs_refuse_meta_learning():
    from asymloss.train.pack import train_pack

    with pytest.raises(NotImplementedError, match="not supported in a pack"):
        train_pack([_digits(loss="gce", model="cnn4")], progress=False)


@pytest.mark.parametrize("args, match", [
    (["--meta-set", "5000"], "meta_set=5000 is larger than the data"),
    (["--loss", "ce", "--meta-set", "100"], "no continuous hyperparameter"),
    (["--meta-set", "100", "--meta-param", "gamma"], "unknown hyperparameter of loss 'agce' in meta_params"),
    (["--meta-set", "100", "--meta-lr", "-1"], "meta_lr must be > 0"),
    (["--meta-set", "no-such-file"], "neither a number of images nor a file"),
    (["--loss", "nfl+agce", "--meta-set", "100", "--meta-param", "gamma"], "not differentiable in 'gamma'"),
])
def test_cli_errors_exit_2_with_one_line(args, match):
    res = runner.invoke(app, ["train", "--protocol", "demo-digits", "--loss", "agce", "--epochs", "1",
                              "--device", "cpu", *args], env={"COLUMNS": "300"})
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and match in " ".join(res.output.split()), res.output


def test_cli_trains_with_a_file_of_trusted_indices(tmp_path):
    from asymloss.train.engine import prepare_data

    clean = prepare_data(_digits(meta_set=None)).y_clean.numpy()
    idx = [int(np.flatnonzero(clean == k)[j]) for k in range(10) for j in range(3)]
    (tmp_path / "trusted.txt").write_text("\n".join(map(str, idx)) + "\n")
    res = runner.invoke(app, ["train", "--protocol", "demo-digits", "--loss", "gce", "--noise", "symmetric:0.4",
                              "--epochs", "1", "--device", "cpu", "--meta-set", str(tmp_path / "trusted.txt"),
                              "--meta-every", "4", "--out", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "meta-learned from 30 held-out clean images: q 0.7 →" in res.output
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    assert rec["meta"]["source"] == "given" and rec["meta"]["per_class"] == [3] * 10
    assert rec["config"]["meta_set"] == idx
