"""Training configurations and the paper's protocols as named, complete configurations.

A :class:`TrainConfig` is everything a run needs; a *protocol* is a named ``TrainConfig`` that fixes
the paper's choices (docs/protocols.md). Every field can be overridden::

    >>> from asymloss.train import get_protocol
    >>> cfg = get_protocol("paper-mnist", loss="nce+agce", noise="symmetric:0.8", seed=1)
    >>> cfg.epochs, cfg.lr, cfg.loss_preset
    (50, 0.01, 'paper:mnist')
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from .._datasets import canonical_dataset
from .._validation import check_choice, check_number, plain_scalar, unknown_name_error

__all__ = ["TrainConfig", "get_protocol", "list_protocols", "PROTOCOLS"]

SCHEDULES = ("cosine", "step", "exp", "constant")
#: ``reference``: exact or independent as the reference code does per dataset and noise kind;
#: ``alfs``/``apl``: that reference's own noisy labels, bit for bit (docs/noise.md).
NOISE_SAMPLERS = ("exact", "independent", "reference", "alfs", "apl")
_LOCATION_FIELDS = ("data_dir", "device")  # not part of a run's identity
#: fields added later: left out of a run's identity while they hold their default, so that the runs
#: recorded before them keep their ids
_LATER_FIELDS = {"loss_schedule": {}}
META_OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """A complete, resolved description of one training run.

    Attributes: docs/protocols.md, 'Configuration fields'. ``noise_seed=None`` means "use ``seed``"; ``subset=None`` means the
    whole training set. ``device="auto"`` picks CUDA when available.
    """

    protocol: str = "custom"
    dataset: str = "mnist"
    model: str = "cnn4"
    epochs: int = 50
    batch_size: int = 128
    eval_batch_size: int = 1024
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-3
    l1_weight: float = 0.0
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    grad_clip: Optional[float] = 5.0
    crop_padding: int = 0
    hflip: bool = False
    rotation: float = 0.0
    random_resized_crop: Optional[int] = None
    color_jitter: float = 0.0
    loss: str = "ce"
    loss_preset: Optional[str] = None
    loss_params: dict = field(default_factory=dict)
    loss_schedule: dict = field(default_factory=dict)
    noise: str = "clean"
    noise_sampler: str = "exact"
    noise_legacy: bool = False
    noise_seed: Optional[int] = None
    seed: int = 0
    subset: Optional[int] = None
    data_dir: Optional[str] = None
    device: str = "auto"
    amp: bool = False
    compile: bool = False
    channels_last: bool = True
    # meta-learned loss hyperparameters (docs/meta.md); None: the loss's hyperparameters stay fixed
    meta_set: Optional[Any] = None
    meta_lr: float = 0.01
    meta_every: int = 1
    meta_batch_size: Optional[int] = None
    meta_optimizer: str = "adam"
    meta_params: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        def number(name: str, **bounds: Any) -> None:  # validated; NumPy scalars stored as Python numbers
            object.__setattr__(self, name, check_number(name, getattr(self, name), **bounds))

        number("epochs", ge=1, integer=True)
        number("batch_size", ge=1, integer=True)
        number("eval_batch_size", ge=1, integer=True)
        number("lr", gt=0)
        number("momentum", ge=0, lt=1)
        number("weight_decay", ge=0)
        number("l1_weight", ge=0)
        number("gamma", gt=0)
        number("crop_padding", ge=0, integer=True)
        number("rotation", ge=0, le=180)
        number("color_jitter", ge=0)
        if self.random_resized_crop is not None:
            number("random_resized_crop", ge=1, integer=True)
        number("seed", ge=0, integer=True)
        if self.noise_seed is not None:
            number("noise_seed", ge=0, integer=True)
        if self.subset is not None:
            number("subset", ge=1, integer=True)
        if self.grad_clip is not None:
            number("grad_clip", gt=0)
        for name in ("protocol", "dataset", "model", "loss", "noise", "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string; got {getattr(self, name)!r}.")
        check_choice("optimizer", self.optimizer, ("sgd",))
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("noise_sampler", self.noise_sampler, NOISE_SAMPLERS)
        check_choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        # one spelling per dataset (cifar-100 -> cifar100) before any run id is computed
        object.__setattr__(self, "dataset", canonical_dataset(self.dataset))
        object.__setattr__(self, "milestones", tuple(int(plain_scalar(m)) for m in self.milestones))
        object.__setattr__(self, "loss_params", {k: plain_scalar(v) for k, v in dict(self.loss_params).items()})
        if not isinstance(self.loss_schedule, dict):
            raise TypeError(f"loss_schedule must be a dict of hyperparameter -> schedule, e.g. "
                            f"{{'lam': {{'factor': 2, 'every': 5}}}}; got {self.loss_schedule!r}.")
        object.__setattr__(self, "loss_schedule", _plain(self.loss_schedule))
        self._check_meta(number)

    def _check_meta(self, number) -> None:
        """The meta-learning fields (docs/meta.md, 'Options'); data-dependent checks come with the data."""
        meta = self.meta_set
        if isinstance(meta, (list, tuple)) or (hasattr(meta, "__len__") and not isinstance(meta, (str, dict))):
            idx = tuple(plain_scalar(i) for i in meta)
            if not idx:
                raise ValueError("meta_set must hold at least one training index; got an empty list.")
            for i in idx:
                check_number("meta_set index", i, ge=0, integer=True)
            if len(set(idx)) != len(idx):
                dup = next(i for i in idx if idx.count(i) > 1)
                raise ValueError(f"meta_set lists training index {dup} more than once; give each trusted image once.")
            object.__setattr__(self, "meta_set", idx)
        elif meta is not None:
            number("meta_set", ge=1, integer=True)
        number("meta_lr", gt=0)
        number("meta_every", ge=1, integer=True)
        if self.meta_batch_size is not None:
            number("meta_batch_size", ge=1, integer=True)
        check_choice("meta_optimizer", self.meta_optimizer, META_OPTIMIZERS)
        if self.meta_params is not None:
            names = (self.meta_params,) if isinstance(self.meta_params, str) else tuple(self.meta_params)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise TypeError(f"meta_params must be a non-empty list of hyperparameter names; got {self.meta_params!r}.")
            if len(set(names)) != len(names):
                raise ValueError(f"meta_params names a hyperparameter twice; got {list(names)!r}.")
            object.__setattr__(self, "meta_params", names)
        if self.meta_set is not None and self.loss_schedule:
            raise ValueError("meta_set with a loss_schedule is not supported: both would set the loss's "
                             "hyperparameters; use one of them.")
        if self.meta_set is not None and self.compile:
            raise ValueError("meta_set with compile=True is not supported: the meta step changes the loss's "
                             "hyperparameters every step, which a compiled graph would recompile for; set compile=False.")

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (tuples become lists). The ``meta_*`` fields are there only
        with ``meta_set``: without it they change nothing, and a plain run's dict (its record, its id)
        stays what it was before they existed."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        if self.meta_set is None:
            return {k: v for k, v in d.items() if not k.startswith("meta_")}
        for key in ("meta_set", "meta_params"):
            if isinstance(d[key], tuple):
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise a clear error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise unknown_name_error("config field", unknown[0], names)
        return cls(**d)

    def replace(self, **overrides: Any) -> "TrainConfig":
        """A copy with ``overrides`` applied (validated like any config)."""
        names = {f.name for f in fields(self)}
        for key in overrides:
            if key not in names:
                raise unknown_name_error("config field", key, names)
        return dataclasses.replace(self, **overrides)

    @property
    def resolved_noise_seed(self) -> int:
        return self.seed if self.noise_seed is None else self.noise_seed

    def config_hash(self, length: int = 12) -> str:
        """A short sha256 of the canonical JSON of :meth:`to_dict` (stable run ids).

        Fields that say *where* a run happens rather than *what* it is (``data_dir``, ``device``)
        are left out, so a run keeps its id when it is resumed on another machine.
        """
        d = {k: v for k, v in self.to_dict().items()
             if k not in _LOCATION_FIELDS and not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:length]


def _plain(value):
    """JSON-like copy with NumPy scalars as Python numbers and tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return plain_scalar(value)


