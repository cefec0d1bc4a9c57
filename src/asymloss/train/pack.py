"""Packs: several compatible runs trained at once, as one packed model (docs/packing.md).

A *pack* is R runs that share everything that shapes the computation — protocol, dataset, subset,
model, batch size, epochs, optimiser and schedule — and may differ in what makes a run a run:
the loss and its hyperparameters, the noise spec, sampler and seed, the run seed, and the L1 weight
and weight decay (a loss preset may bring its own; the fields :data:`PER_RUN_FIELDS`). :func:`train_pack` trains them in one process as one
:class:`~asymloss.models.packed.PackedModel` (grouped convolutions, batched linear layers, batch norm
over R·C channels) and gives each run exactly what :func:`asymloss.train.train` gives it alone:

- its own initialisation (each run's model is built as the engine builds it, from its seed, and its
  weights are copied into the pack), data order, augmentation draws (the same per-epoch generators,
  drawn in the same order), noisy labels and loss;
- its own gradient clipping (the norm of *its* gradients), SGD momentum (elementwise, so per run
  by construction), weight decay and L1 penalty (per run), and learning-rate schedule;
- its own ``record.json`` and ``checkpoint.pt`` in its own ``out_dir``, in the engine's format: a
  run of a pack can be resumed alone with ``train``, a single run can be resumed in a pack, and the
  results store and tables see ordinary runs.

Only floating-point reassociation differs (a grouped convolution may sum in another order than the
dense one); docs/packing.md says which quantities can differ in the last bits and why.

A run whose loss becomes non-finite fails alone: at the end of that epoch it is recorded as failed
(``error.json``; its record and checkpoint stay at its last good epoch) and the pack goes on without
it. Runs resumed from checkpoints of different epochs are trained as sub-packs, one per epoch.

    >>> from asymloss.train import get_protocol
    >>> from asymloss.train.pack import train_pack
    >>> cfgs = [get_protocol("paper-mnist", loss=l, noise="symmetric:0.6", epochs=2, subset=2000)
    ...         for l in ("ce", "agce", "nce+rce")]
    >>> records = train_pack(cfgs, ["runs/ce", "runs/agce", "runs/nce-rce"])   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .._io import atomic_torch_save, atomic_write_json
from ..data.augment import _randint, _uniform, crop_at, rotate
from .checks import check_mechanics, check_supported
from .config import TrainConfig
from .engine import (CHECKPOINT, RECORD, PreparedData, _callers_rng_kept, _derive_seed, _load_resume,
                     _make_scheduler, _Normalise,
                     build_augment, prepare_data, resolve_device)
from .loss import ResolvedLoss, resolve_loss
from .record import environment, summarise_epochs

__all__ = ["train_pack", "pack_key", "check_packable", "group_packs", "PER_RUN_FIELDS", "ERROR"]

#: The fields in which the runs of a pack may differ; every other field must be equal.
PER_RUN_FIELDS = ("loss", "loss_params", "loss_preset", "noise", "noise_sampler", "noise_legacy", "noise_seed", "seed",
                  "l1_weight", "weight_decay")
ERROR = "error.json"
_EVAL_IMAGES = 8192  # images (runs × batch) per evaluation forward of a pack


# -- which runs can share a pack ------------------------------------------------------------------

def pack_key(config: TrainConfig) -> tuple:
    """Runs with equal keys can be packed: every field but :data:`PER_RUN_FIELDS`."""
    d = config.to_dict()
    return tuple((k, repr(v)) for k, v in sorted(d.items()) if k not in PER_RUN_FIELDS)


def check_packable(configs: Sequence[TrainConfig]) -> None:
    """Raise ``ValueError`` naming the first field in which two runs of a would-be pack differ."""
    if not configs:
        raise ValueError("a pack needs at least one run.")
    first = configs[0].to_dict()
    for i, c in enumerate(configs[1:], 1):
        d = c.to_dict()
        for k, v in first.items():
            if k not in PER_RUN_FIELDS and d[k] != v:
                raise ValueError(f"runs 0 and {i} cannot share a pack: they differ in {k!r} ({v!r} vs {d[k]!r}); "
                                 f"a pack's runs may differ only in {', '.join(PER_RUN_FIELDS)}.")
    if len({c.config_hash() for c in configs}) != len(configs):
        raise ValueError("a pack cannot hold the same run twice.")


def group_packs(configs: Sequence[TrainConfig], size: int) -> list[list[int]]:
    """Indices of ``configs`` grouped into packs of compatible runs with at most ``size`` runs each.

    Each group of compatible runs (in order of first appearance) is split into
    ``ceil(n / size)`` packs of nearly equal size (13 runs with ``size=8``: 7 + 6)."""
    if size < 1:
        raise ValueError(f"pack size must be >= 1; got {size}.")
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(pack_key(c), []).append(i)
    packs = []
    for idx in groups.values():
        k = -(-len(idx) // size)
        base, extra = divmod(len(idx), k)
        start = 0
        for j in range(k):
            n = base + (j < extra)
            packs.append(idx[start:start + n])
            start += n
    return packs


# -- augmentation of a whole pack: each run's draws, applied as one batch --------------------------

def draw_augmentation(augment, n: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The random parameters ``Augment.__call__`` draws for a batch of ``n`` images from
    ``generator`` — the same calls in the same order, so the same values."""
    p: dict[str, torch.Tensor] = {}
    if augment.crop_padding:
        high = 2 * augment.crop_padding + 1
        p["top"] = _randint(high, n, generator, device)
        p["left"] = _randint(high, n, generator, device)
    if augment.hflip:
        p["flip"] = _uniform(n, generator, device) < 0.5
    if augment.rotation:
        p["angle"] = (_uniform(n, generator, device) * 2.0 - 1.0) * augment.rotation
    return p


