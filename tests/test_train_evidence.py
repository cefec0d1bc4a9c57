"""Evidence of learning on real data: under 60% symmetric noise on MNIST, the paper's MNIST AGCE
preset ends clearly above CE after the same number of epochs (CE memorises the noisy labels).

Settings: a fixed 3,000-image subset of the real MNIST training set, batch 64, 12 epochs of the
paper-mnist protocol otherwise (SGD 0.01, momentum 0.9, wd 1e-3, cosine, clipping 5), full 10,000
image test set. Margins measured on seeds 0, 1, 2 are in the README (training section)."""
from __future__ import annotations

import pytest

from asymloss.train import get_protocol, train

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _last_acc(loss: str, seed: int, data_dir) -> float:
    cfg = get_protocol("paper-mnist", loss=loss, noise="symmetric:0.6", seed=seed, epochs=12,
                       subset=3000, batch_size=64, data_dir=str(data_dir), device="cpu")
    record = train(cfg, progress=False)
    assert record["noise"]["rate"] == pytest.approx(0.6, abs=0.03)  # the noise really is there
    return record["final"]["last_test_acc"]


def test_agce_beats_ce_under_60_percent_symmetric_noise(shared_datasets):
    ce = _last_acc("ce", 0, shared_datasets)
    agce = _last_acc("agce", 0, shared_datasets)
    assert agce > 0.80, f"AGCE reached only {agce:.4f}"
    assert agce - ce > 0.15, f"AGCE {agce:.4f} vs CE {ce:.4f}"
