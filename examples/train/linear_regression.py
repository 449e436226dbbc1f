"""Fit y = 2x + 1 from noisy samples: the smallest complete maru training run.

    python examples/train/linear_regression.py            # 300 steps, a few seconds on CPU
    python examples/train/linear_regression.py --steps 2000 --run-dir runs/linreg
    torchrun --nproc-per-node 2 examples/train/linear_regression.py --strategy ddp

The program is ``maru/demo/linear_regression.py`` (a ``Task`` of a few lines and a ``Trainer``),
shipped in the package so that ``maru demo`` can run it from an installed wheel; read it there.
"""

from maru.demo.linear_regression import main

if __name__ == "__main__":
    main()
