"""The demo: several seeds, spread over worker processes, the same numbers as one after the other."""
from __future__ import annotations

from asymloss.train.demo import demo_accuracies, demo_configs, run_demo


def test_demo_runs_every_seed_and_workers_change_no_number():
    kw = dict(losses=("ce", "nce+agce"), noise=("symmetric:0.6",), seeds=(0, 1), epochs=2)
    here = demo_accuracies(workers=1, **kw)
    pooled = demo_accuracies(workers=2, **kw)
    assert here == pooled
    assert set(here) == {("ce", "symmetric:0.6"), ("nce+agce", "symmetric:0.6")}
    assert all(len(v) == 2 and v[0] != v[1] for v in here.values())  # two seeds, two different runs
    means = run_demo(("ce",), ("symmetric:0.6",), seeds=(0, 1), epochs=2)
    assert means[("ce", "symmetric:0.6")] == sum(here[("ce", "symmetric:0.6")]) / 2
    assert [c.seed for c in demo_configs(("ce",), ("clean",), seeds=(2, 0))] == [2, 0]
