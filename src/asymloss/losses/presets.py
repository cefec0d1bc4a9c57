"""Reference hyperparameters (docs/losses.md, 'Presets'), keyed by preset and canonical loss name.

- ``paper:<dataset>``: the ALFs reference code (Zhou et al. 2021). The plain MAE baseline is
  ``2(1 - p_y)`` (``scale=2``); inside NCE+MAE it is ``beta * (1 - p_y)`` (``scale=1``): ALFs'
  ``NCEandMAE(alpha, beta)`` builds ``MAELoss(scale=beta)``, whose scale *replaces* MAE's default
  factor 2. The MNIST NCE+ALF presets have ``alpha = 0`` in the reference code, i.e. they
  are the ALF alone (times beta = 1); asymloss keeps that. Focal factors are detached like the
  reference code (``detach=True``: same values, reference gradients).
- ``apl:<dataset>``: the APL code's configs (Ma et al. 2020; ``configs/<dataset>/sym/*.yaml`` of
  the public Active-Passive-Losses repository). Its MAE is ``1 - p_y`` (``scale=1``).
- ``anl:<dataset>``, ``jal:<dataset>``, ``eps:cifar10``: the later losses of docs/losses.md, 'Later losses'. Their
  L1 penalty ``delta * ||theta||_1`` is a training-engine setting, listed in :data:`PRESET_NOTES`.
- ``js:<dataset>``, ``ldr:<dataset>``, ``lc:<dataset>``: docs/losses.md, 'Presets of the later losses' (JS: the
  authors' configuration for 40% symmetric noise; LDR-KL: the lambda that the JAL/epsilon-softmax
  repositories use).
- ``sr:<dataset>``, ``gjs:<dataset>``, ``aldr:<dataset>``: the losses of docs/training-mechanics.md (SR presets
  bring their lambda schedule in :data:`PRESET_ENGINE`).

Every value here reproduces the per-sample loss of the reference it names.
"""
from __future__ import annotations

_DETACHED = {"detach": True}

_ALFS_BASELINES = {
    "focal": {"gamma": 0.5, **_DETACHED},
    "gce": {"q": 0.7},
    "sce": {"alpha": 1.0, "beta": 1.0},
    "nfl": {"gamma": 0.5, **_DETACHED},
    "mae": {"scale": 2.0},
}


def _ap(alpha, beta, **kw):
    return {"alpha": float(alpha), "beta": float(beta), **kw}


def _alfs(agce, aul, ael, nce_agce, nce_aul, nce_ael, apl):
    out = dict(_ALFS_BASELINES)
    out.update({
        "agce": dict(zip(("a", "q"), agce)),
        "aul": dict(zip(("a", "q"), aul)),
        "ael": {"a": ael},
        "nce+agce": _ap(*nce_agce[:2], a=nce_agce[2], q=nce_agce[3]),
        "nce+aul": _ap(*nce_aul[:2], a=nce_aul[2], q=nce_aul[3]),
        "nce+ael": _ap(*nce_ael[:2], a=nce_ael[2]),
        "nce+rce": _ap(*apl),
        "nce+mae": _ap(*apl, scale=1.0),  # MAELoss(scale=beta): beta (1 - p_y)
        "nfl+rce": _ap(*apl, gamma=0.5, **_DETACHED),
    })
    return out


