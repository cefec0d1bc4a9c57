"""Fault injection at scale: SIGKILL a real sweep (and its workers) at random moments, restart it
each time, and check that nothing is lost, torn, or different from an uninterrupted sweep.

    python bench/chaos.py                      # 20 kills of an 8-run digits sweep (a few minutes)
    python bench/chaos.py --kills 3 --json out.json

The sweep is the real command (``python -m asymloss sweep``, the training engine, the local process
pool with 2 workers × 1 thread) on the digits that asymloss ships. First it runs uninterrupted into a
reference store. Then, into a fresh store, it is started and SIGKILLed — the whole process group,
so the workers die with it — after a random delay, ``--kills`` times, each time after a restart;
when a sweep has every run complete it is checked and the next kills go to a fresh store; the
last one is run to the end. Counted:

- finished runs lost: a run complete before a kill that is not complete, with the same
  ``record.json`` bytes, after the next restart (must be 0);
- torn or unreadable files: after each kill, any ``*.json`` that does not parse, any
  ``checkpoint.pt`` that ``torch.load`` cannot read, a ``results.sqlite`` that fails
  ``PRAGMA integrity_check`` (must be 0); leftover temporary files of interrupted atomic writes
  (``.*.tmp``, never read) are counted separately;
- runs whose final record differs from the reference's: every per-epoch number (loss,
  accuracies, lr) and the final accuracies, the noise (sha256 of the noisy labels) and the config;
  times are left out (must be 0).

The delays are drawn uniformly between ``--min-delay`` and ``--max-delay`` seconds from a
``random.Random(--seed)``; by default they are scaled to the reference sweep (from half its start-up
time to the start-up plus twice a restart's share of its training), so kills land during start-up,
data loading, training, checkpoint and record writes and consolidation alike, and the sweep
advances between them. Exit status 1 when any count that must be 0 is not.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOSSES = "ce,gce,agce,nce+agce"
NOISE = "clean,symmetric:0.6"
TIMING = {"seconds", "wall_time_s", "train_time_s", "images_per_s"}


def sweep_args(store: Path, losses: str, noise: str, epochs: int) -> list[str]:
    return [sys.executable, "-m", "asymloss", "sweep", "--protocol", "demo-digits", "--losses", losses,
            "--noise", noise, "--seeds", "0", "--epochs", str(epochs), "--max-workers", "2",
            "--threads-per-run", "1", "--no-progress", "--out", str(store)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


def torn_files(root: Path) -> tuple[list[str], int]:
    """(files that cannot be read, number of leftover temporary files) under a store."""
    import torch

    bad, tmp = [], 0
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if p.name.startswith("."):
            tmp += p.name.endswith(".tmp")
            continue
        try:
            if p.suffix == ".json":
                json.loads(p.read_text())
            elif p.name == "checkpoint.pt":
                assert torch.load(p, map_location="cpu", weights_only=True)["epoch"] >= 1
            elif p.suffix == ".sqlite":
                with sqlite3.connect(f"file:{p}?mode=ro", uri=True) as con:
                    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                    con.execute("SELECT COUNT(*) FROM runs").fetchone()
        except Exception as e:  # noqa: BLE001 - any failure to read is what is counted
            bad.append(f"{p.relative_to(root)}: {type(e).__name__}: {e}")
    return bad, tmp


def complete_records(root: Path) -> dict[str, bytes]:
    out = {}
    for rec in sorted((root / "runs").glob("*/record.json")) if (root / "runs").is_dir() else []:
        try:
            if json.loads(rec.read_text()).get("status") == "complete":
                out[rec.parent.name] = rec.read_bytes()
        except ValueError:
            pass  # counted by torn_files
    return out


def comparable(record: dict) -> dict:
    """A run record without the fields that measure time or name the machine."""
    return {
        "status": record.get("status"),
        "config": record.get("config"),
        "noise_sha256": (record.get("noise") or {}).get("sha256"),
        "epochs": [{k: v for k, v in e.items() if k not in TIMING} for e in record.get("epochs") or []],
        "final": {k: v for k, v in (record.get("final") or {}).items() if k not in TIMING},
    }


def run(kills: int, seed: int, min_delay: float | None, max_delay: float | None, losses: str, noise: str, epochs: int,
        workdir: Path, log=print) -> dict:
    rng = random.Random(seed)
    ref, chaos = workdir / "reference", workdir / "chaos"
    t0 = time.perf_counter()
    proc = subprocess.Popen(sweep_args(ref, losses, noise, epochs), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    startup = None
    while proc.poll() is None:  # the time to the first epoch on disk: start-up, checks, workers, data
        if startup is None and any((ref / "runs").glob("*/record.json")):
            startup = time.perf_counter() - t0
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"the reference sweep failed:\n{proc.stdout.read()}")
    ref_seconds = time.perf_counter() - t0
    startup = startup or ref_seconds
    reference = {rid: comparable(json.loads(b)) for rid, b in complete_records(ref).items()}
    if min_delay is None:  # kills from half-way through start-up ...
        min_delay = startup / 2
    if max_delay is None:  # ... to where a restart gets twice its share of the training done
        max_delay = startup + 2 * (ref_seconds - startup) / max(kills, 1)
    log(f"reference sweep: {len(reference)} runs in {ref_seconds:.1f} s (first epoch on disk after "
        f"{startup:.1f} s); kills after {min_delay:.1f}–{max_delay:.1f} s")

    lost, torn, tmp_left, kill_log = 0, [], 0, []
    differ: list[str] = []
    missing: list[str] = []
    rounds = 0
    chaos = workdir / "chaos-1"

    def finish_round(store: Path) -> None:
        """The round's store is complete: compare every run with the reference."""
        final = {rid: comparable(json.loads(b)) for rid, b in complete_records(store).items()}
        differ.extend(f"{store.name}/{rid}" for rid in reference if rid in final and final[rid] != reference[rid])
        missing.extend(f"{store.name}/{rid}" for rid in reference if rid not in final)

    before: dict[str, bytes] = {}
    for k in range(kills):
        proc = subprocess.Popen(sweep_args(chaos, losses, noise, epochs), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        delay = rng.uniform(min_delay, max_delay)
        time.sleep(delay)
        ended = proc.poll() is not None
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, at once
        except ProcessLookupError:
            pass
        proc.wait()
        time.sleep(0.3)  # let the kernel reap the workers before the files are read
        for rid, blob in before.items():  # complete before this restart: still complete, unchanged
            rec = chaos / "runs" / rid / "record.json"
            if not rec.is_file() or rec.read_bytes() != blob:
                lost += 1
        bad, tmp = torn_files(chaos)
        torn += bad
        tmp_left += tmp
        before = complete_records(chaos)
        kill_log.append({"kill": k + 1, "round": rounds + 1, "delay_s": round(delay, 2), "complete": len(before),
                         "ended_before_kill": ended})
        log(f"kill {k + 1:2d} after {delay:5.2f} s: {len(before)}/{len(reference)} runs complete"
            + (", torn: " + "; ".join(bad) if bad else "") + (" (the sweep had already ended)" if ended else ""))
        if len(before) == len(reference):  # this sweep is done: check it, and kill a fresh one next
            finish_round(chaos)
            rounds += 1
            chaos = workdir / f"chaos-{rounds + 1}"
            before = {}
    if before or (chaos / "runs").is_dir():  # the last, unfinished round: run it to the end
        res = subprocess.run(sweep_args(chaos, losses, noise, epochs), env=_env(), capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"the final sweep failed:\n{res.stdout}{res.stderr}")
        for rid, blob in before.items():
            if (chaos / "runs" / rid / "record.json").read_bytes() != blob:
                lost += 1
        bad, tmp = torn_files(chaos)
        torn += bad
        tmp_left += tmp
        finish_round(chaos)
        rounds += 1
    return {
        "kills": kills, "seed": seed, "runs": len(reference), "epochs": epochs, "sweeps_completed": rounds,
        "reference_seconds": round(ref_seconds, 1), "startup_seconds": round(startup, 1),
        "delays_s": [round(min_delay, 2), round(max_delay, 2)],
        "kills_during_training": sum(1 for e in kill_log if 0 < e["complete"] < len(reference)),
        "kills_after_the_end": sum(1 for e in kill_log if e["ended_before_kill"]),
        "finished_runs_lost": lost, "torn_or_unreadable_files": len(torn), "torn": torn,
        "runs_differing_from_reference": len(differ), "differing": differ, "runs_missing": missing,
        "temporary_files_left": tmp_left, "log": kill_log,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="Seed of the kill delays.")
    ap.add_argument("--min-delay", type=float, help="Shortest time before a kill (s; default: half the "
                    "reference sweep's time to its first epoch on disk).")
    ap.add_argument("--max-delay", type=float, help="Longest time before a kill (s; default: that start-up time "
                    "plus twice the reference's training time divided by the number of kills).")
    ap.add_argument("--losses", default=LOSSES)
    ap.add_argument("--noise", default=NOISE)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--workdir", help="Keep the stores here (default: a temporary directory).")
    ap.add_argument("--json", help="Write the report as JSON to this file.")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="asymloss-chaos-") as tmp:
        workdir = Path(a.workdir) if a.workdir else Path(tmp)
        report = run(a.kills, a.seed, a.min_delay, a.max_delay, a.losses, a.noise, a.epochs, workdir)
    print(f"\n{report['kills']} SIGKILLs of a {report['runs']}-run sweep (reference {report['reference_seconds']} s), "
          f"{report['sweeps_completed']} sweep(s) taken to the end; {report['kills_during_training']} kills with some runs "
          f"complete and some not, {report['kills_after_the_end']} after a sweep had ended by itself:")
    print(f"  finished runs lost:                  {report['finished_runs_lost']}")
    print(f"  torn or unreadable files:            {report['torn_or_unreadable_files']}")
    print(f"  runs differing from the reference:   {report['runs_differing_from_reference']}"
          + (f" (missing: {', '.join(report['runs_missing'])})" if report["runs_missing"] else ""))
    print(f"  leftover temporary files (ignored):  {report['temporary_files_left']}")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2) + "\n")
    bad = report["finished_runs_lost"] or report["torn_or_unreadable_files"] or report["runs_differing_from_reference"] \
        or report["runs_missing"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
