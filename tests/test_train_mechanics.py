"""Training mechanics (docs/training-mechanics.md): schedules, views, per-sample state and
complementary labels are engine parts, recorded in the run record, resumed exactly, and refused
before training where the engine cannot supply them."""
from __future__ import annotations

import ast
import hashlib
import json
import warnings
from pathlib import Path

import pytest
import torch

from asymloss.losses._mechanics import nlnl_class_weight
from asymloss.train import engine, get_protocol, train
from asymloss.train.checks import IdenticalViewsWarning, check_config, check_mechanics
from asymloss.train.loss import resolve_loss
from asymloss.train.pack import train_pack

SRC = Path(__file__).resolve().parents[1] / "src" / "asymloss" / "train"
KEYS = ("train_loss", "train_acc_noisy", "train_acc_clean", "test_acc", "lr")


def _digits(**kw):
    return get_protocol("demo-digits", **{"epochs": 3, "noise": "symmetric:0.4", **kw})


class _Stop(Exception):
    pass


def _resumed(cfg, out: Path, after: int, monkeypatch) -> dict:
    """Train ``cfg`` into ``out``, stop it after ``after`` epochs (checkpoint written), resume it."""
    real = engine._checkpoint_and_record

    def stop(run, epoch, entry):
        record = real(run, epoch, entry)
        if epoch + 1 == after:
            raise _Stop
        return record

    with monkeypatch.context() as m:
        m.setattr(engine, "_checkpoint_and_record", stop)
        with pytest.raises(_Stop):
            train(cfg, out, progress=False)
    assert json.loads((out / "record.json").read_text())["status"] == "running"
    return train(cfg, out, progress=False)


def _same_epochs(a: dict, b: dict) -> None:
    assert [[e[k] for k in KEYS] + [e.get("loss_hparams")] for e in a["epochs"]] == \
        [[e[k] for k in KEYS] + [e.get("loss_hparams")] for e in b["epochs"]]


def _loss_state(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True).get("loss_state", {})


# -- schedules ------------------------------------------------------------------------------------

def test_schedule_sets_the_hyperparameter_each_epoch_is_recorded_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = _digits(loss="ce_sr", loss_preset="sr:mnist", loss_schedule={"lam": {"factor": 2.0, "every": 1}})
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert [e["loss_hparams"] for e in whole["epochs"]] == [{"lam": 4.0}, {"lam": 8.0}, {"lam": 16.0}]
    assert whole["loss"]["schedule"] == {"spec": {"lam": {"factor": 2.0, "every": 1}}, "from_preset": False}
    assert whole["mechanics"]["schedule"] == ["lam"]
    resumed = _resumed(cfg, tmp_path / "resumed", 2, monkeypatch)
    _same_epochs(resumed, whole)


def test_sr_presets_bring_their_schedule_unless_the_user_sets_one():
    r = resolve_loss(get_protocol("paper-cifar10", loss="gce_sr", loss_preset="sr:cifar10"), 10)
    assert r.schedule == {"lam": {"factor": 1.03, "every": 1}} and "loss_schedule" in r.engine_from_preset
    assert r.record()["schedule"]["from_preset"] is True
    mine = {"lam": {"values": [1.0, 2.0]}}
    r = resolve_loss(get_protocol("paper-cifar10", loss="gce_sr", loss_preset="sr:cifar10", loss_schedule=mine), 10)
    assert r.schedule == mine and "loss_schedule" not in r.engine_from_preset
    # any loss can be scheduled; a loss without a schedule records none
    r = resolve_loss(get_protocol("paper-cifar10", loss="gce", loss_schedule={"q": {"values": [0.7, 0.5]}}), 10)
    assert r.schedule == {"q": {"values": [0.7, 0.5]}}
    assert "schedule" not in resolve_loss(get_protocol("paper-cifar10", loss="gce"), 10).record()


def test_schedule_of_a_combination_part():
    cfg = _digits(epochs=2, loss="nce+agce", loss_schedule={"q": {"values": [0.2, 0.4]}})
    rec = train(cfg, progress=False)
    assert [e["loss_hparams"] for e in rec["epochs"]] == [{"q": 0.2}, {"q": 0.4}]


