"""Training engine, protocols, models, records, resume and the training CLI."""
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
from typer.testing import CliRunner

from asymloss.cli import app
from asymloss.models import create_model, list_models
from asymloss.train import TrainConfig, get_protocol, list_protocols, train

REPO = Path(__file__).resolve().parents[1]


# -- protocols ----------------------------------------------------------------------------------

def test_protocols_match_spec_section_5():
    m = get_protocol("paper-mnist")
    assert (m.dataset, m.model, m.epochs, m.batch_size, m.eval_batch_size) == ("mnist", "cnn4", 50, 128, 256)
    assert (m.lr, m.momentum, m.weight_decay, m.schedule, m.grad_clip) == (0.01, 0.9, 1e-3, "cosine", 5.0)
    assert (m.crop_padding, m.hflip, m.rotation, m.noise_sampler) == (0, False, 0.0, "independent")
    c = get_protocol("paper-cifar10")
    assert (c.model, c.epochs, c.lr, c.weight_decay, c.crop_padding, c.hflip) == ("cnn8", 120, 0.01, 1e-4, 4, True)
    assert c.noise_sampler == "exact" and c.loss_preset == "paper:cifar10"
    h = get_protocol("paper-cifar100")
    assert (h.model, h.epochs, h.lr, h.weight_decay, h.rotation) == ("resnet34", 200, 0.1, 1e-5, 20.0)
    assert h.noise_sampler == "reference"  # exact for symmetric, independent for asymmetric noise
    w = get_protocol("paper-webvision")
    assert (w.model, w.epochs, w.lr, w.nesterov, w.weight_decay, w.schedule, w.gamma, w.batch_size) == (
        "resnet50", 250, 0.4, True, 3e-5, "exp", 0.97, 256)
    assert (w.random_resized_crop, w.hflip, w.color_jitter) == (224, True, 0.4)
    with pytest.raises(NotImplementedError, match="configuration only"):
        train(w, progress=False)
    n = get_protocol("cifar-n")
    assert (n.model, n.epochs, n.lr, n.weight_decay, n.schedule, n.milestones, n.gamma) == (
        "resnet34", 100, 0.1, 5e-4, "step", (60,), 0.1)
    assert {"paper-mnist", "paper-cifar10", "paper-cifar100", "paper-webvision", "cifar-n"} <= set(list_protocols())


