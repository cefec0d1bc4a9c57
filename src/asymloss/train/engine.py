"""The training engine: exact and fast.

The whole (noisy) training set lives as a uint8 tensor on the training device; batches are gathered
by index, augmented with batched tensor operations and normalised there. Statistics are accumulated
on the device and read back once per epoch, so a step never waits for the host. The test set is
evaluated every epoch.

Randomness: ``config.seed`` drives model initialisation, data order and augmentation (per-epoch
generators derived from the seed, so a resumed run draws exactly what an uninterrupted one would);
the label noise has its own seed, ``config.noise_seed`` (default: ``config.seed``).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from .._io import atomic_torch_save, atomic_write_json, read_json
from .checks import check_mechanics, check_subset, check_supported
from .config import TrainConfig
from .device import resolve_device
from .loss import ResolvedLoss, build_loss, resolve_loss
from .mechanics import Mechanics
from .record import environment, summarise_epochs

__all__ = ["train", "prepare_data", "PreparedData", "resolve_device", "build_loss", "inspect_run", "restart_run",
           "RunState", "RunDirError", "CheckpointError"]

RECORD = "record.json"
CHECKPOINT = "checkpoint.pt"
SUBSET_SEED = 0  # a --subset is the same fixed random subset for every run


def _derive_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (stable across Python versions and platforms)."""
    digest = hashlib.sha256(",".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass
class PreparedData:
    """Training data after subsetting and noise, ready to move to a device."""

    x_train: torch.Tensor  # uint8 (N, C, H, W)
    y_noisy: torch.Tensor  # int64 (N,)
    y_clean: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    noise: dict[str, Any]  # NoisyLabels.summary()
    note: Optional[str] = None


def prepare_data(config: TrainConfig, dataset=None) -> PreparedData:
    """Load the dataset, take the subset and corrupt the labels as ``config`` says.

    ``dataset``: the loaded ``config.dataset`` (``asymloss.data.load``) to use instead of loading it
    again (a pack of runs loads it once).

    Synthetic noise is drawn on the (sub)set that is trained on, so its realised rate is the one
    the model sees. Real noisy label sets (CIFAR-N) and the references' own labels (noise samplers
    ``alfs``/``apl``) are indexed like the full training set: they are applied to the full set first
    and the subset is taken afterwards.
    """
    from .. import data, noise

    spec = noise.parse_noise(config.noise)
    ds = dataset if dataset is not None else data.load(config.dataset, root=config.data_dir)
    x_train, y_train = ds.x_train, ds.y_train
    n = len(y_train)
    check_subset(config, n, ds.num_classes)
    idx = None
    if config.subset is not None and config.subset < n:
        rng = np.random.default_rng(SUBSET_SEED)
        idx = np.sort(rng.permutation(n)[: config.subset])
    real = spec.kind in ("cifar10n", "cifar100n") or config.noise_sampler in noise.REFERENCE_SAMPLERS
    labels = y_train.numpy()
    if idx is not None and not real:
        x_train, labels = x_train[torch.from_numpy(idx)], labels[idx]
    features = x_train.reshape(len(x_train), -1).numpy() if spec.kind == "instance" else None
    sampler = config.noise_sampler
    if sampler == "reference":
        sampler = noise.reference_sampler(config.dataset, spec.kind)
    noisy = noise.corrupt(
        labels, spec, seed=config.resolved_noise_seed, dataset=config.dataset,
        sampler=sampler, legacy=config.noise_legacy, features=features,
        num_classes=ds.num_classes, data_dir=config.data_dir,
    )
    y_noisy = torch.as_tensor(np.asarray(noisy.noisy_labels), dtype=torch.int64)
    y_clean = torch.as_tensor(np.asarray(noisy.clean_labels), dtype=torch.int64)
    summary = noisy.summary()
    if idx is not None and real:
        t = torch.from_numpy(idx)
        x_train, y_noisy, y_clean = x_train[t], y_noisy[t], y_clean[t]
        summary["subset_rate"] = float((y_noisy != y_clean).double().mean())
    return PreparedData(
        x_train=x_train, y_noisy=y_noisy, y_clean=y_clean, x_test=ds.x_test, y_test=ds.y_test,
        mean=tuple(ds.mean), std=tuple(ds.std), num_classes=ds.num_classes, noise=summary,
        note=getattr(ds, "note", None),
    )


def build_augment(config: TrainConfig):
    """The run's batched augmentation. The rotation is nearest-neighbour: torchvision's
    ``RandomRotation`` default, as the references (paper-cifar100's 20 degrees) use it."""
    from ..data.augment import Augment

    return Augment(crop_padding=config.crop_padding, hflip=config.hflip, rotation=config.rotation,
                   mode="nearest")


def _make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    sched = torch.optim.lr_scheduler
    if config.schedule == "cosine":  # to 0 over the epochs, stepped per epoch
        return sched.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=0.0)
    if config.schedule == "step":
        return sched.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.gamma)
    if config.schedule == "exp":
        return sched.ExponentialLR(optimizer, gamma=config.gamma)
    return sched.LambdaLR(optimizer, lambda _: 1.0)


