"""The Ray executor: a real local Ray cluster on loopback runs a small sweep."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from asymloss.sweep import build_grid, expand_grid, load_results, run_sweep  # noqa: E402

import sweep_fakes  # noqa: E402

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    """A Ray head on 127.0.0.1 with 2 CPUs, started here and stopped here.

    It runs as ``ray start --head --block`` so that stopping it terminates exactly the processes it
    started (``ray stop`` would stop every Ray cluster of the user on the machine).
    """
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_DEDUP_LOGS="0",
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]))
    temp = tmp_path_factory.mktemp("ray")
    cmd = [str(ray_bin) if ray_bin.exists() else "ray", "start", "--head", "--block", f"--port={port}",
           "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
           "--disable-usage-stats", f"--temp-dir={temp}", "--object-store-memory=100000000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:  # the GCS port accepts connections once the head is up
        if proc.poll() is not None:
            pytest.fail(f"`ray start --head` exited with status {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        proc.terminate()
        pytest.fail("the Ray head did not come up in 60 s")
    yield address
    proc.terminate()  # `ray start --block` stops the processes it started on SIGTERM
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_sweep_on_a_ray_cluster(ray_address, tmp_path):
    grid = build_grid(protocol="paper-mnist", losses="ce,agce,boom", noise="clean,symmetric:0.4", seeds="0",
                      overrides={"epochs": 2})
    runs = expand_grid(grid, validate=False)
    summary = run_sweep(runs, tmp_path / "store", executor="ray", address=ray_address,
                        run_fn=sweep_fakes.fake_run, progress=False)
    assert summary.executor.startswith(f"ray ({ray_address}): 2 runs at once")
    assert (summary.completed, summary.failed, summary.skipped) == (4, 2, 0)
    df = load_results(tmp_path / "store")
    ok = df[df.loss != "boom"]
    assert (ok.status == "complete").all()
    for _, row in ok.iterrows():
        assert row.last_test_acc == pytest.approx(sweep_fakes.fake_accuracy(json.loads(row.config), 2))
        rec = json.loads((tmp_path / "store" / "runs" / row.id / "record.json").read_text())
        assert rec["worker"]["in_ray"] and rec["worker"]["pid"] != os.getpid()  # ran in a Ray worker
    bad = df[df.loss == "boom"]
    assert (bad.status == "failed").all() and bad.error.str.contains("boom").all()
    # re-running through Ray skips everything finished
    again = run_sweep(runs, tmp_path / "store", executor="ray", address=ray_address,
                      run_fn=sweep_fakes.fake_run, progress=False)
    assert (again.completed, again.skipped) == (0, 6)
