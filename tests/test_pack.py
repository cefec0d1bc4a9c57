"""Packs: R runs trained as one packed model give each run what it gets alone (docs/packing.md)."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asymloss.data.augment import Augment
from asymloss.models import create_model
from asymloss.models.packed import PackedModel, PackingError, pack_models
from asymloss.train import get_protocol, train
from asymloss.train import pack as pack_mod
from asymloss.train.loss import resolve_loss
from asymloss.train.pack import (apply_augmentation, check_packable, draw_augmentation, group_packs, pack_key,
                                 train_pack)

REPO = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# -- the packed model ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,c,s", [("cnn4", 1, 28), ("cnn8", 3, 32), ("mlp", 1, 8), ("resnet18", 3, 8)])
def test_packed_model_is_the_models_side_by_side_in_float64(name, c, s):
    """In float64 the packed forward, batch-norm statistics and gradients are the R models' own."""
    R, B = 3, 6
    models = []
    for r in range(R):
        torch.manual_seed(r)
        models.append(create_model(name, 10, c, s).double())
    packed = pack_models(models, example=torch.randn(2, c, s, s, dtype=torch.float64))
    xs = torch.randn(R, B, c, s, s, dtype=torch.float64)
    y = torch.arange(B) % 10
    out = packed(xs.transpose(0, 1).reshape(B, R * c, s, s))
    assert out.shape == (R, B, 10)
    sum(F.cross_entropy(out[r], y) for r in range(R)).backward()
    for r, m in enumerate(models):
        ref = m(xs[r])
        F.cross_entropy(ref, y).backward()
        torch.testing.assert_close(out[r], ref, rtol=1e-12, atol=1e-12)
        state = packed.run_state_dict(r)
        for k, v in m.state_dict().items():  # running statistics included
            torch.testing.assert_close(state[k], v, rtol=1e-12, atol=1e-12)
        grads = dict(m.named_parameters())
        for k, p in packed.net.named_parameters():
            torch.testing.assert_close(packed._split(k, p.grad)[r], grads[k].grad, rtol=1e-10, atol=1e-12)


def test_run_state_dicts_round_trip_and_bad_models_are_refused():
    models = [create_model("cnn4", 10, 1, 28) for _ in range(2)]
    packed = pack_models(models)
    other = create_model("cnn4", 10, 1, 28)
    packed.load_run_state_dict(1, other.state_dict())
    for k, v in other.state_dict().items():
        assert torch.equal(packed.run_state_dict(1)[k], v)
        assert torch.equal(packed.run_state_dict(0)[k], models[0].state_dict()[k])
    with pytest.raises(PackingError, match="same architecture"):
        pack_models([models[0], create_model("cnn4", 7, 1, 28)])
    with pytest.raises(PackingError, match="dropout"):
        pack_models([nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))] * 2)
    with pytest.raises(PackingError, match="LayerNorm"):
        pack_models([nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))] * 2)

    class Mixer(nn.Module):  # a forward that mixes channels across runs
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x.flatten(1).flip(1))

    with pytest.raises(PackingError, match="does not compute"):
        pack_models([Mixer(), Mixer()], example=torch.randn(2, 4, 1, 1))


def test_pack_augmentation_draws_what_each_run_draws():
    aug = Augment(crop_padding=2, hflip=True, rotation=15.0)
    x = torch.rand(3, 5, 2, 8, 8)  # (R, m, C, H, W)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    ref = [aug(x[r], generator=torch.Generator().manual_seed(s)) for r, s in enumerate((1, 2, 3))]
    params = [draw_augmentation(aug, 5, g, x.device) for g in gens]
    flat = {k: torch.stack([p[k] for p in params], 1).reshape(-1) for k in params[0]}  # image b of run r at b*R + r
    out = apply_augmentation(aug, x.transpose(0, 1).reshape(15, 2, 8, 8), flat).view(5, 3, 2, 8, 8)
    for r in range(3):
        assert torch.equal(out[:, r], ref[r])


