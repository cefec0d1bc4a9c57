"""Killing a real sweep process (SIGKILL, mid-run) loses no finished run and corrupts no file."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asymloss.sweep import ResultsStore, build_grid, expand_grid, load_results, run_sweep

import sweep_fakes

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
from asymloss.sweep import build_grid, run_sweep
import sweep_fakes
grid = build_grid(protocol="paper-mnist", losses="ce,agce,gce", noise="clean,symmetric:0.4", seeds="0",
                  overrides={"epochs": 8})
run_sweep(grid, sys.argv[1], run_fn=sweep_fakes.fake_run, max_workers=2, progress=False, poll_s=0.05)
"""


def _grid():
    return build_grid(protocol="paper-mnist", losses="ce,agce,gce", noise="clean,symmetric:0.4", seeds="0",
                      overrides={"epochs": 8})


def _all_files_whole(root: Path) -> None:
    for p in root.rglob("*.json"):
        if not p.name.startswith("."):
            json.loads(p.read_text())  # raises on a torn file
    if (root / "results.sqlite").exists():
        with sqlite3.connect(root / "results.sqlite") as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.execute("SELECT COUNT(*) FROM runs").fetchone()


def _snapshot(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_sigkill_mid_sweep_then_rerun(tmp_path):
    store_dir = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]),
               FAKE_EPOCH_S="0.12")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(store_dir)], env=env, cwd=tmp_path)
    store = ResultsStore(store_dir)
    runs = expand_grid(_grid(), validate=False)
    deadline = time.time() + 60
    try:
        while time.time() < deadline:  # wait for: >= 1 run complete and >= 1 run half-way
            statuses = [store.status(r.id) for r in runs]
            partial = [r for r in runs if store.status(r.id) == "incomplete"
                       and 2 <= len((store.read_record(r.id) or {}).get("epochs", [])) <= 5]
            if "complete" in statuses and partial:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the sweep did not reach a mid-run state in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _all_files_whole(store_dir)
    # the orphaned workers stop on their own (they would otherwise race the re-run)
    time.sleep(0.8)
    snap = _snapshot(store_dir)
    time.sleep(0.6)
    assert _snapshot(store_dir) == snap, "workers kept writing after the sweep process was killed"
    done_before = {r.id: store.record_path(r.id).read_bytes() for r in runs if store.status(r.id) == "complete"}
    partial_before = {r.id: len(store.read_record(r.id)["epochs"]) for r in runs if store.status(r.id) == "incomplete"}
    assert done_before and partial_before, [(store.status(r.id), store.read_error(r.id)) for r in runs]

    summary = run_sweep(_grid(), store_dir, run_fn=sweep_fakes.fake_run, max_workers=2, progress=False)
    assert summary.skipped == len(done_before)
    assert summary.completed == len(runs) - len(done_before) and summary.failed == 0
    _all_files_whole(store_dir)
    for rid, blob in done_before.items():  # finished runs are untouched, never started again
        assert store.record_path(rid).read_bytes() == blob
        assert len((store.run_dir(rid) / "starts.txt").read_text().splitlines()) == 1
    for rid, n in partial_before.items():  # unfinished runs resumed from their checkpoint
        starts = [int(s) for s in (store.run_dir(rid) / "starts.txt").read_text().splitlines()]
        assert starts[0] == 0 and starts[-1] >= n >= 1
    df = load_results(store_dir)
    assert (df.status == "complete").all() and (df.epochs_done == 8).all()
    for _, row in df.iterrows():
        assert row.last_test_acc == pytest.approx(sweep_fakes.fake_accuracy(json.loads(row.config), 8))
