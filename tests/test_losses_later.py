"""The later losses (docs/losses.md, 'Later losses') against worked values on two vectors.

A: z = (2, 1, 0), y = 0.  B: z = (0.5, -1, 3, 0), y = 2.  Values and gradients w.r.t. the logits
in float64, to 1e-6, computed with the reference semantics (detached focal factors, clamps).
"""
from __future__ import annotations

import pytest
import torch

import asymloss

A = ([2.0, 1.0, 0.0], 0)
B = ([0.5, -1.0, 3.0, 0.0], 2)

# (name, hyperparameters, vector, value, gradient or None)
WORKED = [
    ("taylor_ce", {"t": 1}, A, 0.334759, (-0.222695, 0.162803, 0.059892)),
    ("taylor_ce", {"t": 1}, B, 0.130577, (0.062048, 0.013845, -0.113526, 0.037634)),
    ("taylor_ce", {"t": 2}, A, 0.390791, (-0.297245, 0.217303, 0.079941)),
    ("taylor_ce", {"t": 2}, B, 0.139102, (0.070150, 0.015653, -0.128350, 0.042548)),
    ("taylor_ce", {"t": 6}, A, 0.407511, (-0.334288, 0.244384, 0.089904)),
    ("taylor_ce", {"t": 6}, B, 0.139925, (0.071366, 0.015924, -0.130576, 0.043286)),
    ("poly1_ce", {"epsilon": 1.0}, A, 0.742365, (-0.557454, 0.407532, 0.149923)),
    ("poly1_ce", {"epsilon": 1.0}, B, 0.270502, (0.133414, 0.029769, -0.244103, 0.080920)),
    ("poly1_ce", {"epsilon": 2.0}, A, 1.077124, (-0.780150, 0.570335, 0.209815)),
    ("poly1_ce", {"epsilon": 2.0}, B, 0.401079, (0.195462, 0.043614, -0.357630, 0.118554)),
    ("poly1_ce", {"epsilon": -1.0}, A, 0.072847, (-0.112064, 0.081925, 0.030139)),
    ("poly1_ce", {"epsilon": -1.0}, B, 0.009348, (0.009319, 0.002079, -0.017050, 0.005652)),
    ("jal_fl", {"alpha": 1.0, "beta": 1.0, "a": 30.0}, A, 286.928154, (-4.453908, 3.255104, 1.198804)),
    ("jal_fl", {"alpha": 1.0, "beta": 1.0, "a": 30.0}, B, 212.154604, (0.909058, 0.202808, -1.662838, 0.550972)),
    ("nnfl", {"gamma": 0.5}, A, 0.643883, (-0.012480, 0.005421, 0.007059)),
    ("nnfl", {"gamma": 0.5}, B, 0.706260, (0.004384, 0.005151, -0.014307, 0.004773)),
    ("anl_fl", {"alpha": 5.0, "beta": 5.0, "gamma": 0.5}, A, 3.533376, (-0.405433, 0.239127, 0.166306)),
    ("anl_fl", {"alpha": 5.0, "beta": 5.0, "gamma": 0.5}, B, 3.557168, (0.037040, 0.031184, -0.102301, 0.034077)),
    ("fl_eps", {"m": 1e5, "gamma": 0.1}, A, 9.488586e-7, None),
    ("fl_eps", {"m": 1e5, "gamma": 0.1}, B, 3.368587e-7, None),
    ("fl_eps", {"m": 1e5, "gamma": 0.1}, ([2.0, 1.0, 0.0], 1), 12.920538, (0.665241, -0.755271, 0.090031)),
    ("js", {"pi1": 0.5}, A, 0.383635, (-0.294800, 0.215516, 0.079284)),
    ("js", {"pi1": 0.5}, B, 0.137161, (0.068529, 0.015291, -0.125386, 0.041565)),
    ("js", {"pi1": 0.7}, A, 0.373132, (-0.278513, 0.203609, 0.074904)),
    ("js", {"pi1": 0.7}, B, 0.135835, (0.067200, 0.014994, -0.122952, 0.040759)),
    ("js", {"pi1": 0.1}, A, 0.402845, (-0.326468, 0.238667, 0.087801)),
    ("js", {"pi1": 0.1}, B, 0.139406, (0.070827, 0.015804, -0.129589, 0.042959)),
    ("ldr_kl", {"margin": 0.1, "lam": 1.0}, A, -0.404138, (-0.238365, 0.230038, 0.117120)),
    ("ldr_kl", {"margin": 0.1, "lam": 1.0}, B, -0.975862, (0.146985, 0.051195, -0.136791, 0.106856)),
    ("ldr_kl", {"margin": 0.1, "lam": 10.0}, A, -0.469688, (-0.303564, 0.269775, 0.179197)),
    ("ldr_kl", {"margin": 0.1, "lam": 10.0}, B, -1.316852, (0.288584, 0.122011, -0.284998, 0.229663)),
    ("bi_tempered", {"t1": 0.8, "t2": 1.2}, A, 0.340071, (-0.250021, 0.181585, 0.068436)),
    ("bi_tempered", {"t1": 0.8, "t2": 1.2}, B, 0.151821, (0.055508, 0.016715, -0.108526, 0.036304)),
    ("bi_tempered", {"t1": 0.5, "t2": 1.5}, A, 0.284074, (-0.163809, 0.115598, 0.048211)),
    ("bi_tempered", {"t1": 0.5, "t2": 1.5}, B, 0.176465, (0.043269, 0.017210, -0.091381, 0.030901)),
    ("bi_tempered", {"t1": 0.2, "t2": 4.0}, A, 0.390548, (-0.010737, 0.005808, 0.004929)),
    ("bi_tempered", {"t1": 0.2, "t2": 4.0}, B, 0.452673, (0.001461, 0.001315, -0.004185, 0.001409)),
    ("bi_tempered", {"t1": 0.8, "t2": 1.2, "label_smoothing": 0.1}, A, 0.168856, (-0.188112, 0.144874, 0.043238)),
    ("bi_tempered", {"t1": 0.8, "t2": 1.2, "label_smoothing": 0.1}, B, 0.044127,
     (0.037318, 0.005500, -0.063921, 0.021104)),
    ("bi_tempered", {"t1": 0.5, "t2": 0.8}, A, 0.115487, None),   # exact (5 bisection steps: 0.114790)
    ("ce_lc", {"tau": 1.0}, A, 0.716985, (-0.101618, 0.203236, 0.089266)),
    ("ce_lc", {"tau": 1.0}, B, 0.759156, (0.091686, -0.007540, -0.017794, 0.057278)),
    ("ce_lc", {"tau": 1.0, "legacy_threshold": True}, A, 0.716985, (-0.101618, 0.203236, 0.089266)),
    ("ce_lc", {"tau": 1.0, "legacy_threshold": True}, B, 0.759156, (0.091686, -0.007540, -0.017794, 0.057278)),
    ("ce_lc", {"tau": 1.5}, A, 0.572507, (-0.135873, 0.271746, 0.098924)),
    ("ce_lc", {"tau": 1.5}, B, 0.535725, (0.113409, -0.014747, -0.023817, 0.067242)),
    ("ce_lc", {"tau": 1 / 1.5, "legacy_threshold": True}, A, 0.829883, (-0.072225, 0.144449, 0.071622)),
    ("ce_lc", {"tau": 1 / 1.5, "legacy_threshold": True}, B, 0.941715, (0.067383, -0.002966, -0.012219, 0.043477)),
]


