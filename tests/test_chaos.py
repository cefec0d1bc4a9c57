"""bench/chaos.py in small: SIGKILL a real sweep (and its workers) 3 times at random moments,
restarting it each time; nothing finished is lost, no file is torn, and every run ends exactly as in
an uninterrupted sweep. (The README's figures come from the 20-kill version: python bench/chaos.py.)"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _chaos():
    spec = importlib.util.spec_from_file_location("chaos", REPO / "bench" / "chaos.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_three_sigkills_lose_nothing_and_change_nothing(tmp_path):
    chaos = _chaos()
    report = chaos.run(kills=3, seed=1, min_delay=None, max_delay=None, losses="ce,agce,nce+agce", noise="clean",
                       epochs=20, workdir=tmp_path, log=lambda *a: None)
    assert report["runs"] == 3
    assert report["finished_runs_lost"] == 0
    assert report["torn_or_unreadable_files"] == 0, report["torn"]
    assert report["runs_differing_from_reference"] == 0, report["differing"]
    assert report["runs_missing"] == []