@pytest.mark.parametrize("schedule,message", [
    ({"gamma": {"factor": 2}}, r"loss_schedule names 'gamma', which is not a hyperparameter .* tau, p, lam, normalize"),
    ({"lam": {"factor": 0}}, r"loss_schedule\['lam'\]\['factor'\] must be > 0; got 0"),
    ({"lam": {"rho": 2}}, r"loss_schedule\['lam'\]: a schedule is .*got keys \['rho'\]"),
    ({"lam": 2.0}, r"loss_schedule\['lam'\] must be a dict"),
    ({"p": {"factor": 20.0, "every": 1}}, r"loss_schedule\['p'\] gives 2 at epoch 2: p must be > 0 and <= 1"),
])
def test_bad_schedules_are_refused_before_training(schedule, message):
    cfg = _digits(loss="ce_sr", loss_schedule=schedule)
    with pytest.raises((ValueError, TypeError), match=message):
        check_config(cfg, load_data=False, check_device=False)
    with pytest.raises((ValueError, TypeError), match=message):
        train(cfg, progress=False)


def test_loss_schedule_must_be_a_dict_and_leaves_old_run_ids_alone():
    with pytest.raises(TypeError, match="loss_schedule must be a dict"):
        _digits(loss_schedule=[1, 2])
    cfg = _digits()
    d = {k: v for k, v in cfg.to_dict().items() if k not in ("data_dir", "device", "loss_schedule")}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    assert cfg.config_hash() == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert _digits(loss_schedule={"lam": {"factor": 2}}).config_hash() != cfg.config_hash()


# -- views, per-sample state, complementary labels ----------------------------------------------------

def test_views_resume_exactly(tmp_path, monkeypatch):
    cfg = _digits(loss="gjs", crop_padding=1, loss_params={"pi1": 0.5})
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert whole["mechanics"] == {"views": 2, "index": False, "complementary": False, "schedule": []}
    _same_epochs(_resumed(cfg, tmp_path / "resumed", 1, monkeypatch), whole)


def test_views_without_augmentation_warn():
    with pytest.warns(IdenticalViewsWarning, match="the views are identical"):
        check_mechanics(_digits(loss="gjs"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_mechanics(_digits(loss="gjs", hflip=True))


def test_per_sample_state_is_checkpointed_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = _digits(loss="aldr_kl", loss_preset="aldr:mnist")
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert whole["mechanics"]["index"] is True
    lambdas = _loss_state(tmp_path / "whole")["lambdas"]
    n = whole["data"]["train_size"]
    assert lambdas.shape == (n,) and (lambdas != 10.0).all() and (lambdas > 0).all()   # every sample was seen
    resumed = _resumed(cfg, tmp_path / "resumed", 2, monkeypatch)
    _same_epochs(resumed, whole)
    assert torch.equal(_loss_state(tmp_path / "resumed")["lambdas"], lambdas)


def test_complementary_labels_resume_exactly_and_weights_come_from_the_noisy_labels(tmp_path, monkeypatch):
    cfg = _digits(loss="nlnl")
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert whole["mechanics"]["complementary"] is True
    data = engine.prepare_data(cfg)
    torch.testing.assert_close(_loss_state(tmp_path / "whole")["class_weight"],
                               nlnl_class_weight(data.y_noisy, data.num_classes))
    _same_epochs(_resumed(cfg, tmp_path / "resumed", 1, monkeypatch), whole)
    assert train(cfg.replace(seed=1), progress=False)["epochs"][0]["train_loss"] != whole["epochs"][0]["train_loss"]


def test_plain_losses_keep_their_records_and_checkpoints(tmp_path):
    rec = train(_digits(epochs=1), tmp_path / "run", progress=False)
    assert "mechanics" not in rec and "loss_hparams" not in rec["epochs"][0] and "schedule" not in rec["loss"]
    assert "loss_state" not in torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)


# -- places that cannot supply a mechanic -------------------------------------------------------------

@pytest.mark.parametrize("kw,what", [
    ({"loss": "gjs", "hflip": True}, "several augmented views"),
    ({"loss": "aldr_kl"}, "the samples' training-set positions"),
    ({"loss": "nlnl"}, "complementary labels"),
    ({"loss": "ce_sr", "loss_preset": "sr:mnist"}, "hyperparameter schedules"),
])
def test_the_packed_engine_refuses_losses_that_need_mechanics(kw, what, tmp_path):
    cfg = _digits(**kw)
    with pytest.raises(ValueError, match=f"needs {what}.*packed-run engine does not supply.*without --pack"):
        check_mechanics(cfg, engine="pack")
    with pytest.raises(ValueError, match="packed-run engine does not supply"):
        train_pack([cfg, cfg.replace(seed=1)], [tmp_path / "a", tmp_path / "b"], progress=False)
    assert not (tmp_path / "a").exists()


def test_checks_and_engine_do_not_import_each_other():
    def imports(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found.add((node.module or "").split(".")[-1])
        return found

    assert "engine" not in imports(SRC / "checks.py")
    assert "engine" not in imports(SRC / "mechanics.py") and "checks" not in imports(SRC / "mechanics.py")
