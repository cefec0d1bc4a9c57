"""Run records: what a run needs to be trusted and compared later (JSON, written atomically)."""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["environment", "git_revision", "device_description", "summarise_epochs"]


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of the asymloss source tree (with ``-dirty`` when modified), if any."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()} ({torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict[str, Any]:
    from .. import __version__

    return {
        "versions": {
            "asymloss": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "git": git_revision(),
        "device": device_description(device),
    }


def summarise_epochs(epochs: list[dict[str, Any]], train_seconds: float, train_images: int,
                     wall_seconds: float) -> dict[str, Any]:
    """Last and best test accuracy over the epochs, with throughput."""
    if not epochs:
        return {}
    accs = [e["test_acc"] for e in epochs]
    best = int(np.argmax(accs))
    return {
        "last_test_acc": accs[-1],
        "best_test_acc": accs[best],
        "best_epoch": epochs[best]["epoch"],
        "wall_time_s": wall_seconds,
        "train_time_s": train_seconds,
        "images_per_s": train_images / train_seconds if train_seconds > 0 else None,
    }
