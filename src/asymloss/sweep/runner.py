"""Running a sweep: skip complete runs, resume unfinished ones, record failures, show progress."""
from __future__ import annotations

import os
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .._extras import require
from .._validation import check_choice
from .executors import Executor, RunFn, create_executor, error_info, list_executors
from .grid import Grid, Run, build_grid, expand_grid
from .packs import check_pack, cuda_available_for, make_task, plan_packs
from .store import ResultsStore

__all__ = ["run_sweep", "SweepSummary", "SweepInterrupted", "plan_sweep", "check_sweep", "check_store_dir",
           "unreadable_checkpoints"]


@dataclass
class SweepSummary:
    """What :func:`run_sweep` did. ``results`` is the consolidated table (``load_results``)."""

    store: str
    total: int
    skipped: int = 0
    completed: int = 0
    failed: int = 0
    failed_ids: list = field(default_factory=list)
    seconds: float = 0.0
    executor: str = ""
    results: Any = None

    @property
    def ok(self) -> bool:
        return self.failed == 0


def plan_sweep(runs: list[Run], store: ResultsStore, *, retry_failed: bool = False) -> dict[str, list[Run]]:
    """Split ``runs`` into ``skip`` (complete, or failed without retry) and ``todo`` lists."""
    plan: dict[str, list[Run]] = {"todo": [], "complete": [], "failed": []}
    for run in runs:
        status = store.status(run.id)
        if status == "complete":
            plan["complete"].append(run)
        elif status == "failed" and not retry_failed:
            plan["failed"].append(run)
        else:
            plan["todo"].append(run)
    return plan


class _Progress:
    """Rich progress of a sweep: runs done / running / failed, elapsed time and ETA.

    The bar advances by epochs (read from the records of the running runs), so the ETA is
    meaningful long before the first run finishes."""

    def __init__(self, enabled: bool, total_epochs: int, n_runs: int, console: Any = None):
        self.enabled = enabled and n_runs > 0
        self.n_runs = n_runs
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(bar_width=16),
            TextColumn("{task.fields[done]}/{task.fields[n]} done · {task.fields[running]} running · "
                       "[red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("sweep", total=max(total_epochs, 1), done=0, n=n_runs,
                                           running=0, failed=0)
        self.progress.start()

    def update(self, epochs_done: int, done: int, running: int, failed: int) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=epochs_done, done=done, running=running, failed=failed)

    def stop(self) -> None:
        if self.enabled:
            self.progress.stop()


