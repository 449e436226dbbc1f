"""MLflowLogger against a real MLflow tracking server (SQLite backend) started here on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from maru._process import free_port, stop_process
from maru.errors import TrainError
from maru.train import Task, Trainer
from maru.train.loggers import MLFLOW_RUN_FILE, MLflowLogger, make_loggers

mlflow = pytest.importorskip("mlflow")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(400),
    pytest.mark.filterwarnings("ignore:.*TypedStorage.*:UserWarning", "ignore:resumed at step:UserWarning"),
]

START_TIMEOUT_S = 240  # importing mlflow alone takes tens of seconds on a busy 2-core machine


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (root / "server.log").open("wb")
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the MLflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(server, timeout=15)
        log.close()


class Line(Task):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch: torch.Tensor) -> torch.Tensor:
        return (self.net(batch) - batch.sum(dim=1, keepdim=True)).pow(2).mean()

    def validation_step(self, batch: torch.Tensor) -> torch.Tensor:
        return self.training_step(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _data() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(8, 2, generator=generator) for _ in range(4)]


def _fit(tmp_path: Path, max_steps: int) -> None:
    Trainer(
        max_steps=max_steps,
        log_every=2,
        val_every=4,
        run_dir=tmp_path / "run",
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_every=4,
        loggers=["csv", "mlflow"],
        progress=False,
    ).fit(Line(), _data(), _data()[:1])


def test_a_run_and_its_resume_log_into_one_mlflow_run(
    tracking_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "maru-test")
    _fit(tmp_path, 4)
    run_id = json.loads((tmp_path / "run" / MLFLOW_RUN_FILE).read_text())["run_id"]
    _fit(tmp_path, 8)  # resumes from step 4: the same MLflow run goes on
    assert json.loads((tmp_path / "run" / MLFLOW_RUN_FILE).read_text())["run_id"] == run_id

    client = mlflow.MlflowClient(tracking_server)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "maru-test"
    assert run.data.params["max_steps"] == "4"  # params are set once; the first run's stay
    assert run.data.params["task"] == "Line"
    losses = client.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in losses) == [2, 4, 6, 8]
    assert losses[-1].value < losses[0].value
    assert sorted(m.step for m in client.get_metric_history(run_id, "val_loss")) == [4, 8]


def test_artifacts_and_direct_use(tracking_server: str, tmp_path: Path) -> None:
    logger = MLflowLogger(
        tmp_path, tracking_uri=tracking_server, experiment_name="maru-direct", log_artifacts=True,
        run_name="direct", tags={"team": "maru"},
    )  # fmt: skip
    (tmp_path / "notes.txt").write_text("hello")
    logger.log_hparams({"lr": 0.1, "layers": [2, 3]})
    logger.log_metrics({"loss": torch.tensor(0.5), "acc": 0.75}, step=3)
    logger.finalize()
    client = mlflow.MlflowClient(tracking_server)
    run = client.get_run(logger.run_id)
    assert run.info.run_name == "direct" and run.data.tags["team"] == "maru"
    assert run.data.params == {"lr": "0.1", "layers": "[2, 3]"}
    assert run.data.metrics == {"loss": 0.5, "acc": 0.75}
    assert {a.path for a in client.list_artifacts(logger.run_id)} >= {"notes.txt", MLFLOW_RUN_FILE}


def test_mlflow_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(TrainError, match=r"pip install 'maru\[mlflow\]'"):
        make_loggers(["mlflow"], tmp_path)
