"""Registry: names, presets (asserted against docs/losses.md, 'Presets'), overrides and errors."""
from __future__ import annotations

import math

import pytest
import torch

import asymloss
from asymloss.losses.registry import LOSSES
from asymloss.train.mechanics import needs

# docs/losses.md, 'Presets', written out literally: dataset -> loss -> (values...)
SPEC_13 = {
    "mnist": {"agce": (4, 0.2), "aul": (3, 0.1), "ael": (3.5,), "nce+agce": (0, 1, 4, 0.2),
              "nce+aul": (0, 1, 3, 0.1), "nce+ael": (0, 1, 3.5), "apl": (1, 100)},
    "cifar10": {"agce": (0.6, 0.6), "aul": (5.5, 3), "ael": (2.5,), "nce+agce": (1, 4, 6, 1.5),
                "nce+aul": (1, 4, 6.3, 1.5), "nce+ael": (1, 4, 5), "apl": (1, 1)},
    "cifar100": {"agce": (0.6, 0.6), "aul": (5.5, 3), "ael": (2.5,), "nce+agce": (10, 0.1, 1.8, 3),
                 "nce+aul": (10, 0.015, 6, 3), "nce+ael": (10, 0.1, 1.5), "apl": (10, 1)},
}
KEYS = {"agce": ("a", "q"), "aul": ("a", "q"), "ael": ("a",), "nce+agce": ("alpha", "beta", "a", "q"),
        "nce+aul": ("alpha", "beta", "a", "q"), "nce+ael": ("alpha", "beta", "a")}


@pytest.mark.parametrize("dataset", sorted(SPEC_13))
def test_paper_presets_match_spec_table(dataset):
    preset = f"paper:{dataset}"
    for loss, values in SPEC_13[dataset].items():
        if loss == "apl":
            for combo in ("nce+rce", "nce+mae", "nfl+rce"):
                got = asymloss.get_preset(preset, combo)
                assert (got["alpha"], got["beta"]) == values, (preset, combo)
            # ALFs' NCEandMAE builds MAELoss(scale=beta): beta (1 - p_y); the plain MAE is 2(1 - p_y)
            assert asymloss.get_preset(preset, "nce+mae")["scale"] == 1.0
            assert asymloss.get_preset(preset, "mae")["scale"] == 2.0
            continue
        got = asymloss.get_preset(preset, loss)
        assert got == dict(zip(KEYS[loss], values)), (preset, loss)
        module = asymloss.create_loss(loss, preset=preset)
        assert [getattr(module, k) for k in KEYS[loss]] == list(values)
    # other ALFs baselines: FL gamma 0.5, GCE q 0.7, SCE alpha = beta = 1, NFL gamma 0.5
    assert asymloss.get_preset(preset, "focal")["gamma"] == 0.5
    assert asymloss.get_preset(preset, "gce") == {"q": 0.7}
    assert asymloss.get_preset(preset, "sce") == {"alpha": 1.0, "beta": 1.0}
    assert asymloss.get_preset(preset, "nfl")["gamma"] == 0.5


def test_webvision_and_mnist_alpha_zero():
    assert asymloss.get_preset("paper:webvision", "agce") == {"a": 1e-5, "q": 0.5}
    assert asymloss.get_preset("paper:webvision", "nce+agce") == {"alpha": 50.0, "beta": 0.1, "a": 2.5, "q": 3.0}
    assert asymloss.get_preset("paper:webvision", "NCEandRCE") == {"alpha": 50.0, "beta": 0.1}
    for combo in ("nce+agce", "nce+aul", "nce+ael"):
        assert asymloss.create_loss(combo, preset="paper:mnist").alpha == 0.0


def test_apl_presets_and_later_losses():
    assert asymloss.get_preset("apl:cifar100", "nce+rce") == {"alpha": 10.0, "beta": 0.1}
    assert asymloss.get_preset("apl:mnist", "sce") == {"alpha": 0.01, "beta": 1.0}
    assert asymloss.get_preset("apl:cifar10", "sce") == {"alpha": 0.1, "beta": 1.0}
    assert asymloss.get_preset("apl:cifar100", "sce") == {"alpha": 6.0, "beta": 0.1}
    assert asymloss.get_preset("anl:cifar10", "anl_ce") == {"alpha": 5.0, "beta": 5.0}
    assert asymloss.get_preset("anl:cifar100", "ANL-CE") == {"alpha": 10.0, "beta": 1.0}
    assert asymloss.get_preset("jal:cifar100", "jal_ce") == {"alpha": 5.0, "beta": 1.0, "a": 20.0}
    assert asymloss.get_preset("eps:cifar10", "ce_eps+mae") == {"alpha": 0.01, "beta": 5.0, "m": 1e5}


