"""A user's mistake or a damaged file: one clear ``error:`` line and exit status 2 on the command
line (never a traceback), a specific exception in the library. One test per case."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from asymloss.cli import app
from asymloss.data import ChecksumError, FormatError, load, stratified_indices
from asymloss.noise import corrupt
from asymloss.sweep import build_grid, check_store_dir, expand_grid, load_grid, run_sweep
from asymloss.train import (CheckpointError, RunDirError, SmallSubsetWarning, check_config, get_protocol,
                            inspect_run, train)
from asymloss.train.engine import prepare_data

runner = CliRunner()


def _cli(*args: str, code: int = 2):
    res = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and "╭" not in res.output  # no (pretty) traceback
    if code == 2:
        assert res.output.startswith("error: ") or "\nerror: " in res.output, res.output
    return " ".join(res.output.split())


def _digits(**kw):
    return get_protocol("demo-digits", **{"epochs": 2, **kw})


@pytest.fixture(scope="module")
def done_run(tmp_path_factory) -> Path:
    """A complete two-epoch run on the digits (its record and checkpoint)."""
    out = tmp_path_factory.mktemp("done") / "run"
    train(_digits(), out, progress=False)
    return out


def _unfinished(done_run: Path, where: Path) -> Path:
    """A copy of ``done_run`` whose record says it stopped after epoch 1."""
    shutil.copytree(done_run, where)
    rec = json.loads((where / "record.json").read_text())
    rec["status"], rec["epochs"] = "running", rec["epochs"][:1]
    (where / "record.json").write_text(json.dumps(rec))
    return where


def _npz(path: Path, n: int = 30) -> Path:
    rng = np.random.default_rng(0)
    np.savez_compressed(path, x_train=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8), y_train=np.arange(n) % 3,
                        x_test=rng.integers(0, 255, (10, 8, 8), dtype=np.uint8), y_test=np.arange(10) % 3)
    return path


# -- damaged data files ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty", "flipped"])
def test_damaged_user_npz_names_the_file(tmp_path, damage):
    path = _npz(tmp_path / "set.npz")
    blob = bytearray(path.read_bytes())
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "empty":
        blob = bytearray()
    else:  # the zip directory is intact; an array's bytes are not
        blob[200:260] = b"x" * 60
    path.write_bytes(bytes(blob))
    with pytest.raises(FormatError, match="set.npz: not a readable .npz file.*No checksum is known"):
        load(f"npz:{path}")
    out = _cli("train", "--protocol", "demo-digits", "--set", f"dataset=npz:{path}", "--epochs", "1")
    assert f"error: {path}: not a readable .npz file" in out and "No checksum is known" in out


def test_damaged_offline_copy_says_whether_its_checksum_matches(tmp_path, monkeypatch):
    from asymloss.data import registry

    root = tmp_path / "root"
    root.mkdir()
    blob = _npz(tmp_path / "x.npz").read_bytes()
    (root / "mnist.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ChecksumError, match=r"mnist.npz: not a readable .npz file.*Its sha256 is [0-9a-f]{64}, not "
                                            r"the expected 366ed534.*truncated or corrupt"):
        load("mnist", root=root)
    out = _cli("train", "--protocol", "paper-mnist", "--data-dir", str(root), "--epochs", "1")
    assert "mnist.npz: not a readable .npz file" in out and "not the expected 366ed534" in out
    # a file with the expected checksum that cannot be read: the file is intact, the reader is not
    sha = hashlib.sha256((root / "mnist.npz").read_bytes()).hexdigest()
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(registry.DATASETS["mnist"], offline_sha256=sha))
    with pytest.raises(FormatError, match="matches the expected one.*the file is intact"):
        load("mnist", root=root)


def test_truncated_gzip_idx_file_is_a_checksum_error(tmp_path):
    from asymloss.data.registry import IDX_FILES

    d = tmp_path / "mnist"
    d.mkdir()
    for f in IDX_FILES:
        (d / f).write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)  # a gzip header, then nothing
    with pytest.raises(ChecksumError, match="corrupt gzip data.*not the published"):
        load("mnist", root=tmp_path)


def test_dataset_with_no_images_is_refused(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, x_train=np.zeros((0, 8, 8), np.uint8), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((0, 8, 8), np.uint8), y_test=np.zeros(0, np.int64))
    with pytest.raises(FormatError, match="training set holds no images"):
        load(f"npz:{path}")


# -- damaged checkpoints -------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_unreadable_checkpoint_of_a_complete_run_reports_it_complete(done_run, tmp_path, damage):
    out = tmp_path / "r"
    shutil.copytree(done_run, out)
    ck = out / "checkpoint.pt"
    ck.write_bytes(b"" if damage == "empty" else ck.read_bytes()[:1000])
    rec = train(_digits(), out, progress=False)
    assert rec["status"] == "complete" and inspect_run(out, _digits()).status == "complete"
    text = _cli("train", "--protocol", "demo-digits", "--epochs", "2", "--out", str(out), code=0)
    assert "already complete (2 of 2 epochs)" in text and f"{out}/record.json" in text


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_unreadable_checkpoint_of_an_unfinished_run_offers_a_restart(done_run, tmp_path, damage):
    out = _unfinished(done_run, tmp_path / "r")
    ck = out / "checkpoint.pt"
    ck.write_bytes({"empty": b"", "truncated": ck.read_bytes()[:1000], "garbage": b"not a checkpoint"}[damage])
    with pytest.raises(CheckpointError, match="checkpoint.pt' is unreadable.*epoch 1 of 2.*restart=True"):
        train(_digits(), out, progress=False)
    text = _cli("train", "--protocol", "demo-digits", "--epochs", "2", "--out", str(out))
    assert "is unreadable" in text and "--restart" in text
    assert ck.exists()  # never silently discarded
    text = _cli("train", "--protocol", "demo-digits", "--epochs", "2", "--out", str(out), "--restart", code=0)
    assert "Restarting from epoch 0" in text and "checkpoint.pt.damaged" in text
    assert (out / "checkpoint.pt.damaged").exists() and (out / "record.json.damaged").exists()
    assert json.loads((out / "record.json").read_text())["status"] == "complete"
    fresh = json.loads((done_run / "record.json").read_text())["epochs"]
    assert [e["test_acc"] for e in json.loads((out / "record.json").read_text())["epochs"]] == [
        e["test_acc"] for e in fresh]  # the restarted run is the run itself


def test_train_api_restart_keeps_the_damaged_files(done_run, tmp_path):
    out = _unfinished(done_run, tmp_path / "r")
    (out / "checkpoint.pt").write_bytes(b"")
    rec = train(_digits(), out, progress=False, restart=True)
    assert rec["status"] == "complete" and (out / "checkpoint.pt.damaged").read_bytes() == b""


# -- --out ----------------------------------------------------------------------------------------------

def test_out_holding_another_configuration(done_run):
    with pytest.raises(RunDirError, match="holds a run with a different configuration"):
        train(_digits(epochs=3), done_run, progress=False)
    text = _cli("train", "--protocol", "demo-digits", "--epochs", "3", "--out", str(done_run))
    assert f"error: out_dir '{done_run}' holds a run with a different configuration" in text


def test_out_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a directory"):
        train(_digits(), f, progress=False)
    assert "is a file, not a directory" in _cli("train", "--protocol", "demo-digits", "--out", str(f))
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        check_store_dir(f)
    with pytest.raises(NotADirectoryError):
        run_sweep(build_grid(protocol="demo-digits", losses="ce"), f)
    text = _cli("sweep", "--protocol", "demo-digits", "--losses", "ce", "--out", str(f))
    assert f"error: out '{f}' is a file, not a directory" in text


# -- configuration checked before anything runs -------------------------------------------------------

def test_unknown_model_suggests_the_closest(tmp_path):
    with pytest.raises(KeyError, match="unknown model 'resnt34'. Did you mean 'resnet34'"):
        check_config(_digits(model="resnt34"), load_data=False)
    text = _cli("train", "--protocol", "demo-digits", "--set", "model=resnt34", "--out", str(tmp_path / "x"))
    assert "unknown model 'resnt34'. Did you mean 'resnet34'" in text and not (tmp_path / "x").exists()


def test_cifar_n_noise_on_another_dataset_is_caught_by_the_checks():
    with pytest.raises(ValueError, match="cifar10n labels are human labels of CIFAR-10.*only fit dataset 'cifar10'"):
        check_config(_digits(noise="cifar10n:worst"), load_data=False)  # before any data is loaded
    with pytest.raises(ValueError, match="only fit dataset 'cifar100'"):
        check_config(get_protocol("paper-cifar10", noise="cifar100n"), load_data=False)
    text = _cli("train", "--protocol", "demo-digits", "--noise", "cifar10n:worst")
    assert "noise 'cifar10n:worst' on dataset 'digits'" in text


@pytest.mark.parametrize("suffix,text,where", [
    (".yaml", "protocol: demo-digits\nlosses: [ce, agce\nnoise: clean\n", "line 3, column 6: not valid YAML"),
    (".toml", 'protocol = "demo-digits"\nlosses = ["ce",\nnoise = 3 3\n', "not valid TOML (Invalid value (at line 3"),
    (".json", '{"protocol": "demo-digits",\n "losses": [1,]}', "line 2, column 15: not valid JSON"),
])
def test_malformed_grid_file_names_file_and_line(tmp_path, suffix, text, where):
    path = tmp_path / f"grid{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"grid file '{path}'.*" + where.replace("(", r"\(")):
        load_grid(path)
    out = _cli("sweep", "--grid", str(path), "--out", str(tmp_path / "s"))
    assert f"grid file '{path}'" in out and where in out and "<unicode string>" not in out


@pytest.mark.parametrize("args,message", [
    (["--epochs", "0"], "epochs must be >= 1; got 0."),
    (["--seed", "-1"], "seed must be >= 0; got -1."),
])
def test_demo_options_are_validated_like_trains(args, message):
    assert f"error: {message}" in _cli("demo", *args)
    assert f"error: {message}" in _cli("train", "--protocol", "demo-digits", *args)


def test_subset_larger_than_the_training_set_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"subset=5000 is larger than the training set of 'digits' \(1438 images\)"):
        check_config(_digits(subset=5000))
    with pytest.raises(ValueError, match="subset=5000 is larger"):
        prepare_data(_digits(subset=5000))
    text = _cli("train", "--protocol", "demo-digits", "--subset", "5000", "--out", str(tmp_path / "x"))
    assert "subset=5000 is larger than the training set" in text and not (tmp_path / "x").exists()


def test_subset_smaller_than_the_number_of_classes_warns():
    with pytest.warns(SmallSubsetWarning, match="subset=5 is smaller than the number of classes of 'digits' \\(10\\)"):
        check_config(_digits(subset=5))
    text = _cli("train", "--protocol", "demo-digits", "--subset", "5", "--epochs", "1", code=0)
    assert "warning: subset=5 is smaller than the number of classes" in text


def test_empty_inputs_are_clear_errors():
    for noise in ("symmetric:0.4", "clean", "asymmetric:0.4"):
        with pytest.raises(ValueError, match="labels is empty: there is nothing to corrupt"):
            corrupt([], noise, seed=0, dataset="cifar10")
    with pytest.raises(ValueError, match="labels must be a non-empty 1-D array"):
        stratified_indices(np.array([], dtype=np.int64), 0, seed=0)
    with pytest.raises(ValueError, match="losses: at least one loss is needed"):
        build_grid(protocol="demo-digits", losses=",")
    with pytest.raises(ValueError, match="seeds: at least one seed"):
        build_grid(protocol="demo-digits", losses="ce", seeds=[])


def test_unparsable_set_value():
    assert "--set 'lr=[': the value is not" in _cli("train", "--set", "lr=[")
