"""The results store: one directory holding every run of a sweep and a consolidated table.

Layout::

    store/
      sweep.json              the grids run into this store and their run ids
      results.sqlite          consolidated tables "runs" and "epochs" (rewritten atomically)
      runs/<id>/config.json   the resolved TrainConfig of the run
      runs/<id>/record.json   the run record written by the training engine (atomically)
      runs/<id>/checkpoint.pt the engine's checkpoint (resume)
      runs/<id>/error.json    traceback of a failed run (removed when it is retried)

Every file is written atomically (``asymloss._io``), so a sweep killed at any moment leaves only
whole files behind. A run's status is derived from its files: ``complete`` (record status
``"complete"``), ``failed`` (an ``error.json``), ``incomplete`` (a record still ``"running"``:
interrupted, resumable) or ``pending`` (nothing written yet).

    >>> from asymloss.sweep import load_results
    >>> df = load_results("store")                                    # doctest: +SKIP
    >>> df.groupby(["loss", "noise"]).last_test_acc.mean()            # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from .._datasets import dataset_num_classes
from .._extras import require
from .._io import atomic_path, atomic_write_json, read_json
from .grid import Grid, Run, loss_label

__all__ = ["ResultsStore", "load_results", "load_epochs", "RUN_COLUMNS", "STATUSES"]

STATUSES = ("complete", "incomplete", "failed", "pending")

#: Columns of :func:`load_results` (one row per run). Accuracies are as in the run record.
RUN_COLUMNS = (
    "id", "protocol", "dataset", "num_classes", "model", "loss", "loss_label", "loss_preset", "loss_params",
    "noise", "seed", "noise_seed", "subset", "epochs", "status", "epochs_done", "last_test_acc",
    "best_test_acc", "best_epoch", "wall_time_s", "images_per_s", "noise_rate", "device", "error",
    "config",
)
EPOCH_COLUMNS = (
    "id", "epoch", "lr", "train_loss", "train_acc_noisy", "train_acc_clean", "test_acc", "seconds",
)
SQLITE_NAME = "results.sqlite"


class ResultsStore:
    """A results directory (see the module docstring). Creating one does not touch the disk."""

    def __init__(self, root: Union[str, os.PathLike]):
        self.root = Path(root)

    # -- paths ------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def sweep_path(self) -> Path:
        return self.root / "sweep.json"

    @property
    def sqlite_path(self) -> Path:
        return self.root / SQLITE_NAME

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def record_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "record.json"

    def error_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "error.json"

    # -- reading ----------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Ids of every run directory, sorted."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def read_record(self, run_id: str) -> Optional[dict]:
        return _read_json_or_none(self.record_path(run_id))

    def read_error(self, run_id: str) -> Optional[dict]:
        return _read_json_or_none(self.error_path(run_id))

    def read_config(self, run_id: str) -> Optional[dict]:
        cfg = _read_json_or_none(self.run_dir(run_id) / "config.json")
        if cfg is None:
            rec = self.read_record(run_id)
            cfg = rec.get("config") if rec else None
        return cfg

    def status(self, run_id: str) -> str:
        """``complete``, ``failed``, ``incomplete`` or ``pending`` (see the module docstring)."""
        rec = self.read_record(run_id)
        if rec is not None and rec.get("status") == "complete":
            return "complete"
        if self.error_path(run_id).exists():
            return "failed"
        return "incomplete" if rec is not None else "pending"

    # -- writing ----------------------------------------------------------------------------
    def register(self, grid: Optional[Grid], runs: Iterable[Run]) -> None:
        """Write each run's ``config.json`` and add the grid and its run ids to ``sweep.json``."""
        runs = list(runs)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for run in runs:
            path = self.run_dir(run.id) / "config.json"
            if not path.exists():
                atomic_write_json(path, run.config.to_dict())
        sweep = _read_json_or_none(self.sweep_path) or {"format": 1, "grids": []}
        entry = {
            "grid": grid.to_dict() if grid is not None else None,
            "runs": [r.id for r in runs],
        }
        if entry not in [{"grid": g.get("grid"), "runs": g.get("runs")} for g in sweep["grids"]]:
            entry["registered"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            sweep["grids"].append(entry)
            atomic_write_json(self.sweep_path, sweep)

    def clear_error(self, run_id: str) -> None:
        try:
            self.error_path(run_id).unlink()
        except FileNotFoundError:
            pass

    def write_error(self, run_id: str, error: dict) -> None:
        atomic_write_json(self.error_path(run_id), error)

    def consolidate(self) -> "Any":
        """Rewrite ``results.sqlite`` (tables ``runs`` and ``epochs``) atomically; return the runs table."""
        runs = load_results(self)
        epochs = load_epochs(self)
        with atomic_path(self.sqlite_path) as tmp:
            con = sqlite3.connect(tmp)
            try:
                runs.to_sql("runs", con, index=False, if_exists="replace")
                epochs.to_sql("epochs", con, index=False, if_exists="replace")
                con.commit()
            finally:
                con.close()
        return runs


def _read_json_or_none(path: Path) -> Optional[Any]:
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None  # cannot happen for files written by asymloss (atomic); treated as absent


def _as_store(store: Union[str, os.PathLike, ResultsStore]) -> ResultsStore:
    return store if isinstance(store, ResultsStore) else ResultsStore(store)


def _is_sqlite(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".sqlite", ".db", ".sqlite3")


def _resolve(results: Union[str, os.PathLike, ResultsStore]) -> Union[ResultsStore, Path]:
    if isinstance(results, ResultsStore):
        return results
    path = Path(results)
    if _is_sqlite(path):
        return path
    if path.is_dir():
        return ResultsStore(path)
    raise FileNotFoundError(
        f"results {str(path)!r} not found: expected a sweep store directory (with runs/) or its {SQLITE_NAME} file."
    )


def _row(store: ResultsStore, run_id: str) -> dict:
    rec = store.read_record(run_id)
    cfg = store.read_config(run_id) or {}
    err = store.read_error(run_id)
    final = (rec or {}).get("final") or {}
    epochs = (rec or {}).get("epochs") or []
    status = "complete" if rec is not None and rec.get("status") == "complete" else (
        "failed" if err is not None else ("incomplete" if rec is not None else "pending"))
    noise_summary = (rec or {}).get("noise") or {}
    params = cfg.get("loss_params") or {}
    device = (rec or {}).get("device")
    return {
        "id": run_id,
        "protocol": cfg.get("protocol"),
        "dataset": cfg.get("dataset"),
        "num_classes": ((rec or {}).get("data") or {}).get("num_classes")
        or (dataset_num_classes(cfg["dataset"]) if isinstance(cfg.get("dataset"), str) else None),
        "model": cfg.get("model"),
        "loss": cfg.get("loss"),
        "loss_label": loss_label(cfg["loss"], params) if cfg.get("loss") else None,
        "loss_preset": cfg.get("loss_preset"),
        "loss_params": json.dumps(params, sort_keys=True),
        "noise": cfg.get("noise"),
        "seed": cfg.get("seed"),
        "noise_seed": cfg.get("noise_seed") if cfg.get("noise_seed") is not None else cfg.get("seed"),
        "subset": cfg.get("subset"),
        "epochs": cfg.get("epochs"),
        "status": status,
        "epochs_done": len(epochs),
        "last_test_acc": final.get("last_test_acc", epochs[-1].get("test_acc") if epochs else None),
        "best_test_acc": final.get("best_test_acc", max((e.get("test_acc") for e in epochs), default=None)),
        "best_epoch": final.get("best_epoch"),
        "wall_time_s": final.get("wall_time_s", sum(e.get("seconds") or 0 for e in epochs) if epochs else None),
        "images_per_s": final.get("images_per_s"),
        "noise_rate": noise_summary.get("rate") if isinstance(noise_summary, dict) else None,
        "device": device if isinstance(device, str) or device is None else json.dumps(device),
        "error": (err.get("error") if err else None),
        "config": json.dumps(cfg, sort_keys=True),
    }


def load_results(results: Union[str, os.PathLike, ResultsStore]):
    """The consolidated runs table: one row per run of the store (or of its SQLite file).

    Columns: ``RUN_COLUMNS`` — id, protocol, dataset, num_classes (from the record, else the
    dataset's known count), model, loss, loss_label, loss_preset,
    loss_params (JSON), noise, seed, noise_seed, subset, epochs (configured), status,
    epochs_done, last/best test accuracy (as in the record), best_epoch, wall_time_s,
    images_per_s, noise_rate (realised), device, error (message of a failed run), config (JSON).
    Read from the run files themselves (always current), or from ``results.sqlite`` when given.
    """
    pd = require("pandas")

    src = _resolve(results)
    if isinstance(src, Path):
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as con:
            return pd.read_sql("SELECT * FROM runs", con)
    rows = [_row(src, rid) for rid in src.run_ids()]
    df = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    for col in ("seed", "noise_seed", "epochs", "epochs_done", "best_epoch", "subset", "num_classes"):
        df[col] = pd.array(df[col], dtype="Int64")
    for col in ("last_test_acc", "best_test_acc", "wall_time_s", "images_per_s", "noise_rate"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def load_epochs(results: Union[str, os.PathLike, ResultsStore]):
    """Per-epoch metrics of every run in long form (columns ``EPOCH_COLUMNS``)."""
    pd = require("pandas")

    src = _resolve(results)
    if isinstance(src, Path):
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as con:
            return pd.read_sql("SELECT * FROM epochs", con)
    rows = []
    for rid in src.run_ids():
        rec = src.read_record(rid)
        for i, e in enumerate((rec or {}).get("epochs") or []):
            row = {c: e.get(c) for c in EPOCH_COLUMNS[1:]}
            row["id"] = rid
            if row["epoch"] is None:
                row["epoch"] = i + 1
            rows.append(row)
    df = pd.DataFrame(rows, columns=list(EPOCH_COLUMNS))
    df["epoch"] = df["epoch"].astype("int64")
    for col in EPOCH_COLUMNS[2:]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df