PRESETS: dict[str, dict[str, dict]] = {
    "paper:mnist": _alfs((4.0, 0.2), (3.0, 0.1), 3.5, (0, 1, 4.0, 0.2), (0, 1, 3.0, 0.1), (0, 1, 3.5), (1, 100)),
    "paper:cifar10": _alfs((0.6, 0.6), (5.5, 3.0), 2.5, (1, 4, 6.0, 1.5), (1, 4, 6.3, 1.5), (1, 4, 5.0), (1, 1)),
    "paper:cifar100": _alfs((0.6, 0.6), (5.5, 3.0), 2.5, (10, 0.1, 1.8, 3.0), (10, 0.015, 6.0, 3.0),
                            (10, 0.1, 1.5), (10, 1)),
    "paper:webvision": {
        "agce": {"a": 1e-5, "q": 0.5},
        "nce+agce": _ap(50, 0.1, a=2.5, q=3.0),
        "nce+rce": _ap(50, 0.1),
    },
    "apl:mnist": {
        "nce+rce": _ap(1, 10), "nce+mae": _ap(1, 10, scale=1.0),
        "nfl+rce": _ap(1, 10, gamma=0.5, **_DETACHED), "sce": _ap(0.01, 1),
    },
    "apl:cifar10": {
        "nce+rce": _ap(1, 1), "nce+mae": _ap(1, 1, scale=1.0),
        "nfl+rce": _ap(1, 1, gamma=0.5, **_DETACHED), "sce": _ap(0.1, 1),
        "focal": {"gamma": 0.5, **_DETACHED}, "gce": {"q": 0.7}, "mae": {"scale": 1.0},
    },
    "apl:cifar100": {
        "nce+rce": _ap(10, 0.1), "nce+mae": _ap(10, 1, scale=1.0),
        "nfl+rce": _ap(10, 0.1, gamma=0.5, **_DETACHED), "sce": _ap(6, 0.1),
    },
    "anl:mnist": {"anl_ce": _ap(1, 1), "anl_fl": _ap(1, 1, gamma=0.5, **_DETACHED)},
    "anl:cifar10": {"anl_ce": _ap(5, 5), "anl_fl": _ap(5, 5, gamma=0.5, **_DETACHED)},
    "anl:cifar100": {"anl_ce": _ap(10, 1), "anl_fl": _ap(10, 1, gamma=0.5, **_DETACHED)},
    "jal:cifar10": {"jal_ce": _ap(1, 1, a=30.0), "jal_fl": _ap(1, 1, gamma=0.5, **_DETACHED, a=30.0)},
    "jal:cifar100": {"jal_ce": _ap(5, 1, a=20.0), "jal_fl": _ap(5, 1, gamma=0.5, **_DETACHED, a=20.0)},
    "eps:cifar10": {"ce_eps+mae": _ap(0.01, 5, m=1e5), "ce_eps": {"m": 1e5},
                    "fl_eps+mae": _ap(0.01, 5, m=1e5, gamma=0.1, **_DETACHED),
                    "fl_eps": {"m": 1e5, "gamma": 0.1, **_DETACHED}},
    "js:cifar10": {"js": {"pi1": 0.7}},
    "js:cifar100": {"js": {"pi1": 0.3}},
    "ldr:mnist": {"ldr_kl": {"margin": 0.1, "lam": 10.0}},
    "ldr:cifar10": {"ldr_kl": {"margin": 0.1, "lam": 10.0}},
    "ldr:cifar100": {"ldr_kl": {"margin": 0.1, "lam": 1.0}},
    "ldr:webvision": {"ldr_kl": {"margin": 0.1, "lam": 1.0}},
    # LogitClip's official rule (legacy_threshold): --temp T is tau = 1/T; CEandLC(delta) is tau = delta
    "lc:cifar10": {"ce_lc": {"tau": 1 / 1.5, "legacy_threshold": True}},
    "lc:cifar100": {"ce_lc": {"tau": 0.5, "legacy_threshold": True}},
    "lc:webvision": {"ce_lc": {"tau": 1.2, "legacy_threshold": True}},
    # the losses of docs/training-mechanics.md
    **{f"sr:{ds}": {"ce_sr": dict(sr), "fl_sr": {**sr, "gamma": 0.5, "detach": True}, "gce_sr": {**sr, "q": q}}
       for ds, sr, q in (
           ("mnist", {"tau": 0.1, "p": 0.1, "lam": 4.0, "normalize": False}, 0.01),
           ("cifar10", {"tau": 0.5, "p": 0.1, "lam": 1.2, "normalize": True}, 0.01),
           ("cifar100", {"tau": 0.5, "p": 0.01, "lam": 10.0, "normalize": True}, 0.001),
           ("cifar100-sym", {"tau": 0.5, "p": 0.01, "lam": 4.0, "normalize": True}, 0.001))},
    "gjs:cifar10": {"gjs": {"pi1": 0.9, "views": 2, "scaled": True}},
    "gjs:cifar100": {"gjs": {"pi1": 0.5, "views": 2, "scaled": True}},
    "gjs:webvision": {"gjs": {"pi1": 0.1, "views": 2, "scaled": False}},
    "aldr:mnist": {"aldr_kl": {"margin": 0.1, "lam": 10.0, "alpha": 2.0, "softplus": False}},
    "aldr:cifar10": {"aldr_kl": {"margin": 0.1, "lam": 10.0, "alpha": 2.0, "softplus": False}},
    "aldr:cifar100": {"aldr_kl": {"margin": 0.1, "lam": 1.0, "alpha": 2.0, "softplus": True}},
    "aldr:webvision": {"aldr_kl": {"margin": 0.1, "lam": 1.0, "alpha": 2.0, "softplus": False}},
}

