"""Hand-written run functions for the sweep tests (importable by spawned and Ray workers).

They follow the engine's contract (docs/ARCHITECTURE.md): write ``record.json`` atomically every
epoch with status "running" then "complete", a checkpoint every epoch, and resume from it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from asymloss._io import atomic_write_json, read_json


def fake_accuracy(config: dict, epoch: int) -> float:
    """A deterministic accuracy that depends on the loss, noise, seed and epoch."""
    base = {"ce": 0.5, "agce": 0.8, "gce": 0.7}.get(config["loss"], 0.6)
    rate = float(config["noise"].split(":")[1]) if ":" in config["noise"] else 0.0
    return round(base - 0.3 * rate + 0.01 * config["seed"] + 0.02 * epoch, 6)


def fake_run(config: dict, out_dir: str) -> dict:
    """An 'engine' whose epochs take FAKE_EPOCH_S seconds (default 0)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.json"
    epochs = read_json(ckpt)["epochs"] if ckpt.exists() else []
    rec_path = out / "record.json"
    if rec_path.exists():
        rec = read_json(rec_path)
        if rec["status"] == "complete":
            return rec
    counter = out / "starts.txt"  # how often the run was (re)started, for the tests
    with open(counter, "a") as f:
        f.write(f"{len(epochs)}\n")
    if config["loss"] == "boom":
        raise RuntimeError("boom: this loss always fails")
    delay = float(os.environ.get("FAKE_EPOCH_S", "0"))
    rec = {"status": "running", "config": config, "epochs": epochs, "final": None,
           "worker": {"pid": os.getpid(), "in_ray": _in_ray()}}
    for ep in range(len(epochs) + 1, config["epochs"] + 1):
        time.sleep(delay)
        epochs.append({"epoch": ep, "lr": 0.01, "train_loss": 1.0 / ep, "train_acc_noisy": 0.5,
                       "train_acc_clean": 0.6, "test_acc": fake_accuracy(config, ep), "seconds": delay})
        atomic_write_json(ckpt, {"epochs": epochs})
        rec["epochs"] = epochs
        atomic_write_json(rec_path, rec)
    accs = [e["test_acc"] for e in epochs]
    rec["status"] = "complete"
    rec["final"] = {"last_test_acc": accs[-1], "best_test_acc": max(accs),
                    "best_epoch": accs.index(max(accs)) + 1, "wall_time_s": delay * len(accs),
                    "images_per_s": 1000.0}
    atomic_write_json(rec_path, rec)
    return rec


def _in_ray() -> bool:
    import sys

    return "ray" in sys.modules and sys.modules["ray"].is_initialized()
