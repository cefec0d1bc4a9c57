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

# (losses: `asymloss losses`)


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