# Protocols of docs/protocols.md. The noise sampler is the reference's: independent draws for MNIST, exact
# per-class counts for CIFAR-10; for CIFAR-100 it depends on the noise ("reference": exact for
# symmetric, independent for asymmetric; see asymloss.noise.reference_sampler).
PROTOCOLS: dict[str, TrainConfig] = {
    "paper-mnist": TrainConfig(
        protocol="paper-mnist", dataset="mnist", model="cnn4", epochs=50, batch_size=128,
        eval_batch_size=256, lr=0.01, momentum=0.9, weight_decay=1e-3, schedule="cosine",
        grad_clip=5.0, loss_preset="paper:mnist", noise_sampler="independent",
    ),
    "paper-cifar10": TrainConfig(
        protocol="paper-cifar10", dataset="cifar10", model="cnn8", epochs=120, batch_size=128,
        lr=0.01, momentum=0.9, weight_decay=1e-4, schedule="cosine", grad_clip=5.0,
        crop_padding=4, hflip=True, loss_preset="paper:cifar10", noise_sampler="exact",
    ),
    "paper-cifar100": TrainConfig(
        protocol="paper-cifar100", dataset="cifar100", model="resnet34", epochs=200,
        batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-5, schedule="cosine",
        grad_clip=5.0, crop_padding=4, hflip=True, rotation=20.0, loss_preset="paper:cifar100",
        noise_sampler="reference",
    ),
    "paper-webvision": TrainConfig(
        protocol="paper-webvision", dataset="webvision-mini", model="resnet50", epochs=250,
        batch_size=256, lr=0.4, momentum=0.9, nesterov=True, weight_decay=3e-5, schedule="exp",
        gamma=0.97, grad_clip=5.0, crop_padding=0, hflip=True, random_resized_crop=224,
        color_jitter=0.4, loss_preset="paper:webvision", noise_sampler="exact",
    ),
    "cifar-n": TrainConfig(
        protocol="cifar-n", dataset="cifar10", model="resnet34", epochs=100, batch_size=128,
        lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="step", milestones=(60,), gamma=0.1,
        grad_clip=5.0, crop_padding=4, hflip=True, loss_preset="paper:cifar10",
        noise="cifar10n:worst", noise_sampler="exact",
    ),
    # The demo: scikit-learn's bundled digits (no download), an MLP, CIFAR-10's loss presets (K = 10).
    "demo-digits": TrainConfig(
        protocol="demo-digits", dataset="digits", model="mlp", epochs=40, batch_size=64,
        eval_batch_size=1024, lr=0.05, momentum=0.9, weight_decay=1e-4, schedule="cosine",
        grad_clip=5.0, loss_preset="paper:cifar10", noise_sampler="exact", channels_last=False,
    ),
}


def list_protocols() -> list[str]:
    """Names of the built-in protocols."""
    return sorted(PROTOCOLS)


def get_protocol(name: str, **overrides: Any) -> TrainConfig:
    """The protocol ``name`` with ``overrides`` applied. Unknown names suggest the closest."""
    key = name.lower()
    if key not in PROTOCOLS:
        raise unknown_name_error("protocol", name, PROTOCOLS)
    return PROTOCOLS[key].replace(**overrides) if overrides else PROTOCOLS[key]
