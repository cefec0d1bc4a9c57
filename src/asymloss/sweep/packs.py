"""Packed sweeps: compatible runs of a sweep grouped into packs, one pack per executor task.

A pack (``asymloss.train.pack``, docs/packing.md) trains R compatible runs as one packed model in
one process; each run keeps its own ``store/runs/<id>`` (record, checkpoint, ``error.json``), so
resume, ``--retry-failed``, the store and the tables work per run exactly as without packing.

``pack`` is ``"auto"`` or a maximum pack size N (1 = no packing):

- ``auto`` packs only where packing has been measured to be faster: on CUDA, for the models of
  :data:`AUTO_PACK_CUDA`; on a CPU a pack is slower than one run per process (docs/packing.md), so
  ``auto`` is 1 there. A custom run function (``run_fn``) is never packed by ``auto``.
- With N, compatible runs (equal :func:`~asymloss.train.pack.pack_key`) are grouped into packs of
  at most N runs, split evenly; the packs are spread over the executor's slots.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .._io import atomic_write_json
from .._validation import check_number
from .executors import RunFn, RunTask, _RunLock, error_info, execute_task

__all__ = ["PackTask", "execute_pack", "plan_packs", "check_pack", "resolve_pack_size", "make_task", "AUTO_PACK_CUDA"]

#: ``--pack auto`` on CUDA: the largest pack per model. The paper's small CNNs use a small
#: fraction of a GPU per run, so a pack fills it; the ResNets fill a GPU alone (docs/packing.md).
AUTO_PACK_CUDA = {"cnn4": 16, "cnn8": 16, "mlp": 16}


@dataclass(frozen=True)
class PackTask:
    """Several compatible runs to execute together as one pack (one process, one device)."""

    run_ids: tuple
    configs: tuple
    out_dirs: tuple
    threads: int = 1
    gpu: Optional[int] = None

    @property
    def run_id(self) -> str:  # the executors key their bookkeeping by it
        return "pack:" + "+".join(self.run_ids)

    def __len__(self) -> int:
        return len(self.run_ids)


def _setup_worker(task: PackTask) -> None:
    try:
        import torch

        torch.set_num_threads(max(1, int(task.threads)))
        if task.gpu is not None and torch.cuda.is_available():
            torch.cuda.set_device(task.gpu)
    except Exception:  # pragma: no cover
        pass


def execute_pack(run_fn: Optional[RunFn], task: PackTask) -> list[dict]:
    """Run a pack in the current (worker) process; one outcome per run (as :func:`execute_task`).

    With the default run function the runs train as one pack (``asymloss.train.pack.train_pack``):
    a run that fails (its loss became non-finite) gets its ``error.json`` and the others go on; an
    error of the pack as a whole (out of memory, say) fails every run of it. A custom ``run_fn``
    cannot be packed: its runs execute one after the other in this worker.
    """
    if run_fn is not None:
        return [execute_task(run_fn, RunTask(rid, cfg, out, task.threads, task.gpu))
                for rid, cfg, out in zip(task.run_ids, task.configs, task.out_dirs)]
    from ..train.pack import train_pack

    outs = [Path(o) for o in task.out_dirs]
    for o in outs:
        o.mkdir(parents=True, exist_ok=True)
    _setup_worker(task)
    start = time.time()
    locks = [_RunLock(o) for o in sorted(outs)]  # a fixed order: two packs never deadlock
    for lock in locks:
        lock.__enter__()
    try:
        try:
            results = train_pack([dict(c) for c in task.configs], outs, progress=False, resume=True)
        except Exception as e:  # the pack as a whole failed: every run of it did
            tb = traceback.format_exc()
            outcomes = []
            for rid, out in zip(task.run_ids, outs):
                err = error_info(rid, e, tb, start)
                err["pack"] = list(task.run_ids)
                atomic_write_json(out / "error.json", err)
                outcomes.append({"id": rid, "status": "failed", "final": None, "error": err["error"],
                                 "seconds": time.time() - start})
            return outcomes
        outcomes = []
        for rid, rec in zip(task.run_ids, results):
            ok = rec.get("status") == "complete"
            outcomes.append({"id": rid, "status": "complete" if ok else "failed",
                             "final": rec.get("final") if ok else None,
                             "error": None if ok else rec.get("error"), "seconds": time.time() - start})
        return outcomes
    finally:
        for lock in reversed(locks):
            lock.__exit__(None, None, None)


def check_pack(pack: Union[int, str, None]) -> Union[int, str]:
    """``pack`` validated: ``"auto"`` or an integer >= 1 (``None`` is 1); a clear error otherwise."""
    if pack is None:
        return 1
    if isinstance(pack, str):
        if pack.strip().lower() == "auto":
            return "auto"
        try:
            pack = int(pack)
        except ValueError:
            raise ValueError(f"pack must be 'auto' or a positive integer; got {pack!r}.") from None
    check_number("pack", pack, ge=1, integer=True)
    return int(pack)


def resolve_pack_size(pack: Union[int, str, None], configs: Sequence[Any], *, cuda: bool,
                      slots: int = 1, custom_run_fn: bool = False) -> int:
    """The maximum pack size for ``configs`` (``TrainConfig`` s of one pack key).

    An integer is taken as is. ``"auto"`` is 1 on a CPU and for a custom run function; on CUDA it
    is :data:`AUTO_PACK_CUDA` for the model (1 for others), but never so large that fewer packs
    than executor ``slots`` are made (runs spread over the GPUs before they pack)."""
    pack = check_pack(pack)
    if pack != "auto":
        return pack
    if custom_run_fn or not cuda or not configs or configs[0].device == "cpu":
        return 1
    cap = AUTO_PACK_CUDA.get(configs[0].model, 1)
    return max(1, min(cap, -(-len(configs) // max(1, slots))))


def plan_packs(runs: list, pack: Union[int, str, None], *, cuda: bool, slots: int = 1,
               custom_run_fn: bool = False) -> list[list]:
    """``runs`` (sweep :class:`~asymloss.sweep.grid.Run` s) grouped into packs (lists of runs)."""
    from ..train.pack import group_packs, pack_key

    if check_pack(pack) == 1:
        return [[r] for r in runs]
    by_key: dict[tuple, list] = {}
    for r in runs:
        by_key.setdefault(pack_key(r.config), []).append(r)
    groups: list[list] = []
    for members in by_key.values():
        size = resolve_pack_size(pack, [r.config for r in members], cuda=cuda, slots=slots,
                                 custom_run_fn=custom_run_fn)
        groups += [[members[i] for i in idx] for idx in group_packs([r.config for r in members], size)]
    return groups


def make_task(group: list, store, threads: int, gpu: Optional[int]) -> Union[RunTask, PackTask]:
    """A :class:`RunTask` for a group of one run, else a :class:`PackTask`."""
    if len(group) == 1:
        run = group[0]
        return RunTask(run.id, run.config.to_dict(), str(store.run_dir(run.id)), threads=threads, gpu=gpu)
    return PackTask(tuple(r.id for r in group), tuple(r.config.to_dict() for r in group),
                    tuple(str(store.run_dir(r.id)) for r in group), threads=threads, gpu=gpu)


def cuda_available_for(executor) -> bool:
    """Whether the runs of ``executor`` will have CUDA (local: this machine; Ray: the cluster)."""
    return bool(getattr(executor, "num_gpus", 0))
