"""asymloss.theory on callables and matrices (docs/theory.md). Losses are written here, in float64,
independently of asymloss.losses; the registry-based questions are in test_theory_losses.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asymloss import theory
from asymloss.theory._closed import ael_ratio, agce_ratio, aul_ratio

# ---------------------------------------------------------------------------------------------
# independent float64 losses ℓ(u) and noise matrices
# ---------------------------------------------------------------------------------------------


def agce(a, q):
    return lambda u: ((a + 1) ** q - (a + u) ** q) / q


def aul(a, q):
    return lambda u: ((a - u) ** q - (a - 1) ** q) / q


def ael(a):
    return lambda u: np.exp(-u / a)


def gce(q):
    return lambda u: (1 - u**q) / q


def ce(u):
    return -np.log(u)


def mae(u):
    return 2 * (1 - u)


def symmetric(K, eta):
    return (1 - eta) * np.eye(K) + eta / (K - 1) * (np.ones((K, K)) - np.eye(K))


def pairflip(K, eta):
    return (1 - eta) * np.eye(K) + eta * np.roll(np.eye(K), 1, axis=1)


def cifar10_asymmetric(eta):
    T = np.eye(10)
    for src, dst in ((9, 1), (2, 0), (3, 5), (5, 3), (4, 7)):
        T[src, src], T[src, dst] = 1 - eta, eta
    return T


def nce(U, k):
    logs = -np.log(U)
    return logs[:, k] / logs.sum(axis=1)


# ---------------------------------------------------------------------------------------------
# docs/theory.md, 'Worked values'
# ---------------------------------------------------------------------------------------------

AGCE_WORKED = [((0.6, 0.6), 0.675480), ((4, 0.2), 0.836512), ((1, 0.5), 0.707107), ((0.1, 0.1), 0.115544)]
AUL_WORKED = [((5.5, 3), 0.669421), ((6.3, 1.5), 0.917208), ((6, 3), 0.694444), ((2, 2), 0.5)]
AEL_WORKED = [(2.5, 0.670320), (3.5, 0.751477), (5, 0.818731), (1.5, 0.513417), (1, 0.367879)]


@pytest.mark.parametrize("params,expected", AGCE_WORKED)
def test_agce_worked_ratios(params, expected):
    assert agce_ratio(*params) == pytest.approx(expected, abs=5e-7)


@pytest.mark.parametrize("params,expected", AUL_WORKED)
def test_aul_worked_ratios(params, expected):
    assert aul_ratio(*params) == pytest.approx(expected, abs=5e-7)


@pytest.mark.parametrize("a,expected", AEL_WORKED)
def test_ael_worked_ratios(a, expected):
    assert ael_ratio(a) == pytest.approx(expected, abs=5e-7)


@pytest.mark.parametrize("a", [1e-3, 0.6, 4, 50])
def test_concave_regimes_have_ratio_one(a):
    for q in (1.0, 1.5, 3.0):
        assert agce_ratio(a, q) == 1.0
    for q in (0.1, 0.5, 1.0):
        assert aul_ratio(a + 1, q) == 1.0


@pytest.mark.parametrize(
    "T,expected",
    [
        (symmetric(10, 0.8), 0.444444),
        (symmetric(10, 0.6), 0.166667),
        (symmetric(10, 0.4), 0.074074),
        (symmetric(100, 0.8), 0.040404),
        (cifar10_asymmetric(0.4), 0.666667),
        (cifar10_asymmetric(0.3), 0.428571),
        (pairflip(10, 0.4), 0.666667),
        (pairflip(7, 0.3), 0.428571),
    ],
)
def test_worked_noise_ratios(T, expected):
    assert theory.noise_ratio(T) == pytest.approx(expected, abs=5e-7)


def test_noise_ratio_formulas_and_edge_cases():
    for K, eta in ((2, 0.3), (10, 0.45), (100, 0.2)):
        assert theory.noise_ratio(symmetric(K, eta)) == pytest.approx(eta / ((K - 1) * (1 - eta)), rel=1e-12)
    assert theory.noise_ratio(np.eye(5)) == 0.0
    assert theory.noise_ratio([[0.0, 1.0], [1.0, 0.0]]) == math.inf
    torch = pytest.importorskip("torch")
    assert theory.noise_ratio(torch.tensor(symmetric(10, 0.8), dtype=torch.float32)) == pytest.approx(0.444444, abs=1e-6)


@pytest.mark.parametrize(
    "T,match",
    [
        (np.ones((2, 3)) / 3, "square"),
        (np.array([0.5, 0.5]), "square"),
        (np.array([[1.0]]), "at least 2"),
        (np.array([[1.1, -0.1], [0.0, 1.0]]), r"non-negative; T\[0, 1\] = -0.1"),
        (np.array([[0.6, 0.3], [0.0, 1.0]]), "row 0 sums to 0.9"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]]), "finite"),
    ],
)
def test_noise_ratio_validates_the_matrix(T, match):
    with pytest.raises(ValueError, match=match):
        theory.noise_ratio(T)


def test_min_parameter_worked_values():
    T = cifar10_asymmetric(0.4)  # r̃ = 2/3
    agce_a = theory.min_parameter("agce", "a", T, q=0.6)
    aul_a = theory.min_parameter("aul", "a", T, q=3)
    ael_a = theory.min_parameter("ael", "a", T)
    assert (agce_a.kind, round(agce_a.value, 4)) == ("min", 0.5696)
    assert (aul_a.kind, round(aul_a.value, 3)) == ("min", 5.449)
    assert (ael_a.kind, round(ael_a.value, 3)) == ("min", 2.466)
    # at the bound the ratio equals the noise ratio (independent check of the inversion)
    assert agce_ratio(agce_a.value, 0.6) == pytest.approx(2 / 3, rel=1e-12)
    assert aul_ratio(aul_a.value, 3) == pytest.approx(2 / 3, rel=1e-12)
    assert ael_ratio(ael_a.value) == pytest.approx(2 / 3, rel=1e-12)
    assert agce_a.message == "AGCE(q=0.6) is asymmetric iff a ≥ 0.569581."


def test_min_parameter_other_kinds():
    T = symmetric(10, 0.8)
    rt = 0.8 / (9 * 0.2)
    assert theory.min_parameter("agce", "a", T, q=1.5).kind == "any"
    assert theory.min_parameter("aul", "a", T, q=0.5).kind == "any"
    q_agce = theory.min_parameter("agce", "q", T, a=0.1)
    assert q_agce.kind == "min" and agce_ratio(0.1, q_agce.value) == pytest.approx(rt, rel=1e-12)
    assert theory.min_parameter("agce", "q", T, a=10).kind == "any"  # ((a+1)/a)^(q-1) ≥ r̃ for all q > 0
    q_aul = theory.min_parameter("aul", "q", T, a=2)
    assert q_aul.kind == "max" and aul_ratio(2, q_aul.value) == pytest.approx(rt, rel=1e-12)
    assert q_aul.admits(1.5) and not q_aul.admits(q_aul.value + 0.01)
    gce_q = theory.min_parameter("gce", "q", T)
    assert (gce_q.kind, gce_q.value) == ("min", 1.0)
    none = theory.min_parameter("ael", "a", pairflip(4, 0.5))  # r̃ = 1: not clean-labels-dominant
    assert none.kind == "none" and none.value is None and "not clean-labels-dominant" in none.message
    with pytest.raises(TypeError, match="no bound"):
        float(none)


@given(rt=st.floats(0.01, 0.99), q=st.floats(0.05, 0.95), p=st.floats(1.1, 5.0))
@settings(max_examples=60, deadline=None)
def test_min_parameter_is_the_boundary_of_the_closed_form_condition(rt, q, p):
    K = 4
    eta = rt / (1 + rt)  # pair-flip noise with r̃ = rt
    T = pairflip(K, eta)
    a = theory.min_parameter("agce", "a", T, q=q).value
    assert agce_ratio(a * 1.001, q) >= rt >= agce_ratio(a * 0.999, q)
    a = theory.min_parameter("aul", "a", T, q=p).value
    assume(a - 1 > 1e-6)  # closer to 1 the float a itself cannot carry the bound's digits
    assert aul_ratio(1 + (a - 1) * 1.001, p) >= rt >= aul_ratio(1 + (a - 1) * 0.999, p)
    a = theory.min_parameter("ael", "a", T).value
    assert ael_ratio(a * 1.001) >= rt >= ael_ratio(a * 0.999)


def test_min_parameter_errors():
    T = symmetric(10, 0.8)
    with pytest.raises(ValueError, match="closed forms for agce"):
        theory.min_parameter("mae", "a", T)
    with pytest.raises(ValueError, match="param must be one of 'a'"):
        theory.min_parameter("ael", "q", T)
    with pytest.raises(TypeError, match="parameter solved for"):
        theory.min_parameter("ael", "a", T, a=2.0)


# ---------------------------------------------------------------------------------------------
# the numerical infimum against the closed forms
# ---------------------------------------------------------------------------------------------

NUMERIC_CASES = (
    [(agce(a, q), agce_ratio(a, q)) for a in (1e-5, 0.1, 0.6, 1, 4) for q in (0.1, 0.5, 0.6, 1.0, 1.5)]
    + [(aul(a, q), aul_ratio(a, q)) for a in (1.5, 2, 5.5, 6.3) for q in (0.5, 1.5, 2, 3)]
    + [(ael(a), ael_ratio(a)) for a in (0.3, 1, 1.5, 2.5, 3.5, 5)]
    + [(gce(q), 0.0) for q in (0.1, 0.5, 0.7, 0.9)]
    + [(ce, 0.0), (mae, 1.0)]
)


@pytest.mark.parametrize("ell,expected", NUMERIC_CASES)
def test_numerical_infimum_matches_closed_forms(ell, expected):
    r = theory.asymmetry_ratio(ell)
    assert r.method == "numerical"
    assert abs(r.value - expected) < 1e-5


def test_numerical_infimum_resolves_the_small_a_limit():
    # docs/theory.md, 'Worked values': at a = 1e-5 the infimum is a limit; a coarse grid misses it (≈ 0.003170)
    closed = agce_ratio(1e-5, 0.5)
    assert closed == pytest.approx(0.003162, abs=5e-7)
    u = np.linspace(0, 1, 1001)
    ell = agce(1e-5, 0.5)
    grid = min(((ell(u[: 1001 - j]) - ell(u[j:])) / (ell(0.0) - ell(u[j]))).min() for j in range(1, 1001))
    assert grid > closed + 5e-6  # what a plain grid gives
    r = theory.asymmetry_ratio(ell)
    assert abs(r.value - closed) < 2e-6 and r.at[1] == 0.0  # Δu = 0 marks the limit


def _brute_force_ratio(ell, n=2001):
    u = np.linspace(0, 1, n)
    best = np.inf
    for j in range(1, n):
        best = min(best, ((ell(u[: n - j]) - ell(u[j:])) / (ell(0.0) - ell(u[j]))).min())
    return best


def test_numerical_infimum_of_non_convex_losses():
    # piecewise linear, slopes -1, -2, -0.25: concave then convex; r = 0.25 at finite Δu
    def kinked(u):
        u = np.asarray(u, dtype=np.float64)
        return np.where(u < 0.5, 1 - u, np.where(u < 0.75, 0.5 - 2 * (u - 0.5), -0.25 * (u - 0.75)))

    assert theory.asymmetry_ratio(kinked).value == pytest.approx(0.25, abs=1e-9)
    assert _brute_force_ratio(kinked) == pytest.approx(0.25, abs=1e-9)

    # smooth, slope −1 − 0.15 cos(2πu): the infimum is the limit 0.85/1.15 at the interior u = 0.5
    def wavy(u):
        return 1 - u - 0.15 / (2 * np.pi) * np.sin(2 * np.pi * u)

    r = theory.asymmetry_ratio(wavy)
    assert r.value == pytest.approx(0.85 / 1.15, abs=1e-6)
    assert r.at[0] == pytest.approx(0.5, abs=1e-3)
    assert _brute_force_ratio(wavy) >= r.value - 1e-9

    # cos² is flat at 0 (ℓ′(0) = 0) and point-symmetric: r = 1, not a rounding artefact below it
    assert theory.asymmetry_ratio(lambda u: np.cos(np.pi * u / 2) ** 2).value == pytest.approx(1.0, abs=1e-6)


def test_scalar_and_torch_callables_are_accepted():
    torch = pytest.importorskip("torch")
    scalar = theory.asymmetry_ratio(lambda u: math.exp(-u / 2.5))
    tensor = theory.asymmetry_ratio(lambda u: torch.exp(-u / 2.5))
    assert scalar.value == pytest.approx(0.670320, abs=1e-5)
    assert tensor.value == pytest.approx(0.670320, abs=1e-5)
    assert float(scalar) == scalar.value


def test_asymmetry_ratio_errors():
    with pytest.raises(ValueError, match=r"ℓ\(0\) > ℓ\(Δu\)"):
        theory.asymmetry_ratio(lambda u: u)  # increasing
    with pytest.raises(ValueError, match="must be finite on"):
        theory.asymmetry_ratio(lambda u: 1 / (u - 0.5) ** 2)
    with pytest.raises(TypeError, match="only accepted with a loss name"):
        theory.asymmetry_ratio(mae, a=1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        theory.asymmetry_ratio(mae, method="exact")
    with pytest.raises(ValueError, match="not of the form"):
        theory.asymmetry_ratio(nce)
    with pytest.raises(TypeError, match="loss must be a registry name"):
        theory.asymmetry_ratio(3.0)


# ---------------------------------------------------------------------------------------------
# asymmetric verdicts and the simplex minimisation
# ---------------------------------------------------------------------------------------------


def test_agce_small_a_direct_minimisation_numbers():
    w = np.r_[0.2, np.full(9, 0.8 / 9)]
    m = theory.minimize_weighted_risk(agce(0.1, 0.1), w)
    assert m.point[0] == pytest.approx(0.3296, abs=5e-5)
    assert np.allclose(m.point[1:], (1 - m.point[0]) / 9, atol=1e-7)
    assert m.risk == pytest.approx(1.539390, abs=5e-7)
    assert m.vertex_risk == pytest.approx(1.721987, abs=5e-7)
    assert not m.vertex_is_minimiser and m.gap == pytest.approx(1.721987 - 1.539390, abs=1e-6)
    # an independent 1-D check: risk along u = (u0, (1−u0)/9, …)
    ell = agce(0.1, 0.1)
    u0 = np.linspace(0.2, 0.5, 300001)
    risk = 0.2 * ell(u0) + 0.8 * ell((1 - u0) / 9)
    assert u0[np.argmin(risk)] == pytest.approx(0.3296, abs=5e-5)
    assert risk.min() == pytest.approx(m.risk, abs=1e-9)


def test_minimize_weighted_risk_with_a_general_callable():
    w = np.r_[0.2, np.full(9, 0.8 / 9)]
    m = theory.minimize_weighted_risk(lambda U, k: ((1.1) ** 0.1 - (0.1 + U[:, k]) ** 0.1) / 0.1, w)
    assert m.risk == pytest.approx(1.539390, abs=5e-7) and m.target == 0
    with pytest.raises(ValueError, match="summing to 1"):
        theory.minimize_weighted_risk(mae, [0.5, 0.6])


@pytest.mark.parametrize(
    "ell,expected",
    [
        (agce(0.1, 0.1), False),
        (ael(1.0), False),
        (agce(0.6, 0.6), True),
        (agce(4, 0.2), True),
        (ael(2.5), True),
        (aul(5.5, 3), True),
        (aul(2, 2), True),
    ],
)
def test_worked_verdicts_at_symmetric_08(ell, expected):
    T = symmetric(10, 0.8)
    v = theory.is_asymmetric(ell, T)
    assert v.asymmetric is expected and bool(v) is expected
    assert v.method == ("ratio" if expected else "simplex")  # a numerical r ≥ r̃ proves it; else the simplex
    assert v.noise_ratio == pytest.approx(0.444444, abs=5e-7)
    s = theory.is_asymmetric(ell, T, method="simplex")
    assert s.method == "simplex" and s.asymmetric is expected


def test_verdict_for_non_clean_dominant_noise():
    v = theory.is_asymmetric(mae, pairflip(5, 0.5))
    assert not v and v.method == "noise-ratio" and "not clean-labels-dominant" in v.reason


def _risk_minimiser_is_vertex(ell, T):
    return theory.is_asymmetric(ell, T, method="simplex").asymmetric


@given(
    family=st.sampled_from(["agce", "aul", "ael"]),
    a=st.floats(0.05, 8.0),
    q=st.floats(0.05, 4.0),
    K=st.integers(2, 10),
    eta=st.floats(0.05, 0.9),
)
@settings(max_examples=60, deadline=None)
def test_closed_form_condition_agrees_with_simplex_minimisation(family, a, q, K, eta):
    assume(eta < (K - 1) / K - 0.02)  # clean-labels-dominant
    T = symmetric(K, eta)
    rt = theory.noise_ratio(T)
    if family == "agce":
        ell, r = agce(a, q), agce_ratio(a, q)
    elif family == "aul":
        a = 1 + a
        ell, r = aul(a, q), aul_ratio(a, q)
    else:
        ell, r = ael(a), ael_ratio(a)
    assume(abs(math.log(rt) - math.log(r)) > 0.05 if r > 0 else True)  # away from the knife edge r̃ = r
    assert (rt <= r) == _risk_minimiser_is_vertex(ell, T)


def test_nce_is_symmetric_but_asymmetric_only_for_uniform_off_target_weights():
    assert theory.is_symmetric(nce, 10).symmetric
    assert theory.is_symmetric(nce, 10).constant == pytest.approx(1.0, abs=1e-12)
    assert theory.is_asymmetric(nce, symmetric(10, 0.6)).asymmetric  # uniform off-target weights
    T = np.array([[0.6, 0.3, 0.1], [0.1, 0.6, 0.3], [0.3, 0.1, 0.6]])
    v = theory.is_asymmetric(nce, T)
    assert not v.asymmetric and v.method == "simplex"
    worst = max(v.rows, key=lambda m: m.gap)
    # at e_y the risk is the mean off-target weight 0.2; the infimum is the smallest one, 0.1
    assert worst.vertex_risk == pytest.approx(0.2, abs=1e-9)
    assert worst.risk < 0.2 - 0.05


def test_is_symmetric():
    assert theory.is_symmetric(mae, 10).constant == pytest.approx(18.0)
    assert not theory.is_symmetric(agce(0.6, 0.6), 10)
    assert not theory.is_symmetric(ce, 5)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        theory.is_symmetric(mae, 1)
