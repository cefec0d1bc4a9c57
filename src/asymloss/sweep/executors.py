"""Executors: where the runs of a sweep execute, behind one small interface.

An :class:`Executor` accepts :class:`RunTask` s with :meth:`~Executor.submit`, reports finished
ones with :meth:`~Executor.wait` and returns each task's outcome (a small dict) with
:meth:`~Executor.result`. Every executor calls the same picklable function,
:func:`execute_task`, which runs ``run_fn(config_dict, out_dir) -> record`` (by default the
training engine, :func:`default_run_fn`) and turns an exception into ``out_dir/error.json``.

- ``local`` (default): a ``concurrent.futures`` process pool (``spawn`` context) sized to the
  machine; CPU threads are divided between the workers (``torch.set_num_threads`` in the worker);
  with CUDA, several small runs share each GPU (``runs_per_gpu``).
- ``ray``: the same function as Ray tasks on an existing cluster (``address="auto"`` or
  ``"HOST:PORT"``), with ``num_cpus`` per task and fractional ``num_gpus`` when the cluster has
  GPUs. The store directory must be reachable from every node (a shared file system).

    >>> ex = create_executor("local", max_workers=2)       # doctest: +SKIP
"""
from __future__ import annotations

import abc
import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .._io import atomic_write_json
from .._validation import check_number, unknown_name_error

__all__ = [
    "RunTask",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "create_executor",
    "list_executors",
    "execute_task",
    "default_run_fn",
    "cpu_count",
]

RunFn = Callable[[dict, str], dict]


def default_run_fn(config: dict, out_dir: str) -> dict:
    """The real run function: ``asymloss.train.train`` on the config, resuming in ``out_dir``."""
    from ..train import TrainConfig, train

    return train(TrainConfig.from_dict(config), out_dir, progress=False, resume=True)


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class RunTask:
    """One run to execute: the id, the config as a dict, the output directory and resources."""

    run_id: str
    config: dict
    out_dir: str
    threads: int = 1
    gpu: Optional[int] = None


# -- the worker side ------------------------------------------------------------------------------


class _RunLock:
    """An exclusive advisory lock on ``out_dir/.lock`` (POSIX): two processes never run one run."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / ".lock"
        self.fd: Optional[int] = None

    def __enter__(self) -> "_RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None


def execute_task(run_fn: Optional[RunFn], task: RunTask) -> dict:
    """Run one task in the current (worker) process and return its outcome.

    The outcome is ``{"id", "status": "complete"|"failed", "final", "error", "seconds"}``.
    Exceptions from ``run_fn`` are caught and written to ``out_dir/error.json`` (with the
    traceback) so one failing run never stops the others. A record returned by a run function
    that did not write ``record.json`` itself is written for it (atomically).
    """
    run_fn = run_fn or default_run_fn
    out = Path(task.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    try:
        import torch

        torch.set_num_threads(max(1, int(task.threads)))
        if task.gpu is not None and torch.cuda.is_available():
            torch.cuda.set_device(task.gpu)
    except Exception:  # pragma: no cover - torch always importable here
        pass
    with _RunLock(out):
        try:
            record = run_fn(dict(task.config), str(out))
            if not isinstance(record, dict):
                raise TypeError(f"the run function returned {type(record).__name__}, not a run record (dict)")
            if not (out / "record.json").exists():
                atomic_write_json(out / "record.json", record)
            if record.get("status") != "complete":
                raise RuntimeError(f"the run ended with status {record.get('status')!r}, not 'complete'")
            return {"id": task.run_id, "status": "complete", "final": record.get("final"),
                    "error": None, "seconds": time.time() - start}
        except Exception as e:  # one failing run must not stop the others
            error = error_info(task.run_id, e, traceback.format_exc(), start)
            atomic_write_json(out / "error.json", error)
            return {"id": task.run_id, "status": "failed", "final": None,
                    "error": error["error"], "seconds": time.time() - start}


def error_info(run_id: str, exc: BaseException, tb: str, start: float) -> dict:
    """The content of ``error.json``."""
    return {
        "id": run_id,
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "type": type(exc).__name__,
        "traceback": tb,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": time.time() - start,
    }


def _orphan_watchdog(parent_pid: int) -> None:
    while True:
        time.sleep(0.25)
        if os.getppid() != parent_pid:  # the sweep process died (e.g. SIGKILL): stop at once
            os._exit(70)


def _init_worker(parent_pid: int, threads: int) -> None:
    """Pool initializer: one thread budget per worker; exit when the sweep process dies."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    # Ctrl-C reaches the whole process group: the sweep process handles it (and stops the workers,
    # whose runs stay resumable); a worker must not die of it half-way, printing tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # likewise a scheduler's SIGTERM to the group
    threading.Thread(target=_orphan_watchdog, args=(parent_pid,), daemon=True).start()


