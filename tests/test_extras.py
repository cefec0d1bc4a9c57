"""Optional dependencies: the core (demo, train, theory) runs without them; each part that needs one
says which extra installs it (library: ImportError; command line: one error line, exit status 2)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asymloss.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture()
def results(tmp_path):
    from test_report_plots import _write

    root = tmp_path / "store"
    _write(root, "agce", "symmetric:0.8", 0, 0.7)
    return root


def _without(monkeypatch, *names):
    for name in names:  # as if not installed: import fails, importlib.util.find_spec gives None
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("module,extra", [("pandas", "sweep"), ("matplotlib", "plot")])
def test_reports_name_the_extra_they_need(monkeypatch, results, tmp_path, module, extra):
    from asymloss.report import plot_results, results_table

    _without(monkeypatch, module)
    with pytest.raises(ImportError, match=rf"pip install 'asymloss\[{extra}\]'"):
        plot_results(results, tmp_path / "fig")
    res = runner.invoke(app, ["plot", str(results), "--out", str(tmp_path / "fig")])
    assert res.exit_code == 2 and f"pip install 'asymloss[{extra}]'" in " ".join(res.output.split())
    if module == "pandas":
        with pytest.raises(ImportError, match=r"asymloss\[sweep\]"):
            results_table(results)
        for args in (["table", str(results)], ["sweep", "--protocol", "demo-digits", "--losses", "ce", "--out",
                                               str(tmp_path / "s")]):
            res = runner.invoke(app, args)
            assert res.exit_code == 2 and "pip install 'asymloss[sweep]'" in " ".join(res.output.split())
        assert not (tmp_path / "s").exists()


def test_image_folders_name_the_images_extra(monkeypatch, tmp_path):
    from asymloss.data import load

    (tmp_path / "imgs" / "train" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "test" / "a").mkdir(parents=True)
    _without(monkeypatch, "PIL")
    with pytest.raises(ImportError, match=r"pip install 'asymloss\[images\]'"):
        load(f"folder:{tmp_path / 'imgs'}")


@pytest.mark.slow
def test_the_core_needs_no_extra(tmp_path):
    script = (
        "import sys\n"
        "for m in ('pandas', 'matplotlib', 'PIL', 'sklearn'): sys.modules[m] = None\n"
        "from asymloss.cli import main\n"
        "sys.argv = ['asymloss'] + sys.argv[1:]\n"
        "main()\n"
    )
    for args in (["demo", "--epochs", "1"], ["train", "--protocol", "demo-digits", "--epochs", "1", "--out",
                                              str(tmp_path / "r")],
                 ["theory", "agce", "--noise", "symmetric:0.8", "--classes", "10"], ["losses"], ["protocols"]):
        res = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                             env={"PYTHONPATH": str(REPO / "src"), "COLUMNS": "120", "OMP_NUM_THREADS": "1",
                                  "PATH": "/usr/bin:/bin"})
        assert res.returncode == 0, (args, res.stdout + res.stderr)
