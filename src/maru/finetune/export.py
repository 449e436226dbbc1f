"""Write the trained encoder as a sentence-transformers folder that ``LocalEmbeddings`` loads."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["export_sentence_transformers"]

# The base folder's module layout (pooling, normalisation) is kept as is: training used the same.
_LAYOUT_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")
_LAYOUT_FOLDERS = ("1_Pooling", "2_Normalize")


def export_sentence_transformers(encoder: Any, base: str | Path, out: str | Path, max_length: int) -> Path:
    """Save ``encoder`` and the base's tokenizer and module layout into ``out``, whole or not at
    all: everything is written beside it first and renamed into place last."""
    from transformers import AutoTokenizer

    base, out = Path(base), Path(out)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    encoder.save_pretrained(staging, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(staging)
    for name in _LAYOUT_FILES:
        if (base / name).is_file():
            shutil.copy2(base / name, staging / name)
    for name in _LAYOUT_FOLDERS:
        if (base / name).is_dir():
            shutil.copytree(base / name, staging / name)
    _set_max_length(staging / "sentence_bert_config.json", max_length)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def _set_max_length(config: Path, max_length: int) -> None:
    settings = json.loads(config.read_text()) if config.is_file() else {}
    settings["max_seq_length"] = max_length
    config.write_text(json.dumps(settings, indent=2))