def _ref_code_values(z, y):
    """The reference code's per-sample formulas (APL/ALFs), written out with a one-hot."""
    p = torch.softmax(z.double(), 1)
    oh = torch.nn.functional.one_hot(y, z.shape[1]).double()
    lp = torch.log_softmax(z.double(), 1)
    nce = -(oh * lp).sum(1) / (-lp.sum(1))
    apl_mae = 1.0 - (oh * p).sum(1)
    alfs_mae = (p - oh).abs().sum(1)
    rce = -(torch.clamp(p, 1e-7, 1.0) * torch.log(torch.clamp(oh, 1e-4, 1.0))).sum(1)
    # inside NCE+MAE both references compute MAELoss(scale=beta) = beta * (1 - p_y): the factor of
    # the passive term is 1 - p_y, in ALFs too (its scale replaces the default factor 2)
    nce_mae_term = 1.0 - (oh * p).sum(1)
    return nce, apl_mae, alfs_mae, rce, nce_mae_term


@pytest.mark.parametrize("preset", ["paper:mnist", "paper:cifar10", "paper:cifar100", "apl:mnist",
                                    "apl:cifar10", "apl:cifar100"])
def test_presets_reproduce_reference_per_sample_values(preset):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(32, 10, generator=g, dtype=torch.float64) * 3
    z[:4, 0] = 40.0  # saturated samples exercise the RCE clamp
    y = torch.randint(0, 10, (32,), generator=g)
    y[:2] = 0
    nce, apl_mae, alfs_mae, rce, nce_mae_term = _ref_code_values(z, y)
    for combo, passive in (("nce+mae", nce_mae_term), ("nce+rce", rce)):
        hp = asymloss.get_preset(preset, combo)
        got = asymloss.create_loss(combo, preset=preset, reduction="none")(z, y)
        torch.testing.assert_close(got, hp["alpha"] * nce + hp["beta"] * passive, rtol=1e-10, atol=1e-12)
    mae = apl_mae if preset.startswith("apl:") else alfs_mae
    if preset == "apl:cifar10" or preset.startswith("paper:"):
        torch.testing.assert_close(asymloss.create_loss("mae", preset=preset, reduction="none")(z, y), mae)


@pytest.mark.parametrize("preset,alpha,beta", [("paper:mnist", 1, 100), ("paper:cifar10", 1, 1),
                                               ("paper:cifar100", 10, 1)])
