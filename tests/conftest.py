"""Shared fixtures. Tests that need the offline datasets in ``../shared/datasets`` use
``shared_datasets``: it skips locally when the folder is absent but fails under CI (``CI=true``),
where the folder must be present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tests run in parallel with pytest-xdist; one thread per worker

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "MANIFEST.md").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI requires the offline datasets beside the repository (shared/datasets); not found")
        pytest.skip("offline datasets (../shared/datasets) not present")
    return SHARED_DATASETS
