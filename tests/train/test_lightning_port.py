"""A LightningModule and LightningDataModule ported by changing their base classes and imports:
``import lightning as L`` → ``from maru.train import ...``, ``L.LightningModule`` → ``Task``,
``L.LightningDataModule`` → ``DataModule``, ``L.Trainer`` → ``Trainer``,
``lightning.pytorch.callbacks`` → ``maru.train.callbacks``. The body below is Lightning code as
its docs write it: it trains, validates each epoch, early-stops, checkpoints the best, tests and
predicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset, random_split  # noqa: E402

from maru.train import DataModule, Task, Trainer  # noqa: E402  (was: import lightning as L)
from maru.train.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402


class BlobsDataModule(DataModule):  # was: L.LightningDataModule
    def __init__(self, batch_size: int = 32) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.prepared = False

    def prepare_data(self) -> None:
        self.prepared = True  # (would download)

    def setup(self, stage: str) -> None:
        gen = torch.Generator().manual_seed(42)
        centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
        labels = torch.randint(0, 3, (900,), generator=gen)
        points = centers[labels] + 1.1 * torch.randn(900, 2, generator=gen)
        full = TensorDataset(points, labels)
        self.train_set, self.val_set, self.test_set = random_split(full, [600, 150, 150], generator=gen)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=self.batch_size)


class LitClassifier(Task):  # was: L.LightningModule
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
        self.validation_step_outputs: list[Any] = []
        self.epochs_seen: list[int] = []

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        loss = F.cross_entropy(self(x), y) + torch.zeros((), device=self.device)
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_loss_epoch_mean", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True)
        acc = (logits.argmax(dim=-1) == y).float().mean()
        self.log("val_acc", acc)
        self.validation_step_outputs.append(acc)

    def on_validation_epoch_end(self) -> None:
        self.log("val_acc_unweighted", torch.stack(self.validation_step_outputs).mean())
        self.validation_step_outputs.clear()

    def on_train_epoch_end(self) -> None:
        self.epochs_seen.append(self.current_epoch)

    def test_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        self.log("test_acc", (self(x).argmax(dim=-1) == y).float().mean())

    def predict_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, _ = batch
        return self(x).argmax(dim=-1)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def test_a_ported_lightning_module_trains_validates_early_stops_tests_and_predicts(tmp_path: Path) -> None:
    dm = BlobsDataModule()
    model = LitClassifier()
    early = EarlyStopping(monitor="val_loss", mode="min", patience=2, min_delta=0.01)
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_acc", mode="max", save_top_k=1)
    trainer = Trainer(  # was: L.Trainer(max_epochs=..., callbacks=..., logger=False, ...)
        max_epochs=60,
        callbacks=[early, best],
        loggers=None,
        progress=False,
        seed=0,
        log_every=5,
    )
    trainer.fit(model, datamodule=dm)
    assert dm.prepared and model.hparams == {"lr": 0.05}
    assert trainer.should_stop and trainer.current_epoch < 60  # early-stopped
    assert model.epochs_seen == list(range(len(model.epochs_seen)))
    assert {"val_loss", "val_acc", "val_acc_unweighted", "train_loss_epoch_mean"} <= set(trainer.callback_metrics)
    assert trainer.callback_metrics["val_acc"] > 0.8
    assert trainer.lr_schedulers[0].last_epoch == len(model.epochs_seen)  # stepped once per epoch
    assert best.best_model_path and Path(best.best_model_path).is_dir()

    (test_metrics,) = trainer.test(model, datamodule=dm)
    assert test_metrics["test_acc"] > 0.8
    predictions = trainer.predict(model, datamodule=dm)
    assert sum(len(p) for p in predictions) == 150 and predictions[0].dtype == torch.int64
    (val_metrics,) = trainer.validate(model, datamodule=dm)
    assert val_metrics["val_acc"] == pytest.approx(trainer.callback_metrics["val_acc"])


def test_the_task_may_hold_its_own_dataloaders() -> None:
    class SelfContained(LitClassifier):
        def setup(self, stage: str) -> None:
            self.dm = BlobsDataModule()
            self.dm.setup(stage)

        def train_dataloader(self) -> DataLoader[Any]:
            return self.dm.train_dataloader()

        def val_dataloader(self) -> DataLoader[Any]:
            return self.dm.val_dataloader()

    model = SelfContained()
    trainer = Trainer(max_epochs=2, loggers=None, progress=False, limit_train_batches=3)
    result = trainer.fit(model)
    assert result.step == 6 and "val_loss" in result.val_metrics
