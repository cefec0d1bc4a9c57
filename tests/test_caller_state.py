"""The library leaves its caller's state alone (global RNGs, matplotlib backend, umask), takes NumPy
scalars wherever a number goes, and reads dataset names and class counts from one table."""
from __future__ import annotations

import os
import random
import stat

import numpy as np
import pytest
import torch

import asymloss
from asymloss._datasets import canonical_dataset, dataset_num_classes
from asymloss._io import atomic_write_json
from asymloss.sweep import build_grid, expand_grid
from asymloss.train import get_protocol, train
from asymloss.train.checks import expected_num_classes


def _seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _draws():
    return torch.rand(3), np.random.rand(3), random.random()


def _assert_same_draws(after, expected):
    assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1]) and after[2] == expected[2]


def test_train_does_not_reseed_the_callers_global_rngs():
    _seed_all(1234)
    expected = _draws()
    _seed_all(1234)
    record = train(get_protocol("demo-digits", epochs=1, subset=200), progress=False)
    _assert_same_draws(_draws(), expected)
    # and the run itself does not depend on what the caller did to the global RNG
    torch.manual_seed(99)
    again = train(get_protocol("demo-digits", epochs=1, subset=200), progress=False)
    assert again["epochs"][0]["test_acc"] == record["epochs"][0]["test_acc"]


def test_train_pack_does_not_reseed_the_callers_global_rngs():
    from asymloss.train.pack import train_pack

    _seed_all(4321)
    expected = _draws()
    _seed_all(4321)
    cfgs = [get_protocol("demo-digits", epochs=1, subset=200, seed=s) for s in (0, 1)]
    out = train_pack(cfgs)
    assert [r["status"] for r in out] == ["complete", "complete"]
    _assert_same_draws(_draws(), expected)


def test_plots_leave_the_callers_matplotlib_backend_alone(tmp_path):
    import matplotlib

    from asymloss.report import plot_results
    from test_report_plots import _write

    root = tmp_path / "store"
    for seed in (0, 1):
        _write(root, "agce", "symmetric:0.8", seed, 0.7 + seed / 100)
    matplotlib.use("svg")
    try:
        written = plot_results(root, tmp_path / "fig")
        assert matplotlib.get_backend().lower() == "svg" and written["ratio"].stat().st_size > 5000
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []  # no pyplot figures were opened (or left open)
    finally:
        matplotlib.use("agg")


def test_atomic_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("os.umask was called"))
        path = atomic_write_json(tmp_path / "a" / "x.json", {"a": 1})
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 minus the umask, applied by the kernel
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_numpy_scalars_and_0d_arrays_are_numbers():
    assert asymloss.AGCE(a=np.float32(0.5), q=np.array(0.6)).a == 0.5
    assert asymloss.create_loss("aul", a=np.float64(3), q=np.int64(2)).q == 2
    cfg = get_protocol("paper-mnist", seed=np.int64(1), lr=np.float32(0.5), epochs=np.array(3),
                       loss_params={"a": np.float32(2.0)})
    assert (cfg.seed, cfg.lr, cfg.epochs) == (1, 0.5, 3) and type(cfg.seed) is int and type(cfg.lr) is float
    assert cfg.config_hash() == get_protocol("paper-mnist", seed=1, lr=0.5, epochs=3,
                                             loss_params={"a": 2.0}).config_hash()
    grid = build_grid(protocol="demo-digits", losses="ce", seeds=np.arange(3))
    assert grid.seeds == (0, 1, 2) and all(type(s) is int for s in grid.seeds)
    assert build_grid(protocol="demo-digits", losses="ce", seeds=np.int64(4)).seeds == (4,)
    with pytest.raises(TypeError, match="seed must be an integer"):
        get_protocol("paper-mnist", seed=np.float64(1.0))
    with pytest.raises(TypeError, match="a real number; got True"):
        asymloss.AGCE(a=np.bool_(True))


def test_dataset_aliases_resolve_before_the_run_id():
    assert canonical_dataset("CIFAR-100") == canonical_dataset("cifar_100") == "cifar100"
    assert canonical_dataset("npz:Data/My.NPZ") == "npz:Data/My.NPZ"
    a = get_protocol("paper-cifar100", dataset="cifar-100")
    assert a.dataset == "cifar100" and a.config_hash() == get_protocol("paper-cifar100").config_hash()
    runs = expand_grid(build_grid(protocol="paper-mnist", losses="ce", overrides={"dataset": "MNIST"}))
    assert runs[0].id == expand_grid(build_grid(protocol="paper-mnist", losses="ce"))[0].id


def test_class_counts_come_from_one_table_with_no_fallback():
    assert dataset_num_classes("cifar-100") == 100 and dataset_num_classes("webvision-mini") == 50
    assert expected_num_classes("npz:some/file.npz") is None and dataset_num_classes("folder:x") is None
    from asymloss.noise import DATASET_CLASSES

    assert all(dataset_num_classes(k) == v for k, v in DATASET_CLASSES.items())
