"""Training pairs for the embedding fine-tune: read, write, or have a chat model write them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainError

__all__ = ["Pair", "generate_pairs", "read_pairs", "write_pairs"]


@dataclass(frozen=True, slots=True)
class Pair:
    """A query and the passage that answers it; ``negative`` is an optional hard negative."""

    query: str
    positive: str
    negative: str | None = None


def _pair_from(record: Any, where: str) -> Pair:
    if not isinstance(record, dict):
        raise TrainError(f"{where}: expected a JSON object with 'query' and 'positive', got {type(record).__name__}")
    query = record.get("query", record.get("question", record.get("anchor")))
    positive = record.get("positive", record.get("passage", record.get("text")))
    negative = record.get("negative")
    for name, value in (("query", query), ("positive", positive)):
        if not isinstance(value, str) or not value.strip():
            raise TrainError(f"{where}: '{name}' must be a non-empty string (keys: query/question, positive/passage)")
    if negative is not None and not isinstance(negative, str):
        raise TrainError(f"{where}: 'negative' must be a string when given")
    return Pair(str(query), str(positive), negative)


def read_pairs(path: str | Path) -> list[Pair]:
    """Pairs from a JSON Lines file: one ``{"query": ..., "positive": ..., "negative"?: ...}`` per
    line (``question``/``passage`` are accepted too). A bad line is one error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"no pairs file at {path}: write one JSON object per line with 'query' and 'positive'")
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainError(f"{path}:{number}: not JSON ({exc.msg})") from None
            pairs.append(_pair_from(record, f"{path}:{number}"))
    if len(pairs) < 2:
        raise TrainError(f"{path} holds {len(pairs)} pair(s); in-batch contrastive training needs at least 2")
    return pairs


def write_pairs(pairs: Iterable[Pair], path: str | Path) -> Path:
    """Write pairs as JSON Lines (the format :func:`read_pairs` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for pair in pairs:
            record = {k: v for k, v in asdict(pair).items() if v is not None}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


_ASK = (
    "Write one question that the passage below answers. Use the passage's language. "
    "Reply with the question only.\n\nPassage:\n{passage}"
)


def _first_question(reply: str) -> str | None:
    for line in reply.strip().splitlines():
        line = line.strip().strip('"').removeprefix("Question:").strip()
        if len(line) > 8:
            return line
    return None


def generate_pairs(passages: Sequence[str], model: Any, *, max_chars: int = 1500) -> list[Pair]:
    """Ask ``model`` (any maru chat model: the local one by default in the CLI) for a question per
    passage; passages it gives no usable question for are skipped."""
    pairs = []
    for passage in passages:
        reply = model.invoke(_ASK.format(passage=passage[:max_chars]))
        question = _first_question(getattr(reply, "text", str(reply)))
        if question:
            pairs.append(Pair(question, passage))
    return pairs
