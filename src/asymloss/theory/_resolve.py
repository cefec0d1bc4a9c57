"""Turning what a user passes as a "loss" into something the theory can compute with.

A loss is one of:
- a registry name with parameters (``"agce", a=0.6, q=0.6``; any name ``create_loss`` accepts);
- a loss module (an ``nn.Module`` called on logits with ``reduction="none"``); its
  hyperparameters are read from its attributes;
- a callable with one argument, ℓ(u) on [0, 1], meaning L(u, k) = ℓ(u_k);
- a callable with two arguments, L(U, k): U of shape (N, K) on the simplex, k an int, returning (N,).
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._ratio import vectorise

__all__ = ["ResolvedLoss", "resolve_loss", "registry"]

def registry():
    """``asymloss.losses`` (the loss registry); raises a clear error when it is not available."""
    from .. import losses

    if not hasattr(losses, "create_loss"):  # pragma: no cover - only before the losses part exists
        raise RuntimeError("asymloss.losses.create_loss is not available in this installation.")
    return losses


@dataclass
class ResolvedLoss:
    label: str
    name: str | None = None  # canonical registry name when known
    params: dict = field(default_factory=dict)
    module: object | None = None
    pointwise: Callable | None = None  # vectorised NumPy ℓ(u) when L(u, y) = ℓ(u_y)
    general: Callable | None = None  # NumPy L(U, k)
    equivariant: bool = True  # invariant under relabelling the classes

    ratio: Callable | None = None  # the declaration's closed-form asymmetry ratio

    @property
    def closed_form(self) -> bool:
        return self.ratio is not None


def _n_positional(fn) -> int | None:
    nin = getattr(fn, "nin", None)  # NumPy ufuncs
    if isinstance(nin, int):
        return nin
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in sig.parameters.values() if p.kind in kinds and p.default is p.empty]
    if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()) and not required:
        return None
    return len(required)


def _fmt(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in params.items())


def _declared_pointwise(module) -> bool | None:
    """Whether a registered loss module is declared ℓ(p_y) (a combination: both parts are);
    None for a module asymloss does not know."""
    d = getattr(module, "definition", None)
    if d is not None:
        return d.pointwise
    if getattr(module, "name", None) == "active_passive":
        parts = (_declared_pointwise(module.active), _declared_pointwise(module.passive))
        return None if None in parts else all(parts)
    return None


def _from_module(module, name_hint: str | None = None) -> ResolvedLoss:
    d = getattr(module, "definition", None)
    name = getattr(module, "name", None)
    name = name if isinstance(name, str) and name else None
    hp = module.hparams() if callable(getattr(module, "hparams", None)) else {}
    hp = {k: v for k, v in hp.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if name == "active_passive":
        name = f"{module.active.name}+{module.passive.name}"
    if name is not None:
        label = f"{name.upper()}({_fmt(hp)})" if hp else name.upper()
    else:
        label = name_hint or repr(module).split("\n")[0]
    declared = _declared_pointwise(module)
    pointwise = _module_pointwise(module) if declared is not False else None
    ratio = d.ratio if d is not None and d.ratio is not None and declared else None
    params = dict(hp) if ratio is not None else {}
    return ResolvedLoss(label=label, name=name, params=params, module=module, pointwise=pointwise, ratio=ratio)


def _module_pointwise(module):
    """ℓ(u) = L((u, (1 − u)/2, (1 − u)/2), 0) if the module's value depends on u_y only, else None."""
    import torch

    from ._simplex import TorchObjective

    obj = TorchObjective(module, 3)
    u = np.array([0.05, 0.3, 0.7, 0.95])
    A = np.stack([u, (1 - u) * 0.5, (1 - u) * 0.5], axis=1)
    B = np.stack([u, (1 - u) * 0.1, (1 - u) * 0.9], axis=1)
    try:
        la, lb = obj.losses(A)[:, 0], obj.losses(B)[:, 0]
    except Exception:  # noqa: BLE001 - a module we cannot evaluate is simply not pointwise
        return None
    if not np.allclose(la, lb, rtol=1e-9, atol=1e-12):
        return None

    def ell(x):
        x = np.asarray(x, dtype=np.float64).ravel()
        U = np.stack([x, (1.0 - x) * 0.5, (1.0 - x) * 0.5], axis=1)
        with torch.no_grad():
            out = obj.module(torch.log(torch.from_numpy(U)), torch.zeros(U.shape[0], dtype=torch.long))
        return out.numpy()

    return vectorise(lambda x: ell(x).reshape(np.shape(x)))


def resolve_loss(loss, params: dict, *, num_classes: int | None = None, preset: str | None = None) -> ResolvedLoss:
    """See the module docstring. ``params`` are only allowed with a registry name."""
    if isinstance(loss, str):
        reg = registry()
        kw = dict(params)
        module = reg.create_loss(loss, num_classes=num_classes, preset=preset, **kw)
        return _from_module(module, name_hint=loss.lower())
    if params or preset is not None:
        given = ", ".join([*params, *(["preset"] if preset is not None else [])])
        raise TypeError(
            f"parameters ({given}) are only accepted with a loss name; a module carries its own "
            f"hyperparameters and a callable is used as it is (got loss={type(loss).__name__})."
        )
    torch = sys.modules.get("torch")  # an nn.Module exists only if torch was imported
    is_module = torch is not None and isinstance(loss, torch.nn.Module)
    if is_module:
        return _from_module(loss)
    if not callable(loss):
        raise TypeError(
            "loss must be a registry name (str), a loss module (nn.Module), a callable ℓ(u) or a "
            f"callable L(U, k); got {type(loss).__name__}."
        )
    n = _n_positional(loss)
    label = getattr(loss, "__name__", type(loss).__name__)
    if n == 2:
        return ResolvedLoss(label=f"L = {label}", general=loss, equivariant=False)
    if n in (1, None):
        return ResolvedLoss(label=f"ℓ = {label}", pointwise=vectorise(loss))
    raise TypeError(f"loss: a callable must take ℓ(u) (one argument) or L(U, k) (two); {label} takes {n}.")