def test_per_run_clipping_and_optimiser_state_are_the_runs_own():
    cfg = get_protocol("demo-digits", model="cnn4", channels_last=False)
    runs, states = [], []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        m = create_model("cnn4", 10, 1, 8)
        states.append(m.state_dict())
        runs.append(m)

    class _D:  # the little of PreparedData that _Pack reads
        num_classes, x_train = 10, torch.zeros(1, 1, 8, 8, dtype=torch.uint8)

    fake = [pack_mod._Run(i, cfg.replace(seed=i), None, data=_D(), resolved=resolve_loss(cfg.replace(seed=i), 10))
            for i in range(3)]
    pack = pack_mod._Pack(fake, torch.device("cpu"), states, None, None, check=True)
    x = torch.randn(3, 4, 1, 8, 8) * torch.tensor([1.0, 30.0, 0.01]).view(3, 1, 1, 1, 1)  # one run clipped hard
    y = torch.arange(4)
    out = pack.model(x.transpose(0, 1).reshape(4, 3, 8, 8))
    sum(F.cross_entropy(out[r], y) for r in range(3)).backward()
    pack.clip_(0.5)
    for r, m in enumerate(runs):
        F.cross_entropy(m(x[r]), y).backward()
        nn.utils.clip_grad_norm_(m.parameters(), 0.5, foreach=True)
        for k, p in m.named_parameters():
            torch.testing.assert_close(pack.model._split(k, dict(pack.model.net.named_parameters())[k].grad)[r],
                                       p.grad, rtol=1e-4, atol=1e-6)
    pack.optimizer.step()
    sd = pack.optimizer.state_dict()
    singles = [pack_mod._unpack_optimizer_state(pack.model, sd, r) for r in range(3)]
    assert set(singles[0]["state"]) == set(range(len(list(runs[0].parameters()))))
    repacked = pack_mod._pack_optimizer_state(pack.model, singles)
    for i, st in sd["state"].items():
        assert torch.equal(repacked["state"][i]["momentum_buffer"], st["momentum_buffer"])


def test_which_runs_can_share_a_pack():
    base = get_protocol("paper-mnist", epochs=2)
    a, b = base.replace(loss="agce", seed=1), base.replace(noise="symmetric:0.8", noise_seed=4, loss_params={"q": 0.5})
    assert pack_key(a) == pack_key(b) == pack_key(base)
    assert pack_key(base.replace(lr=0.1)) != pack_key(base)
    check_packable([base, a, b])
    with pytest.raises(ValueError, match="differ in 'batch_size'"):
        check_packable([base, a.replace(batch_size=64)])
    with pytest.raises(ValueError, match="same run twice"):
        check_packable([base, base])
    cfgs = [base.replace(seed=s) for s in range(13)] + [base.replace(lr=0.1, seed=s) for s in range(3)]
    packs = group_packs(cfgs, 8)
    assert [len(p) for p in packs] == [7, 6, 3] and sorted(sum(packs, [])) == list(range(16))
    assert group_packs(cfgs, 1) == [[i] for i in range(16)]


# -- packs train what the runs train alone ---------------------------------------------------------

def _digits(**kw):
    """A fast pack-able protocol: sklearn's digits (no download), the MNIST CNN on 8x8 images.

    lr 0.01: at the protocol's 0.05 these runs are chaotic — a 1e-6 relative change of the initial
    weights changes the single engine's training loss by 0.1-1% within three epochs — so a pack's
    last-bit differences (docs/packing.md) would be amplified as much."""
    return get_protocol("demo-digits", **{"model": "cnn4", "channels_last": True, "epochs": 3, "lr": 0.01, **kw})


DIGIT_RUNS = [
    dict(loss="ce", noise="symmetric:0.4", seed=0),
    dict(loss="agce", noise="asymmetric:0.2", seed=1),
    dict(loss="nce+rce", noise="clean", seed=2, noise_seed=5),
]


def _close(pack_rec, alone_rec, loss_rel=1e-3, acc_abs=0.003):
    assert pack_rec["status"] == alone_rec["status"] == "complete"
    assert len(pack_rec["epochs"]) == len(alone_rec["epochs"])
    for p, a in zip(pack_rec["epochs"], alone_rec["epochs"]):
        assert p["train_loss"] == pytest.approx(a["train_loss"], rel=loss_rel), (p, a)
        assert p["test_acc"] == pytest.approx(a["test_acc"], abs=acc_abs), (p, a)
        assert p["lr"] == a["lr"]


