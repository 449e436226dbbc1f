"""What the maru Trainer costs next to a hand-written PyTorch loop and Lightning, on CPU.

    .venv/bin/python bench/train.py [--quick] [--repeats N] [--steps N]

The same MLP (512 → 1024 → 1024 → 10, batch 64, AdamW), the same data and one intra-op thread
per process, trained by (a) a hand-written loop, (b) the maru Trainer, (c) a hand-written
torchrun DDP loop over 2 processes (gloo), (d) the maru Trainer with DDP over 2 processes, (e)
Lightning on 1 process and with DDP over 2. Each run is a fresh process (bench/train_workers/
loop.py); start-up is from just before the process (or torchrun) starts to the end of the first
step, steady state is steps/s after a warm-up. Runs are interleaved and each figure is the median
of the repeats. Goals: maru ≥ 0.99× raw in steady state, start-up ≤ raw + 0.3 s.

With CUDA there is a GPU section: bf16 MFU of a ~1.1B-parameter GPT with FSDP2 and
torch.compile (bench/train_workers/gpt_mfu.py). The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = Path(__file__).resolve().parent / "train_workers"

# name -> (mode, processes)
CONFIGS = {
    "raw": ("raw", 1),
    "maru": ("maru", 1),
    "raw_ddp": ("raw", 2),
    "maru_ddp": ("maru", 2),
    "lightning": ("lightning", 1),
    "lightning_ddp": ("lightning", 2),
}


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def run_once(mode: str, procs: int, steps: int, warmup: int) -> dict[str, float]:
    script = [str(WORKERS / "loop.py"), mode, str(steps), str(warmup)]
    if procs > 1:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={procs}", *script,
        ]
    else:
        command = [sys.executable, *script]
    env = _env()
    env["BENCH_T0"] = repr(time.time())
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} x{procs} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def cpu_section(
    repeats: int, steps: int, warmup: int, names: list[str]
) -> dict[str, dict[str, float]]:
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names:
            mode, procs = CONFIGS[name]
            samples[name].append(run_once(mode, procs, steps, warmup))
            print(f"  repeat {r + 1}/{repeats} {name}: {samples[name][-1]}", file=sys.stderr)
    return {
        name: {key: statistics.median(s[key] for s in runs) for key in ("steps_per_s", "startup_s")}
        for name, runs in samples.items()
    }


def print_table(figures: dict[str, dict[str, float]]) -> None:
    print(f"{'run':<15}{'steps/s':>10}{'× raw':>8}{'start-up s':>12}{'− raw s':>9}")
    for name, fig in figures.items():
        base = figures.get("raw_ddp" if name.endswith("_ddp") else "raw", fig)
        ratio = fig["steps_per_s"] / base["steps_per_s"]
        extra = fig["startup_s"] - base["startup_s"]
        print(f"{name:<15}{fig['steps_per_s']:>10.2f}{ratio:>8.3f}{fig['startup_s']:>12.2f}{extra:>+9.2f}")


def fig_ratio(fig: dict[str, float], base: dict[str, float]) -> float:
    return fig["steps_per_s"] / base["steps_per_s"]


def gpu_section() -> dict[str, float | str | None]:
    import torch

    if not torch.cuda.is_available():
        print("GPU (bf16 MFU, ~1.1B GPT, FSDP2 + torch.compile): skipped: no CUDA")
        return {}
    proc = subprocess.run(
        [sys.executable, str(WORKERS / "gpt_mfu.py")], capture_output=True, text=True, env=_env()
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"gpt_mfu failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    print(
        f"GPU {result['gpu']}: {result['params'] / 1e9:.2f}B-parameter GPT, bf16, FSDP2 + "
        f"torch.compile: MFU {result['mfu']:.1%}, {result['tokens_per_s']:.0f} tokens/s"
    )
    return {
        "gpu": result["gpu"],
        "gpt_params": result["params"],
        "gpt_mfu_fraction": result["mfu"],
        "gpt_tokens_per_s": result["tokens_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 60 steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-gpu", action="store_true")
    parser.add_argument(
        "--only", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
        help="run these configurations only (e.g. raw_ddp maru_ddp lightning_ddp)",
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.steps = 1, 60

    print(f"CPU: MLP 512-1024-1024-10, batch 64, {args.steps} steps ({args.warmup} warm-up), "
          f"median of {args.repeats}, 1 thread per process")
    figures = cpu_section(args.repeats, args.steps, args.warmup, args.only)
    print_table(figures)
    out: dict[str, float | str | None] = {}
    for name, fig in figures.items():
        out[f"{name}_steps_per_s"] = round(fig["steps_per_s"], 3)
        out[f"{name}_startup_s"] = round(fig["startup_s"], 3)
    for name in ("maru", "maru_ddp", "lightning", "lightning_ddp"):
        base = figures.get("raw_ddp" if name.endswith("_ddp") else "raw")
        if name not in figures or base is None:
            continue
        out[f"{name}_vs_raw_steady_ratio"] = round(fig_ratio(figures[name], base), 4)
        out[f"{name}_startup_extra_s"] = round(figures[name]["startup_s"] - base["startup_s"], 3)
    if not args.no_gpu:
        out.update(gpu_section())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
