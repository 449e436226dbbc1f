"""An MLP classifier on Fashion-MNIST, read straight from its IDX files.

    python examples/train/fashion_mnist_mlp.py --data ~/data/fashion-mnist --steps 2000
    python examples/train/fashion_mnist_mlp.py            # no files: scikit-learn's digits

``--data DIR`` holds the four files under their usual names, gzipped or not:
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.
Without them the example trains on real images that need no download: the 1,797 8×8 handwritten
digits scikit-learn ships (``load_digits``), split into a training set and a held-out test set and
written as the same four IDX files with maru's ``write_idx``, so the rest of the program is the
same. It says so in its output, and the accuracy it reports is on the held-out images only.
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
    def __init__(self, pixels: int, hidden: int, lr: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, hidden),
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


def write_digits(out_dir: Path, test_fraction: float = 0.25, seed: int = 0) -> dict[str, Path]:
    """scikit-learn's 8×8 handwritten digits as the four IDX files: pixels 0–16 scaled to uint8
    0–255 as in MNIST, shuffled with ``seed``, the last ``test_fraction`` held out for testing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise SystemExit(
            "no Fashion-MNIST files and no scikit-learn for the digits fallback: pip install "
            "scikit-learn, or pass --data DIR with the four IDX files"
        ) from exc
    digits = load_digits()
    images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8)
    labels = torch.from_numpy(digits.target).to(torch.uint8)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = round(len(order) * test_fraction)
    splits = {"train": order[:-n_test], "test": order[-n_test:]}
    paths = {key: out_dir / name for key, name in FILES.items()}
    for split, rows in splits.items():
        write_idx(paths[f"{split}_images"], images[rows])
        write_idx(paths[f"{split}_labels"], labels[rows])
    return paths


@torch.no_grad()
def accuracy(model: MLPClassifier, data: ShardedDataset) -> tuple[float, int]:
    """The fraction of ``data`` classified right, and how many images that is out of."""
    device = next(model.parameters()).device
    model.eval()
    correct = total = 0
    for images, labels in data:
        predicted = model(images.to(device)).argmax(dim=-1).cpu()
        correct += int((predicted == labels).sum())
        total += len(labels)
    return correct / max(total, 1), total


def in_order(images: Path, labels: Path) -> ShardedDataset:
    """Every sample of an IDX pair once, unshuffled: for evaluation."""
    return ShardedDataset(IdxSource(images, labels), batch_size=256, shuffle=False, drop_last=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--precision", default="32")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    tmp = None
    files = find_files(args.data)
    if files is None:
        tmp = tempfile.TemporaryDirectory(prefix="maru-digits-")
        files = write_digits(Path(tmp.name))
        print(
            f"Fashion-MNIST files not found in {args.data}: training on scikit-learn's 8x8 "
            "handwritten DIGITS instead (1,797 real images, no download), written as IDX files, "
            "with a quarter held out for testing. Put the four Fashion-MNIST files there (or pass "
            "--data DIR) to train on Fashion-MNIST."
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
    trainer = Trainer(
        max_steps=args.steps,
        strategy=args.strategy,
        precision=args.precision,
        val_every=max(args.steps // 4, 1),
        run_dir=args.run_dir,
        loggers="auto" if args.run_dir else None,
        progress=not args.no_progress,
    )
    image, _ = IdxSource(files["train_images"], files["train_labels"])[0]
    task = MLPClassifier(image.numel(), args.hidden, args.lr)  # built right after the (seeding) Trainer: see maru.train.seeding
    trainer.fit(task, train, val_data=test)

    train_accuracy, n_train = accuracy(task, in_order(files["train_images"], files["train_labels"]))
    test_accuracy, n_test = accuracy(task, in_order(files["test_images"], files["test_labels"]))
    print(f"train accuracy: {train_accuracy:.3f} on the {n_train} training images")
    print(
        f"test accuracy: {test_accuracy:.3f} on {n_test} held-out images never trained on "
        f"(chance: {1 / CLASSES:.3f})"
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
