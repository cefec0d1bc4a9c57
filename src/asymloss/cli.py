"""The ``asymloss`` command line. It only parses arguments and calls the library.

Built with Typer. Each command below belongs to one area of the library; keep parsing here and the
work in the library.
"""
from __future__ import annotations

from typing import List, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="asymloss",
    help="Robust losses for learning with noisy labels (Zhou et al., ICML 2021) and beyond.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()


@app.callback()
def _root() -> None:
    """Robust losses for learning with noisy labels (Zhou et al., ICML 2021) and beyond."""


def _fail(message: str) -> None:
    """Print a clear error and exit with status 2 (bad usage) before any work starts."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@app.command()
def version() -> None:
    """Print the versions of asymloss and PyTorch."""
    import torch

    from . import __version__

    console.print(f"asymloss {__version__} (torch {torch.__version__})")


# ---------------------------------------------------------------------------------------------
# losses and theory
# ---------------------------------------------------------------------------------------------

@app.command("losses")
def losses_cmd(
    preset: Optional[str] = typer.Option(
        None, "--preset", "-p", help="Show the hyperparameters this preset gives (e.g. paper:cifar10)."
    ),
) -> None:
    """List every loss with its hyperparameters (defaults) and the presets that define it."""
    from rich.table import Table

    from .losses import describe_loss, get_preset, list_losses, list_presets

    if preset is not None and preset.strip().lower() not in list_presets():
        from ._validation import unknown_name_error

        _fail(str(unknown_name_error("preset", preset, list_presets())))
    title = "asymloss losses" + (f" — values of preset {preset}" if preset else " — defaults")
    table = Table(title=title, show_lines=False)
    for col in ("name", "class", "role", "hyperparameters", "presets"):
        table.add_column(col, overflow="fold")
    for name in list_losses():
        info = describe_loss(name)
        values = dict(info["hparams"])
        if preset is not None:
            try:
                values.update(get_preset(preset, name))
            except ValueError:
                values = None
        hp = "—" if values is None else (
            ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()) or "(none)")
        where = ", ".join(info["presets"]) or ("any (nothing to set)" if not info["hparams"] else "—")
        table.add_row(name, info["class"], info["kind"], hp, where)
    console.print(table)
    console.print(
        "Presets: " + ", ".join(list_presets())
        + ". Use: asymloss.create_loss(name, preset=..., **overrides)."
    )


# (theory: `asymloss theory`)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

# (training: `asymloss train`, `asymloss demo`, `asymloss protocols`)


# ---------------------------------------------------------------------------------------------
# sweeps and reports
# ---------------------------------------------------------------------------------------------

# (sweeps: `asymloss sweep`)


# (reports: `asymloss table`, `asymloss plot`)


# ---------------------------------------------------------------------------------------------


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
