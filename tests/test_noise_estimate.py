"""asymloss.noise.estimate_transition: the confident joint through cleanlab, in asymloss's orientation
(rows = clean class), its fold jackknife, its files and its errors."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from asymloss.noise import (TransitionEstimate, empirical_transition, estimate_transition, read_pred_probs,
                            read_transition, transition_matrix)

cleanlab = pytest.importorskip("cleanlab")

# The worked example of docs/estimation.md (checked with cleanlab 2.9.0).
S = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
P = np.array([[.4, .3, .3], [.8, .1, .1], [.7, .2, .1], [.2, .7, .1], [.6, .3, .1], [.1, .8, .1],
              [.3, .6, .1], [.1, .2, .7], [.1, .1, .8], [.2, .2, .6], [.6, .2, .2]])


def test_worked_example_in_asymloss_orientation():
    est = estimate_transition(P, S)
    expected = np.array([[0.8, 0, 0.2], [1 / 3, 2 / 3, 0], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(est.transition, expected, atol=1e-6)
    np.testing.assert_allclose(est.transition.sum(axis=1), 1.0, atol=1e-12)  # rows = clean class
    # calibrated confident joint [[4,1,0],[0,2,1],[1,0,2]] with rows = noisy label, transposed here
    np.testing.assert_array_equal(est.confident_joint, np.array([[4, 1, 0], [0, 2, 1], [1, 0, 2]]).T)
    np.testing.assert_allclose(est.prior, [5 / 11, 3 / 11, 3 / 11], atol=1e-6)
    np.testing.assert_allclose(est.noise_rates, [0.2, 1 / 3, 1 / 3], atol=1e-6)
    assert est.rate == pytest.approx(5 / 11 * 0.2 + 6 / 11 / 3, abs=1e-6)
    assert est.noise_ratio == pytest.approx(0.5)  # row 1: (1/3) / (2/3)
    assert est.num_examples == 11 and est.num_classes == 3 and est.fold_transitions is None
    assert est.noise_ratio_se is None and est.noise_ratio_interval() is None
    assert "cleanlab" in est.method


def test_raw_confident_joint_and_thresholds_of_the_example():
    from cleanlab.count import compute_confident_joint, get_confident_thresholds

    np.testing.assert_allclose(get_confident_thresholds(S, P), [0.54, 0.533333, 0.533333], atol=1e-6)
    cj, off = compute_confident_joint(S, P, calibrate=False, return_indices_of_off_diagonals=True)
    np.testing.assert_array_equal(cj, [[3, 1, 0], [0, 2, 1], [1, 0, 2]])
    np.testing.assert_array_equal(np.sort(off), [3, 7, 10])


def test_orientation_is_the_transpose_of_cleanlabs_noise_matrix():
    from cleanlab.count import compute_confident_joint, estimate_latent

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 400)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=400)
    probs[np.arange(400), y] += 1.0
    probs /= probs.sum(1, keepdims=True)
    est = estimate_transition(probs, y)
    _, nm, _ = estimate_latent(compute_confident_joint(y, probs), y, py_method="cnt")
    np.testing.assert_allclose(est.transition, nm.T, atol=1e-12)


def _simulated(n=3000, K=5, noise="pairflip:0.3", seed=0, sharp=0.85):
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, K, n)
    kind, rate = noise.split(":")
    T = transition_matrix(kind, float(rate), num_classes=K)
    noisy = np.array([rng.choice(K, p=T[c]) for c in clean])
    # a good out-of-sample model: most mass on the clean class
    probs = (1 - sharp) * rng.dirichlet(np.ones(K), size=n)
    probs[np.arange(n), clean] += sharp
    return probs, noisy, clean, T


def test_recovers_a_simulated_transition_matrix():
    probs, noisy, clean, T = _simulated()
    est = estimate_transition(probs, noisy, folds=5)
    real = empirical_transition(clean, noisy, 5)
    assert est.max_abs_error(real) < 0.03
    assert est.max_abs_error(T) < 0.04
    assert est.noise_ratio == pytest.approx(0.3 / 0.7, abs=0.06)
    # the fold jackknife
    assert est.fold_transitions.shape == (5, 5, 5) and est.fold_noise_ratios.shape == (5,)
    assert 0 < est.noise_ratio_se < 0.05
    lo, hi = est.noise_ratio_interval(2.0)
    assert lo < est.noise_ratio < hi and hi - lo == pytest.approx(4 * est.noise_ratio_se)
    assert est.transition_se.shape == (5, 5) and np.all(est.transition_se >= 0)
    assert est.options["folds"] == 5 and est.options["fold_source"] == "random"


def test_folds_as_ids_and_summary_round_trip():
    probs, noisy, _, _ = _simulated(n=600, K=3, noise="symmetric:0.4", seed=1)
    ids = np.arange(600) % 3
    est = estimate_transition(probs, noisy, folds=ids)
    # fold f's estimate is the one without fold f
    alone = estimate_transition(probs[ids != 0], noisy[ids != 0])
    np.testing.assert_allclose(est.fold_transitions[0], alone.transition)
    s = est.summary()
    json.dumps(s)  # JSON-able
    back = TransitionEstimate.from_summary(json.loads(json.dumps(s)))
    np.testing.assert_allclose(back.transition, est.transition)
    np.testing.assert_allclose(back.fold_transitions, est.fold_transitions)
    assert back.noise_ratio_se == pytest.approx(est.noise_ratio_se)
    assert s["folds"]["kind"].startswith("leave-one-fold-out")
    with pytest.raises(ValueError, match="not an estimate summary"):
        TransitionEstimate.from_summary({"transition": [[1]]})


def test_accepts_tensors_lists_and_float32():
    torch = pytest.importorskip("torch")
    a = estimate_transition(torch.tensor(P, dtype=torch.float32), torch.tensor(S))
    b = estimate_transition(P.tolist(), S.tolist(), num_classes=3)
    np.testing.assert_allclose(a.transition, b.transition, atol=1e-6)


@pytest.mark.parametrize("probs,labels,kw,exc,match", [
    (P[0], S, {}, ValueError, r"pred_probs must be a 2-D \(N, K\) array"),
    (np.zeros((0, 3)), [], {}, ValueError, "pred_probs is empty"),
    (P[:, :1], S, {}, ValueError, "pred_probs must have at least 2 columns"),
    (P * 2, S, {}, ValueError, "pred_probs must be a probability matrix .* row 0 sums to 2"),
    (P - 0.5, S, {}, ValueError, r"pred_probs must be non-negative .* apply a softmax"),
    (np.where(np.eye(11, 3) > 0, np.nan, P), S, {}, ValueError, r"pred_probs must be finite; pred_probs\[0, 0\]"),
    ([["a", "b"]], [0], {}, TypeError, "pred_probs must be a numeric"),
    (P, S, {"num_classes": 4}, ValueError, "pred_probs has 3 columns but num_classes is 4"),
    (P, S[:-1], {}, ValueError, "noisy_labels has 10 labels but pred_probs has 11 rows"),
    (P, np.r_[S[:-1], 3], {}, ValueError, r"noisy_labels must be class indices in \[0, 2\]; noisy_labels\[10\] = 3"),
    (P, np.r_[S[:-1], -1], {}, ValueError, r"noisy_labels\[10\] = -1"),
    (P, S + 0.5, {}, TypeError, "noisy_labels must hold integer class indices"),
    (P, S.reshape(11, 1), {}, ValueError, "noisy_labels must be a 1-D array"),
    (P, np.r_[np.zeros(8, int), np.ones(3, int)], {}, ValueError, "no example labelled 2"),
    (P, S, {"folds": 1}, ValueError, "folds must be >= 2"),
    (P, S, {"folds": 12}, ValueError, "folds must be at most the number of examples"),
    (P, S, {"folds": np.zeros(11, int)}, ValueError, "at least 2 distinct fold ids"),
    (P, S, {"folds": np.zeros(5, int)}, ValueError, "1-D array of 11 fold ids"),
    (P, S, {"folds": 2.5}, ValueError, "folds must be an int"),
    (P, S, {"num_classes": 1}, ValueError, "num_classes must be >= 2"),
])
def test_bad_input_names_the_argument(probs, labels, kw, exc, match):
    with pytest.raises(exc, match=match):
        estimate_transition(probs, labels, **kw)


def test_float_labels_that_are_integers_are_accepted():
    est = estimate_transition(P, S.astype(float))
    assert est.num_examples == 11


def test_missing_cleanlab_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab", None)
    with pytest.raises(ImportError, match=r"asymloss\[estimate\]"):
        estimate_transition(P, S)


def test_files(tmp_path):
    est = estimate_transition(P, S, folds=np.arange(11) % 2)
    T = est.transition
    np.save(tmp_path / "t.npy", T)
    np.savetxt(tmp_path / "t.csv", T, delimiter=",")
    np.savetxt(tmp_path / "t.txt", T)
    (tmp_path / "t.json").write_text(json.dumps(T.tolist()))
    (tmp_path / "rec.json").write_text(json.dumps({"estimate": est.summary()}))
    for name in ("t.npy", "t.csv", "t.txt", "t.json"):
        np.testing.assert_allclose(read_transition(tmp_path / name), T, atol=1e-12)
    got = read_transition(tmp_path / "rec.json")
    assert isinstance(got, TransitionEstimate) and got.num_folds == 2
    (tmp_path / "bad.csv").write_text("0.5,0.6\n0.5,0.5\n")
    with pytest.raises(ValueError, match="transition must be row-stochastic"):
        read_transition(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError):
        read_transition(tmp_path / "nope.npy")
    (tmp_path / "t.yaml").write_text("[[1]]")
    with pytest.raises(ValueError, match=r"\.npy, \.csv"):
        read_transition(tmp_path / "t.yaml")
    np.savez(tmp_path / "pp.npz", pred_probs=P, noisy_labels=S, fold_ids=np.arange(11) % 2)
    probs, labels, folds = read_pred_probs(tmp_path / "pp.npz")
    np.testing.assert_array_equal(labels, S) and np.testing.assert_array_equal(folds, np.arange(11) % 2)
    np.save(tmp_path / "pp.npy", P)
    np.save(tmp_path / "s.npy", S)
    probs, labels, folds = read_pred_probs(tmp_path / "pp.npy", tmp_path / "s.npy")
    assert folds is None and probs.shape == (11, 3)
    with pytest.raises(ValueError, match="need the noisy labels"):
        read_pred_probs(tmp_path / "pp.npy")
