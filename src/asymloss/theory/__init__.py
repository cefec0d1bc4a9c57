"""asymloss.theory: the paper's theory (Zhou et al. 2021; docs/theory.md) as questions you can ask.

- :func:`asymmetry_ratio` — r(ℓ) of a loss L(u, y) = ℓ(u_y): closed form or numerical infimum.
- :func:`noise_ratio` — r̃(T) = max_y max_{k≠y} T[y, k] / T[y, y] of a transition matrix.
- :func:`is_asymmetric` — is the loss asymmetric (hence noise-tolerant) on the noise T?
- :func:`min_parameter` — the smallest parameter value that makes AGCE / AUL / AEL / GCE asymmetric.
- :func:`is_symmetric` — is Σ_k L(u, k) constant (Ghosh et al. 2017)?
- :func:`minimize_weighted_risk` — argmin of Σ_k w_k L(u, k) over the simplex vs. the vertex e_t.

A *loss* is a registry name with its parameters (``"agce", a=0.6, q=0.6``), a loss module, a
callable ℓ(u) on [0, 1], or a callable L(U, k). A *noise* is a row-stochastic matrix (rows = clean
class) or a noise spec string with ``num_classes``. Quantities that are always exact are floats
(:func:`noise_ratio`); answers that can come from different methods are small frozen result
objects that say which method was used (``.method``) and convert with ``float()`` / ``bool()``.

Example::

    >>> from asymloss import theory
    >>> import numpy as np
    >>> T = 0.2 * np.eye(10) + 0.8 / 9 * (1 - np.eye(10))      # symmetric noise 0.8, K = 10
    >>> round(theory.noise_ratio(T), 6)
    0.444444
"""
from ._advise import Advice, CandidateAdvice, advise, default_candidates, parse_candidate
from ._api import (
    AsymmetryRatio,
    AsymmetryVerdict,
    SymmetryCheck,
    asymmetry_ratio,
    is_asymmetric,
    is_symmetric,
    min_parameter,
    minimize_weighted_risk,
)
from ._closed import ParameterBound
from ._noise import as_transition_matrix, noise_ratio
from ._simplex import SimplexMinimum

__all__ = [
    "asymmetry_ratio",
    "noise_ratio",
    "is_asymmetric",
    "min_parameter",
    "is_symmetric",
    "minimize_weighted_risk",
    "as_transition_matrix",
    "AsymmetryRatio",
    "AsymmetryVerdict",
    "ParameterBound",
    "SimplexMinimum",
    "SymmetryCheck",
]
__all__ += ["advise", "Advice", "CandidateAdvice", "default_candidates", "parse_candidate"]  # advice on T̂