# -- the driver side ------------------------------------------------------------------------------


class Executor(abc.ABC):
    """Runs :class:`RunTask` s concurrently. ``capacity`` is how many run at once."""

    name: str = "executor"
    capacity: int = 1
    threads_per_run: int = 1

    @abc.abstractmethod
    def submit(self, task: RunTask) -> Any:
        """Start ``task``; return a handle."""

    @abc.abstractmethod
    def wait(self, handles: list, timeout: float) -> list:
        """The handles among ``handles`` that have finished (waits up to ``timeout`` seconds)."""

    @abc.abstractmethod
    def result(self, handle: Any) -> dict:
        """The outcome of a finished task; raises if the task's worker itself died."""

    def gpu_slot(self) -> Optional[int]:
        """The GPU index the next task should use (local executor), or ``None``."""
        return None

    def release(self, task: RunTask) -> None:
        """Called when ``task`` has finished (frees its GPU slot)."""

    def describe(self) -> str:
        return f"{self.name}: {self.capacity} runs at once, {self.threads_per_run} thread(s) each"

    def close(self, cancel: bool = False) -> None:
        """Release the workers; ``cancel`` stops running tasks (their runs stay resumable)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(cancel=exc[0] is not None)


class LocalExecutor(Executor):
    """A process pool on this machine (``spawn`` start method).

    Parameters
    ----------
    run_fn : picklable ``(config_dict, out_dir) -> record``; ``None`` is the training engine.
    max_workers : runs at once. Default: with CUDA, ``runs_per_gpu`` × the number of GPUs; else
        the number of CPUs (at most ``num_runs`` when given).
    threads_per_run : torch CPU threads per run. Default: CPUs // max_workers (at least 1).
    runs_per_gpu : runs sharing one GPU when CUDA is present (default 2).
    num_runs : the number of runs the sweep will execute (bounds the default pool size).
    """

    name = "local"

    def __init__(self, run_fn: Optional[RunFn] = None, *, max_workers: Optional[int] = None,
                 threads_per_run: Optional[int] = None, runs_per_gpu: int = 2,
                 num_runs: Optional[int] = None, use_gpu: Optional[bool] = None) -> None:
        if max_workers is not None:
            check_number("max_workers", max_workers, ge=1, integer=True)
        if threads_per_run is not None:
            check_number("threads_per_run", threads_per_run, ge=1, integer=True)
        check_number("runs_per_gpu", runs_per_gpu, ge=1, integer=True)
        self.run_fn = run_fn
        cpus = cpu_count()
        self.num_gpus = _cuda_device_count() if use_gpu is not False else 0
        if max_workers is None:
            max_workers = self.num_gpus * runs_per_gpu if self.num_gpus else cpus
            if num_runs:
                max_workers = max(1, min(max_workers, num_runs))
        self.capacity = max_workers
        self.threads_per_run = threads_per_run or max(1, cpus // max_workers)
        self._gpu_load = [0] * self.num_gpus
        self._task_gpu: dict[str, Optional[int]] = {}
        self._pool: Optional[cf.ProcessPoolExecutor] = None

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.capacity,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(), self.threads_per_run),
            )
        return self._pool

    def gpu_slot(self) -> Optional[int]:
        if not self.num_gpus:
            return None
        gpu = min(range(self.num_gpus), key=lambda i: self._gpu_load[i])
        return gpu

    def submit(self, task: RunTask) -> cf.Future:
        if task.gpu is not None:
            self._gpu_load[task.gpu] += 1
        self._task_gpu[task.run_id] = task.gpu
        try:
            return self._ensure_pool().submit(execute_any, self.run_fn, task)
        except cf.process.BrokenProcessPool:
            self._discard_pool()
            return self._ensure_pool().submit(execute_any, self.run_fn, task)

    def release(self, task: RunTask) -> None:
        gpu = self._task_gpu.pop(task.run_id, None)
        if gpu is not None:
            self._gpu_load[gpu] -= 1

    def wait(self, handles: list, timeout: float) -> list:
        if not handles:
            return []
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: cf.Future) -> dict:
        try:
            return handle.result()
        except cf.process.BrokenProcessPool:
            self._discard_pool()  # recreated on the next submit
            raise

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            procs = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            # SIGKILL: the workers ignore SIGINT/SIGTERM (see _init_worker), and a worker left alive
            # would go on training (and could finish a run) after the sweep has counted its runs.
            # Every file is written atomically, so the runs stay resumable from their last checkpoint.
            for p in procs:
                if p.is_alive():
                    p.kill()
            for p in procs:
                p.join(timeout=30)
        else:
            pool.shutdown(wait=True)


def _cuda_device_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover
        return 0


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "the 'ray' executor needs Ray: install it with `pip install 'asymloss[ray]'` "
            "(or `pip install 'ray[default]'`)."
        ) from e
    return ray


class RayExecutor(Executor):
    """Ray tasks on an existing cluster.

    Parameters
    ----------
    run_fn : as for :class:`LocalExecutor`.
    address : ``"auto"`` (the cluster this node belongs to) or ``"HOST:PORT"`` of its head.
    threads_per_run : ``num_cpus`` of each task and its torch threads (default 1).
    gpus_per_run : ``num_gpus`` of each task when the cluster has GPUs (default 0.25, so four
        small runs share a GPU); ignored on a CPU-only cluster.
    max_workers : runs in flight at once (default: cluster CPUs // threads_per_run).
    """

    name = "ray"

    def __init__(self, run_fn: Optional[RunFn] = None, *, address: Optional[str] = "auto",
                 threads_per_run: Optional[int] = None, gpus_per_run: Optional[float] = None,
                 max_workers: Optional[int] = None, num_runs: Optional[int] = None) -> None:
        if threads_per_run is not None:
            check_number("threads_per_run", threads_per_run, ge=1, integer=True)
        if gpus_per_run is not None:
            check_number("gpus_per_run", gpus_per_run, gt=0, le=1)
        if max_workers is not None:
            check_number("max_workers", max_workers, ge=1, integer=True)
        ray = _import_ray()
        self._ray = ray
        self.run_fn = run_fn
        self.address = address or "auto"
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            except ConnectionError as e:
                raise ConnectionError(
                    f"address={self.address!r}: no Ray cluster reachable there. Start one with "
                    "`ray start --head` (and `ray start --address HEAD:PORT` on the other nodes), "
                    "then pass --address auto or HOST:PORT."
                ) from e
        resources = ray.cluster_resources()
        self.threads_per_run = threads_per_run or 1
        self.num_gpus = float(resources.get("GPU", 0))
        self.gpus_per_run = (gpus_per_run or 0.25) if self.num_gpus > 0 else 0.0
        cpus = int(resources.get("CPU", 1))
        cap = max(1, cpus // self.threads_per_run)
        if self.gpus_per_run:
            cap = max(cap, int(self.num_gpus / self.gpus_per_run))
        self.capacity = max_workers or cap
        self._remote_fn = ray.remote(_ray_execute)
        self._remote = self._remote_fn.options(
            num_cpus=self.threads_per_run, num_gpus=self.gpus_per_run, max_retries=0
        )

    def describe(self) -> str:
        gpu = f", {self.gpus_per_run:g} GPU each" if self.gpus_per_run else ""
        return f"ray ({self.address}): {self.capacity} runs at once, {self.threads_per_run} CPU(s){gpu}"

    def submit(self, task: RunTask) -> Any:
        n = len(getattr(task, "run_ids", ())) or 1  # a pack (PackTask) gets the GPU share of its runs
        remote = self._remote
        if n > 1 and self.gpus_per_run:
            remote = self._remote_fn.options(num_cpus=self.threads_per_run, max_retries=0,
                                             num_gpus=min(1.0, self.gpus_per_run * n))
        return remote.remote(self.run_fn, task)

    def wait(self, handles: list, timeout: float) -> list:
        if not handles:
            return []
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
        return list(ready)

    def result(self, handle: Any) -> dict:
        return self._ray.get(handle)

    def close(self, cancel: bool = False, handles: Optional[list] = None) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()


def _ray_execute(run_fn: Optional[RunFn], task: RunTask) -> dict:
    return execute_any(run_fn, task)


def execute_any(run_fn: Optional[RunFn], task: Any) -> Any:
    """:func:`execute_task` for a :class:`RunTask`; ``sweep.packs.execute_pack`` (a list of
    outcomes) for a ``PackTask``."""
    if isinstance(task, RunTask):
        return execute_task(run_fn, task)
    from .packs import execute_pack

    return execute_pack(run_fn, task)


_EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def list_executors() -> list[str]:
    """Names of the executors."""
    return sorted(_EXECUTORS)


def create_executor(name: str = "local", run_fn: Optional[RunFn] = None, **kwargs: Any) -> Executor:
    """The executor ``name`` (``local`` or ``ray``) with its keyword arguments."""
    if name not in _EXECUTORS:
        raise unknown_name_error("executor", name, _EXECUTORS)
    return _EXECUTORS[name](run_fn, **kwargs)
