"""``maru train …`` commands (mounted by ``maru.cli``): ``maru train plot RUN_DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import TrainError

train_app = typer.Typer(
    name="train",
    help="Look at training runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@train_app.callback()
def _group() -> None:
    """Look at training runs."""


@train_app.command("plot")
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding metrics.csv.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="PNG to write (default RUN_DIR/loss.png).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metric to draw; repeat for several (default loss, val_loss)."),
    ] = None,
) -> None:
    """Draw a run's loss curves to a PNG."""
    from .plot import plot_run

    try:
        path = plot_run(run_dir, out, tuple(metric) if metric else ("loss", "val_loss"))
    except TrainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(str(path))
