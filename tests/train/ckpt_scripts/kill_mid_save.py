"""Save step 1, then die by SIGKILL inside the save of step 2 after every file was written but
before the folder was published (run from tests/train/test_checkpoint.py). Usage: DIR"""

from __future__ import annotations

import os
import signal
import sys

import torch

from maru.train import checkpoint


def main() -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = checkpoint.CheckpointManager(sys.argv[1])
    manager.save(1, model=model, optimizers=[opt], schedulers=[], extra={"step": 1})

    def die(tmp: object, final: object) -> None:
        print(f"killing myself before publishing {tmp}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint._publish = die  # type: ignore[assignment]
    with torch.no_grad():
        model.weight.add_(1.0)
    manager.save(2, model=model, optimizers=[opt], schedulers=[], extra={"step": 2})
    print("not reached", flush=True)


if __name__ == "__main__":
    main()
