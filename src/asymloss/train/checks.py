"""Checks of a :class:`TrainConfig` that run before any training.

Every error a run would otherwise hit late — an unknown loss or bad hyperparameter, a noise spec
that does not parse or does not fit the dataset, a device that is not there, a dataset that is not
on disk — is raised here first, with a message that names the offending entry. The CLI and the
sweep call these before they start anything.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

from .._datasets import dataset_num_classes
from .config import TrainConfig
from .device import resolve_device

__all__ = ["check_config", "check_loss", "check_model", "check_noise", "check_supported", "check_subset",
           "check_data", "check_mechanics", "expected_num_classes", "SmallSubsetWarning", "IdenticalViewsWarning"]

_REAL_NOISE_DATASET = {"cifar10n": ("cifar10", "CIFAR-10"), "cifar100n": ("cifar100", "CIFAR-100")}


class SmallSubsetWarning(UserWarning):
    """A ``subset`` smaller than the number of classes: some classes cannot appear in training."""


class IdenticalViewsWarning(UserWarning):
    """A loss that takes several augmented views of each sample, in a run without augmentation."""


def expected_num_classes(dataset: str) -> Optional[int]:
    """The class count of a dataset known by name; ``None`` for ``npz:``/``folder:`` datasets (their
    files tell, see :func:`check_data`)."""
    return dataset_num_classes(dataset)


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def check_loss(config: TrainConfig, label: Optional[str] = None, num_classes: Optional[int] = None) -> None:
    """Build the run's loss exactly as the engine will; errors name the loss and the preset."""
    from .loss import resolve_loss

    K = num_classes or expected_num_classes(config.dataset)
    try:
        resolved = resolve_loss(config, K)
    except (KeyError, ValueError, TypeError) as e:
        raise type(e)(f"loss {label or config.loss!r} (preset {config.loss_preset!r}): {_message(e)}") from e
    if config.meta_set is not None:  # the loss has hyperparameters the meta-learner can learn
        from .meta import check_meta_loss

        check_meta_loss(resolved.module, config, K or 10, resolved.schedule)


def check_model(config: TrainConfig) -> None:
    """The model is one :func:`asymloss.models.list_models` knows (the error suggests the closest)."""
    from .._validation import unknown_name_error
    from ..models import list_models

    if config.model.lower() not in list_models():
        raise unknown_name_error("model", config.model, list_models())


def check_noise(config: TrainConfig, num_classes: Optional[int] = None) -> None:
    """Parse the noise spec and check it against the dataset: real noise (CIFAR-N) belongs to its
    dataset; matrix noise gets its transition matrix built for the dataset's class count (when the
    count is known: by name, or ``num_classes`` from the loaded data)."""
    from .. import noise

    parsed = noise.parse_noise(config.noise)
    if parsed.kind in _REAL_NOISE_DATASET:
        want, title = _REAL_NOISE_DATASET[parsed.kind]
        if config.dataset != want:
            raise ValueError(
                f"noise {config.noise!r} on dataset {config.dataset!r}: {parsed.kind} labels are human labels of "
                f"{title}'s training images and only fit dataset {want!r} (e.g. --set dataset={want}, or the "
                f"protocol cifar-n)."
            )
    if config.noise_sampler in noise.REFERENCE_SAMPLERS:
        try:
            noise.check_replay(config.noise_sampler, parsed.kind, config.dataset.split(":")[0].lower())
        except ValueError as e:
            raise ValueError(f"noise {config.noise!r} on dataset {config.dataset!r}: {e}") from e
    if parsed.kind in ("symmetric", "asymmetric", "pairflip", "uniform"):
        K = num_classes or expected_num_classes(config.dataset)
        if K is None and parsed.kind != "asymmetric":
            return  # a dataset known by its files only: checked by check_data once they are loaded
        try:
            noise.transition_matrix(parsed.kind, parsed.rate, num_classes=K,
                                    dataset=config.dataset if parsed.kind == "asymmetric" else None)
        except (KeyError, ValueError) as e:
            raise type(e)(f"noise {config.noise!r} on dataset {config.dataset!r}: {_message(e)}") from e


def check_subset(config: TrainConfig, train_size: int, num_classes: int) -> None:
    """``subset`` must not exceed the training set; one smaller than the class count warns."""
    if config.subset is None:
        return
    if config.subset > train_size:
        raise ValueError(
            f"subset={config.subset} is larger than the training set of {config.dataset!r} ({train_size} images); "
            f"use at most {train_size}, or leave subset out to train on all of it."
        )
    if config.subset < num_classes:
        warnings.warn(SmallSubsetWarning(
            f"subset={config.subset} is smaller than the number of classes of {config.dataset!r} ({num_classes}): "
            "some classes cannot appear in training."), stacklevel=2)