def test_pack_records_are_the_engines_format(tmp_path):
    cfgs = [_digits(**DIGIT_RUNS[0], epochs=2), _digits(**DIGIT_RUNS[2], epochs=2)]
    recs = train_pack(cfgs, [tmp_path / "a", tmp_path / "b"])
    alone = train(cfgs[0], tmp_path / "alone", progress=False)
    assert set(recs[0]) == set(alone) | {"pack"} and recs[0]["pack"] == {"runs": 2}
    assert set(recs[0]["final"]) == set(alone["final"]) and set(recs[0]["epochs"][0]) == set(alone["epochs"][0])
    for r, d in zip(recs, ("a", "b")):
        assert json.loads((tmp_path / d / "record.json").read_text()) == json.loads(json.dumps(r))
        ck = torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)
        ref = torch.load(tmp_path / "alone" / "checkpoint.pt", weights_only=True)
        assert set(ck) == set(ref) and set(ck["model"]) == set(ref["model"])
        assert {k: v.shape for k, v in ck["model"].items()} == {k: v.shape for k, v in ref["model"].items()}
        assert ck["optimizer"]["param_groups"] == ref["optimizer"]["param_groups"]
        assert ck["scheduler"] == ref["scheduler"]
    assert recs[0]["noise"] == alone["noise"] and recs[0]["config"] == alone["config"]
    # a complete pack is returned at once
    assert train_pack(cfgs, [tmp_path / "a", tmp_path / "b"]) == [json.loads(json.dumps(r)) for r in recs]


def test_a_pack_with_augmentation_l1_and_a_step_schedule_trains_each_run_as_alone():
    # lr 0.02: at the protocol's 0.05 some of these runs are chaotic enough that the single engine
    # itself, on 1 or 2 CPU threads, differs by 0.3% in loss after 2 epochs (reassociation, amplified)
    extra = dict(l1_weight=1e-5, schedule="step", milestones=(2,), crop_padding=1, hflip=True, rotation=10.0, lr=0.02)
    cfgs = [_digits(**{**r, **extra}) for r in DIGIT_RUNS]
    recs = train_pack(cfgs)
    for cfg, rec in zip(cfgs, recs):
        _close(rec, train(cfg, progress=False), acc_abs=2.5 / 359)


class _StopAfter(nn.Module):
    """A loss that raises KeyboardInterrupt at call ``steps + 1`` (a process killed mid-epoch)."""

    def __init__(self, inner: nn.Module, steps: int):
        super().__init__()
        self.inner, self.steps, self.calls = inner, steps, 0

    def hparams(self):
        return self.inner.hparams()

    def forward(self, x, y):
        self.calls += 1
        if self.calls > self.steps:
            raise KeyboardInterrupt
        return self.inner(x, y)


def _wrap_loss(monkeypatch, module, wrap: dict):
    """Make ``module.resolve_loss`` wrap the loss of a run (by loss name): ``wrap[loss](module)``."""
    import dataclasses

    from asymloss.train.loss import resolve_loss as real

    def resolve(config, k):
        r = real(config, k)
        return dataclasses.replace(r, module=wrap[config.loss](r.module)) if config.loss in wrap else r

    monkeypatch.setattr(module, "resolve_loss", resolve)


def _interrupt(monkeypatch, module, steps: dict):
    """Make a run (by loss name) stop after ``steps[loss]`` steps."""
    _wrap_loss(monkeypatch, module, {k: (lambda m, n=n: _StopAfter(m, n)) for k, n in steps.items()})


def test_runs_whose_presets_bring_their_own_l1_and_weight_decay_pack_with_others(tmp_path):
    """ANL's preset trains with an L1 penalty and weight decay 0: per run in a pack too."""
    cfgs = [_digits(loss="anl_ce", loss_preset="anl:mnist", noise="symmetric:0.4", seed=0),
            _digits(**DIGIT_RUNS[1]), _digits(loss="gce", noise="clean", seed=2, weight_decay=5e-4)]
    recs = train_pack(cfgs, [tmp_path / str(i) for i in range(3)])
    for i, (cfg, rec) in enumerate(zip(cfgs, recs)):
        alone = train(cfg, tmp_path / f"alone{i}", progress=False)
        assert rec["loss"] == alone["loss"]  # the preset, hyperparameters and engine settings in force
        _close(rec, alone, acc_abs=2.5 / 359)
        ck = torch.load(tmp_path / str(i) / "checkpoint.pt", weights_only=True)
        ref = torch.load(tmp_path / f"alone{i}" / "checkpoint.pt", weights_only=True)
        assert ck["optimizer"]["param_groups"] == ref["optimizer"]["param_groups"]
    assert recs[0]["loss"]["engine"]["weight_decay"] == 0.0 and recs[0]["loss"]["engine"]["l1_weight"] > 0


