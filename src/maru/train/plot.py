"""Loss curves of a run as a PNG, from its ``metrics.csv`` (``maru train plot RUN_DIR``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ..errors import TrainError
from .loggers import read_metrics


def plot_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    metrics: Sequence[str] = ("loss", "val_loss"),
) -> Path:
    """Draw ``metrics`` (those the run logged) against the step; return the PNG's path.

    ``run_dir`` may also be the ``metrics.csv`` file itself; ``out`` defaults to
    ``run_dir/loss.png``. Uses matplotlib's Agg canvas directly, so no window opens and the
    caller's pyplot backend is left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    series = _read_series(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    shown = [name for name in metrics if series.get(name)]
    if not shown:
        logged = ", ".join(sorted(series)) or "none"
        raise TrainError(
            f"{run_dir} has no values for {', '.join(metrics)} (logged: {logged}): "
            "name the metrics to plot"
        )
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name in shown:
        steps, values = zip(*series[name], strict=True)
        axes.plot(steps, values, label=name, marker="o" if len(steps) < 30 else None)
    axes.set_xlabel("step")
    axes.set_ylabel(shown[0] if len(shown) == 1 else "value")
    axes.set_title(run_dir.resolve().name)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path = Path(out) if out is not None else run_dir / "loss.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _read_series(path: Path) -> dict[str, list[tuple[int, float]]]:
    """:func:`read_metrics`, with a file that is not text (a binary, another encoding) reported
    as what it is rather than as a decoding error."""
    try:
        return read_metrics(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TrainError(
            f"{path} is not a metrics CSV ({exc}): pass a run directory, or its metrics.csv, "
            "written by the Trainer's CSV logger"
        ) from None