def check_supported(config: TrainConfig) -> None:
    """Refuse settings the engine does not implement (the WebVision protocol's augmentation)."""
    if config.random_resized_crop is not None or config.color_jitter:
        raise NotImplementedError(
            "random_resized_crop and color_jitter (the WebVision protocol's augmentation) are part of the "
            "protocol's configuration but not of the batched augmentation yet; the paper-webvision protocol "
            "is configuration only. Override them (--set random_resized_crop=null --set color_jitter=0) to train anyway."
        )


_PACK_LACKS = {"views": "several augmented views of each sample", "index": "the samples' training-set positions",
               "complementary": "complementary labels", "schedule": "hyperparameter schedules"}


def check_mechanics(config: TrainConfig, num_classes: Optional[int] = None, *, engine: str = "train") -> None:
    """The training mechanics the run's loss needs (docs/training-mechanics.md) are ones ``engine``
    supplies: ``"train"`` (:func:`asymloss.train.train`) supplies them all, ``"pack"`` (the packed-run
    engine) none. The loss's hyperparameter schedule is checked too: it names hyperparameters the
    loss has, and every epoch's value is one the loss accepts."""
    from .loss import resolve_loss
    from .mechanics import hparam_owner, needs, values_over

    label = f"loss {config.loss!r} (preset {config.loss_preset!r})"
    try:
        resolved = resolve_loss(config, num_classes or expected_num_classes(config.dataset))
    except (KeyError, ValueError, TypeError) as e:
        raise type(e)(f"{label}: {_message(e)}") from e
    loss, schedule = resolved.module, resolved.schedule
    wanted = needs(loss) + (["schedule"] if schedule else [])
    if engine == "pack" and wanted:
        what = " and ".join(_PACK_LACKS[w] for w in wanted)
        raise ValueError(f"{label} needs {what}, which the packed-run engine does not supply; train this run "
                         "alone (without --pack).")
    try:
        values = values_over(schedule, loss.hparams(), config.epochs)
    except (KeyError, ValueError, TypeError) as e:
        raise type(e)(f"{label}: {_message(e)}") from e
    for name, vals in values.items():
        owner = hparam_owner(loss, name)
        if owner is None:
            raise ValueError(f"{label}: loss_schedule names {name!r}, which is not a hyperparameter that can be "
                             f"scheduled; the loss's hyperparameters: {', '.join(loss.hparams()) or 'none'}.")
        module, local = owner
        seen = set()
        for epoch, value in enumerate(vals):
            if value in seen:
                continue
            seen.add(value)
            try:
                type(module)(**{**module.hparams(), local: value})
            except TypeError:   # a module not built from its hyperparameters alone (a combination, a wrapper)
                break
            except ValueError as e:
                raise ValueError(f"{label}: loss_schedule[{name!r}] gives {value:g} at epoch {epoch + 1}: "
                                 f"{_message(e)}") from e
    if "views" in wanted and not (config.crop_padding or config.hflip or config.rotation):
        warnings.warn(IdenticalViewsWarning(
            f"{label} takes {loss.num_views} augmented views of each sample, but the run has no augmentation "
            "(crop_padding, hflip, rotation): the views are identical."), stacklevel=2)


def check_data(config: TrainConfig, dataset: Any = None) -> None:
    """The run's data: the dataset loads (pass it as ``dataset`` when already loaded), ``subset`` fits
    it, the noise fits its class count, and CIFAR-N noise finds its label file."""
    from .. import noise
    from ..data import load

    ds = dataset if dataset is not None else load(config.dataset, root=config.data_dir)
    check_subset(config, len(ds.y_train), ds.num_classes)
    check_noise(config, ds.num_classes)
    if config.meta_set is not None:  # the meta set fits the (sub)set and holds every class
        from .meta import check_meta_data

        check_meta_data(config, ds.y_train.numpy(), ds.num_classes)
    parsed = noise.parse_noise(config.noise)
    if parsed.kind in _REAL_NOISE_DATASET:
        from ..noise._real import load_cifar_n

        load_cifar_n(parsed, config.data_dir)


def check_config(config: TrainConfig, *, load_data: bool = True, check_device: bool = True) -> None:
    """All of the above: unsupported settings, the model, the noise against the dataset, the loss,
    the device (``check_device``; a sweep on a cluster checks it there) and, with ``load_data``, the
    data (:func:`check_data`)."""
    check_supported(config)
    check_model(config)
    check_noise(config)
    check_loss(config)
    check_mechanics(config)
    if check_device:
        resolve_device(config.device)
    if load_data:
        check_data(config)
