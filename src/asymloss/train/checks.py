"""Checks of a :class:`TrainConfig` that run before any training.

Every error a run would otherwise hit late — an unknown loss or bad hyperparameter, a noise spec
that does not parse or does not fit the dataset, a device that is not there, a dataset that is not
on disk — is raised here first, with a message that names the offending entry. The CLI and the
sweep call these before they start anything.
"""
from __future__ import annotations

from typing import Optional

from ..noise import DATASET_CLASSES
from .config import TrainConfig

__all__ = ["check_config", "check_loss", "check_noise", "check_supported", "expected_num_classes"]

_NUM_CLASSES = {**DATASET_CLASSES, "webvision-mini": 50}


def expected_num_classes(dataset: str) -> int:
    """The class count of a dataset known by name (10 for ``npz:``/``folder:`` and others)."""
    return _NUM_CLASSES.get(dataset.split(":")[0].lower(), 10)


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def check_loss(config: TrainConfig, label: Optional[str] = None) -> None:
    """Build the run's loss exactly as the engine will; errors name the loss and the preset."""
    from .loss import build_loss

    try:
        build_loss(config, expected_num_classes(config.dataset))
    except (KeyError, ValueError, TypeError) as e:
        raise type(e)(f"loss {label or config.loss!r} (preset {config.loss_preset!r}): {_message(e)}") from e


def check_noise(config: TrainConfig) -> None:
    """Parse the noise spec; for matrix noise, build its transition matrix for the dataset; for a
    reference sampler (``alfs``/``apl``), check that the reference generates this noise there."""
    from .. import noise

    parsed = noise.parse_noise(config.noise)
    if config.noise_sampler in noise.REFERENCE_SAMPLERS:
        try:
            noise.check_replay(config.noise_sampler, parsed.kind, config.dataset.split(":")[0].lower())
        except ValueError as e:
            raise ValueError(f"noise {config.noise!r} on dataset {config.dataset!r}: {e}") from e
    if parsed.kind in ("symmetric", "asymmetric", "pairflip", "uniform"):
        dataset = config.dataset.split(":")[0]
        try:
            noise.transition_matrix(parsed.kind, parsed.rate, num_classes=expected_num_classes(dataset),
                                    dataset=dataset if parsed.kind == "asymmetric" else None)
        except (KeyError, ValueError) as e:
            raise type(e)(f"noise {config.noise!r} on dataset {config.dataset!r}: {_message(e)}") from e


def check_supported(config: TrainConfig) -> None:
    """Refuse settings the engine does not implement (the WebVision protocol's augmentation)."""
    if config.random_resized_crop is not None or config.color_jitter:
        raise NotImplementedError(
            "random_resized_crop and color_jitter (the WebVision protocol's augmentation) are part of the "
            "protocol's configuration but not of the batched augmentation yet; the paper-webvision protocol "
            "is configuration only. Override them (--set random_resized_crop=null --set color_jitter=0) to train anyway."
        )


def check_config(config: TrainConfig, *, load_data: bool = True) -> None:
    """All of the above, the device, and (with ``load_data``) that the dataset can be loaded."""
    from .engine import resolve_device

    check_supported(config)
    check_noise(config)
    check_loss(config)
    resolve_device(config.device)
    if load_data:
        from ..data import load

        load(config.dataset, root=config.data_dir)