def _ids(case):
    name, hp, vec, *_ = case
    return f"{name}-{'-'.join(f'{k}={v:g}' for k, v in hp.items())}-{'A' if vec[0] == A[0] else 'B'}{vec[1]}"


@pytest.mark.parametrize("case", WORKED, ids=[_ids(c) for c in WORKED])
def test_worked_values_and_gradients(case):
    name, hp, (z, y), value, grad = case
    z = torch.tensor([z], dtype=torch.float64, requires_grad=True)
    out = asymloss.create_loss(name, **hp)(z, torch.tensor([y]))
    assert abs(out.item() - value) <= 1e-6 * max(1.0, abs(value)), (out.item(), value)
    out.backward()
    if grad is not None:
        torch.testing.assert_close(z.grad[0], torch.tensor(grad, dtype=torch.float64), rtol=0, atol=1e-6)


def test_fl_eps_mae_is_the_sum_of_its_terms():
    z = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1, 2])
    fl = asymloss.create_loss("fl_eps", m=1e5, reduction="none")(z, y)
    mae = asymloss.create_loss("mae", reduction="none")(z, y)
    got = asymloss.create_loss("fl_eps+mae", alpha=0.01, beta=5.0, m=1e5, reduction="none")(z, y)
    torch.testing.assert_close(got, 0.01 * fl + 5.0 * mae)


