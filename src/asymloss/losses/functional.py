"""Functional API: one function per loss, each a drop-in for ``F.cross_entropy``.

Every function has the signature::

    name(input, target, *, <hyperparameters>, weight=None, ignore_index=-100, reduction="mean")

- ``input``: logits of shape (N, C) or (N, C, d1, ..., dk); ``target``: class indices of shape (N)
  or (N, d1, ..., dk) (any integer dtype).
- ``weight`` (C,), ``ignore_index`` and ``reduction`` ('mean' | 'sum' | 'none') behave exactly as
  in ``torch.nn.functional.cross_entropy``: each sample's loss is multiplied by ``weight[y]``, the
  weighted mean divides by the sum of the weights of the non-ignored samples, ignored samples
  contribute 0 (and are 0 in the ``'none'`` output).
- float16/bfloat16 inputs are computed in float32 and the result is returned in the input dtype
  (like ``F.cross_entropy``; a ``'sum'`` over a very large float16 batch can overflow to ``inf`` —
  pass float32 logits, or use ``'mean'``, if that matters). float32 and float64 are computed as is.
- Labels outside ``[0, C-1]`` (other than ``ignore_index``) raise ``ValueError`` on CPU tensors.

With ``p = softmax(input)`` and ``p_y`` the probability of the label, the per-sample values are
(docs/losses.md; see each docstring)::

    ce     -log p_y                          agce  ((a+1)^q - (a+p_y)^q) / q
    focal  -(1-p_y)^gamma log p_y            aul   ((a-p_y)^q - (a-1)^q) / q
    mae    scale (1-p_y)   (scale=2: ||e_y-p||_1)   ael   exp(-p_y / a)
    rce    A sum_{k!=y} max(p_k, eps)        nce   log p_y / sum_k log p_k
    gce    (1 - max(p_y,eps)^q) / q          nfl   FL_y / sum_k FL_k
    sce    alpha CE + beta RCE               ngce  (1-p~_y^q) / (K - sum_k p~_k^q)
    nmae   scale (1-p_y) / (K-1)             nrce  RCE_y / sum_k RCE_k

No loss builds a one-hot (N, C) tensor: ``log p_y`` is gathered (from ``log_softmax`` or inside the
fused autograd Functions of ``_core``, which compute value and gradient w.r.t. the logits together).

Example::

    >>> import torch, asymloss.functional as AF
    >>> logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    >>> loss = AF.agce(logits, y, a=0.6, q=0.6)          # scalar (mean)
    >>> AF.nce(logits, y, reduction="none").shape
    torch.Size([8])
"""
from __future__ import annotations

import inspect
from typing import Optional

import torch

from . import _core
from ._base import _COMMON_KW, make_function
from ._define import get_definition, on_define, signature_params
from ._later import _k_logit_clip, inner_loss
from ._paper import REF_EPS, RCE_A  # noqa: F401  (documented constants)
from .modules import CLASSES  # noqa: F401  (the declarations are complete)

Tensor = torch.Tensor

__all__ = ["logit_clip"]


def _add_function(d) -> None:
    if d.kernel is not None:
        globals()[d.func_name] = make_function(d)
        __all__.append(d.func_name)


on_define(_add_function)

# the losses that take more than logits and labels (docs/training-mechanics.md)
from ._mechanics import aldr_kl, gjs, nlnl  # noqa: E402

__all__ += ["gjs", "aldr_kl", "nlnl"]


def logit_clip(input: Tensor, target: Tensor, *, loss="ce", weight: Optional[Tensor] = None,
               ignore_index: int = -100, reduction: str = "mean", **clip) -> Tensor:
    """LogitClip (Wei et al. 2023): ``loss`` on the logits clipped to ``||z||_p <= tau``,
    ``z min(1, tau / ||z||_p)``; tau > 0, p >= 1.

    ``loss``: a registered loss name (built with its defaults) or an asymloss loss module (its
    hyperparameters; the module's own weight/ignore_index/reduction are not used).
    ``legacy_threshold=True`` reproduces the official code: the logits are scaled to norm tau only
    when ``||z||_p + 1e-7 > 1 / tau`` (its ``--temp T`` is ``tau = 1 / T``).
    """
    hp = get_definition("logit_clip").bind(clip, owner="logit_clip()")
    inner = inner_loss(loss)
    return _core.compute(input, target,
                         lambda b: _k_logit_clip(b, inner.kernel, hp["tau"], hp["p"], hp["legacy_threshold"]),
                         weight=weight, ignore_index=ignore_index, reduction=reduction,
                         min_classes=inner.min_classes)


logit_clip.__signature__ = inspect.Signature([
    inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Tensor),
    inspect.Parameter("target", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Tensor),
    inspect.Parameter("loss", inspect.Parameter.KEYWORD_ONLY, default="ce"),
    *signature_params(get_definition("logit_clip")), *_COMMON_KW], return_annotation=Tensor)
