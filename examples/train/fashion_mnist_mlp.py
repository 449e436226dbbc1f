"""An MLP classifier on Fashion-MNIST, read straight from its IDX files.

    python examples/train/fashion_mnist_mlp.py --data ~/data/fashion-mnist --steps 2000
    python examples/train/fashion_mnist_mlp.py            # no files: a small synthetic set

``--data DIR`` holds the four files under their usual names, gzipped or not:
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.
Without them the example writes a small synthetic IDX set (ten noisy class patterns) with
``write_idx`` and trains on that, so it runs offline; it says so in its output.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from maru.train import IdxSource, ShardedDataset, Task, Trainer
from maru.train.data import write_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASSES = 10


class MLPClassifier(Task):
    def __init__(self, hidden: int, lr: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, CLASSES),
        )
        self.lr = lr

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self(images), labels)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, labels = batch
        logits = self(images)
        accuracy = (logits.argmax(dim=-1) == labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def find_files(data_dir: Path) -> dict[str, Path] | None:
    """The four IDX files in ``data_dir`` (plain or .gz), or None if any is missing."""
    found = {}
    for key, name in FILES.items():
        for candidate in (data_dir / name, data_dir / f"{name}.gz"):
            if candidate.exists():
                found[key] = candidate
                break
        else:
            return None
    return found


def write_synthetic(out_dir: Path, n_train: int, n_test: int, seed: int = 0) -> dict[str, Path]:
    """Ten random 28×28 class patterns; each image is its class's pattern plus noise."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(CLASSES, 28, 28, generator=generator)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, CLASSES, (n,), generator=generator)
        noisy = patterns[labels] + 0.35 * torch.randn(n, 28, 28, generator=generator)
        return (noisy.clamp(0, 1) * 255).to(torch.uint8), labels.to(torch.uint8)

    paths = {key: out_dir / name for key, name in FILES.items()}
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = make(n)
        write_idx(paths[f"{split}_images"], images)
        write_idx(paths[f"{split}_labels"], labels)
    return paths


@torch.no_grad()
def accuracy(model: MLPClassifier, data: ShardedDataset) -> float:
    device = next(model.parameters()).device
    correct = total = 0
    for images, labels in data:
        predicted = model(images.to(device)).argmax(dim=-1).cpu()
        correct += int((predicted == labels).sum())
        total += len(labels)
    return correct / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--synthetic-samples", type=int, default=4000)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--precision", default="32")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    tmp = None
    files = find_files(args.data)
    if files is None:
        tmp = tempfile.TemporaryDirectory(prefix="maru-fashion-")
        files = write_synthetic(Path(tmp.name), args.synthetic_samples, args.synthetic_samples // 4)
        print(
            f"Fashion-MNIST files not found in {args.data}: training on a SYNTHETIC set of "
            f"{args.synthetic_samples} images (ten noisy random patterns) so the example runs "
            "offline. Put the four IDX files there (or pass --data DIR) to train on the real set."
        )
    else:
        print(f"Fashion-MNIST from {args.data}")

    train = ShardedDataset(
        IdxSource(files["train_images"], files["train_labels"]), batch_size=args.batch_size
    )
    test = ShardedDataset(
        IdxSource(files["test_images"], files["test_labels"]),
        batch_size=256,
        shuffle=False,
        drop_last=False,
    )
    task = MLPClassifier(args.hidden, args.lr)
    trainer = Trainer(
        max_steps=args.steps,
        strategy=args.strategy,
        precision=args.precision,
        val_every=max(args.steps // 4, 1),
        run_dir=args.run_dir,
        loggers="auto" if args.run_dir else None,
        progress=not args.no_progress,
    )
    trainer.fit(task, train, val_data=test)

    test_eval = ShardedDataset(
        IdxSource(files["test_images"], files["test_labels"]),
        batch_size=256,
        shuffle=False,
        drop_last=False,
    )
    print(f"test accuracy: {accuracy(task, test_eval):.3f} (chance: {1 / CLASSES:.3f})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