def _epochs_done(store: ResultsStore, run_id: str) -> int:
    rec = store.read_record(run_id)
    return len(rec.get("epochs") or []) if rec else 0


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_sweep`. ``summary`` says how many runs finished before it; the
    unfinished runs stay resumable (running the sweep again continues them)."""

    def __init__(self, summary: SweepSummary, unfinished: int):
        super().__init__(f"sweep interrupted: {summary.completed} run(s) finished, {unfinished} unfinished")
        self.summary = summary
        self.unfinished = unfinished


def check_store_dir(out: Union[str, os.PathLike]) -> Path:
    """The store directory ``out`` may exist (resumed) but must not be a file."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"out {str(path)!r} is a file, not a directory; give a directory for the results store "
            "(it is created if absent, resumed if it holds one)."
        )
    if path.is_dir() and (path / "runs").exists() and not (path / "runs").is_dir():
        raise NotADirectoryError(f"out {str(path)!r} is not a results store: its 'runs' is a file.")
    return path


def unreadable_checkpoints(runs: list[Run], store: ResultsStore) -> dict[str, str]:
    """``{run id: reason}`` for the unfinished runs of ``store`` whose checkpoint cannot be read."""
    from ..train import CheckpointError, RunDirError, inspect_run

    bad = {}
    for run in runs:
        if store.status(run.id) in ("complete", "pending") or not store.run_dir(run.id).is_dir():
            continue
        try:
            inspect_run(store.run_dir(run.id), run.config)
        except CheckpointError as e:
            bad[run.id] = str(e).split(" and ", 1)[0]
        except RunDirError:
            pass  # another configuration under this id cannot happen (the id is the config's hash)
    return bad


def check_sweep(runs: list[Run], store: Union[ResultsStore, str, os.PathLike, None] = None, *,
                load_data: bool = True, check_device: bool = True, restart_unreadable: bool = False) -> None:
    """What every run would otherwise fail on in a worker, checked in this process before anything
    starts: the configuration of each run (:func:`asymloss.train.check_config` without data or
    device), each distinct device once (``check_device``), each dataset once — present and readable
    — with every run's subset and noise against it (``load_data``), and, in ``store``, that each
    unfinished run's checkpoint can be read (else :class:`~asymloss.train.CheckpointError`, unless
    ``restart_unreadable``). Raises the first problem found, naming the run's loss and noise.
    """
    from ..train.checks import check_config, check_data
    from ..train.engine import resolve_device

    seen: set = set()
    for run in runs:  # cheap: every distinct (loss, noise) of the grid was checked by expand_grid
        cfg = run.config
        key = cfg.replace(seed=0, noise_seed=None).config_hash()  # the seeds change no check
        if key in seen:
            continue
        seen.add(key)
        _named(run, check_config, cfg, load_data=False, check_device=False)
    if check_device:
        for device in sorted({r.config.device for r in runs}):
            resolve_device(device)
    if load_data:
        from ..data import load

        by_data: dict[tuple, list[Run]] = {}
        for run in runs:
            by_data.setdefault((run.config.dataset, run.config.data_dir), []).append(run)
        for (name, root), group in by_data.items():
            ds = load(name, root=root)  # once per dataset: present, readable, checksums where known
            done: set = set()
            for run in group:
                key = (run.config.subset, run.config.noise)
                if key not in done:
                    done.add(key)
                    _named(run, check_data, run.config, ds)
            del ds
    if store is not None and not restart_unreadable:
        bad = unreadable_checkpoints(runs, store if isinstance(store, ResultsStore) else ResultsStore(store))
        if bad:
            from ..train import CheckpointError

            listed = "; ".join(f"{rid}: {why}" for rid, why in bad.items())
            raise CheckpointError(
                f"{len(bad)} unfinished run(s) have an unreadable checkpoint and cannot resume ({listed}). Run the "
                "sweep again with --restart-unreadable (restart_unreadable=True) to start them from epoch 0; "
                "the damaged files are kept beside them as checkpoint.pt.damaged."
            )


def _named(run: Run, check, *args, **kwargs) -> None:
    """Run a check; its error names the run (loss label, noise, seed)."""
    try:
        check(*args, **kwargs)
    except (KeyError, ValueError, TypeError, RuntimeError, OSError) as e:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        where = f"run {run.label} / {run.config.noise} / seed {run.config.seed}"
        if msg.startswith(("loss ", "noise ")):
            raise
        try:
            new = type(e)(f"{where}: {msg}")
        except Exception:  # an exception type that does not take one message
            raise e from None
        raise new from e


def run_sweep(
    grid: Union[Grid, str, list, None] = None,
    out: Union[str, os.PathLike, None] = None,
    *,
    executor: Union[str, Executor] = "local",
    run_fn: Optional[RunFn] = None,
    max_workers: Optional[int] = None,
    threads_per_run: Optional[int] = None,
    gpus_per_run: Optional[float] = None,
    address: Optional[str] = None,
    retry_failed: bool = False,
    progress: bool = True,
    console: Any = None,
    poll_s: float = 0.5,
    runs: Optional[list[Run]] = None,
    check: Optional[bool] = None,
    restart_unreadable: bool = False,
    pack: Union[int, str, None] = "auto",
) -> SweepSummary:
    """Run every run of ``grid`` into the store ``out``; return a :class:`SweepSummary`.

    ``grid`` is a :class:`Grid`, a named grid / grid file (see :func:`build_grid`), or a list of
    :class:`Run` s. Complete runs are skipped; unfinished ones resume from their checkpoint (the
    run function, by default ``asymloss.train.train``, resumes in ``store/runs/<id>``); failed
    runs are skipped unless ``retry_failed``. A failing run is recorded in its ``error.json`` and
    the others go on. After every finished run ``results.sqlite`` is rewritten (atomically).

    ``executor`` is ``"local"`` (process pool), ``"ray"`` (``address``: ``"auto"`` or
    ``"HOST:PORT"``) or an :class:`Executor`; ``run_fn`` is a picklable
    ``(config_dict, out_dir) -> record``. ``runs`` (already expanded from ``grid``) skips the
    expansion.

    ``pack`` (``"auto"`` or a maximum pack size; 1 = no packing) trains compatible runs together
    as packs, one pack per executor task (``asymloss.sweep.packs``, docs/packing.md); ``auto``
    packs only on CUDA. Records, resume, failures and the store stay per run.

    Before anything starts, :func:`check_sweep` checks the runs still to do (``check``; default:
    when the run function is the training engine): the device (local executor), each dataset once,
    and the checkpoints of unfinished runs — an unreadable one is an error unless
    ``restart_unreadable``, which starts those runs again (keeping the damaged files beside them).
    Ctrl-C raises :class:`SweepInterrupted`, whose ``summary`` counts the runs that finished.

    >>> summary = run_sweep(build_grid(protocol="paper-mnist", losses="ce",   # doctest: +SKIP
    ...                                overrides={"epochs": 1, "subset": 512}), "store")
    """
    if out is None:
        raise ValueError("out: the results store directory is required.")
    require("pandas")  # the store's results table: a missing pandas is reported before anything starts
    if isinstance(executor, str):
        check_choice("executor", executor, list_executors())
    pack = check_pack(pack)
    if isinstance(grid, list):
        runs, grid_obj = list(grid), None
    else:
        grid_obj = grid if isinstance(grid, Grid) else build_grid(grid)
        if runs is None:
            runs = expand_grid(grid_obj)  # validates everything before anything starts
    store = ResultsStore(check_store_dir(out))
    plan = plan_sweep(runs, store, retry_failed=retry_failed)  # reads only
    todo = plan["todo"]
    if check is None:
        check = run_fn is None and not isinstance(executor, Executor)
    if check:  # what would fail in every worker fails here, once, before the store is written
        local = executor == "local"
        check_sweep(todo, store, load_data=local, check_device=local, restart_unreadable=restart_unreadable)
    if restart_unreadable:
        from ..train import restart_run

        for rid in unreadable_checkpoints(todo, store):
            restart_run(store.run_dir(rid), next(r.config for r in todo if r.id == rid))
    summary = SweepSummary(store=str(store.root), total=len(runs), skipped=len(runs) - len(todo))
    start = time.time()
    if not todo:
        store.register(grid_obj, runs)
        summary.results = store.consolidate()
        return summary

    # the executor first (it may fail: Ray missing, no cluster), then the store is written
    if isinstance(executor, Executor):
        ex = executor
    elif executor == "local":
        ex = create_executor("local", run_fn, max_workers=max_workers, threads_per_run=threads_per_run,
                             num_runs=len(todo))
    else:
        ex = create_executor("ray", run_fn, address=address, threads_per_run=threads_per_run,
                             gpus_per_run=gpus_per_run, max_workers=max_workers, num_runs=len(todo))
    groups = plan_packs(todo, pack, cuda=cuda_available_for(ex), slots=ex.capacity, custom_run_fn=run_fn is not None)
    if len(groups) < len(todo) and executor == "local" and max_workers is None and threads_per_run is None:
        ex = create_executor("local", run_fn, num_runs=len(groups))  # sized to the packs (no pool yet)
    summary.executor = ex.describe()
    if len(groups) < len(todo):
        summary.executor += f"; {len(todo)} runs in {len(groups)} packs"
    try:
        if check and executor == "ray" and getattr(ex, "num_gpus", 0) == 0 and any(
                r.config.device.startswith("cuda") for r in todo):
            raise RuntimeError("device 'cuda' was requested but the Ray cluster has no GPUs; use --set device=cpu "
                               "or auto.")
        store.register(grid_obj, runs)
    except BaseException:
        ex.close(cancel=True)
        raise
    if console is not None and progress:
        console.print(f"[bold]{len(runs)}[/] runs: {len(plan['complete'])} complete, "
                      f"{len(plan['failed'])} failed (skipped), {len(todo)} to run on {summary.executor}")

    total_epochs = sum(r.config.epochs for r in todo)
    bar = _Progress(progress, total_epochs, len(todo), console)
    queue = deque(groups)
    inflight: dict[Any, tuple[list[Run], Any]] = {}
    finished_epochs = 0
    done = failed = 0
    interrupted = True
    try:
        while queue or inflight:
            while queue and len(inflight) < ex.capacity:
                group = queue.popleft()  # one run, or a pack of runs
                if retry_failed:
                    for run in group:
                        store.clear_error(run.id)
                task = make_task(group, store, ex.threads_per_run, ex.gpu_slot())
                inflight[ex.submit(task)] = (group, task)
            for handle in ex.wait(list(inflight), timeout=poll_s):
                group, task = inflight.pop(handle)
                ex.release(task)
                try:
                    outcomes = ex.result(handle)
                    outcomes = outcomes if isinstance(outcomes, list) else [outcomes]
                except Exception as e:  # the worker process itself died (OOM, signal, ...)
                    tb, outcomes = traceback.format_exc(), []
                    for run in group:
                        err = error_info(run.id, e, tb, start)
                        err["error"] = (f"{type(e).__name__}: the worker running this run died ({e}); "
                                        "possibly caused by another run of the same pool")
                        store.write_error(run.id, err)
                        outcomes.append({"status": "failed", "error": err["error"]})
                for run, outcome in zip(group, outcomes):
                    if outcome.get("status") == "complete":
                        done += 1
                    else:
                        failed += 1
                        summary.failed_ids.append(run.id)
                    finished_epochs += run.config.epochs
                store.consolidate()
            running_epochs = sum(_epochs_done(store, r.id) for g, _ in inflight.values() for r in g)
            bar.update(finished_epochs + running_epochs, done, len(inflight), failed)
        interrupted = False
    except KeyboardInterrupt:
        bar.stop()
        ex.close(cancel=True)  # the workers stop; their runs resume from their last checkpoint
        # a run that completed while the interrupt arrived is finished, not unfinished
        landed = sum(store.status(r.id) == "complete" for g, _ in inflight.values() for r in g)
        summary.completed, summary.failed = done + landed, failed
        summary.seconds = time.time() - start
        unfinished = sum(len(g) for g, _ in inflight.values()) - landed + sum(len(g) for g in queue)
        raise SweepInterrupted(summary, unfinished) from None
    finally:
        bar.stop()
        ex.close(cancel=interrupted)
    summary.completed, summary.failed = done, failed
    summary.seconds = time.time() - start
    summary.results = store.consolidate()
    return summary
