"""asymloss.theory with the loss registry, loss modules and noise spec strings (docs/theory.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import asymloss
from asymloss import theory
from asymloss.noise import transition_matrix


def symmetric(K, eta):
    return (1 - eta) * np.eye(K) + eta / (K - 1) * (np.ones((K, K)) - np.eye(K))


WORKED = [
    ("agce", {"a": 0.6, "q": 0.6}, 0.675480), ("agce", {"a": 4, "q": 0.2}, 0.836512),
    ("agce", {"a": 1, "q": 0.5}, 0.707107), ("agce", {"a": 0.1, "q": 0.1}, 0.115544),
    ("aul", {"a": 5.5, "q": 3}, 0.669421), ("aul", {"a": 6.3, "q": 1.5}, 0.917208),
    ("aul", {"a": 6, "q": 3}, 0.694444), ("aul", {"a": 2, "q": 2}, 0.5),
    ("ael", {"a": 2.5}, 0.670320), ("ael", {"a": 3.5}, 0.751477), ("ael", {"a": 5}, 0.818731),
    ("ael", {"a": 1.5}, 0.513417), ("ael", {"a": 1}, 0.367879),
    ("agce", {"a": 0.6, "q": 1.0}, 1.0), ("agce", {"a": 3, "q": 2.5}, 1.0),
    ("aul", {"a": 3, "q": 1.0}, 1.0), ("aul", {"a": 3, "q": 0.1}, 1.0),
    ("mae", {}, 1.0), ("ce", {}, 0.0), ("gce", {"q": 0.7}, 0.0), ("rce", {}, 1.0), ("nmae", {}, 1.0),
]


@pytest.mark.parametrize("name,params,expected", WORKED)
def test_worked_ratios_by_name(name, params, expected):
    r = theory.asymmetry_ratio(name, **params)
    assert r.method == "closed-form"
    assert r.value == pytest.approx(expected, abs=5e-7)
    assert float(r) == r.value


@pytest.mark.parametrize("name,params,expected", [w for w in WORKED if w[0] in ("agce", "aul", "ael")])
def test_numerical_infimum_of_the_loss_modules_matches_the_closed_forms(name, params, expected):
    r = theory.asymmetry_ratio(name, method="numerical", **params)
    assert r.method == "numerical"
    assert abs(r.value - expected) < 1e-5


@pytest.mark.parametrize("name,expected", [("mae", 1.0), ("ce", 0.0)])
def test_numerical_infimum_of_baseline_modules(name, expected):
    assert abs(theory.asymmetry_ratio(name, method="numerical").value - expected) < 1e-5


def test_numerical_infimum_sees_the_reference_clamp_of_gce():
    # GCE's module clamps p >= eps = 1e-7 (reference code), so ℓ is flat on [0, eps] and the
    # infimum is not 0: at u = 1 − Δu, Δu = c·eps it is q·eps^(1−q)·c / (c^q − 1), minimised over c
    q, eps = 0.7, 1e-7
    c = np.linspace(1.5, 20, 200001)
    expected = (q * eps ** (1 - q) * c / (c**q - 1)).min()
    assert expected == pytest.approx(0.0133, abs=1e-4)
    assert abs(theory.asymmetry_ratio("gce", q=q, method="numerical").value - expected) < 1e-5


def test_presets_modules_and_spellings():
    assert theory.asymmetry_ratio("AGCE", preset="paper:cifar10").value == pytest.approx(0.675480, abs=5e-7)
    assert theory.asymmetry_ratio("AUELoss", preset="paper:cifar10").value == pytest.approx(0.669421, abs=5e-7)
    assert theory.asymmetry_ratio(asymloss.AEL(a=3.5)).value == pytest.approx(0.751477, abs=5e-7)
    r = theory.asymmetry_ratio(asymloss.create_loss("agce", preset="paper:mnist"))
    assert r.value == pytest.approx(0.836512, abs=5e-7) and r.params == {"a": 4.0, "q": 0.2}
    assert r.loss == "AGCE(a=4, q=0.2)"


def test_non_pointwise_losses_have_no_ratio_and_errors_are_clear():
    for name in ("nce", "nfl", "ngce", "nce+agce"):
        with pytest.raises(ValueError, match="not of the form"):
            theory.asymmetry_ratio(name)
    with pytest.raises(KeyError, match="Did you mean 'agce'"):
        theory.asymmetry_ratio("agcee")
    with pytest.raises(ValueError, match="a must be > 1"):
        theory.asymmetry_ratio("aul", a=0.9)
    with pytest.raises(TypeError, match="only accepted with a loss name"):
        theory.asymmetry_ratio(asymloss.AGCE(), a=2.0)


@pytest.mark.parametrize(
    "spec,kw,expected",
    [
        ("symmetric:0.8", {"num_classes": 10}, 0.444444),
        ("symmetric:0.6", {"num_classes": 10}, 0.166667),
        ("symmetric:0.4", {"num_classes": 10}, 0.074074),
        ("symmetric:0.8", {"num_classes": 100}, 0.040404),
        ("asymmetric:0.4", {"dataset": "cifar10"}, 0.666667),
        ("asymmetric:0.3", {"dataset": "cifar10"}, 0.428571),
        ("asymmetric:0.4", {"dataset": "cifar100"}, 0.666667),
        ("pairflip:0.45", {"num_classes": 10}, 0.818182),
        ("clean", {"num_classes": 10}, 0.0),
    ],
)
def test_noise_ratio_of_noise_specs(spec, kw, expected):
    assert theory.noise_ratio(spec, **kw) == pytest.approx(expected, abs=5e-7)


def test_noise_spec_errors():
    with pytest.raises(ValueError, match="num_classes"):
        theory.noise_ratio("symmetric:0.8")
    with pytest.raises(KeyError, match="Did you mean 'symmetric'"):
        theory.noise_ratio("symetric:0.8", num_classes=10)
    with pytest.raises(ValueError, match="no fixed transition matrix"):
        theory.noise_ratio("instance:0.4", num_classes=10)
    with pytest.raises(ValueError, match="only used with a noise spec"):
        theory.noise_ratio(symmetric(10, 0.2), num_classes=10)


def test_min_parameter_by_registry_names():
    T = transition_matrix("asymmetric", 0.4, dataset="cifar10")
    assert round(theory.min_parameter("AGCE", "a", T, q=0.6).value, 4) == 0.5696
    assert round(theory.min_parameter("AUELoss", "a", T, q=3).value, 3) == 5.449
    assert round(theory.min_parameter("AExpLoss", "a", T).value, 3) == 2.466
    # the fixed parameters default to the registry's defaults (AGCE q = 0.6)
    assert theory.min_parameter("agce", "a", T).fixed == {"q": 0.6}
    with pytest.raises(KeyError, match="hyperparameter"):
        theory.min_parameter("agce", "a", T, gamma=2.0)
    # spec string noise
    b = theory.min_parameter("ael", "a", "asymmetric:0.4", dataset="cifar10")
    assert b.value == pytest.approx(-1 / math.log(2 / 3), rel=1e-12)


CASES_08 = [
    ("agce", {"a": 0.1, "q": 0.1}, False), ("ael", {"a": 1.0}, False),
    ("agce", {"a": 0.6, "q": 0.6}, True), ("agce", {"a": 4, "q": 0.2}, True), ("ael", {"a": 2.5}, True),
    ("aul", {"a": 5.5, "q": 3}, True), ("aul", {"a": 2, "q": 2}, True),
]


@pytest.mark.parametrize("name,params,expected", CASES_08)
def test_worked_verdicts_by_name_both_methods(name, params, expected):
    v = theory.is_asymmetric(name, "symmetric:0.8", num_classes=10, **params)
    assert v.method == "closed-form" and v.asymmetric is expected
    s = theory.is_asymmetric(name, symmetric(10, 0.8), method="simplex", **params)
    assert s.method == "simplex" and s.asymmetric is expected and len(s.rows) == 1


def test_agce_small_a_direct_minimisation_with_the_module():
    w = np.r_[0.2, np.full(9, 0.8 / 9)]
    m = theory.minimize_weighted_risk(asymloss.AGCE(a=0.1, q=0.1), w)
    assert m.point[0] == pytest.approx(0.3296, abs=5e-5)
    assert m.risk == pytest.approx(1.539390, abs=5e-7)
    assert m.vertex_risk == pytest.approx(1.721987, abs=5e-7)


@given(
    family=st.sampled_from(["agce", "aul", "ael"]),
    a=st.floats(0.05, 8.0),
    q=st.floats(0.05, 4.0),
    K=st.integers(2, 10),
    eta=st.floats(0.05, 0.9),
)
@settings(max_examples=25, deadline=None)
def test_closed_form_path_agrees_with_simplex_minimisation_of_the_modules(family, a, q, K, eta):
    assume(eta < (K - 1) / K - 0.02)
    params = {"agce": {"a": a, "q": q}, "aul": {"a": 1 + a, "q": q}, "ael": {"a": a}}[family]
    T = symmetric(K, eta)
    closed = theory.is_asymmetric(family, T, **params)
    assert closed.method == "closed-form"
    r, rt = closed.asymmetry_ratio, closed.noise_ratio
    assume(r == 0 or abs(math.log(rt) - math.log(r)) > 0.05)  # away from the knife edge r̃ = r
    simplex = theory.is_asymmetric(family, T, method="simplex", **params)
    assert simplex.asymmetric is closed.asymmetric


def test_symmetric_losses():
    for name in ("nce", "nfl", "ngce", "nmae", "mae"):
        check = theory.is_symmetric(name, 10)
        assert check.symmetric, name
    assert theory.is_symmetric("nce", 10).constant == pytest.approx(1.0, abs=1e-12)
    assert theory.is_symmetric("mae", 10).constant == pytest.approx(18.0, abs=1e-12)
    assert theory.is_symmetric("rce", 10).constant == pytest.approx(9 * -math.log(1e-4), rel=1e-6)
    for name, params in (("agce", {}), ("ce", {}), ("gce", {}), ("ael", {"a": 2.5})):
        assert not theory.is_symmetric(name, 10, **params), name


def test_nce_asymmetric_only_for_uniform_off_target_weights():
    assert theory.is_asymmetric("nce", "symmetric:0.6", num_classes=10).asymmetric
    v = theory.is_asymmetric("nce", "asymmetric:0.4", dataset="cifar10")
    assert not v.asymmetric and v.method == "simplex"
    # two distinct rows up to relabelling: classes that never flip (e_0) and the flipping ones
    # (0.6 on the class, 0.4 on one other; first one: class 2, bird -> airplane)
    by_class = {m.target: m for m in v.rows}
    assert sorted(by_class) == [0, 2]
    assert by_class[0].vertex_is_minimiser and by_class[0].vertex_risk == pytest.approx(0.0, abs=1e-12)
    assert not by_class[2].vertex_is_minimiser
    assert by_class[2].vertex_risk == pytest.approx(0.4 / 9, abs=1e-9)  # 0.4 · NCE(e_2, 0) = 0.4/(K-1)


def test_active_passive_combinations_are_decided_numerically():
    v = theory.is_asymmetric("nce+agce", "symmetric:0.8", num_classes=10, preset="paper:cifar10")
    assert v.method == "simplex" and v.asymmetric and v.asymmetry_ratio is None
    assert v.rows[0].vertex_is_minimiser and v.rows[0].point[0] == pytest.approx(1.0)
    module = asymloss.ActivePassive(asymloss.NCE(), asymloss.AGCE(a=0.1, q=0.1), alpha=1.0, beta=1.0)
    v = theory.is_asymmetric(module, symmetric(10, 0.8))
    assert v.method == "simplex" and not v.asymmetric and "has weighted risk" in v.reason


def test_module_settings_that_do_not_belong_to_the_theory_are_ignored():
    plain = theory.is_asymmetric(asymloss.NCE(), symmetric(5, 0.3), method="simplex")
    torch = pytest.importorskip("torch")
    odd = asymloss.NCE(weight=torch.arange(1.0, 6.0), ignore_index=2, num_classes=5, reduction="sum")
    other = theory.is_asymmetric(odd, symmetric(5, 0.3), method="simplex")
    assert plain.asymmetric == other.asymmetric
    assert plain.rows[0].vertex_risk == pytest.approx(other.rows[0].vertex_risk, rel=1e-12)


def test_not_clean_dominant_noise():
    v = theory.is_asymmetric("mae", "pairflip:0.5", num_classes=4)
    assert v.method == "noise-ratio" and not v and v.asymmetry_ratio == 1.0