#: What each preset reproduces, and settings that belong to the training engine (L1 penalty).
PRESET_NOTES: dict[str, str] = {
    "paper:mnist": "ALFs reference code, MNIST (NCE+ALF with alpha=0: the ALF alone; MAE = 2(1-p_y), "
                   "inside NCE+MAE beta(1-p_y))",
    "paper:cifar10": "ALFs reference code, CIFAR-10 (MAE = 2(1-p_y), inside NCE+MAE beta(1-p_y))",
    "paper:cifar100": "ALFs reference code, CIFAR-100 (NCE+RCE beta=1 as in ALFs; APL uses 0.1; "
                      "MAE = 2(1-p_y), inside NCE+MAE beta(1-p_y))",
    "paper:webvision": ("WebVision-mini configs of the later repositories (APL, ANL, JAL/eps-softmax); "
                        "ALFs itself has no WebVision configuration"),
    "apl:mnist": "APL code configs, MNIST (MAE = 1-p_y)",
    "apl:cifar10": "APL code configs, CIFAR-10 (MAE = 1-p_y)",
    "apl:cifar100": "APL code configs, CIFAR-100 (MAE = 1-p_y)",
    "anl:mnist": "ANL-CE/ANL-FL (Ye et al. 2023, config/*.json), MNIST; engine: L1 delta=1e-6, weight decay 0",
    "anl:cifar10": "ANL-CE/ANL-FL (Ye et al. 2023, config/*.json), CIFAR-10; engine: L1 delta=5e-5, weight decay 0",
    "anl:cifar100": "ANL-CE/ANL-FL (Ye et al. 2023, config/*.json), CIFAR-100; engine: L1 delta=5e-7, "
                    "weight decay 0",
    "jal:cifar10": "JAL-CE/JAL-FL (Wang et al. 2025, config.py), CIFAR-10; engine: L1 5e-5",
    "jal:cifar100": "JAL-CE/JAL-FL (Wang et al. 2025, config.py), CIFAR-100; engine: L1 5e-6",
    "eps:cifar10": "epsilon-softmax CE/FL(+MAE) (Wang et al. 2024, config.py), CIFAR-10 symmetric noise",
    "js:cifar10": "JS (Englesson & Azizpour 2021, scripts/*.yaml), CIFAR-10 40% symmetric noise "
                  "(pi1 = 0.7; 0.1/0.7/0.7/0.9/0.9 at 0/20/40/60/80%, 0.3 asymmetric)",
    "js:cifar100": "JS (Englesson & Azizpour 2021, scripts/*.yaml), CIFAR-100 40% symmetric noise "
                   "(pi1 = 0.3; 0.1/0.1/0.3/0.5/0.3 at 0/20/40/60/80%, 0.5 asymmetric)",
    "ldr:mnist": "LDR-KL (Zhu et al. 2023) with the lambda of the JAL/epsilon-softmax repositories, MNIST",
    "ldr:cifar10": "LDR-KL (Zhu et al. 2023) with the lambda of the JAL/epsilon-softmax repositories, CIFAR-10",
    "ldr:cifar100": "LDR-KL (Zhu et al. 2023) with the lambda of the JAL/epsilon-softmax repositories, "
                    "CIFAR-100",
    "ldr:webvision": "LDR-KL (Zhu et al. 2023) with the lambda of the JAL/epsilon-softmax repositories, "
                     "WebVision",
    "lc:cifar10": "LogitClip (Wei et al. 2023) README example, CIFAR-10: --temp 1.5 with the code's threshold "
                  "(tau = 1/1.5, legacy_threshold)",
    "lc:cifar100": "CE+LogitClip of the epsilon-softmax repository, CIFAR-100 symmetric noise: delta = 0.5 "
                   "(tau = delta, legacy_threshold)",
    "lc:webvision": "CE+LogitClip of the epsilon-softmax repository, WebVision: delta = 1.2 (tau = delta, "
                    "legacy_threshold)",
    "sr:mnist": "Sparse Regularization (Zhou et al. 2021, lnl_sr config.py), MNIST: tau 0.1, p 0.1, lambda0 4 "
                "growing x2 every 5 epochs, no logit normalisation, GCE q 0.01",
    "sr:cifar10": "Sparse Regularization (Zhou et al. 2021, lnl_sr config.py), CIFAR-10: tau 0.5, p 0.1, lambda0 1.2 "
                  "growing x1.03 every epoch, GCE q 0.01",
    "sr:cifar100": "Sparse Regularization (Zhou et al. 2021, lnl_sr), CIFAR-100 asymmetric noise (and the config "
                   "tuple): tau 0.5, p 0.01, lambda0 10 growing x1.02 every epoch, GCE q 0.001",
    "sr:cifar100-sym": "Sparse Regularization (Zhou et al. 2021, lnl_sr main.py override), CIFAR-100 symmetric "
                       "noise: lambda0 4, otherwise as sr:cifar100",
    "gjs:cifar10": "GJS (Englesson & Azizpour 2021, scripts/*.yaml), CIFAR-10 40% symmetric noise: pi1 0.9, 2 views "
                   "(0.5/0.3/0.9/0.1/0.1 at 0/20/40/60/80%, 0.3 asymmetric)",
    "gjs:cifar100": "GJS (Englesson & Azizpour 2021, scripts/*.yaml), CIFAR-100 40% symmetric noise: pi1 0.5, 2 views "
                    "(0.3/0.3/0.5/0.9/0.1 at 0/20/40/60/80%, 0.5/0.1 asymmetric 20/40%)",
    "gjs:webvision": "GJS (Englesson & Azizpour 2021), WebVision: pi = (0.1, 0.45, 0.45), unscaled (JSWC)",
    "aldr:mnist": "ALDR-KL (Zhu et al. 2023): margin 0.1, alpha 2 (experiment.py), lambda0 10 as the LDR-KL lambda "
                  "of the JAL/epsilon-softmax repositories, MNIST",
    "aldr:cifar10": "ALDR-KL (Zhu et al. 2023): margin 0.1, alpha 2, lambda0 10 (as ldr:cifar10), CIFAR-10",
    "aldr:cifar100": "ALDR-KL (Zhu et al. 2023): margin 0.1, alpha 2, lambda0 1 (as ldr:cifar100), softplus as the "
                     "reference's CIFAR-100 runs",
    "aldr:webvision": "ALDR-KL (Zhu et al. 2023): margin 0.1, alpha 2, lambda0 1 (as ldr:webvision), WebVision",
}

