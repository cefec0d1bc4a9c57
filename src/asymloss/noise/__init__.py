"""Label noise: transition matrices, label corruption and real CIFAR-N noise (docs/noise.md).

>>> import numpy as np
>>> from asymloss.noise import corrupt, transition_matrix
>>> y = np.repeat(np.arange(10), 5000)
>>> r = corrupt(y, "asymmetric:0.4", dataset="cifar10", seed=1)
>>> float(r.per_class_rate[3]), r.rate
(0.4, 0.2)
"""
from ._corrupt import NoisyLabels, corrupt, empirical_transition, labels_sha256
from ._estimate import TransitionEstimate, estimate_transition, load_estimate, read_pred_probs, read_transition
from ._instance import RATE_STD as INSTANCE_RATE_STD
from ._matrices import CIFAR100_COARSE, DATASET_CLASSES, check_transition, noise_ratio, transition_matrix
from ._real import read_human_pt
from ._reference import REFERENCE_SAMPLERS, check_replay, replay_kinds
from ._sampling import reference_sampler
from ._spec import CIFAR10N_VARIANTS, NoiseSpec, list_noise_kinds, parse_noise

__all__ = [
    "NoiseSpec",
    "parse_noise",
    "list_noise_kinds",
    "transition_matrix",
    "noise_ratio",
    "check_transition",
    "corrupt",
    "reference_sampler",
    "REFERENCE_SAMPLERS",
    "replay_kinds",
    "check_replay",
    "NoisyLabels",
    "labels_sha256",
    "empirical_transition",
    "read_human_pt",
    "CIFAR100_COARSE",
    "DATASET_CLASSES",
    "CIFAR10N_VARIANTS",
    "INSTANCE_RATE_STD",
    "estimate_transition", "TransitionEstimate", "load_estimate", "read_transition", "read_pred_probs",
]
