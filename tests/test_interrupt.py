"""Interruptions speak: Ctrl-C (SIGINT to the process group, as a terminal sends it) in ``train`` and
``sweep`` says what was kept and how to go on; a resumed run says where it resumes; a complete run
asked again says so; ``train`` without ``--out`` says that nothing is saved."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asymloss.cli import app
from asymloss.sweep import ResultsStore, build_grid, expand_grid

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1", COLUMNS="200", OMP_NUM_THREADS="1")


class _Proc:
    """A CLI process in its own process group, its output collected by a thread as it comes."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "asymloss", *args], env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),
                                       daemon=True)
        self.reader.start()

    @property
    def text(self) -> str:
        return " ".join("".join(self.lines).split())

    def wait_for(self, cond, what: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while not cond():
            if self.proc.poll() is not None:
                self.reader.join(5)
                pytest.fail(f"ended before {what}:\n{self.text}")
            if time.time() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.05)

    def ctrl_c(self, sig=signal.SIGINT) -> tuple[int, str]:
        os.killpg(self.proc.pid, sig)  # the whole foreground group, like a terminal
        code = self.proc.wait(timeout=60)
        self.reader.join(10)
        return code, self.text


def _epochs(out: Path) -> int:
    try:
        return len(json.loads((out / "record.json").read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


TRAIN = ["train", "--protocol", "demo-digits", "--loss", "agce", "--noise", "symmetric:0.4", "--epochs", "400"]


@pytest.mark.slow
def test_ctrl_c_in_train_says_how_to_resume_and_the_resumed_run_says_where(tmp_path):
    out = tmp_path / "run"
    proc = _Proc(*TRAIN, "--out", str(out))
    proc.wait_for(lambda: _epochs(out) >= 2, "two epochs")
    code, text = proc.ctrl_c()
    assert code == 130, text
    done = _epochs(out)
    assert f"interrupted: {out} holds {done} of 400 epochs; run the same command again to resume from epoch {done}." in text
    assert "Traceback" not in text
    again = _Proc(*TRAIN, "--out", str(out))
    again.wait_for(lambda: _epochs(out) > done, "the resumed run's next epoch")
    code, text = again.ctrl_c()
    assert code == 130 and f"Resuming from epoch {done} of 400 ({out}/checkpoint.pt)." in text


@pytest.mark.slow
def test_ctrl_c_in_train_without_out_says_nothing_was_saved():
    proc = _Proc(*TRAIN)
    proc.wait_for(lambda: "nothing is saved" in proc.text, "the note")
    time.sleep(0.5)
    code, text = proc.ctrl_c()
    assert code == 130 and "note: no --out, so nothing is saved" in text
    assert "interrupted: nothing was saved (no --out)." in text and "Traceback" not in text


def test_complete_run_asked_again_says_so_and_where_its_record_is(tmp_path):
    runner = CliRunner()
    args = ["train", "--protocol", "demo-digits", "--epochs", "1", "--out", str(tmp_path / "r")]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert f"This run is already complete (1 of 1 epochs); its record is {tmp_path / 'r'}/record.json" in res.output
    assert "last test acc" in res.output


def test_sigterm_in_train_speaks_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = _Proc(*TRAIN, "--out", str(out))
    proc.wait_for(lambda: _epochs(out) >= 1, "one epoch")
    code, text = proc.ctrl_c(signal.SIGTERM)
    done = _epochs(out)
    assert code == 130, text
    assert f"interrupted: {out} holds {done} of 400 epochs; run the same command again to resume from epoch {done}." in text
    assert "Traceback" not in text


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_in_a_sweep_says_how_many_runs_finished_and_how_to_continue(tmp_path, sig):
    store_dir = tmp_path / "store"
    grid = ["--protocol", "demo-digits", "--losses", "ce,agce,gce", "--noise", "clean", "--epochs", "60",
            "--max-workers", "1", "--threads-per-run", "1", "--no-progress", "--out", str(store_dir)]
    runs = expand_grid(build_grid(protocol="demo-digits", losses="ce,agce,gce", overrides={"epochs": 60}))
    store = ResultsStore(store_dir)
    proc = _Proc("sweep", *grid)
    proc.wait_for(lambda: [store.status(r.id) for r in runs].count("complete") >= 1
                  and any(store.status(r.id) == "incomplete" for r in runs), "one run done, one part-way")
    code, text = proc.ctrl_c(sig)
    finished = [store.status(r.id) for r in runs].count("complete")
    assert code == 130, text
    assert f"interrupted: {finished} run(s) finished in this session (0 failed), 0 were complete or failed before" in text
    assert "Run the same command again to continue." in text and "Traceback" not in text
    rerun = subprocess.run([sys.executable, "-m", "asymloss", "sweep", *grid], env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert all(store.status(r.id) == "complete" for r in runs)