#: Training-engine settings of the presets whose method trains with a parameter penalty: ANL adds
#: ``delta * ||theta||_1`` over all parameters with weight decay 0 (Ye et al. 2023), JAL an L1 term
#: with weight decay 0 (Wang et al. 2025). A run using such a preset gets these settings unless
#: the user changed them from the protocol's values (docs/losses.md, "L1 penalty of ANL and JAL").
PRESET_ENGINE: dict[str, dict] = {
    "anl:mnist": {"l1_weight": 1e-6, "weight_decay": 0.0},
    "anl:cifar10": {"l1_weight": 5e-5, "weight_decay": 0.0},
    "anl:cifar100": {"l1_weight": 5e-7, "weight_decay": 0.0},
    "jal:cifar10": {"l1_weight": 5e-5, "weight_decay": 0.0},
    "jal:cifar100": {"l1_weight": 5e-6, "weight_decay": 0.0},
    # Sparse Regularization: lambda <- lambda * rho after every r epochs (epoch e uses lambda0 rho^floor(e / r));
    # a schedule of the loss's hyperparameter (docs/training-mechanics.md, 'Hyperparameter schedules')
    "sr:mnist": {"loss_schedule": {"lam": {"factor": 2.0, "every": 5}}},
    "sr:cifar10": {"loss_schedule": {"lam": {"factor": 1.03, "every": 1}}},
    "sr:cifar100": {"loss_schedule": {"lam": {"factor": 1.02, "every": 1}}},
    "sr:cifar100-sym": {"loss_schedule": {"lam": {"factor": 1.02, "every": 1}}},
}

#: The L1 coefficient (delta) of the presets whose method adds ``delta * ||theta||_1`` in training.
L1_PENALTY: dict[str, float] = {k: v["l1_weight"] for k, v in PRESET_ENGINE.items() if "l1_weight" in v}
