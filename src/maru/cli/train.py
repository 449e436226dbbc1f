"""``maru train …``: look at training runs (``maru train plot RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._extras import needs_extra
from ._shared import command_group, fail

train_app = command_group("train", help="Look at training runs.")


@train_app.command("plot")
@needs_extra("train", "maru train plot")
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
    from ..errors import TrainError
    from ..train.plot import plot_run

    try:
        path = plot_run(run_dir, out, tuple(metric) if metric else ("loss", "val_loss"))
    except TrainError as exc:
        fail(str(exc))
    typer.echo(str(path))
