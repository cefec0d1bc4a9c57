"""Sweeps: grids of runs (losses × noise settings × seeds), a results store, local and Ray executors.

    >>> from asymloss.sweep import build_grid, run_sweep, load_results
    >>> grid = build_grid(protocol="paper-mnist", losses="ce,agce", noise="clean,symmetric:0.6",
    ...                   seeds="0,1", overrides={"epochs": 2, "subset": 1000})
    >>> summary = run_sweep(grid, "store")                 # doctest: +SKIP
    >>> load_results("store")[["loss", "noise", "seed", "last_test_acc"]]   # doctest: +SKIP

See docs/ARCHITECTURE.md ("Sweeps and reports") and the README section "Sweeps".
"""
from .executors import (Executor, LocalExecutor, RayExecutor, RunTask, create_executor,
                        default_run_fn, execute_task, list_executors)
from .grid import (GRIDS, PAPER_NOISES, PAPER_TABLE_LOSSES, Grid, LossSpec, Run, build_grid,
                   expand_grid, get_grid, list_grids, load_grid, loss_label)
from .runner import SweepInterrupted, SweepSummary, check_store_dir, check_sweep, plan_sweep, run_sweep
from .store import RUN_COLUMNS, STATUSES, ResultsStore, load_epochs, load_results

__all__ = [
    "Grid", "LossSpec", "Run", "GRIDS", "PAPER_NOISES", "PAPER_TABLE_LOSSES", "build_grid",
    "expand_grid", "get_grid", "list_grids", "load_grid", "loss_label",
    "ResultsStore", "load_results", "load_epochs", "RUN_COLUMNS", "STATUSES",
    "Executor", "LocalExecutor", "RayExecutor", "RunTask", "create_executor", "list_executors",
    "execute_task", "default_run_fn",
    "run_sweep", "plan_sweep", "SweepSummary", "SweepInterrupted", "check_sweep", "check_store_dir",
]