def test_pack_and_single_engine_resume_each_others_checkpoints(tmp_path, monkeypatch):
    from asymloss.train import engine

    cfgs = [_digits(**r) for r in DIGIT_RUNS]
    alone = [train(c, progress=False) for c in cfgs]
    per_epoch = math.ceil(1438 / 64)  # digits: 1,438 training images, batch 64
    dirs = [tmp_path / str(i) for i in range(3)]
    # a pack stopped in the middle of epoch 2; the single engine resumes its runs
    with monkeypatch.context() as mp:
        _interrupt(mp, pack_mod, {"ce": per_epoch + 5})
        with pytest.raises(KeyboardInterrupt):
            train_pack(cfgs[:2], dirs[:2])
    for d in dirs[:2]:
        assert len(json.loads((d / "record.json").read_text())["epochs"]) == 1
    for i in (0, 1):
        _close(train(cfgs[i], dirs[i], progress=False), alone[i], acc_abs=2.5 / 359)
    # single runs stopped at different epochs (run 1 in epoch 3, run 2 in epoch 2), run 0 complete:
    # the pack resumes them as sub-packs, one per epoch
    dirs[1] = tmp_path / "1b"
    for i, steps in ((1, 2 * per_epoch + 3), (2, per_epoch + 7)):
        with monkeypatch.context() as mp:
            _interrupt(mp, engine, {cfgs[i].loss: steps})
            with pytest.raises(KeyboardInterrupt):
                train(cfgs[i], dirs[i], progress=False)
    assert [torch.load(d / "checkpoint.pt", weights_only=True)["epoch"] for d in dirs] == [3, 2, 1]
    recs = train_pack(cfgs, dirs)
    assert recs[0] == json.loads((dirs[0] / "record.json").read_text())
    for i in (0, 1, 2):
        _close(recs[i], alone[i], acc_abs=2.5 / 359)


def test_killed_pack_resumes_to_the_uninterrupted_result(tmp_path):
    cfgs = [_digits(**r, epochs=12) for r in DIGIT_RUNS]
    dirs = [tmp_path / str(i) for i in range(3)]
    script = (
        "import sys, json, torch; torch.set_num_threads(1)\n"
        "from asymloss.train.pack import train_pack\n"
        "train_pack(json.loads(sys.argv[1]), json.loads(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps([c.to_dict() for c in cfgs]),
                             json.dumps([str(d) for d in dirs])], env=env)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                done = [len(json.loads((d / "record.json").read_text())["epochs"]) for d in dirs]
            except FileNotFoundError:
                done = [0]
            except (json.JSONDecodeError, KeyError):
                pytest.fail("record.json was read half-written")
            if min(done) >= 3:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    partial = [json.loads((d / "record.json").read_text()) for d in dirs]
    assert all(p["status"] == "running" and 3 <= len(p["epochs"]) < 12 for p in partial)
    resumed = train_pack(cfgs, dirs)
    whole = train_pack(cfgs)
    keys = ("train_loss", "train_acc_noisy", "train_acc_clean", "test_acc")
    for a, b in zip(resumed, whole):
        assert a["status"] == "complete" and len(a["epochs"]) == 12
        assert [[e[k] for k in keys] for e in a["epochs"]] == [[e[k] for k in keys] for e in b["epochs"]]


class _NaNAfter(nn.Module):
    """A loss that becomes NaN after ``steps`` steps (a run that diverges). The step count is a
    device tensor, so the loss also diverges inside replayed CUDA graphs."""

    def __init__(self, inner: nn.Module, steps: int):
        super().__init__()
        self.inner, self.steps = inner, steps
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def hparams(self):
        return self.inner.hparams()

    def forward(self, x, y):
        self.calls += 1
        out = self.inner(x, y)
        return out * torch.where(self.calls > self.steps, float("nan"), 1.0)


def test_a_run_whose_loss_becomes_nan_fails_alone(tmp_path, monkeypatch):
    cfgs = [_digits(**r) for r in DIGIT_RUNS]
    whole = train_pack(cfgs)
    _wrap_loss(monkeypatch, pack_mod, {"agce": lambda m: _NaNAfter(m, 5)})
    dirs = [tmp_path / str(i) for i in range(3)]
    recs = train_pack(cfgs, dirs)
    assert recs[1]["status"] == "failed" and "non-finite" in recs[1]["error"] and "epoch 1" in recs[1]["error"]
    assert recs[1]["epochs"] == [] and not (dirs[1] / "record.json").exists()
    err = json.loads((dirs[1] / "error.json").read_text())
    assert err["status"] == "failed" and err["type"] == "FloatingPointError"
    keys = ("train_loss", "train_acc_noisy", "test_acc")
    for i in (0, 2):  # the others finish unchanged: epoch 1 with the NaN run beside them, then without it
        assert recs[i]["status"] == "complete" and not (dirs[i] / "error.json").exists()
        assert [[e[k] for k in keys] for e in recs[i]["epochs"]][:1] == [[e[k] for k in keys] for e in whole[i]["epochs"]][:1]
        _close(recs[i], whole[i], loss_rel=1e-5, acc_abs=1.5 / 359)
        assert all(math.isfinite(e["train_loss"]) for e in recs[i]["epochs"])

    # a NaN in a later epoch: the record and checkpoint stay at the last good epoch
    _wrap_loss(monkeypatch, pack_mod, {"nce+rce": lambda m: _NaNAfter(m, 30)})
    late = [tmp_path / "late" / str(i) for i in range(3)]
    recs = train_pack(cfgs, late)
    assert [r["status"] for r in recs] == ["complete", "complete", "failed"]
    kept = json.loads((late[2] / "record.json").read_text())
    assert kept["status"] == "running" and len(kept["epochs"]) == len(recs[2]["epochs"]) >= 1
    assert torch.load(late[2] / "checkpoint.pt", weights_only=True)["epoch"] == len(kept["epochs"])


