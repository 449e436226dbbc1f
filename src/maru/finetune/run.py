"""Run the fine-tune: pairs → a maru training run → a sentence-transformers folder.

:func:`finetune_embeddings` is one process's part (under ``torchrun`` each rank calls it and the
Trainer runs DDP); :func:`launch_finetune` starts ``nproc`` processes with ``torchrun`` itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainError
from .pairs import Pair, read_pairs, write_pairs

__all__ = ["FinetuneResult", "finetune_embeddings", "launch_finetune"]


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """Where the model went and how the run went (``steps_per_s`` over this run's steps)."""

    out: Path
    steps: int
    final_loss: float | None
    seconds: float
    steps_per_s: float


def _base_folder(base: str | Path | None) -> str:
    if base is not None:
        return str(base)
    from ..rag.embeddings import default_model_path

    return default_model_path()


def _check(pairs: Sequence[Pair], batch_size: int, max_steps: int) -> None:
    if batch_size < 2:
        raise TrainError("batch_size must be at least 2: the other passages of a batch are the negatives")
    if len(pairs) < batch_size:
        raise TrainError(f"{len(pairs)} pairs are fewer than one batch of {batch_size}; lower --batch-size")
    if max_steps < 1:
        raise TrainError("max_steps must be at least 1")


def _records(pairs: Sequence[Pair]) -> list[dict[str, str]]:
    return [{k: v for k, v in asdict(p).items() if v is not None} for p in pairs]


def finetune_embeddings(
    pairs: Sequence[Pair],
    out: str | Path,
    *,
    base: str | Path | None = None,
    max_steps: int = 300,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_length: int = 256,
    warmup_steps: int = 30,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    run_dir: str | Path | None = None,
    log_every: int = 10,
) -> FinetuneResult:
    """Fine-tune ``base`` (default: the bundled all-MiniLM-L6-v2) on ``pairs`` and write the
    result to ``out``. With ``checkpoint_dir`` a killed run resumes where it stopped, exactly."""
    from ..train import Trainer
    from ..train.data import ShardedDataset
    from .contrastive import ContrastiveEmbeddingTask, PairCollate
    from .export import export_sentence_transformers

    _check(pairs, batch_size, max_steps)
    base_folder = _base_folder(base)
    trainer = Trainer(
        max_steps=max_steps, seed=seed, log_every=log_every, progress=False,
        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
        checkpoint_every=(checkpoint_every or 50) if checkpoint_dir else None, run_dir=str(run_dir) if run_dir else None,
    )
    task = ContrastiveEmbeddingTask(base_folder, lr=lr, warmup_steps=warmup_steps)
    data = ShardedDataset(_records(pairs), batch_size=batch_size, seed=seed,
                          collate=PairCollate(base_folder, max_length))
    started = time.perf_counter()
    fit = trainer.fit(task, data)
    seconds = time.perf_counter() - started
    if trainer.env.is_main:
        export_sentence_transformers(task.encoder, base_folder, out, max_length)
    return FinetuneResult(Path(out), fit.step, fit.loss, seconds, task.steps_run / seconds if seconds else 0.0)


def launch_finetune(
    pairs: Sequence[Pair] | str | Path, out: str | Path, *, nproc: int = 2, **settings: Any
) -> FinetuneResult:
    """Run :func:`finetune_embeddings` in ``nproc`` processes under ``torchrun`` (DDP; gloo on
    CPU). Returns rank 0's result."""
    if nproc < 1:
        raise TrainError("nproc must be at least 1")
    out = Path(out)
    work = out.with_name(f".{out.name}.launch")
    work.mkdir(parents=True, exist_ok=True)
    pairs_path = Path(pairs) if isinstance(pairs, (str, Path)) else write_pairs(pairs, work / "pairs.jsonl")
    request = {"pairs": str(pairs_path), "out": str(out), "result": str(work / "result.json"), **{
        k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}}
    (work / "request.json").write_text(json.dumps(request))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "maru.finetune.worker", str(work / "request.json")]
    env = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise TrainError(f"the fine-tune's {nproc} processes failed (exit {done.returncode}); the output above says why")
    result = json.loads((work / "result.json").read_text())
    return FinetuneResult(Path(result["out"]), result["steps"], result["final_loss"], result["seconds"],
                          result["steps_per_s"])


def run_request(request_file: str | Path) -> None:
    """A torchrun worker's whole job: read the request, train, and (rank 0) write the result."""
    request = json.loads(Path(request_file).read_text())
    pairs = read_pairs(request.pop("pairs"))
    out, result_file = request.pop("out"), request.pop("result")
    result = finetune_embeddings(pairs, out, **request)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(result_file).write_text(json.dumps({**asdict(result), "out": str(result.out)}))
