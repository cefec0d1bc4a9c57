"""``nn.Module`` wrappers: drop-in replacements for ``torch.nn.CrossEntropyLoss``.

One class per registered loss, generated from its declaration (docs/adding-a-loss.md): the class
stores each hyperparameter as an attribute named like the keyword of the function in
:mod:`asymloss.losses.functional`, validates it at construction (the declared constraint), and
calls the same kernel. Every class also takes the keyword-only arguments ``weight=None``,
``ignore_index=-100``, ``reduction="mean"`` (as ``CrossEntropyLoss``) and ``num_classes=None``: no
loss needs ``K`` up front (it is read from ``input.shape[1]``); when ``num_classes`` is given,
inputs with another number of classes are rejected.

Example::

    >>> import torch, asymloss
    >>> loss_fn = asymloss.NCEandAGCE(alpha=1, beta=4, a=6, q=1.5)
    >>> logits = torch.randn(8, 10, requires_grad=True)
    >>> loss = loss_fn(logits, torch.randint(0, 10, (8,)))
    >>> loss.backward()

Calling any loss with ``reduction="none"`` on logits ``log(u)`` for a probability vector ``u``
(rows of the open simplex) evaluates ``L(u, y)`` itself (``log_softmax(log u) = log u``).
"""
from __future__ import annotations

from . import _later, _mechanics, _paper  # noqa: F401  (the declarations)
from ._base import ActivePassive, Loss, make_module
from ._define import on_define

#: canonical name -> module class
CLASSES: dict[str, type] = {}
__all__ = ["Loss", "ActivePassive"]


def _add_class(d) -> None:
    cls = CLASSES[d.name] = make_module(d, CLASSES)
    globals()[cls.__name__] = cls
    __all__.append(cls.__name__)


on_define(_add_class)
