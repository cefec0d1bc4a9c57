"""The run's loss and the engine settings its preset brings (docs/protocols.md, "Loss presets").

Rules:
- A preset the user names explicitly (a ``loss_preset`` other than the protocol's own) must define
  the chosen loss: otherwise an error names the presets that do. Only the protocol's *default*
  preset falls back to the loss's defaults for a loss it does not define (CE, say).
- A preset whose method trains with engine settings (ANL and JAL: an L1 penalty with weight decay
  0) applies them, unless the user changed that setting from the protocol's value.
- A preset may bring a schedule of the loss's hyperparameters (SR's growing lambda,
  docs/training-mechanics.md, 'Hyperparameter schedules'); ``loss_schedule`` set by the user wins,
  and only hyperparameters the loss has are scheduled.
- The run record holds what was in force: the preset used, the resolved hyperparameters and the
  engine settings with where they came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from torch import nn

from .config import PROTOCOLS, TrainConfig

__all__ = ["ResolvedLoss", "resolve_loss", "build_loss"]

_ENGINE_FIELDS = ("l1_weight", "weight_decay")


@dataclass(frozen=True)
class ResolvedLoss:
    """The loss module of a run and the engine settings in force."""

    module: nn.Module
    preset: Optional[str]          # the preset used (None: the loss's defaults)
    l1_weight: float
    weight_decay: float
    engine_from_preset: tuple      # the engine settings that came from the preset
    schedule: dict = field(default_factory=dict)   # hyperparameter -> schedule spec (loss_schedule)

    def record(self) -> dict:
        """The run record's ``loss`` entry (``schedule`` only when there is one)."""
        out = {"repr": repr(self.module), "preset_used": self.preset,
               "hparams": dict(self.module.hparams()),
               "engine": {"l1_weight": self.l1_weight, "weight_decay": self.weight_decay,
                          "from_preset": list(self.engine_from_preset)}}
        if self.schedule:
            out["schedule"] = {"spec": self.schedule, "from_preset": "loss_schedule" in self.engine_from_preset}
        return out


def _baseline(config: TrainConfig) -> TrainConfig:
    """The protocol's own configuration (the dataclass defaults for a custom one)."""
    return PROTOCOLS.get(config.protocol.lower(), TrainConfig())


def resolve_loss(config: TrainConfig, num_classes: int) -> ResolvedLoss:
    """Build the configured loss and the engine settings its preset brings (see the module doc)."""
    import asymloss

    base = _baseline(config)
    preset = config.loss_preset
    if preset is not None and preset == base.loss_preset and preset in asymloss.list_presets():
        try:                        # the protocol's default preset: fall back for other losses
            asymloss.get_preset(preset, config.loss)
        except (KeyError, ValueError):
            preset = None
    # an explicit preset goes to create_loss as is: one that does not define the loss is an error
    module = asymloss.create_loss(config.loss, num_classes=num_classes, preset=preset, **config.loss_params)
    values = {k: getattr(config, k) for k in _ENGINE_FIELDS}
    schedule = dict(config.loss_schedule)
    from_preset = []
    if preset is not None:
        for key, value in asymloss.losses.preset_engine_settings(preset).items():
            if key == "loss_schedule":
                own = {k: v for k, v in value.items() if k in module.hparams()}
                if own and config.loss_schedule == base.loss_schedule:   # not changed by the user
                    schedule = own
                    from_preset.append(key)
            elif getattr(config, key) == getattr(base, key):   # not changed by the user
                values[key] = float(value)
                from_preset.append(key)
    return ResolvedLoss(module, preset, float(values["l1_weight"]), float(values["weight_decay"]),
                        tuple(from_preset), schedule)


def build_loss(config: TrainConfig, num_classes: int) -> tuple[nn.Module, Optional[str]]:
    """``(loss module, preset used)`` of :func:`resolve_loss` (kept for callers of the engine)."""
    r = resolve_loss(config, num_classes)
    return r.module, r.preset