@pytest.mark.parametrize("build,message", [
    (lambda: asymloss.TaylorCE(t=0), r"t must be >= 1; got 0"),
    (lambda: asymloss.Poly1CE(epsilon=-2), r"epsilon must be >= -1; got -2"),
    (lambda: asymloss.NNFL(min_prob=1.0), r"min_prob must be > 0 and < 1; got 1.0"),
    (lambda: asymloss.FLEps(gamma=-1), r"gamma must be >= 0; got -1"),
    (lambda: asymloss.JS(pi1=1.0), r"pi1 must be > 0 and < 1; got 1.0"),
    (lambda: asymloss.LDRKL(lam=0), r"lam must be > 0; got 0"),
    (lambda: asymloss.LDRKL(margin=-0.1), r"margin must be >= 0; got -0.1"),
    (lambda: asymloss.ANLFL(alpha=-1), r"alpha must be >= 0; got -1"),
    (lambda: asymloss.CELC(tau=0), r"tau must be > 0; got 0"),
    (lambda: asymloss.LogitClip("agce", p=0.5), r"p must be >= 1; got 0.5"),
])
def test_invalid_hyperparameters(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_taylor_order_must_be_an_integer():
    with pytest.raises(TypeError, match="t must be an integer; got 2.0"):
        asymloss.TaylorCE(t=2.0)


def test_anl_fl_shares_gamma_and_detach():
    m = asymloss.ANLFL(alpha=10, beta=1, gamma=0.3, min_prob=1e-8, detach=False)
    assert m.hparams() == {"alpha": 10.0, "beta": 1.0, "gamma": 0.3, "min_prob": 1e-8, "detach": False}
    assert (m.active.gamma, m.passive.gamma, m.passive.detach) == (0.3, 0.3, False)


@pytest.mark.parametrize("name,hp,want", [("taylor_ce", {"t": 1}, 1.0), ("taylor_ce", {"t": 2}, 0.5),
                                          ("taylor_ce", {"t": 5}, 0.2), ("poly1_ce", {"epsilon": 1.0}, 0.0)])
def test_theory_treats_taylor_and_poly1_as_l_of_p_y(name, hp, want):
    from asymloss import theory

    closed = theory.asymmetry_ratio(name, **hp)
    assert closed.method == "closed-form" and closed.value == pytest.approx(want)
    numerical = theory.asymmetry_ratio(name, method="numerical", **hp)
    assert numerical.value == pytest.approx(want, abs=1e-6)


def test_logit_clip_spellings_wrap_any_loss():
    z = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    zc = z * torch.clamp(2.0 / z.norm(dim=1, keepdim=True), max=1.0)
    want = asymloss.create_loss("nce+agce", a=2.0, reduction="none")(zc, y)
    for spelling in ("nce+agce_lc", "lc(nce+agce)", "LC(NCEandAGCE)", "logit_clip(nce+agce)", "NCE+AGCE-lc"):
        loss = asymloss.create_loss(spelling, a=2.0, tau=2.0, reduction="none")
        assert type(loss) is asymloss.LogitClip and loss.hparams()["a"] == 2.0
        torch.testing.assert_close(loss(z, y), want)
    torch.testing.assert_close(asymloss.LogitClip(asymloss.NCEandAGCE(a=2.0), tau=2.0, reduction="none")(z, y), want)
    assert type(asymloss.create_loss("lc(ce)")) is asymloss.CELC
    assert type(asymloss.create_loss("ce_lc")) is asymloss.CELC
    # a preset names the wrapped loss's values
    assert asymloss.create_loss("agce_lc", preset="paper:mnist").hparams()["a"] == 4.0
    with pytest.raises(KeyError, match="unknown agce hyperparameter 'b'"):
        asymloss.create_loss("agce_lc", b=1.0)


def test_logit_clip_functional_accepts_a_name_or_a_module():
    import asymloss.functional as AF

    z, y = torch.randn(5, 4, dtype=torch.float64) * 3, torch.randint(0, 4, (5,))
    a = AF.logit_clip(z, y, loss="gce", tau=0.7)
    b = AF.logit_clip(z, y, loss=asymloss.GCE(), tau=0.7)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(AF.ce_lc(z, y, tau=0.7), AF.logit_clip(z, y, tau=0.7))
    with pytest.raises(TypeError, match="loss must be a registered loss name"):
        AF.logit_clip(z, y, loss=torch.nn.CrossEntropyLoss())


def test_bi_tempered_official_oracles():
    """google/bi-tempered-loss tensorflow/loss_test.py (soft labels written as mixtures of labels)."""
    z = torch.tensor([[-0.5, 0.1, 2.0], [0.1, 1.5, -5.0], [4.0, -3.0, -6.0]], dtype=torch.float64)
    soft = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.2, 0.8, 0.0]], dtype=torch.float64)

    def soft_loss(t1, t2):
        # the loss is linear in the labels except for the constant terms; hard-label losses mixed
        # with the soft weights plus the labels' own constants give the soft-label loss
        per = torch.stack([asymloss.BiTempered(t1, t2, reduction="none")(z, torch.full((3,), k)) for k in range(3)], 1)
        def log_t(u, t):
            return (u ** (1 - t) - 1) / (1 - t)
        c_hard = log_t(torch.tensor(1.0 + 1e-10, dtype=torch.float64), t1) - 1 / (2 - t1)
        c_soft = (soft * log_t(soft + 1e-10, t1) - soft ** (2 - t1) / (2 - t1)).sum(1)
        return (soft * per).sum(1) - c_hard + c_soft

    torch.testing.assert_close(soft_loss(0.5, 1.5), torch.tensor([0.02301914, 0.18972909, 0.93874922],
                                                                 dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(soft_loss(0.5, 0.8), torch.tensor([0.21646356, 0.41836615, 1.33997854],
                                                                 dtype=torch.float64), rtol=0, atol=1e-6)
    # one-hot labels (0, 1, 2), label smoothing 0.1 (the official oracle is float32: 4e-6)
    got = asymloss.BiTempered(0.5, 1.5, label_smoothing=0.1, reduction="none")(z, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(got, torch.tensor([0.76652711, 0.08627685, 1.35443510], dtype=torch.float64),
                               rtol=0, atol=5e-6)


def test_bi_tempered_t2_below_one_is_normalised_and_t1_t2_one_is_ce():
    z = torch.randn(64, 7, dtype=torch.float64) * 4
    y = torch.randint(0, 7, (64,))
    torch.testing.assert_close(asymloss.BiTempered(1.0, 1.0, reduction="none")(z, y),
                               torch.nn.functional.cross_entropy(z, y, reduction="none"))
    import asymloss.losses._later as LF  # the normaliser is internal to the declaration

    for t in (0.3, 0.8):
        a = z - z.amax(1, keepdim=True)
        lam = LF._bt_normaliser(a, t, 5)
        torch.testing.assert_close(LF._exp_t(a - lam, t).sum(1), torch.ones(64, dtype=torch.float64))


@pytest.mark.parametrize("build,message", [
    (lambda: asymloss.BiTempered(t1=1.2), r"t1 must be >= 0 and <= 1; got 1.2"),
    (lambda: asymloss.BiTempered(t2=0), r"t2 must be > 0; got 0"),
    (lambda: asymloss.BiTempered(label_smoothing=1.0), r"label_smoothing must be >= 0 and < 1; got 1.0"),
    (lambda: asymloss.BiTempered(num_iters=0), r"num_iters must be >= 1; got 0"),
])
def test_bi_tempered_invalid_hyperparameters(build, message):
    with pytest.raises(ValueError, match=message):
        build()