class _Normalise:
    """uint8 batch → float, augmented, normalised (all on the batch's device)."""

    def __init__(self, mean, std, device, augment: Optional[Callable] = None):
        self.mean = torch.tensor(mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
        self.inv_std = 1.0 / torch.tensor(std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment

    def __call__(self, x_u8: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        x = x_u8.float().div_(255.0)
        if self.augment is not None and generator is not None:
            x = self.augment(x, generator=generator)
        return (x - self.mean) * self.inv_std


@torch.inference_mode()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, prep: _Normalise, batch_size: int,
              memory_format, autocast) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for i in range(0, len(x), batch_size):
        xb = prep(x[i : i + batch_size]).contiguous(memory_format=memory_format)
        with autocast():
            out = model(xb)
        correct += (out.argmax(1) == y[i : i + batch_size]).sum()
    return correct.item() / len(x)


class RunDirError(ValueError):
    """``out_dir`` cannot hold this run: it is a file, or it holds another configuration's run."""


class CheckpointError(RunDirError):
    """The checkpoint of an unfinished run cannot be read. ``train(..., restart=True)`` (command
    line: ``--restart``) starts the run again from epoch 0 and keeps the damaged file beside it."""


@dataclass(frozen=True)
class RunState:
    """What :func:`train` would do with a run directory (see :func:`inspect_run`)."""

    status: str  # "new" (nothing to resume), "resumable" (from epochs_done) or "complete"
    epochs_done: int
    epochs: int
    record: Optional[dict] = None


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"out_dir {str(out_dir)!r} is a file, not a directory; give a directory for the run "
                          "(it is created if absent).")


def _read_checkpoint(path: Path, what: str = "the run") -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or "epoch" not in checkpoint or "model" not in checkpoint:
            raise ValueError("not an asymloss checkpoint")
    except Exception as e:  # any damage: truncated, empty, not a torch file, a failing unpickle
        why = "the file is empty" if path.stat().st_size == 0 else _first_sentence(e)
        raise CheckpointError(
            f"the checkpoint {str(path)!r} is unreadable ({why}) and {what} is not complete, so it cannot resume "
            f"from it. Start the run again from epoch 0 with restart=True (command line: --restart); the "
            f"damaged file is then kept as {path.name}.damaged."
        ) from e
    return checkpoint


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    cut = text.find(". ")
    return f"{type(exc).__name__}: {text[: cut if cut > 0 else 200]}"


def _load_resume(out_dir: Path, config: TrainConfig):
    """(record, checkpoint) found in ``out_dir`` for this config; an error if they belong to another.

    A complete record is returned with ``checkpoint=None`` (the checkpoint is not needed, and not read).
    """
    _check_out_dir(out_dir)
    record = checkpoint = None
    unreadable = None
    if (out_dir / RECORD).is_file():
        try:
            record = read_json(out_dir / RECORD)
            if not isinstance(record, dict):
                raise ValueError("not a run record")
        except (ValueError, UnicodeDecodeError) as e:
            record, unreadable = None, e
        else:
            try:
                other = TrainConfig.from_dict(record.get("config") or {}).config_hash() != config.config_hash()
            except (ValueError, TypeError, KeyError):
                other = True
            if other:
                raise RunDirError(
                    f"out_dir {str(out_dir)!r} holds a run with a different configuration; "
                    "choose another out_dir or remove it."
                )
            if record.get("status") == "complete":
                return record, None
    if (out_dir / CHECKPOINT).is_file():
        done = f"(epoch {len(record.get('epochs') or [])} of {config.epochs})" if record else ""
        checkpoint = _read_checkpoint(out_dir / CHECKPOINT, f"the run {done}".rstrip())
        if checkpoint.get("config_hash") != config.config_hash():
            raise RunDirError(f"checkpoint in {str(out_dir)!r} belongs to another configuration; "
                              "choose another out_dir or remove it.")
    elif unreadable is not None:
        raise CheckpointError(
            f"the record {str(out_dir / RECORD)!r} is unreadable ({type(unreadable).__name__}: {unreadable}) and "
            "there is no checkpoint to resume from. Start the run again with restart=True (command line: "
            f"--restart); the damaged file is then kept as {RECORD}.damaged."
        )
    return record, checkpoint


def inspect_run(out_dir, config: TrainConfig) -> RunState:
    """What :func:`train` would do with ``out_dir``, without training: ``status`` ``"new"``,
    ``"resumable"`` (after ``epochs_done`` epochs) or ``"complete"``. Raises :class:`RunDirError`
    (a file, or another configuration's run) or :class:`CheckpointError` (an unreadable
    checkpoint of an unfinished run) as ``train`` would."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    record, checkpoint = _load_resume(Path(out_dir), config)
    if record is not None and record.get("status") == "complete":
        return RunState("complete", len(record.get("epochs") or []), config.epochs, record)
    if checkpoint is not None:
        return RunState("resumable", int(checkpoint["epoch"]), config.epochs, record)
    return RunState("new", 0, config.epochs, record)


def _set_aside(path: Path, suffix: str) -> Optional[Path]:
    """Rename ``path`` to ``path.<suffix>`` (``.<suffix>.1``, ... if taken); never deletes anything."""
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.{suffix}")
    i = 0
    while target.exists():
        i += 1
        target = path.with_name(f"{path.name}.{suffix}.{i}")
    os.replace(path, target)
    return target


def restart_run(out_dir, config: TrainConfig) -> list[Path]:
    """Set aside the record and checkpoint of ``out_dir`` so that the run starts again from epoch 0.

    Unreadable files get the suffix ``.damaged``, readable ones ``.old``; nothing is deleted. Files
    of another configuration's run are refused (:class:`RunDirError`). Returns the renamed files.
    """
    out = Path(out_dir)
    _check_out_dir(out)
    try:
        _load_resume(out, config)
        damaged = False
    except CheckpointError:
        damaged = True
    moved = [_set_aside(out / name, "damaged" if damaged else "old") for name in (CHECKPOINT, RECORD)]
    return [m for m in moved if m is not None]


@contextlib.contextmanager
def _callers_rng_kept(device: torch.device):
    """Run a block that seeds and draws from the global RNGs, then give the caller theirs back."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def train(config: TrainConfig, out_dir=None, *, progress: bool = True, resume: bool = True,
          restart: bool = False, data: Optional[PreparedData] = None) -> dict[str, Any]:
    """Train one run as ``config`` says and return its run record.

    With ``out_dir``, the record (``record.json``) and a checkpoint (``checkpoint.pt``) are written
    atomically after every epoch. Calling ``train`` again on the same ``out_dir`` resumes from the
    checkpoint (and ends with the result an uninterrupted run gives) or returns the complete record
    at once. ``progress`` shows a progress bar with loss, accuracy, images/s and ETA. ``data``
    replaces ``prepare_data(config)`` (the training and test sets, e.g. one cross-validation fold).

    An unfinished run whose checkpoint cannot be read raises :class:`CheckpointError`;
    ``restart=True`` then starts it again from epoch 0, keeping the old files beside the new ones
    (:func:`restart_run`). The caller's global random state (torch, NumPy, ``random``) is left as
    it was: the run seeds a forked copy.

    Example::

        >>> from asymloss.train import get_protocol, train
        >>> cfg = get_protocol("paper-mnist", loss="agce", noise="symmetric:0.6", epochs=2, subset=2000)
        >>> record = train(cfg, "runs/agce-sym06", progress=False)   # doctest: +SKIP
        >>> record["final"]["last_test_acc"]                            # doctest: +SKIP
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    check_supported(config)
    check_mechanics(config)
    out = Path(out_dir) if out_dir is not None else None
    record = checkpoint = None
    if out is not None:
        _check_out_dir(out)
        if restart:
            restart_run(out, config)
        elif resume:
            record, checkpoint = _load_resume(out, config)
            if record is not None and record.get("status") == "complete":
                return record
    device = resolve_device(config.device)
    with _callers_rng_kept(device):
        return _train(config, out, device, record, checkpoint, progress, data)


@dataclass
class _Run:
    """Everything :func:`_build_run` builds for one run, and the progress it has made."""

    config: TrainConfig
    out: Optional[Path]
    device: torch.device
    data: PreparedData
    model: nn.Module
    resolved: ResolvedLoss
    mechanics: Mechanics
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: Any
    memory_format: Any
    autocast: Callable
    step_loss: Callable
    x_train: torch.Tensor
    y_noisy: torch.Tensor
    y_clean: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    train_prep: _Normalise
    test_prep: _Normalise
    starts: list
    base: dict
    wall_start: float
    history: list = field(default_factory=list)
    start_epoch: int = 0
    train_seconds: float = 0.0
    train_images: int = 0
    prior_wall: float = 0.0
    meta: Any = None    # a MetaLearner (train/meta.py) when the loss's hyperparameters are meta-learned

    @property
    def loss_fn(self) -> nn.Module:
        return self.resolved.module


def _train(config: TrainConfig, out: Optional[Path], device: torch.device, record: Optional[dict],
           checkpoint: Optional[dict], progress: bool, data: Optional[PreparedData]) -> dict[str, Any]:
    run = _build_run(config, out, device, checkpoint, data)
    bar = _progress_bar(config) if progress else None
    with bar or contextlib.nullcontext():
        task = bar.add_task("train", total=(config.epochs - run.start_epoch) * len(run.starts), info="") if bar else None
        for epoch in range(run.start_epoch, config.epochs):
            hparams = run.mechanics.start_epoch(run.loss_fn, epoch)
            stats = _train_epoch(run, epoch, (lambda: bar.advance(task)) if bar else None)
            test_acc = _evaluate(run.model, run.x_test, run.y_test, run.test_prep, config.eval_batch_size,
                                 run.memory_format, run.autocast)
            entry = _epoch_entry(epoch, stats, test_acc, hparams)
            if run.meta is not None:
                entry["meta"] = run.meta.end_epoch()
            record = _checkpoint_and_record(run, epoch, entry)
            if bar:
                seen, seconds = stats["seen"], stats["seconds"]
                bar.update(task, info=(
                    f"ep {epoch + 1}/{config.epochs} loss {entry['train_loss']:.3f} "
                    f"acc {entry['train_acc_noisy']:.3f} test {test_acc:.3f}"
                    + (f" {seen / seconds:,.0f} img/s" if bar.console.width >= 100 else "")))
    if record is None or record["status"] != "complete":  # killed between checkpoint and record
        record = _record(run, "complete")
        if out is not None:
            atomic_write_json(out / RECORD, record)
    return record


# -- build the run ----------------------------------------------------------------------------------

def _build_run(config: TrainConfig, out: Optional[Path], device: torch.device, checkpoint: Optional[dict],
               data: Optional[PreparedData]) -> _Run:
    """Data, model, loss (with the mechanics it needs), optimizer and step; restored from
    ``checkpoint`` when resuming."""
    from ..models import create_model

    wall_start = time.perf_counter()
    data = prepare_data(config) if data is None else data
    if checkpoint is not None and checkpoint.get("noise_sha256") != data.noise.get("sha256"):
        raise ValueError("the checkpoint's noisy labels differ from the ones drawn now; cannot resume.")
    K = data.num_classes
    in_channels, image_size = data.x_train.shape[1], data.x_train.shape[-1]

    torch.manual_seed(config.seed)
    model = create_model(config.model, num_classes=K, in_channels=in_channels, image_size=image_size)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    memory_format = torch.channels_last if (config.channels_last and has_conv) else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    resolved = resolve_loss(config, K)          # the loss, and the engine settings its preset brings
    meta = None
    if config.meta_set is not None:  # meta-learned loss hyperparameters (train/meta.py); holds out its images
        from .meta import MetaLearner
        meta, data = MetaLearner.create(config, data, resolved, device,
                                        _Normalise(data.mean, data.std, device), memory_format)
    mechanics = Mechanics(resolved.module, resolved.schedule, K)
    mechanics.bind(resolved.module, data.y_noisy)
    resolved.module.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=resolved.weight_decay)
    scheduler = _make_scheduler(config, optimizer)
    # bf16 autocast for the model (on GPUs, and on CPUs with native bf16 such as AVX512-BF16 or
    # AMX); the loss is always computed in float32 from float32 logits.
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if config.amp else contextlib.nullcontext
    step_loss = _step_loss(model, resolved.module, mechanics, autocast, config.compile)

    x_train = data.x_train.to(device).contiguous()
    augment = build_augment(config)
    n, bs = len(x_train), config.batch_size
    starts = list(range(0, n, bs))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()  # a batch of one sample cannot be batch-normalised in training mode
    base = {
        "status": "running",
        "config": config.to_dict(),
        **environment(device),
        "loss": resolved.record(),
        "data": {"train_size": n, "test_size": len(data.x_test), "num_classes": K, "note": data.note},
        "noise": data.noise,
        **({"meta": meta.describe()} if meta is not None else {}),
    }
    if mechanics.active:
        base["mechanics"] = mechanics.record()
    run = _Run(
        config=config, out=out, device=device, data=data, model=model, resolved=resolved, mechanics=mechanics,
        params=params, optimizer=optimizer, scheduler=scheduler, memory_format=memory_format, autocast=autocast,
        step_loss=step_loss, x_train=x_train, y_noisy=data.y_noisy.to(device), y_clean=data.y_clean.to(device),
        x_test=data.x_test.to(device), y_test=data.y_test.to(device),
        train_prep=_Normalise(data.mean, data.std, device, augment if augment.active else None),
        test_prep=_Normalise(data.mean, data.std, device), starts=starts, base=base, wall_start=wall_start,
        meta=meta,
    )
    if checkpoint is not None:
        _restore(run, checkpoint)
    return run


def _restore(run: _Run, checkpoint: dict) -> None:
    """Continue ``run`` from a checkpoint: model, optimizer, schedule, the loss's state, history."""
    run.model.load_state_dict(checkpoint["model"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    run.scheduler.load_state_dict(checkpoint["scheduler"])
    if "loss_state" in checkpoint:
        run.loss_fn.load_state_dict(checkpoint["loss_state"])
    run.history = list(checkpoint["history"])
    run.start_epoch = int(checkpoint["epoch"])
    run.train_seconds = float(checkpoint["train_seconds"])
    run.train_images = int(checkpoint["train_images"])
    run.prior_wall = float(checkpoint["wall_seconds"])
    if run.meta is not None:
        run.meta.load_state_dict(checkpoint["meta"])


def _step_loss(model: nn.Module, loss_fn: nn.Module, mechanics: Mechanics, autocast, compile: bool):
    """``(images, labels, loss keywords) -> (loss, logits of the first view, detached)``; with
    ``compile`` the model and the loss as one graph per step (forward and backward)."""
    def forward_loss(xb, yb, extra):
        with autocast():
            logits = mechanics.shape_logits(model(xb))
        loss = loss_fn(logits.float(), yb, **extra)
        return loss, (logits if mechanics.views == 1 else logits[0]).detach()

    return torch.compile(forward_loss) if compile else forward_loss


# -- one epoch, one step ----------------------------------------------------------------------------

@dataclass
class _Generators:
    """An epoch's random streams, derived from the run's seed and the epoch (so a resumed run draws
    what an uninterrupted one does)."""

    order: torch.Generator
    augment: torch.Generator
    complementary: Optional[torch.Generator]

    @classmethod
    def of(cls, seed: int, epoch: int, device: torch.device, complementary: bool) -> "_Generators":
        return cls(torch.Generator().manual_seed(_derive_seed(seed, epoch, 0)),
                   torch.Generator(device=device).manual_seed(_derive_seed(seed, epoch, 1)),
                   torch.Generator(device=device).manual_seed(_derive_seed(seed, epoch, 2)) if complementary else None)


def _train_epoch(run: _Run, epoch: int, advance: Optional[Callable] = None) -> dict[str, Any]:
    """One pass over the training set; returns its statistics (read back from the device once)."""
    run.model.train()
    device = run.device
    gens = _Generators.of(run.config.seed, epoch, device, run.mechanics.complementary)
    perm = torch.randperm(len(run.x_train), generator=gens.order).to(device)
    loss_sum = torch.zeros((), device=device)
    hit_noisy = torch.zeros((), dtype=torch.int64, device=device)
    hit_clean = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    if run.meta is not None:
        run.meta.begin_epoch(epoch)
    lr = run.optimizer.param_groups[0]["lr"]
    t0 = time.perf_counter()
    for s in run.starts:
        idx = perm[s : s + run.config.batch_size]
        loss, logits = _train_step(run, idx, gens)
        with torch.no_grad():
            m = len(idx)
            loss_sum += loss * m
            pred = logits.argmax(1)
            hit_noisy += (pred == run.y_noisy[idx]).sum()
            hit_clean += (pred == run.y_clean[idx]).sum()
            seen += m
        if advance:
            advance()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    run.scheduler.step()
    run.train_seconds += seconds
    run.train_images += seen
    return {"lr": lr, "loss": loss_sum.item() / seen, "acc_noisy": hit_noisy.item() / seen,
            "acc_clean": hit_clean.item() / seen, "seen": seen, "seconds": seconds}


def _train_step(run: _Run, idx: torch.Tensor, gens: _Generators) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on the samples ``idx``; returns the (detached) loss and logits."""
    mech = run.mechanics
    xb = mech.inputs(run.train_prep, run.x_train[idx], gens.augment).contiguous(memory_format=run.memory_format)
    yb = run.y_noisy[idx]
    if run.meta is not None:
        run.meta.step(run.model, run.optimizer, xb, yb)  # may update the loss's hyperparameters
    loss, logits = run.step_loss(xb, yb, mech.loss_args(idx, yb, gens.complementary))
    if run.resolved.l1_weight:
        loss = loss + run.resolved.l1_weight * sum(p.abs().sum() for p in run.params)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.config.grad_clip is not None:
        nn.utils.clip_grad_norm_(run.params, run.config.grad_clip, foreach=True)
    run.optimizer.step()
    return loss.detach(), logits


# -- checkpoint and record --------------------------------------------------------------------------

def _epoch_entry(epoch: int, stats: dict, test_acc: float, hparams: dict) -> dict[str, Any]:
    entry = {
        "epoch": epoch + 1,
        "lr": stats["lr"],
        "train_loss": stats["loss"],
        "train_acc_noisy": stats["acc_noisy"],
        "train_acc_clean": stats["acc_clean"],
        "test_acc": test_acc,
        "seconds": stats["seconds"],
    }
    if hparams:
        entry["loss_hparams"] = hparams   # the scheduled hyperparameters' values in this epoch
    return entry


def _record(run: _Run, status: str) -> dict[str, Any]:
    wall = run.prior_wall + time.perf_counter() - run.wall_start
    return {**run.base, "status": status, "epochs": run.history,
            "final": summarise_epochs(run.history, run.train_seconds, run.train_images, wall)}


def _checkpoint_and_record(run: _Run, epoch: int, entry: dict) -> dict[str, Any]:
    """Append the epoch to the history; write the checkpoint, then the record (both atomically)."""
    run.history.append(entry)
    done = epoch + 1 == run.config.epochs
    record = _record(run, "complete" if done else "running")
    if run.out is not None:
        state = {
            "epoch": epoch + 1, "config_hash": run.config.config_hash(),
            "noise_sha256": run.data.noise.get("sha256"), "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
            "history": run.history, "train_seconds": run.train_seconds,
            "train_images": run.train_images, "wall_seconds": record["final"]["wall_time_s"],
        }
        if run.meta is not None:
            state["meta"] = run.meta.state_dict()
        loss_state = run.loss_fn.state_dict()
        if loss_state:
            state["loss_state"] = loss_state
        atomic_torch_save(run.out / CHECKPOINT, state)
        atomic_write_json(run.out / RECORD, record)
    return record


def _progress_bar(config: TrainConfig):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Column

    # the run's name, the counts and the ETA never wrap; the epoch's figures wrap onto a second line
    # in a narrow terminal rather than being cut
    return Progress(
        TextColumn(f"[bold]{escape(config.loss)}[/] {escape(config.noise)}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=10), MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[info]}", table_column=Column(ratio=1, overflow="fold")),
        TextColumn("ETA", table_column=Column(no_wrap=True)),
        TimeRemainingColumn(compact=True, table_column=Column(no_wrap=True)),
    )
