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
    """Real runs (the training engine on digits) and one run that fails (no MNIST in an empty data dir)."""
    good = expand_grid(build_grid(protocol="demo-digits", losses="ce,agce", noise="symmetric:0.4", seeds="0",
                                  overrides={"epochs": 2}))
    (empty := tmp_path / "no-data").mkdir()
    bad = expand_grid(build_grid(protocol="paper-mnist", losses="ce", noise="clean", seeds="0",
                                 overrides={"epochs": 1, "data_dir": str(empty)}))
    store = tmp_path / "store"
    summary = run_sweep(good + bad, store, executor="ray", address=ray_address, progress=False)
    assert summary.executor.startswith(f"ray ({ray_address}): 2 runs at once, 1 CPU(s)")
    assert (summary.completed, summary.failed, summary.skipped) == (2, 1, 0)
    df = load_results(store).set_index("id")
    for run in good:
        row = df.loc[run.id]
        rec = json.loads((store / "runs" / run.id / "record.json").read_text())
        assert row.status == "complete" and row.epochs_done == 2
        assert row.last_test_acc == rec["epochs"][-1]["test_acc"] > 0.3  # learned something in 2 epochs
        assert rec["config"] == run.config.to_dict() and rec["device"].startswith("cpu")
    err = json.loads((store / "runs" / bad[0].id / "error.json").read_text())
    assert df.loc[bad[0].id].status == "failed" and "Traceback" in err["traceback"]
    assert err["pid"] != os.getpid()  # recorded by the Ray worker that ran it
    # re-running through Ray skips the finished runs; the failed one only with retry_failed
    again = run_sweep(good + bad, store, executor="ray", address=ray_address, progress=False)
    assert (again.completed, again.failed, again.skipped) == (0, 0, 3)