def test_a_run_whose_setup_fails_fails_alone(tmp_path):
    cfgs = [_digits(noise="clean", epochs=1), _digits(noise="cifar10n:worst", epochs=1, data_dir=str(tmp_path))]
    cfgs[0] = cfgs[0].replace(data_dir=str(tmp_path))
    recs = train_pack(cfgs, [tmp_path / "a", tmp_path / "b"])
    assert [r["status"] for r in recs] == ["complete", "failed"]
    assert "cifar10n" in recs[1]["error"] and "Traceback" in recs[1]["traceback"]
    assert json.loads((tmp_path / "b" / "error.json").read_text())["type"] == "FileNotFoundError"


# -- the contract on real data: MNIST, 3 different runs, 2 epochs on 2,000 images ------------------

@pytest.mark.slow
@pytest.mark.shared
def test_pack_of_three_mnist_runs_matches_the_runs_alone(shared_datasets):
    common = dict(epochs=2, subset=2000, data_dir=str(shared_datasets), device="cpu")
    cfgs = [
        get_protocol("paper-mnist", loss="ce", noise="symmetric:0.4", seed=0, **common),
        get_protocol("paper-mnist", loss="agce", noise="asymmetric:0.2", seed=1, **common),
        get_protocol("paper-mnist", loss="nce+rce", noise="clean", seed=2, noise_seed=5, **common),
    ]
    recs = train_pack(cfgs)
    for cfg, rec in zip(cfgs, recs):
        alone = train(cfg, progress=False)
        assert rec["noise"]["sha256"] == alone["noise"]["sha256"]
        for p, a in zip(rec["epochs"], alone["epochs"]):  # per run and per epoch
            assert p["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
            assert abs(p["test_acc"] - a["test_acc"]) <= 0.003
        assert len(rec["epochs"]) == 2


# -- CUDA ------------------------------------------------------------------------------------------

@cuda
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_pack_matches_the_runs_alone(amp):
    cfgs = [_digits(**r, device="cuda", amp=amp) for r in DIGIT_RUNS]
    recs = train_pack(cfgs)
    for cfg, rec in zip(cfgs, recs):
        alone = train(cfg, progress=False)
        # TF32 convolutions (fp32) or bf16 and cuDNN's own nondeterminism: looser than on a CPU
        _close(rec, alone, loss_rel=3e-2 if amp else 1e-2, acc_abs=(8.5 if amp else 4.5) / 359)
        assert rec["device"].startswith("cuda")


@cuda
def test_cuda_graph_steps_compute_the_eager_steps():
    extra = dict(device="cuda", crop_padding=1, hflip=True, rotation=10.0, l1_weight=1e-5, lr=0.02)
    cfgs = [_digits(**{**r, **extra}) for r in DIGIT_RUNS]
    graphed = train_pack(cfgs, cuda_graphs=True)
    eager = train_pack(cfgs, cuda_graphs=False)
    for g, e in zip(graphed, eager):
        _close(g, e, loss_rel=1e-3, acc_abs=3.5 / 359)  # the same kernels; cuDNN may be nondeterministic


@cuda
def test_a_diverging_run_fails_alone_on_cuda(tmp_path, monkeypatch):
    """cuDNN's grouped convolutions keep a run's NaN in its own groups (CUDA graphs on)."""
    cfgs = [_digits(**r, device="cuda", epochs=2) for r in DIGIT_RUNS]
    whole = train_pack(cfgs)
    _wrap_loss(monkeypatch, pack_mod, {"agce": lambda m: _NaNAfter(m, 5)})
    recs = train_pack(cfgs, [tmp_path / str(i) for i in range(3)])
    assert [r["status"] for r in recs] == ["complete", "failed", "complete"]
    for i in (0, 2):
        _close(recs[i], whole[i], loss_rel=5e-3, acc_abs=4.5 / 359)