def apply_augmentation(augment, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply drawn parameters ``p`` (one entry per image of ``x``) as ``Augment`` would."""
    if "top" in p:
        x = crop_at(x, augment.crop_padding, p["top"], p["left"])
    if "flip" in p:
        x = torch.where(p["flip"].view(-1, 1, 1, 1), x.flip(-1), x)
    if "angle" in p:
        x = rotate(x, p["angle"], mode=augment.mode)
    return x


# -- per-run optimiser state <-> packed ------------------------------------------------------------

def _param_names(packed) -> list[str]:
    return [k[len("net."):] for k, _ in packed.named_parameters()]


def _unpack_optimizer_state(packed, sd: dict, r: int) -> dict:
    """Run ``r``'s optimiser ``state_dict`` in the single engine's format, from the pack's."""
    names = _param_names(packed)
    params = list(packed.parameters())
    state = {}
    for i, st in sd["state"].items():
        one = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and v.shape == params[i].shape and v.dim() > 0:
                one[k] = packed._split(names[i], v.detach())[r].clone()
            else:
                one[k] = v.clone() if isinstance(v, torch.Tensor) else v
        state[i] = one
    return {"state": state, "param_groups": [dict(g) for g in sd["param_groups"]]}


def _pack_optimizer_state(packed, states: Sequence[dict]) -> dict:
    """The pack's optimiser ``state_dict`` from each run's (inverse of :func:`_unpack_optimizer_state`)."""
    params = list(packed.parameters())
    state = {}
    for i in states[0]["state"]:
        one = {}
        for k, v in states[0]["state"][i].items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                one[k] = torch.stack([s["state"][i][k].to(v.device) for s in states]).reshape(params[i].shape)
            else:
                one[k] = v
        state[i] = one
    return {"state": state, "param_groups": [dict(g) for g in states[0]["param_groups"]]}


# -- the pack's runs -------------------------------------------------------------------------------

@dataclass
class _Run:
    """One run of a pack and what the engine keeps for it."""

    position: int  # index in the caller's list
    config: TrainConfig
    out: Optional[Path]
    data: Optional[PreparedData] = None
    resolved: Optional[ResolvedLoss] = None  # the loss and the L1 weight / weight decay in force
    checkpoint: Optional[dict] = None
    history: list = field(default_factory=list)
    start_epoch: int = 0
    train_seconds: float = 0.0
    train_images: int = 0
    prior_wall: float = 0.0
    base: dict = field(default_factory=dict)
    record: Optional[dict] = None
    error: Optional[BaseException] = None
    error_tb: str = ""


def _failed(run: _Run, started: float) -> dict:
    """The outcome of a failed run (returned by :func:`train_pack`; also in ``out_dir/error.json``)."""
    err = run.error
    info = {
        "id": run.config.config_hash(),
        "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "type": type(err).__name__,
        "traceback": run.error_tb,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": time.time() - started,
    }
    if run.out is not None:
        atomic_write_json(run.out / ERROR, info)
    return {**info, "config": run.config.to_dict(), "epochs": list(run.history)}


def train_pack(configs: Sequence[TrainConfig | dict], out_dirs: Optional[Sequence] = None, *,
               progress: bool = False, resume: bool = True,
               cuda_graphs: Optional[bool] = None) -> list[dict[str, Any]]:
    """Train the compatible runs ``configs`` as one pack; return one outcome per run, in order.

    A run's outcome is its run record (``status == "complete"``), exactly as :func:`train` returns
    it, or, for a run that failed (its loss became non-finite, or its setup failed), a dict with
    ``status == "failed"``, ``error`` (``"Type: message"``), ``traceback``, ``config`` and the
    ``epochs`` it completed; with an ``out_dir`` that failure is also written to ``error.json``.
    ``out_dirs`` (one per run, or ``None``) hold each run's ``record.json``/``checkpoint.pt``
    exactly as :func:`train` writes them, and resuming works as there.

    On CUDA the training step is captured as a CUDA graph and replayed (``cuda_graphs``; default:
    on unless the environment sets ``ASYMLOSS_CUDA_GRAPHS=0``); the computation is the same.
    """
    started = time.time()
    configs = [TrainConfig.from_dict(c) if isinstance(c, dict) else c for c in configs]
    check_packable(configs)
    if out_dirs is None:
        out_dirs = [None] * len(configs)
    if len(out_dirs) != len(configs):
        raise ValueError(f"out_dirs: one per run ({len(configs)}); got {len(out_dirs)}.")
    outs = [Path(o) if o is not None else None for o in out_dirs]
    if len({o for o in outs if o is not None}) != sum(o is not None for o in outs):
        raise ValueError("out_dirs: every run of a pack needs its own directory.")
    for c in configs:
        check_supported(c)
        check_mechanics(c, engine="pack")   # a loss needing views, indices, ... or a schedule: not in a pack
        if c.meta_set is not None:
            raise NotImplementedError("meta_set (meta-learned loss hyperparameters) is not supported in a pack; "
                                      "train such runs one by one (asymloss.train.train, or a sweep without --pack).")
    runs = [_Run(i, c, o) for i, (c, o) in enumerate(zip(configs, outs))]
    results: list[Optional[dict]] = [None] * len(runs)

    todo = []
    for run in runs:
        try:
            if run.out is not None and resume:
                record, run.checkpoint = _load_resume(run.out, run.config)
                if record is not None and record.get("status") == "complete":
                    results[run.position] = record
                    continue
            todo.append(run)
        except Exception as e:  # a foreign out_dir: this run fails, the others go on
            run.error, run.error_tb = e, traceback.format_exc()
            results[run.position] = _failed(run, started)
    # the runs seed and draw from the global RNGs (as train() does): the caller gets theirs back
    with _callers_rng_kept(resolve_device(configs[0].device)):
        if todo:
            _prepare(todo)
            for run in todo:
                if run.error is not None:
                    results[run.position] = _failed(run, started)
            todo = [r for r in todo if r.error is None]
        # runs resumed from different epochs train as sub-packs, one per starting epoch
        by_epoch: dict[int, list[_Run]] = {}
        for run in todo:
            by_epoch.setdefault(run.start_epoch, []).append(run)
        wall_start = time.perf_counter()
        for epoch in sorted(by_epoch):
            _train_group(by_epoch[epoch], wall_start, progress, cuda_graphs)
    for run in todo:
        results[run.position] = _failed(run, started) if run.error is not None else run.record
    return results  # type: ignore[return-value]


def _prepare(runs: list[_Run]) -> None:
    """Data, noisy labels, losses and resume state of each run; the dataset is loaded once."""
    from .. import data as data_mod

    cfg = runs[0].config
    dataset = data_mod.load(cfg.dataset, root=cfg.data_dir)
    x_ref = None
    for run in runs:
        try:
            d = prepare_data(run.config, dataset=dataset)
            if x_ref is None:
                x_ref = d.x_train
            elif not torch.equal(d.x_train, x_ref):  # cannot happen for compatible configs
                raise RuntimeError("this run's training images differ from the pack's.")
            d.x_train = x_ref  # one copy of the images for the whole pack
            if run.checkpoint is not None and run.checkpoint.get("noise_sha256") != d.noise.get("sha256"):
                raise ValueError("the checkpoint's noisy labels differ from the ones drawn now; cannot resume.")
            run.data = d
            run.resolved = resolve_loss(run.config, d.num_classes)
            ck = run.checkpoint
            if ck is not None:
                run.history = list(ck["history"])
                run.start_epoch = int(ck["epoch"])
                run.train_seconds = float(ck["train_seconds"])
                run.train_images = int(ck["train_images"])
                run.prior_wall = float(ck["wall_seconds"])
        except Exception as e:
            run.error, run.error_tb = e, traceback.format_exc()


class _Pack:
    """The packed model, optimiser and scheduler of a group of runs (rebuilt when a run leaves)."""

    def __init__(self, runs: list[_Run], device: torch.device, model_states: list[dict],
                 opt_states: Optional[list[dict]], sched_state: Optional[dict], check: bool = False):
        from ..models import create_model
        from ..models.packed import PackedModel, check_packed

        cfg = runs[0].config
        d = runs[0].data
        self.runs = runs
        self.R = R = len(runs)
        K, C, S = d.num_classes, d.x_train.shape[1], d.x_train.shape[-1]
        template = create_model(cfg.model, num_classes=K, in_channels=C, image_size=S)
        has_conv = any(isinstance(m, nn.Conv2d) for m in template.modules())
        self.memory_format = torch.channels_last if (cfg.channels_last and has_conv) else torch.contiguous_format
        packed = PackedModel(template, R)
        for r, st in enumerate(model_states):
            packed.load_run_state_dict(r, st)
        if check:  # the architecture really packs: two runs' outputs, packed and alone
            singles = []
            for st in model_states[:2]:
                m = create_model(cfg.model, num_classes=K, in_channels=C, image_size=S)
                m.load_state_dict(st)
                singles.append(m)
            sub = PackedModel(template, len(singles))
            for r, st in enumerate(model_states[:2]):
                sub.load_run_state_dict(r, st)
            ex = torch.randn(2, C, S, S, generator=torch.Generator().manual_seed(0))
            check_packed(singles, sub, ex)
        self.model = packed.to(device=device, memory_format=self.memory_format)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.names = _param_names(self.model)
        # A loss preset may bring its own L1 weight and weight decay (ANL, JAL): per run. Equal weight
        # decays are SGD's own; different ones are applied per run slice before SGD's step (SGD's
        # weight decay is grad + wd * param, elementwise) with SGD's set to 0.
        wds = [run.resolved.weight_decay for run in runs]
        self.wd = torch.tensor(wds, device=device) if len(set(wds)) > 1 else None
        self.sgd_wd = 0.0 if self.wd is not None else wds[0]
        l1s = [run.resolved.l1_weight for run in runs]
        self.l1 = torch.tensor(l1s, device=device) if any(l1s) else None
        self.optimizer = torch.optim.SGD(self.params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                         weight_decay=self.sgd_wd)
        self.scheduler = _make_scheduler(cfg, self.optimizer)
        if opt_states is not None:
            self.optimizer.load_state_dict(_pack_optimizer_state(self.model, opt_states))
            for group in self.optimizer.param_groups:
                group["weight_decay"] = self.sgd_wd
        if sched_state is not None:
            self.scheduler.load_state_dict(sched_state)
        self.step_model = torch.compile(self.model) if cfg.compile else self.model
        self.loss_fns = [run.resolved.module.to(device) for run in runs]

    def run_states(self, r: int) -> tuple[dict, dict]:
        """Run ``r``'s model and optimiser state dicts, as the single engine's."""
        opt = _unpack_optimizer_state(self.model, self.optimizer.state_dict(), r)
        for group in opt["param_groups"]:
            group["weight_decay"] = self.runs[r].resolved.weight_decay
        return self.model.run_state_dict(r), opt

    @torch.no_grad()
    def weight_decay_(self) -> None:
        """Per-run weight decay into the gradients (when the runs' weight decays differ)."""
        if self.wd is None:
            return
        for p in self.params:
            if p.grad is not None:
                self.split(p.grad).add_(self.split(p) * self.wd.view(self.R, *([1] * p.dim())))

    def split(self, t: torch.Tensor) -> torch.Tensor:
        """A packed parameter (or gradient) as ``(R, …)``, a view."""
        return t.unflatten(0, (self.R, -1))

    def per_run_l1(self) -> torch.Tensor:
        return sum(self.split(p).abs().sum(dim=tuple(range(1, p.dim() + 1))) for p in self.params)

    @torch.no_grad()
    def clip_(self, max_norm: float) -> None:
        """``clip_grad_norm_`` per run: each run's gradients scaled by its own total norm."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return
        norms = torch.stack([torch.linalg.vector_norm(self.split(g), 2, dim=tuple(range(1, g.dim() + 1)))
                             for g in grads])  # (P, R)
        total = torch.linalg.vector_norm(norms, 2, dim=0)  # (R,)
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            self.split(g).mul_(coef.view(self.R, *([1] * g.dim())))


def _initial_states(runs: list[_Run]) -> tuple[list[dict], Optional[list[dict]], Optional[dict]]:
    """Each run's model as the engine builds it (its seed; its checkpoint when resuming)."""
    from ..models import create_model

    model_states, opt_states = [], []
    for run in runs:
        d = run.data
        torch.manual_seed(run.config.seed)
        m = create_model(run.config.model, num_classes=d.num_classes, in_channels=d.x_train.shape[1],
                         image_size=d.x_train.shape[-1])
        if run.checkpoint is not None:
            m.load_state_dict(run.checkpoint["model"])
            opt_states.append(run.checkpoint["optimizer"])
        model_states.append(m.state_dict())
    ck = runs[0].checkpoint
    if ck is None:
        return model_states, None, None
    return model_states, opt_states, ck["scheduler"]


@torch.inference_mode()
def _evaluate_pack(pack: _Pack, x: torch.Tensor, y: torch.Tensor, prep: _Normalise, batch_size: int,
                   autocast) -> torch.Tensor:
    """Test accuracy of every run of the pack (R,), as the engine's ``_evaluate`` per run."""
    model = pack.model
    model.eval()
    R = pack.R
    chunk = max(1, min(batch_size, _EVAL_IMAGES // R))
    correct = torch.zeros(R, dtype=torch.int64, device=x.device)
    for i in range(0, len(x), chunk):
        xb = prep(x[i : i + chunk])
        xb = xb.repeat(1, R, 1, 1).contiguous(memory_format=pack.memory_format)
        with autocast():
            out = model(xb)  # (R, b, K)
        correct += (out.argmax(2) == y[i : i + chunk]).sum(1)
    return correct.double() / len(x)


class _Stepper:
    """The training step of a pack: eager, or (on CUDA) replayed from a CUDA graph.

    Every operation of a step runs on the device and nothing waits for the host: the batch is
    gathered from the images on the device by index, augmented with the drawn parameters,
    normalised, run through the packed model (bf16 autocast when configured), each run's loss in
    float32, backward, per-run clipping, SGD, and the per-run statistics are accumulated in place.

    With ``graphs``, a full-size step is captured once per epoch (the learning rate is a constant
    of the captured SGD kernels) after ``WARMUP`` eager steps, and replayed with the batch's
    indices and augmentation parameters copied into static buffers; a short last batch runs
    eagerly. A capture that fails (an operation that cannot be captured) falls back to eager steps.
    """

    WARMUP = 3

    def __init__(self, pack: _Pack, cfg: TrainConfig, x_train: torch.Tensor, labels, augment, prep: _Normalise,
                 device: torch.device, graphs: bool):
        self.pack, self.cfg, self.x_train, self.augment, self.prep = pack, cfg, x_train, augment, prep
        self.y_noisy, self.y_clean = labels
        self.device, self.bs = device, cfg.batch_size
        R = pack.R
        self.loss_sum = torch.zeros(R, device=device)
        self.hit_noisy = torch.zeros(R, dtype=torch.int64, device=device)
        self.hit_clean = torch.zeros(R, dtype=torch.int64, device=device)
        self.bad = torch.zeros(R, dtype=torch.bool, device=device)
        self.graphs = graphs and device.type == "cuda" and not cfg.compile
        self.graph = None
        self.warm = 0
        self.static: Optional[tuple[torch.Tensor, dict]] = None
        self.pool = torch.cuda.graph_pool_handle() if self.graphs else None

    def autocast(self):
        if not self.cfg.amp:
            return contextlib.nullcontext()
        # no autocast weight cache inside a CUDA graph (it would hold the capture's casts)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=not self.graphs)

    def begin_epoch(self) -> None:
        for t in (self.loss_sum, self.hit_noisy, self.hit_clean, self.bad):
            t.zero_()
        self.graph = None  # recaptured with this epoch's learning rate

    def _step(self, idx: torch.Tensor, augp: Optional[dict], zero_grad: bool = True) -> None:
        pack, cfg, R = self.pack, self.cfg, self.pack.R
        m = idx.shape[1]
        xb = self.x_train[idx.t()]  # (m, R, C, H, W): sample b of run r
        C, H, W = xb.shape[2:]
        xb = xb.reshape(m * R, C, H, W).float().div_(255.0)
        if augp is not None:
            xb = apply_augmentation(self.augment, xb, augp)
        xb = ((xb - self.prep.mean) * self.prep.inv_std).view(m, R * C, H, W)
        xb = xb.contiguous(memory_format=pack.memory_format)
        yb = self.y_noisy.gather(1, idx)
        with self.autocast():
            logits = pack.step_model(xb)  # (R, m, K)
        lf = logits.float()
        losses = torch.stack([pack.loss_fns[r](lf[r], yb[r]) for r in range(R)])
        if pack.l1 is not None:
            losses = losses + pack.l1 * pack.per_run_l1()
        if zero_grad:
            pack.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if cfg.grad_clip is not None:
            pack.clip_(cfg.grad_clip)
        pack.weight_decay_()
        pack.optimizer.step()
        with torch.no_grad():
            ld = losses.detach()
            self.loss_sum.add_(ld * m)
            self.bad.logical_or_(~torch.isfinite(ld))
            pred = logits.argmax(2)
            self.hit_noisy.add_((pred == yb).sum(1))
            self.hit_clean.add_((pred == self.y_clean.gather(1, idx)).sum(1))

    def step(self, idx: torch.Tensor, augp: Optional[dict]) -> None:
        if not self.graphs or idx.shape[1] != self.bs:
            return self._step(idx, augp)
        if self.warm < self.WARMUP:  # warm-up steps (real ones) on a side stream, as CUDA graphs want
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._step(idx, augp)
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.warm += 1
            return None
        if self.static is None:
            self.static = (idx.clone(), {k: v.clone() for k, v in (augp or {}).items()})
        s_idx, s_aug = self.static
        s_idx.copy_(idx)
        for k, v in (augp or {}).items():
            s_aug[k].copy_(v)
        if self.graph is None:
            try:
                self.graph = self._capture(s_idx, s_aug if augp is not None else None)
            except Exception as e:  # something in the step cannot be captured: stay eager
                import warnings

                warnings.warn(f"CUDA graph capture of the pack's step failed ({type(e).__name__}: {e}); "
                              "training on without CUDA graphs.", RuntimeWarning, stacklevel=2)
                self.graphs, self.graph = False, None
                torch.cuda.synchronize(self.device)
                return self._step(idx, augp)
        self.graph.replay()
        return None

    def _capture(self, s_idx: torch.Tensor, s_aug: Optional[dict]):
        torch.cuda.synchronize(self.device)
        self.pack.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            self._step(s_idx, s_aug, zero_grad=False)
        return graph


def _graphs_wanted(cuda_graphs: Optional[bool]) -> bool:
    if cuda_graphs is not None:
        return bool(cuda_graphs)
    return os.environ.get("ASYMLOSS_CUDA_GRAPHS", "1").strip().lower() not in ("0", "false", "no", "off")


def _train_group(runs: list[_Run], wall_start: float, progress: bool, cuda_graphs: Optional[bool] = None) -> None:
    """Train ``runs`` (all at the same epoch) to the end; sets each run's ``record`` or ``error``."""
    cfg = runs[0].config
    device = resolve_device(cfg.device)
    d0 = runs[0].data
    K = d0.num_classes
    x_train = d0.x_train.to(device).contiguous()
    x_test, y_test = d0.x_test.to(device), d0.y_test.to(device)
    augment = build_augment(cfg)
    train_prep = _Normalise(d0.mean, d0.std, device, None)
    test_prep = _Normalise(d0.mean, d0.std, device)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if cfg.amp else contextlib.nullcontext
    n, bs = len(x_train), cfg.batch_size
    starts = list(range(0, n, bs))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()  # as the engine: a batch of one sample cannot be batch-normalised
    R0 = len(runs)
    graphs = _graphs_wanted(cuda_graphs)
    for run in runs:
        run.base = {
            "status": "running",
            "config": run.config.to_dict(),
            **environment(device),
            "loss": run.resolved.record(),
            "data": {"train_size": n, "test_size": len(x_test), "num_classes": K, "note": run.data.note},
            "noise": run.data.noise,
            "pack": {"runs": R0},
        }

    model_states, opt_states, sched_state = _initial_states(runs)
    for run in runs:
        run.checkpoint = None  # free it: the pack holds the state now
    pack = _Pack(runs, device, model_states, opt_states, sched_state, check=True)
    del model_states, opt_states
    stepper = _Stepper(pack, cfg, x_train, _stack_labels(pack, device), augment, train_prep, device, graphs)

    bar = _progress_bar(cfg, R0) if progress else None
    with bar or contextlib.nullcontext():
        task = bar.add_task("train", total=(cfg.epochs - runs[0].start_epoch) * len(starts), info="") if bar else None
        for epoch in range(runs[0].start_epoch, cfg.epochs):
            R = pack.R
            pack.model.train()
            t0 = time.perf_counter()
            perms, aug = [], []
            for run in pack.runs:
                order_gen = torch.Generator().manual_seed(_derive_seed(run.config.seed, epoch, 0))
                perms.append(torch.randperm(n, generator=order_gen))
                if augment.active:
                    aug_gen = torch.Generator(device=device).manual_seed(_derive_seed(run.config.seed, epoch, 1))
                    aug.append([draw_augmentation(augment, min(bs, n - s), aug_gen, device) for s in starts])
            perm = torch.stack(perms).to(device)  # (R, n)
            if augment.active:  # per batch: (m*R,) parameters, image b of run r at b*R + r
                aug = [{k: torch.stack([aug[r][j][k] for r in range(R)], 1).reshape(-1) for k in aug[0][j]}
                       for j in range(len(starts))]
            stepper.begin_epoch()
            seen = 0
            lr = pack.optimizer.param_groups[0]["lr"]
            for j, s in enumerate(starts):
                idx = perm[:, s : s + bs]  # (R, m)
                stepper.step(idx, aug[j] if augment.active else None)
                seen += idx.shape[1]
                if bar:
                    bar.advance(task)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch_seconds = time.perf_counter() - t0
            pack.scheduler.step()
            bad_l = stepper.bad.tolist()
            test_acc = _evaluate_pack(pack, x_test, y_test, test_prep, cfg.eval_batch_size, autocast).tolist()
            loss_l = (stepper.loss_sum / seen).tolist()
            noisy_l, clean_l = stepper.hit_noisy.tolist(), stepper.hit_clean.tolist()
            survivors = []
            for r, run in enumerate(pack.runs):
                if bad_l[r]:
                    run.error = FloatingPointError(
                        f"the training loss of run {run.config.config_hash()} ({run.config.loss}, {run.config.noise}, "
                        f"seed {run.config.seed}) became non-finite ({loss_l[r]}) in epoch {epoch + 1}; "
                        f"its record and checkpoint stay at epoch {epoch}.")
                    run.error_tb = ""
                    continue
                survivors.append(r)
                run.train_seconds += epoch_seconds
                run.train_images += seen
                entry = {
                    "epoch": epoch + 1, "lr": lr, "train_loss": loss_l[r], "train_acc_noisy": noisy_l[r] / seen,
                    "train_acc_clean": clean_l[r] / seen, "test_acc": test_acc[r], "seconds": epoch_seconds,
                }
                run.history.append(entry)
                wall = run.prior_wall + time.perf_counter() - wall_start
                done = epoch + 1 == cfg.epochs
                run.record = {**run.base, "status": "complete" if done else "running", "epochs": run.history,
                              "final": summarise_epochs(run.history, run.train_seconds, run.train_images, wall)}
                if run.out is not None:
                    model_sd, opt_sd = pack.run_states(r)
                    atomic_torch_save(run.out / CHECKPOINT, {
                        "epoch": epoch + 1, "config_hash": run.config.config_hash(),
                        "noise_sha256": run.data.noise.get("sha256"), "model": model_sd,
                        "optimizer": opt_sd, "scheduler": pack.scheduler.state_dict(),
                        "history": run.history, "train_seconds": run.train_seconds,
                        "train_images": run.train_images, "wall_seconds": wall,
                    })
                    atomic_write_json(run.out / RECORD, run.record)
            if bar:
                acc = sum(test_acc[r] for r in survivors) / max(1, len(survivors))
                bar.update(task, info=f"ep {epoch + 1}/{cfg.epochs} mean test {acc:.3f} "
                                      f"{seen * R / epoch_seconds:,.0f} img/s ({len(survivors)}/{R0} runs)")
            if len(survivors) < R:  # runs left the pack: rebuild it from the survivors' states
                if not survivors:
                    break
                states = [pack.run_states(r) for r in survivors]
                keep = [pack.runs[r] for r in survivors]
                sched = pack.scheduler.state_dict()
                del pack
                pack = _Pack(keep, device, [s[0] for s in states], [s[1] for s in states], sched)
                stepper = _Stepper(pack, cfg, x_train, _stack_labels(pack, device), augment, train_prep, device,
                                   stepper.graphs)
    for run in runs:
        if run.error is None and (run.record is None or run.record["status"] != "complete"):
            # killed between checkpoint and record cannot happen here; a resumed complete run returns early
            wall = run.prior_wall + time.perf_counter() - wall_start
            run.record = {**run.base, "status": "complete", "epochs": run.history,
                          "final": summarise_epochs(run.history, run.train_seconds, run.train_images, wall)}
            if run.out is not None:
                atomic_write_json(run.out / RECORD, run.record)


def _stack_labels(pack: _Pack, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    y_noisy = torch.stack([run.data.y_noisy for run in pack.runs]).to(device)
    y_clean = torch.stack([run.data.y_clean for run in pack.runs]).to(device)
    return y_noisy, y_clean


def _progress_bar(config: TrainConfig, runs: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"[bold]pack of {runs}[/] {config.protocol}"), BarColumn(bar_width=16), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TextColumn("ETA"), TimeRemainingColumn(compact=True),
    )
