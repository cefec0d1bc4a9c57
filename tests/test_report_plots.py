"""Plots: loss shapes and gradient weights against closed forms; accuracy vs asymmetry ratio."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import asymloss
from asymloss._io import atomic_write_json
from asymloss.report import loss_shape, plot_loss_shapes, plot_ratio, plot_results, ratio_table
from asymloss.train import get_protocol

U = np.linspace(0.01, 0.99, 50)


@pytest.mark.parametrize("name, params, ell, w", [
    ("ce", {}, lambda u: -np.log(u), lambda u: np.ones_like(u)),
    ("mae", {}, lambda u: 2 * (1 - u), lambda u: 2 * u),
    ("agce", {"a": 0.6, "q": 0.6}, lambda u: (1.6 ** 0.6 - (0.6 + u) ** 0.6) / 0.6, lambda u: u * (0.6 + u) ** -0.4),
    ("aul", {"a": 5.5, "q": 3.0}, lambda u: ((5.5 - u) ** 3 - 4.5 ** 3) / 3, lambda u: u * (5.5 - u) ** 2),
    ("ael", {"a": 2.5}, lambda u: np.exp(-u / 2.5), lambda u: u * np.exp(-u / 2.5) / 2.5),
    ("gce", {"q": 0.7}, lambda u: (1 - u ** 0.7) / 0.7, lambda u: u ** 0.7),
])
def test_loss_shape_and_gradient_weight_match_closed_forms(name, params, ell, w):
    module = asymloss.create_loss(name, num_classes=10, **params)
    u, l, weight = loss_shape(module, 10, U)
    np.testing.assert_allclose(l, ell(U), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weight, w(U), rtol=1e-4, atol=1e-6)  # w(u) = -l'(u) u


def test_losses_not_of_the_form_l_of_p_y_are_detected():
    assert loss_shape(asymloss.create_loss("nce", num_classes=10), 10, U) is None
    assert loss_shape(asymloss.create_loss("nce+rce", num_classes=10), 10, U) is None


def _write(store, loss, noise, seed, acc, **params):
    cfg = get_protocol("paper-cifar10", loss=loss, noise=noise, seed=seed, epochs=2, loss_params=params)
    atomic_write_json(store / "runs" / cfg.config_hash() / "record.json", {
        "status": "complete", "config": cfg.to_dict(),
        "epochs": [{"epoch": 1, "test_acc": acc - 0.1}, {"epoch": 2, "test_acc": acc}],
        "final": {"last_test_acc": acc, "best_test_acc": acc, "best_epoch": 2}})


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "store"
    for seed, (a, b, c, d) in enumerate([(0.70, 0.40, 0.66, 0.50), (0.72, 0.44, 0.64, 0.52)]):
        _write(root, "agce", "symmetric:0.8", seed, a)                 # preset a=0.6, q=0.6
        _write(root, "agce", "symmetric:0.8", seed, b, a=0.1, q=0.1)   # r = 0.115544
        _write(root, "ael", "symmetric:0.8", seed, c)                  # preset a=2.5: r = 0.670320
        _write(root, "ce", "symmetric:0.8", seed, d)                   # not an asymmetric loss
    return root


def test_ratio_table_uses_resolved_parameters_and_the_spec_ratios(store):
    t = ratio_table(store).set_index("point")
    assert sorted(t.index) == ["AEL(a=2.5)", "AGCE(a=0.1, q=0.1)", "AGCE(a=0.6, q=0.6)"]
    assert t.loc["AGCE(a=0.6, q=0.6)", "ratio"] == pytest.approx(0.675480, abs=1e-6)  # docs/theory.md, 'Worked values'
    assert t.loc["AGCE(a=0.1, q=0.1)", "ratio"] == pytest.approx(0.115544, abs=1e-6)
    assert t.loc["AEL(a=2.5)", "ratio"] == pytest.approx(0.670320, abs=1e-6)
    assert t.loc["AGCE(a=0.6, q=0.6)", "mean"] == pytest.approx(71.0)
    assert t.loc["AGCE(a=0.1, q=0.1)", "std"] == pytest.approx(np.std([40.0, 44.0], ddof=1))
    assert (t["n"] == 2).all()


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_ratio_and_loss_shape_plots_are_valid_images(store, tmp_path, fmt):
    out = tmp_path / "fig"
    written = plot_results(store, out, fmt=fmt)
    assert set(written) == {"curves", "ratio", "loss_shapes"}
    for name, path in written.items():
        assert path == out / f"{name}.{fmt}" and path.stat().st_size > 5000
        if fmt == "png":
            with Image.open(path) as im:
                im.verify()
        else:
            assert path.read_text().lstrip().startswith("<?xml") and "</svg>" in path.read_text()


def test_nothing_to_draw_returns_none(tmp_path):
    root = tmp_path / "store"
    _write(root, "ce", "clean", 0, 0.9)
    assert plot_ratio(root, tmp_path / "fig") is None
    assert plot_loss_shapes([get_protocol("paper-cifar10", loss="nce").to_dict()], tmp_path / "fig") is None
