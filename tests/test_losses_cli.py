"""`asymloss losses`: the table of losses, hyperparameters and presets."""
from __future__ import annotations

from typer.testing import CliRunner

import asymloss
from asymloss.cli import app

runner = CliRunner()


def test_losses_command_lists_every_loss_with_defaults_and_presets():
    res = runner.invoke(app, ["losses"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in asymloss.list_losses():
        assert f" {name} " in res.output
    assert "a=0.6, q=0.6" in res.output  # AGCE defaults
    assert "paper:webvision" in res.output


def test_losses_command_with_preset_shows_its_values():
    res = runner.invoke(app, ["losses", "--preset", "paper:mnist"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "alpha=0, beta=1, a=4, q=0.2" in res.output  # NCE+AGCE on MNIST: alpha = 0


def test_losses_command_rejects_unknown_preset():
    res = runner.invoke(app, ["losses", "--preset", "paper:cifar"], env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert "unknown preset 'paper:cifar'" in res.output and "paper:cifar10" in res.output
