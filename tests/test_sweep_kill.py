"""Killing a real sweep process (SIGKILL, mid-run) loses no finished run and corrupts no file.

The sweep is the real command (``python -m asymloss sweep``) training real runs with the engine on
scikit-learn's digits; it is killed once at least one run is complete and another is part-way, then
the same command is run again.
"""
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

from asymloss.sweep import ResultsStore, build_grid, expand_grid, load_results

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 20
ARGS = ["--protocol", "demo-digits", "--losses", "ce,agce", "--noise", "symmetric:0.4", "--seeds", "0",
        "--epochs", str(EPOCHS), "--max-workers", "1", "--threads-per-run", "1", "--no-progress"]


def _all_files_whole(root: Path) -> None:
    for p in root.rglob("*.json"):
        if not p.name.startswith("."):
            json.loads(p.read_text())  # raises on a torn file
    for p in root.rglob("checkpoint.pt"):
        import torch

        assert torch.load(p, map_location="cpu", weights_only=True)["epoch"] >= 1
    if (root / "results.sqlite").exists():
        with sqlite3.connect(root / "results.sqlite") as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.execute("SELECT COUNT(*) FROM runs").fetchone()


def _snapshot(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _sweep(store: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "asymloss", "sweep", *ARGS, "--out", str(store)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun(tmp_path):
    store_dir = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    runs = expand_grid(build_grid(protocol="demo-digits", losses="ce,agce", noise="symmetric:0.4", seeds="0",
                                  overrides={"epochs": EPOCHS}))
    store = ResultsStore(store_dir)
    proc = _sweep(store_dir, env)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # wait for: >= 1 run complete and >= 1 run part-way
            statuses = [store.status(r.id) for r in runs]
            partial = [r for r in runs if statuses[runs.index(r)] == "incomplete"
                       and 2 <= len((store.read_record(r.id) or {}).get("epochs", [])) <= EPOCHS - 6]
            if "complete" in statuses and partial:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed:\n" + proc.stdout.read()
            time.sleep(0.02)
        else:
            pytest.fail("the sweep did not reach a mid-run state in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _all_files_whole(store_dir)
    # the orphaned workers stop on their own (they would otherwise race the re-run)
    time.sleep(1.0)
    snap = _snapshot(store_dir)
    time.sleep(0.8)
    assert _snapshot(store_dir) == snap, "workers kept writing after the sweep process was killed"
    done_before = {r.id: store.record_path(r.id).read_bytes() for r in runs if store.status(r.id) == "complete"}
    partial_before = {r.id: store.read_record(r.id)["epochs"] for r in runs if store.status(r.id) == "incomplete"}
    assert done_before and partial_before

    rerun = _sweep(store_dir, env)
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    assert f"{len(runs) - len(done_before)} run(s) completed, 0 failed, {len(done_before)} skipped" in " ".join(out.split())
    _all_files_whole(store_dir)
    for rid, blob in done_before.items():  # finished runs are untouched
        assert store.record_path(rid).read_bytes() == blob
    for rid, epochs in partial_before.items():
        rec = store.read_record(rid)
        assert rec["status"] == "complete" and len(rec["epochs"]) == EPOCHS
        if epochs:  # resumed from the checkpoint: the epochs done before the kill are kept as they were,
            # including their measured seconds (a run restarted from scratch would time them anew)
            assert rec["epochs"][: len(epochs)] == epochs
    df = load_results(store_dir)
    assert (df.status == "complete").all() and (df.epochs_done == EPOCHS).all() and len(df) == len(runs)
    with sqlite3.connect(store_dir / "results.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM runs WHERE status = 'complete'").fetchone()[0] == len(runs)
