"""The run's loss: explicit presets are never dropped, presets bring their engine settings, and the
record says what was in force."""
from __future__ import annotations

import pytest

from asymloss.train import get_protocol, train
from asymloss.train.checks import check_loss
from asymloss.train.loss import resolve_loss


def test_protocol_default_preset_falls_back_for_losses_it_does_not_define():
    cfg = get_protocol("paper-cifar10", loss="amse")     # paper:cifar10 does not define AMSE
    r = resolve_loss(cfg, 10)
    assert r.preset is None and r.module.hparams() == {"a": 30.0}
    cfg = get_protocol("paper-cifar10", loss="nce+agce")
    r = resolve_loss(cfg, 10)
    assert r.preset == "paper:cifar10"
    assert r.module.hparams() == {"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5}


def test_explicit_preset_that_does_not_define_the_loss_is_an_error():
    cfg = get_protocol("paper-cifar10", loss="nce+agce", loss_preset="anl:cifar10")
    with pytest.raises(ValueError, match=r"does not define loss 'nce\+agce'.*paper:cifar10"):
        resolve_loss(cfg, 10)
    with pytest.raises(ValueError, match="anl:cifar10"):
        check_loss(cfg)                      # the pre-run check of the CLI and the sweep
    # a custom protocol has no default preset: any named preset is explicit
    cfg = get_protocol("paper-cifar10", protocol="custom", loss="gce", loss_preset="jal:cifar10")
    with pytest.raises(ValueError, match="jal:cifar10"):
        resolve_loss(cfg, 10)


@pytest.mark.parametrize("preset,l1", [("anl:cifar10", 5e-5), ("anl:cifar100", 5e-7), ("anl:mnist", 1e-6)])
def test_anl_preset_brings_l1_and_zero_weight_decay(preset, l1):
    cfg = get_protocol("paper-cifar10", loss="anl_ce", loss_preset=preset)
    r = resolve_loss(cfg, 10)
    assert (r.l1_weight, r.weight_decay) == (l1, 0.0)
    assert set(r.engine_from_preset) == {"l1_weight", "weight_decay"}
    # a setting the user changed from the protocol's value wins over the preset
    r = resolve_loss(cfg.replace(weight_decay=3e-4), 10)
    assert (r.l1_weight, r.weight_decay) == (l1, 3e-4) and r.engine_from_preset == ("l1_weight",)
    r = resolve_loss(cfg.replace(l1_weight=1e-3), 10)
    assert (r.l1_weight, r.weight_decay) == (1e-3, 0.0)


def test_jal_preset_engine_settings():
    r = resolve_loss(get_protocol("paper-cifar10", loss="jal_ce", loss_preset="jal:cifar100"), 10)
    assert (r.l1_weight, r.weight_decay) == (5e-6, 0.0)
    assert r.module.hparams() == {"alpha": 5.0, "beta": 1.0, "a": 20.0}
    # a preset without engine settings leaves the protocol's
    r = resolve_loss(get_protocol("paper-cifar10", loss="agce"), 10)
    assert (r.l1_weight, r.weight_decay, r.engine_from_preset) == (0.0, 1e-4, ())


def test_record_holds_resolved_hyperparameters_and_engine_settings():
    cfg = get_protocol("demo-digits", epochs=1, loss="anl_ce", loss_preset="anl:mnist")
    rec = train(cfg, progress=False)
    assert rec["loss"]["preset_used"] == "anl:mnist"
    assert rec["loss"]["hparams"] == {"alpha": 1.0, "beta": 1.0, "min_prob": 1e-7}
    assert rec["loss"]["engine"] == {"l1_weight": 1e-6, "weight_decay": 0.0,
                                     "from_preset": ["l1_weight", "weight_decay"]}


def test_paper_cifar100_rotation_is_nearest_neighbour_like_torchvision():
    from asymloss.train.engine import build_augment

    aug = build_augment(get_protocol("paper-cifar100"))
    assert (aug.rotation, aug.mode, aug.crop_padding, aug.hflip) == (20.0, "nearest", 4, True)
