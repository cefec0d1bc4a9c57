"""Training mechanics a loss may need, as small parts of the engine (docs/training-mechanics.md).

Each is a general engine feature that any loss can use; a loss declares what it needs with class
attributes, read here with ``getattr`` (a loss without them needs nothing):

- **hyperparameter schedules by epoch** (``TrainConfig.loss_schedule``, or a preset's): at the start
  of every epoch the engine sets the scheduled hyperparameters of the loss; the values are recorded
  per epoch. A schedule is a pure function of the epoch, so a resumed run uses the same values.
- **augmented views** (``num_views = M > 1``): the engine draws M augmentations of the batch and
  calls the loss with logits of shape (M, N, C).
- **per-sample state** (``needs_index = True``): the engine calls the loss with ``index=`` (the
  batch's positions in the training set); its state is a buffer, saved in the checkpoint.
- **complementary labels** (``needs_complementary = True``): the engine draws
  ``(y + U{1..K-1}) mod K`` from a generator derived from the run's seed and epoch, and passes it
  as ``complementary=``.

``bind_training_set(labels, num_classes)``, when a loss has it, receives the noisy training labels
once before training (the size of a per-sample state, class statistics).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

from .._validation import check_number

__all__ = ["Mechanics", "needs", "parse_schedule", "schedule_value", "set_hparam", "hparam_owner",
           "complementary_labels", "MECHANICS"]

#: the mechanics a loss can need (what :func:`needs` returns)
MECHANICS = ("views", "index", "complementary")
_SCHEDULE_HELP = ("a schedule is {'factor': rho, 'every': r} (the value at epoch e is the loss's value times "
                  "rho^floor(e / r)) or {'values': [v0, v1, ...]} (one per epoch; the last one repeats)")


def needs(loss: nn.Module) -> list[str]:
    """The mechanics of :data:`MECHANICS` that ``loss`` declares (``loss.mechanics()``; ``[]`` for
    a module that is not an asymloss loss)."""
    return list(loss.mechanics()) if callable(getattr(loss, "mechanics", None)) else []


# -- schedules ------------------------------------------------------------------------------------

def parse_schedule(name: str, spec: Any) -> dict:
    """Validate the schedule ``spec`` of hyperparameter ``name``; returns it normalised."""
    where = f"loss_schedule[{name!r}]"
    if not isinstance(spec, dict):
        raise TypeError(f"{where} must be a dict; {_SCHEDULE_HELP}; got {spec!r}.")
    keys = set(spec)
    if keys <= {"factor", "every"} and "factor" in keys:
        return {"factor": float(check_number(f"{where}['factor']", spec["factor"], gt=0)),
                "every": int(check_number(f"{where}['every']", spec.get("every", 1), ge=1, integer=True))}
    if keys == {"values"}:
        values = spec["values"]
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{where}['values'] must be a non-empty list of numbers; got {values!r}.")
        return {"values": [float(check_number(f"{where}['values'][{i}]", v)) for i, v in enumerate(values)]}
    raise ValueError(f"{where}: {_SCHEDULE_HELP}; got keys {sorted(keys)}.")


def schedule_value(spec: dict, base: float, epoch: int) -> float:
    """The value at ``epoch`` (0-based) of a schedule (:func:`parse_schedule`) starting from ``base``."""
    if "values" in spec:
        values = spec["values"]
        return values[min(epoch, len(values) - 1)]
    return float(base) * spec["factor"] ** (epoch // spec["every"])


def hparam_owner(loss: nn.Module, name: str) -> Optional[tuple[nn.Module, str]]:
    """The module that holds hyperparameter ``name`` of ``loss`` (as ``hparams()`` spells it) and
    its own name there: the loss itself, or a part of a combination (``active_``/``passive_``
    prefixes) or of a wrapper. ``None`` if no part holds it as a settable attribute."""
    own = getattr(type(loss), "hparam_names", ())
    if name in own and not isinstance(getattr(type(loss), name, None), property):
        return loss, name
    for attr, prefix in (("active", "active_"), ("passive", "passive_"), ("loss", "")):
        part = getattr(loss, attr, None)
        if not isinstance(part, nn.Module) or not hasattr(part, "hparams"):
            continue
        if prefix and name.startswith(prefix):
            found = hparam_owner(part, name[len(prefix):])
        elif name in part.hparams():
            found = hparam_owner(part, name)
        else:
            continue
        if found is not None:
            return found
    return None


def set_hparam(loss: nn.Module, name: str, value: float) -> None:
    """Set hyperparameter ``name`` of ``loss`` (see :func:`hparam_owner`)."""
    owner = hparam_owner(loss, name)
    if owner is None:
        raise ValueError(f"hyperparameter {name!r} of loss {getattr(loss, 'name', type(loss).__name__)!r} cannot be "
                         f"scheduled; its hyperparameters: {', '.join(loss.hparams()) or 'none'}.")
    module, local = owner
    setattr(module, local, float(value))


# -- complementary labels ---------------------------------------------------------------------------

def complementary_labels(target: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """``(y + U{1, ..., K-1}) mod K``, drawn from ``generator`` (on the labels' device)."""
    shift = torch.randint(1, num_classes, target.shape, generator=generator, device=generator.device)
    return (target + shift.to(target.device)) % num_classes


# -- the run's mechanics ------------------------------------------------------------------------------

class Mechanics:
    """What the run's loss needs from the engine, as small parts the engine calls.

    ``loss``: the run's loss module; ``schedule``: hyperparameter -> schedule spec (the resolved
    ``loss_schedule``); ``num_classes``: K.
    """

    def __init__(self, loss: nn.Module, schedule: dict, num_classes: int):
        self.num_classes = num_classes
        self.views = int(getattr(loss, "num_views", 1))
        self.index = bool(getattr(loss, "needs_index", False))
        self.complementary = bool(getattr(loss, "needs_complementary", False))
        hp = loss.hparams()
        self.schedule = {name: (parse_schedule(name, spec), hp.get(name)) for name, spec in schedule.items()}

    @property
    def active(self) -> bool:
        return bool(self.schedule) or self.views > 1 or self.index or self.complementary

    def bind(self, loss: nn.Module, labels: torch.Tensor) -> None:
        """Give the loss the noisy training labels (before a checkpoint's state is loaded)."""
        bind = getattr(loss, "bind_training_set", None)
        if callable(bind):
            bind(labels, self.num_classes)

    def start_epoch(self, loss: nn.Module, epoch: int) -> dict[str, float]:
        """Set the scheduled hyperparameters for ``epoch`` (0-based); returns the values set."""
        values = {}
        for name, (spec, base) in self.schedule.items():
            values[name] = schedule_value(spec, base, epoch)
            set_hparam(loss, name, values[name])
        return values

    def inputs(self, prep, x_u8: torch.Tensor, generator) -> torch.Tensor:
        """The step's images: one augmentation of the batch, or ``views`` of them concatenated
        (view after view, each drawn from ``generator`` in turn)."""
        if self.views == 1:
            return prep(x_u8, generator)
        return torch.cat([prep(x_u8, generator) for _ in range(self.views)])

    def loss_args(self, idx: torch.Tensor, yb: torch.Tensor, generator: Optional[torch.Generator]) -> dict:
        """The keyword arguments the loss takes besides logits and labels."""
        extra = {}
        if self.index:
            extra["index"] = idx
        if self.complementary:
            extra["complementary"] = complementary_labels(yb, self.num_classes, generator)
        return extra

    def shape_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(M N, C) logits of the concatenated views -> (M, N, C); one view: unchanged."""
        return logits if self.views == 1 else logits.view(self.views, -1, logits.shape[-1])

    def record(self) -> dict:
        """The run record's ``mechanics`` entry."""
        return {"views": self.views, "index": self.index, "complementary": self.complementary,
                "schedule": sorted(self.schedule)}


def values_over(schedule: dict, hparams: dict, epochs: int) -> dict[str, list[float]]:
    """Every epoch's value of each scheduled hyperparameter (for the pre-run checks)."""
    out = {}
    for name, spec in schedule.items():
        parsed = parse_schedule(name, spec)
        vals = [schedule_value(parsed, hparams.get(name, math.nan), e) for e in range(epochs)]
        out[name] = vals
    return out
