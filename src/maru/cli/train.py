"""``maru train …``: look at training runs (``maru train plot RUN_DIR``) and fine-tune the retriever's
embedding model (``maru train pairs`` writes question/passage pairs, ``maru train embeddings`` trains)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._extras import needs_extra
from ._shared import command_group, fail

train_app = command_group("train", help="Look at training runs; fine-tune the retriever's embeddings.")


@train_app.command("plot")
@needs_extra("train", "maru train plot")
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding metrics.csv.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="PNG to write (default RUN_DIR/loss.png).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metric to draw; repeat for several (default loss, val_loss)."),
    ] = None,
) -> None:
    """Draw a run's loss curves to a PNG."""
    from ..errors import TrainError
    from ..train.plot import plot_run

    try:
        path = plot_run(run_dir, out, tuple(metric) if metric else ("loss", "val_loss"))
    except TrainError as exc:
        fail(str(exc))
    typer.echo(str(path))


@train_app.command("embeddings")
def embeddings(
    data: Annotated[Path, typer.Option("--data", "-d", help="Pairs, JSON Lines: {\"query\": ..., \"positive\": ...}.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the fine-tuned sentence-transformers model.")],
    base: Annotated[
        str | None, typer.Option("--base", help="Model folder to start from (default: the bundled all-MiniLM-L6-v2).")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps.")] = 300,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs per batch and process (in-batch negatives).")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, linear warm-up).")] = 5e-5,
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens kept per text.")] = 256,
    nproc: Annotated[int, typer.Option("--nproc", help="Processes (DDP under torchrun when more than 1).")] = 1,
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint-dir", help="Checkpoints; a stopped run resumes from here.")
    ] = None,
) -> None:
    """Fine-tune the retriever's embedding model on question/passage pairs; LocalEmbeddings(model=OUT) loads it."""
    from ..errors import TrainError

    settings = {"base": base, "max_steps": steps, "batch_size": batch_size, "lr": lr, "max_length": max_length,
                "checkpoint_dir": checkpoint_dir}
    with needs_extra("rag", "maru train embeddings"), needs_extra("train", "maru train embeddings"):
        from ..finetune import finetune_embeddings, launch_finetune, read_pairs

        try:
            pairs = read_pairs(data)
            if nproc > 1:
                result = launch_finetune(data, out, nproc=nproc, **settings)
            else:
                result = finetune_embeddings(pairs, out, **settings)  # type: ignore[arg-type]
        except TrainError as exc:
            fail(str(exc))
    typer.echo(f"{result.out}  ({result.steps} steps, final loss {result.final_loss}, {result.steps_per_s:.2f} steps/s)")


@train_app.command("pairs")
def pairs(
    passages: Annotated[Path, typer.Argument(help="Passages: a text file (blank lines between passages) or JSONL with \"text\".")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Pairs file to write (JSON Lines).")],
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many passages.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", envvar="MARU_MODEL", help="Chat model (default: local).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")] = None,
) -> None:
    """Have a chat model write a question for each passage: training pairs from your own corpus."""
    from ..finetune import generate_pairs, write_pairs
    from .chat import make_chat_model

    texts = _passages(passages)[:limit]
    made = generate_pairs(texts, make_chat_model(model, base_url))
    write_pairs(made, out)
    typer.echo(f"{out}  ({len(made)} pairs from {len(texts)} passages)")


def _passages(path: Path) -> list[str]:
    import json

    if not path.is_file():
        fail(f"no passages file at {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".jsonl", ".ndjson"):
        try:
            return [str(json.loads(line)["text"]) for line in text.splitlines() if line.strip()]
        except (ValueError, KeyError, TypeError):
            fail(f"{path}: every line must be a JSON object with a \"text\" field")
    return [block.strip() for block in text.split("\n\n") if block.strip()]
