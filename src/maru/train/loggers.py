"""Where a run's metrics go: a CSV file that survives crashes, TensorBoard, and MLflow.

Every logger has ``log_metrics(metrics, step)``, ``log_hparams(params)`` and ``finalize()``.
The trainer calls them on rank 0 only.

``metrics.csv`` is in long format, one row per value: ``step,name,value``. New metric names can
appear at any step without rewriting the file, each call is flushed (a crash leaves every row
written so far), and a resumed run appends. A resumed run repeats the steps after its last
checkpoint, so :func:`read_metrics` keeps, for each name, the values logged last: when a step
goes backwards, the earlier values from that step on are dropped.

:class:`MLflowLogger` writes to an MLflow tracking server (or any tracking URI MLflow takes); a
resumed run continues the same MLflow run, whose id it keeps in ``run_dir/mlflow_run.json``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import TrainError

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.json"
_HEADER = ["step", "name", "value"]


@runtime_checkable
class Logger(Protocol):
    """What the trainer needs from a logger."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_hparams(self, params: Mapping[str, Any]) -> None: ...

    def finalize(self) -> None: ...


def _as_float(value: Any) -> float:
    """A Python float from a number or a one-element tensor/array (``.item()``)."""
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


class CSVLogger:
    """Appends ``step,name,value`` rows to ``run_dir/metrics.csv``, flushed at every call."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        self._file: IO[str] | None = None
        self._writer: Any = None

    def _open(self) -> Any:
        if self._writer is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            if not fresh:
                with self.path.open(newline="") as existing:
                    header = next(csv.reader(existing), None)
                if header != _HEADER:
                    raise TrainError(
                        f"{self.path} is not a maru metrics file (header {header}, expected "
                        f"{_HEADER}): use another run_dir or move the file away"
                    )
                self._end_with_newline()
            self._file = self.path.open("a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            if fresh:
                self._writer.writerow(_HEADER)
        return self._writer

    def _end_with_newline(self) -> None:
        """A run killed mid-write can leave a half row; start the next one on a new line."""
        with self.path.open("rb+") as raw:
            raw.seek(-1, 2)
            if raw.read(1) != b"\n":
                raw.write(b"\n")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        writer = self._open()
        writer.writerows([int(step), name, repr(_as_float(v))] for name, v in metrics.items())
        assert self._file is not None
        self._file.flush()

    def log_hparams(self, params: Mapping[str, Any]) -> None:
        """Merge ``params`` into ``run_dir/hparams.json`` (written atomically)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / HPARAMS_FILE
        merged: dict[str, Any] = {}
        if path.exists():
            with contextlib.suppress(ValueError):
                merged = json.loads(path.read_text(encoding="utf-8"))
        merged.update(_jsonable(dict(params)))
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)

    def finalize(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


def read_metrics(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{name: [(step, value), …]}`` from ``run_dir/metrics.csv``, steps increasing.

    Rows a resumed run repeated replace the first run's; a half-written last row is skipped."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise TrainError(f"no metrics file at {path}: pass the run_dir of a run logged with CSV")
    series: dict[str, list[tuple[int, float]]] = {}
    with path.open(newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        if next(rows, None) != _HEADER:
            raise TrainError(f"{path} is not a maru metrics file: expected header {_HEADER}")
        for row in rows:
            try:
                step, name, value = int(row[0]), row[1], float(row[2])
            except (IndexError, ValueError):
                continue
            points = series.setdefault(name, [])
            while points and points[-1][0] >= step:
                points.pop()
            points.append((step, value))
    return series


class TensorBoardLogger:
    """Scalars (and hparams as text) to TensorBoard event files in ``run_dir``."""

    def __init__(self, run_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch raises this when the tensorboard package is missing
            raise TrainError(
                "TensorBoardLogger needs the tensorboard package: pip install 'maru[train]' "
                "(or pip install tensorboard), or use loggers=['csv']"
            ) from exc
        self.run_dir = Path(run_dir)
        self.writer: SummaryWriter = SummaryWriter(log_dir=str(self.run_dir))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, _as_float(value), global_step=int(step))
        self.writer.flush()

    def log_hparams(self, params: Mapping[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {json.dumps(_jsonable(v))} |" for k, v in sorted(params.items()))
        self.writer.add_text("hparams", "| name | value |\n|---|---|\n" + rows)
        self.writer.flush()

    def finalize(self) -> None:
        self.writer.close()


MLFLOW_RUN_FILE = "mlflow_run.json"


class MLflowLogger:
    """Metrics (one batched request per logging step), params and, with ``log_artifacts``, the
    run dir's files at the end, to an MLflow run.

    ``tracking_uri`` defaults to ``$MLFLOW_TRACKING_URI`` (else MLflow's default, ``./mlruns``),
    ``experiment_name`` to ``$MLFLOW_EXPERIMENT_NAME`` or ``"maru"`` (created when missing). With
    a ``run_dir``, the MLflow run id is kept there, so a resumed training run logs into the same
    MLflow run; ``run_id`` picks one explicitly. MLflow params cannot change once set, so a param
    already logged with another value is left as it was (the hparams are also in hparams.json of
    a CSV logger). ``mlflow`` is imported here, not when maru.train is.
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        log_artifacts: bool = False,
    ) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise TrainError(
                "MLflowLogger needs the mlflow package: pip install 'maru[mlflow]' (or pip install "
                "mlflow), or use loggers=['csv']"
            ) from exc
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.log_artifacts = log_artifacts
        self.client = MlflowClient(tracking_uri=tracking_uri)
        name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "maru"
        self.run_id = run_id or self._saved_run_id() or self._new_run(name, run_name, tags)
        self._remember_run_id()
        self._finished = False

    def _saved_run_id(self) -> str | None:
        """The MLflow run an earlier part of this training run logged to (same tracking URI)."""
        if self.run_dir is None:
            return None
        try:
            saved = json.loads((self.run_dir / MLFLOW_RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if saved.get("tracking_uri") != self.client.tracking_uri:
            return None
        return str(saved["run_id"]) if saved.get("run_id") else None

    def _new_run(self, experiment: str, run_name: str | None, tags: Mapping[str, str] | None) -> str:
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
        return str(run.info.run_id)

    def _remember_run_id(self) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / MLFLOW_RUN_FILE
        tmp = path.with_suffix(".json.tmp")
        record = {"run_id": self.run_id, "tracking_uri": self.client.tracking_uri}
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        tmp.replace(path)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(name, _as_float(v), now, int(step)) for name, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_hparams(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        fresh = [
            Param(str(k), json.dumps(v) if not isinstance(v, str) else v)
            for k, v in _jsonable(dict(params)).items()
            if str(k) not in existing
        ]
        if fresh:
            self.client.log_batch(self.run_id, params=fresh)

    def finalize(self) -> None:
        """Upload the run dir's files (``log_artifacts``) and mark the MLflow run finished."""
        if self._finished:
            return
        self._finished = True
        if self.log_artifacts and self.run_dir is not None and self.run_dir.is_dir():
            self.client.log_artifacts(self.run_id, str(self.run_dir))
        self.client.set_terminated(self.run_id, "FINISHED")


def _tensorboard_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


_BY_NAME: dict[str, Callable[[str | Path], Logger]] = {
    "csv": CSVLogger,
    "tensorboard": TensorBoardLogger,
    "tb": TensorBoardLogger,
    "mlflow": MLflowLogger,
}


def make_loggers(spec: str | Iterable[str | Logger] | None, run_dir: str | Path | None) -> list[Logger]:
    """The loggers for ``Trainer(loggers=spec)``.

    - ``"auto"``: CSV, plus TensorBoard when the tensorboard package is installed; none when
      there is no ``run_dir``.
    - ``None``: none.
    - a list of ``"csv"`` / ``"tensorboard"`` (``"tb"``) / ``"mlflow"`` (an :class:`MLflowLogger`
      configured by ``$MLFLOW_TRACKING_URI`` / ``$MLFLOW_EXPERIMENT_NAME``) and logger objects,
      in that order.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        if spec != "auto":
            spec = [spec]
        elif run_dir is None:
            return []
        else:
            spec = ["csv", "tensorboard"] if _tensorboard_installed() else ["csv"]
    loggers: list[Logger] = []
    for item in spec:
        if not isinstance(item, str):
            if not isinstance(item, Logger):
                raise TrainError(
                    f"{item!r} is not a logger: it needs log_metrics, log_hparams and finalize"
                )
            loggers.append(item)
            continue
        cls = _BY_NAME.get(item.lower())
        if cls is None:
            raise TrainError(
                f"unknown logger {item!r}: use 'csv', 'tensorboard', 'mlflow' or a logger object"
            )
        if run_dir is None:
            raise TrainError(f"logger {item!r} writes files: give the Trainer a run_dir")
        loggers.append(cls(run_dir))
    return loggers