def test_paper_nce_mae_is_alpha_nce_plus_beta_one_minus_p(preset, alpha, beta):
    """ALFs: NCEandMAE(alpha, beta) = alpha NCE + MAELoss(scale=beta) = alpha NCE + beta (1 - p_y)."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(64, 10, generator=g, dtype=torch.float64) * 4
    y = torch.randint(0, 10, (64,), generator=g)
    p = torch.softmax(z, 1)
    logp = torch.log_softmax(z, 1)
    p_y = p[torch.arange(64), y]
    want = alpha * logp[torch.arange(64), y] / logp.sum(1) + beta * (1.0 - p_y)
    got = asymloss.create_loss("nce+mae", preset=preset, reduction="none")(z, y)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the plain MAE baseline of the same preset stays ||e_y - p||_1 = 2 (1 - p_y)
    got_mae = asymloss.create_loss("mae", preset=preset, reduction="none")(z, y)
    torch.testing.assert_close(got_mae, 2.0 * (1.0 - p_y), rtol=1e-12, atol=1e-12)


def test_names_are_case_insensitive_with_paper_spellings():
    for spelling in ("nce+agce", "NCEandAGCE", "nce_agce", "NCE+AGCE", "nce-agce", "NCE and AGCE"):
        assert type(asymloss.create_loss(spelling)) is asymloss.NCEandAGCE
    assert type(asymloss.create_loss("FocalLoss")) is asymloss.FocalLoss
    assert type(asymloss.create_loss("AUELoss")) is asymloss.AUL
    assert type(asymloss.create_loss("AExpLoss")) is asymloss.AEL
    assert type(asymloss.create_loss("Cross_Entropy")) is asymloss.CE
    assert type(asymloss.create_loss("ANL-CE")) is asymloss.ANLCE
    assert set(asymloss.list_losses()) == set(LOSSES)
    for required in ("ce", "focal", "mae", "rce", "gce", "sce", "nce", "nfl", "ngce", "nmae", "agce",
                     "aul", "ael", "nce+agce", "nce+aul", "nce+ael", "nce+rce", "nce+mae", "nfl+rce"):
        assert required in asymloss.list_losses()
    assert "anl" not in asymloss.list_losses()  # ANL means Active Negative Loss, never ANorm
    assert type(asymloss.create_loss("anorm")) is asymloss.ANorm


def test_unknown_names_suggest_closest():
    with pytest.raises(KeyError, match=r"unknown loss 'agcee'\. Did you mean 'agce'"):
        asymloss.create_loss("agcee")
    with pytest.raises(ValueError, match=r"unknown preset 'paper:cifar'\. Did you mean 'paper:cifar10'"):
        asymloss.create_loss("agce", preset="paper:cifar")
    with pytest.raises(KeyError, match=r"unknown agce hyperparameter 'b'\. Available: a, ignore_index, q, reduction, weight"):
        asymloss.create_loss("agce", b=1.0)


def test_preset_without_loss_names_presets_that_define_it():
    with pytest.raises(ValueError, match=r"preset 'paper:webvision' does not define loss 'aul'; presets "
                                         r"that define it: paper:cifar10, paper:cifar100, paper:mnist"):
        asymloss.create_loss("aul", preset="paper:webvision")
    with pytest.raises(ValueError, match="no preset defines it"):
        asymloss.get_preset("paper:cifar10", "amse")
    assert asymloss.get_preset("paper:webvision", "ce") == {}  # nothing to set
    with pytest.raises(ValueError, match="does not define loss 'gce\\+mae'"):
        asymloss.create_loss("gce+mae", preset="paper:cifar10")


def test_overrides_win_and_num_classes():
    m = asymloss.create_loss("nce+agce", num_classes=10, preset="paper:cifar10", beta=2.0, reduction="sum")
    assert (m.alpha, m.beta, m.a, m.q, m.num_classes, m.reduction) == (1.0, 2.0, 6.0, 1.5, 10, "sum")
    assert asymloss.get_preset("paper:cifar10", "nce+agce")["beta"] == 4.0  # presets are not mutated
    with pytest.raises(ValueError, match="num_classes=10"):
        m(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        asymloss.create_loss("ce", num_classes=0)


def test_adhoc_combination_conflicts_are_explained():
    assert math.isclose(asymloss.create_loss("gce+mae", beta=0.5).beta, 0.5)
    # any two losses combine; a name both parts have is set with an active_/passive_ prefix
    m = asymloss.create_loss("agce+aul", active_q=0.5, passive_q=3.0, active_a=0.6, passive_a=5.5)
    assert (m.active.q, m.passive.q, m.active.a, m.passive.a) == (0.5, 3.0, 0.6, 5.5)
    assert m.hparams() == {"alpha": 1.0, "beta": 1.0, "active_a": 0.6, "active_q": 0.5,
                           "passive_a": 5.5, "passive_q": 3.0}
    m = asymloss.create_loss("gce+aul", active_q=0.7, a=4.0)     # plain 'a': only AUL has it
    assert (m.active.q, m.passive.a) == (0.7, 4.0)
    with pytest.raises(ValueError, match=r"'q' of 'gce\+aul' is ambiguous.*active_q=.*passive_q="):
        asymloss.create_loss("gce+aul", q=0.5)
    # alpha/beta are always the combination's; SCE's own coefficients take the passive_ prefix
    m = asymloss.create_loss("nce+sce", alpha=2.0, beta=3.0, passive_alpha=0.1)
    assert (m.alpha, m.beta, m.passive.alpha, m.passive.beta) == (2.0, 3.0, 0.1, 1.0)
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (8,), generator=g)
    want = 2.0 * asymloss.functional.nce(z, y) + 3.0 * asymloss.functional.sce(z, y, alpha=0.1, beta=1.0)
    torch.testing.assert_close(m(z, y), want, rtol=1e-12, atol=1e-12)
    # meaningless combinations are refused
    with pytest.raises(ValueError, match="cannot combine loss 'ce' with itself"):
        asymloss.create_loss("ce+ce")
    with pytest.raises(KeyError, match="passive_alpha"):
        asymloss.create_loss("nce+sce", zzz=1)


def test_describe_loss():
    d = asymloss.describe_loss("NCEandAGCE")
    assert d["name"] == "nce+agce" and d["hparams"] == {"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5}
    assert "paper:webvision" in d["presets"] and d["kind"] == "active+passive"


def test_docstring_examples_run():
    import doctest

    import asymloss.losses.functional as functional
    import asymloss.losses.modules as modules
    import asymloss.losses.presets as presets
    import asymloss.losses.registry as registry

    for mod in (functional, modules, registry, presets):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__
    assert doctest.testmod(registry).attempted >= 3


def test_every_loss_pickles_and_deep_copies():
    # sweeps ship losses to worker processes
    import copy
    import pickle

    z, y = torch.randn(4, 10, dtype=torch.float64), torch.randint(0, 10, (4,))
    for name in asymloss.list_losses():
        m = asymloss.create_loss(name, weight=torch.rand(10, dtype=torch.float64))
        for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
            assert type(clone) is type(m) and clone.hparams() == m.hparams()
            if not needs(m):   # the others take more than logits and labels: tests/test_losses_mechanics.py
                torch.testing.assert_close(clone(z, y), m(z, y))