def test_protocol_overrides_and_errors():
    cfg = get_protocol("paper-mnist", epochs=3, lr=0.1, loss="agce")
    assert (cfg.epochs, cfg.lr, cfg.loss) == (3, 0.1, "agce")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.config_hash() != cfg.replace(seed=1).config_hash()
    # where a run happens is not what it is: the id survives another data directory or device
    assert cfg.config_hash() == cfg.replace(data_dir="elsewhere", device="cpu").config_hash()
    with pytest.raises(KeyError, match="Did you mean 'epochs'"):
        get_protocol("paper-mnist", epoch=3)
    with pytest.raises(KeyError, match="paper-mnist"):
        get_protocol("paper-mnst")
    with pytest.raises(ValueError, match=r"lr must be > 0; got -1"):
        get_protocol("paper-mnist", lr=-1.0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        get_protocol("paper-mnist", schedule="linear")


# -- models -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,c,s", [("cnn4", 1, 28), ("cnn8", 3, 32), ("mlp", 1, 8), ("resnet18", 3, 32)])
def test_models_shapes(name, c, s):
    model = create_model(name, num_classes=7, in_channels=c, image_size=s)
    assert model(torch.randn(3, c, s, s)).shape == (3, 7)


def test_paper_cnn_layout_and_initialisation():
    torch.manual_seed(0)
    m4 = create_model("cnn4", 10, 1, 28)
    fc = [l for l in m4.modules() if isinstance(l, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in fc] == [(3136, 128), (128, 10)]
    m8 = create_model("cnn8", 10, 3, 32)
    convs = [l.out_channels for l in m8.modules() if isinstance(l, torch.nn.Conv2d)]
    assert convs == [64, 64, 128, 128, 196, 196]
    assert [l.in_features for l in m8.modules() if isinstance(l, torch.nn.Linear)] == [3136, 256]
    # Kaiming-uniform(fan_in, relu): U(-b, b), b = sqrt(6 / fan_in); Xavier-uniform: b = sqrt(6 / (in + out))
    conv = [l for l in m8.modules() if isinstance(l, torch.nn.Conv2d)][3]
    b = math.sqrt(6.0 / (conv.in_channels * 9))
    assert conv.weight.abs().max() <= b and conv.weight.std().item() == pytest.approx(b / math.sqrt(3), rel=0.02)
    lin = fc[0]
    b = math.sqrt(6.0 / (3136 + 128))
    assert lin.weight.abs().max() <= b and lin.weight.std().item() == pytest.approx(b / math.sqrt(3), rel=0.02)
    # biases keep PyTorch's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as in the
    # references (which set weights only)
    assert lin.bias.abs().max() <= 1 / math.sqrt(3136) and lin.bias.abs().min() < lin.bias.abs().max()
    assert not torch.all(lin.bias == 0) and not torch.all(fc[1].bias == 0)
    assert lin.bias.std().item() == pytest.approx(1 / math.sqrt(3136) / math.sqrt(3), rel=0.2)
    with pytest.raises(KeyError, match="resnet34"):
        create_model("resnet43", 10)
    assert {"cnn4", "cnn8", "mlp", "resnet18", "resnet34", "resnet50"} <= set(list_models())


# -- engine -------------------------------------------------------------------------------------

def _digits(**kw) -> TrainConfig:
    return get_protocol("demo-digits", **{"epochs": 3, "noise": "symmetric:0.4", **kw})


def test_same_seeds_give_identical_epochs():
    a = train(_digits(), progress=False)
    b = train(_digits(), progress=False)
    keys = ("train_loss", "train_acc_noisy", "train_acc_clean", "test_acc")
    assert [[e[k] for k in keys] for e in a["epochs"]] == [[e[k] for k in keys] for e in b["epochs"]]
    c = train(_digits(seed=1), progress=False)
    assert [e["train_loss"] for e in c["epochs"]] != [e["train_loss"] for e in a["epochs"]]


def test_record_contents(tmp_path):
    cfg = _digits(loss="nce+agce")
    rec = train(cfg, tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "record.json").read_text())
    assert on_disk == json.loads(json.dumps(rec))
    assert rec["status"] == "complete" and rec["config"] == cfg.to_dict()
    assert {"asymloss", "torch", "numpy", "python"} <= set(rec["versions"])
    assert rec["device"].startswith("cpu")
    noise = rec["noise"]
    assert noise["seed"] == cfg.seed and len(noise["sha256"]) == 64
    assert 0.3 < noise["rate"] < 0.5 and len(noise["per_class_rate"]) == 10
    assert len(rec["epochs"]) == 3 and rec["epochs"][-1]["epoch"] == 3
    for e in rec["epochs"]:
        assert 0 <= e["test_acc"] <= 1 and 0 <= e["train_acc_clean"] <= 1 and e["train_loss"] > 0
    f = rec["final"]
    assert f["last_test_acc"] == rec["epochs"][-1]["test_acc"]
    assert f["best_test_acc"] == max(e["test_acc"] for e in rec["epochs"])
    assert f["images_per_s"] > 0
    # a complete run is returned at once; a different config in the same directory is refused
    assert train(cfg, tmp_path / "run", progress=False) == on_disk
    with pytest.raises(ValueError, match="different configuration"):
        train(cfg.replace(seed=5), tmp_path / "run", progress=False)


def test_noise_seed_is_separate_from_run_seed():
    a = train(_digits(epochs=1), progress=False)
    b = train(_digits(epochs=1, noise_seed=0, seed=3), progress=False)
    c = train(_digits(epochs=1, noise_seed=7), progress=False)
    assert a["noise"]["sha256"] == b["noise"]["sha256"] != c["noise"]["sha256"]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    cfg = _digits(epochs=40, seed=2)
    run_dir = tmp_path / "killed"
    script = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from asymloss.train import TrainConfig, train\n"
        "import json; cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))\n"
        "train(cfg, sys.argv[2], progress=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(cfg.to_dict()), str(run_dir)], env=env)
    record = run_dir / "record.json"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if record.exists():
                try:
                    epochs_done = len(json.loads(record.read_text())["epochs"])
                except (json.JSONDecodeError, KeyError):  # would mean a torn write
                    pytest.fail("record.json was read half-written")
                if epochs_done >= 3:
                    break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    partial = json.loads(record.read_text())
    assert partial["status"] == "running" and 3 <= len(partial["epochs"]) < 40
    resumed = train(cfg, run_dir, progress=False)
    whole = train(cfg, progress=False)
    keys = ("train_loss", "train_acc_noisy", "test_acc")
    assert resumed["status"] == "complete" and len(resumed["epochs"]) == 40
    assert [[e[k] for k in keys] for e in resumed["epochs"]] == [[e[k] for k in keys] for e in whole["epochs"]]


def test_augmentation_and_l1_paths_run():
    cfg = _digits(epochs=1, crop_padding=1, hflip=True, rotation=10.0, l1_weight=1e-5, schedule="step", milestones=(1,))
    rec = train(cfg, progress=False)
    assert math.isfinite(rec["epochs"][0]["train_loss"])


# -- CLI ----------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_train_runs_and_writes_a_record(tmp_path):
    res = runner.invoke(app, ["train", "--protocol", "demo-digits", "--loss", "nce+agce", "--noise", "symmetric:0.6",
                              "--epochs", "2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "last test acc" in res.output
    assert json.loads((tmp_path / "r" / "record.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("args,message", [
    (["--loss", "agcee"], "agce"),
    (["--noise", "symetric:0.4"], "symmetric"),
    (["--protocol", "paper-mnst"], "paper-mnist"),
    (["--set", "lr=-1"], "lr must be > 0"),
    (["--noise", "asymmetric:0.4", "--set", "dataset=fashion-mnist"], "on dataset 'fashion-mnist'"),
    (["--loss", "aul", "--param", "a=0.5"], "a must be > 1; got 0.5"),
    (["--protocol", "paper-webvision"], "configuration only"),
])
def test_cli_train_rejects_bad_arguments_before_training(args, message, tmp_path):
    res = runner.invoke(app, ["train", "--protocol", "demo-digits", "--out", str(tmp_path / "x"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "x").exists()


def test_cli_train_missing_dataset_says_where_to_put_it(tmp_path):
    res = runner.invoke(app, ["train", "--protocol", "paper-mnist", "--data-dir", str(tmp_path / "empty")])
    assert res.exit_code == 2, res.output
    assert "mnist" in res.output.lower() and str(tmp_path / "empty") in res.output.replace("\n", "")


def test_cli_demo_prints_the_table_of_accuracies():
    res = runner.invoke(app, ["demo", "--epochs", "1"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ("ce", "gce", "sce", "nce+rce", "nce+agce", "clean", "symmetric:0.6", "asymmetric:0.4"):
        assert name in res.output
    assert "15 runs" in res.output


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "nce+agce"])
def test_torch_compile_path_matches_eager(loss):
    # compile=True compiles the model and the loss together (one graph per step); NCE+AGCE
    # goes through the fused NCE Function
    eager = train(_digits(epochs=2, noise="clean", loss=loss), progress=False)
    compiled = train(_digits(epochs=2, noise="clean", loss=loss, compile=True), progress=False)
    for a, b in zip(eager["epochs"], compiled["epochs"]):
        assert b["test_acc"] == pytest.approx(a["test_acc"], abs=2 / 359)  # at most 2 of 359 test images
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)


def test_bf16_autocast_path_trains_like_float32():
    fp32 = train(_digits(epochs=3, noise="clean"), progress=False)
    bf16 = train(_digits(epochs=3, noise="clean", amp=True), progress=False)
    assert all(math.isfinite(e["train_loss"]) for e in bf16["epochs"])
    assert bf16["final"]["last_test_acc"] == pytest.approx(fp32["final"]["last_test_acc"], abs=0.03)
    assert bf16["final"]["last_test_acc"] > 0.9


def test_reference_sampler_is_resolved_per_dataset(shared_datasets):
    from asymloss.train.engine import prepare_data

    mnist = get_protocol("paper-mnist", noise="symmetric:0.4", subset=2000, data_dir=str(shared_datasets),
                         noise_sampler="reference")
    assert prepare_data(mnist).noise["sampler"] == "independent"  # the reference's MNIST sampler
    digits = _digits(epochs=1, noise_sampler="reference")
    assert prepare_data(digits).noise["sampler"] == "exact"  # not a reference dataset: exact counts
