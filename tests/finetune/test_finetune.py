"""Fine-tuning the retriever's embeddings with maru's Trainer: pairs in, a sentence-transformers
folder out that LocalEmbeddings loads; DDP under torchrun; a stopped run resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maru.errors import TrainError
from maru.finetune import (
    Pair,
    finetune_embeddings,
    generate_pairs,
    launch_finetune,
    read_pairs,
    write_pairs,
)

pytest.importorskip("torch")
pytest.importorskip("transformers")

PAIRS = [
    Pair("What is the capital of France?", "Paris is the capital and largest city of France."),
    Pair("How tall is Mount Everest?", "Mount Everest rises 8,849 metres above sea level."),
    Pair("Who wrote Hamlet?", "Hamlet is a tragedy written by William Shakespeare."),
    Pair("서울의 인구는?", "서울의 인구는 약 940만 명이다."),
    Pair("What do bees make?", "Honey bees make honey from the nectar of flowers."),
    Pair("When did the Berlin Wall fall?", "The Berlin Wall fell on 9 November 1989."),
    Pair("What is the boiling point of water?", "At sea level water boils at 100 degrees Celsius."),
    Pair("한국의 수도는 어디인가?", "대한민국의 수도는 서울이다."),
]
SMALL = {"batch_size": 4, "max_length": 32, "warmup_steps": 1, "log_every": 1}


def test_pairs_round_trip_and_bad_lines_are_named(tmp_path: Path) -> None:
    path = write_pairs(PAIRS, tmp_path / "pairs.jsonl")
    assert read_pairs(path) == PAIRS
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{"query": "", "positive": "p"}\n')
    with pytest.raises(TrainError, match=r"bad.jsonl:2: 'query' must be a non-empty string"):
        read_pairs(bad)
    bad.write_text('{"query": "q", "positive": "p"}\nnot json\n')
    with pytest.raises(TrainError, match=r"bad.jsonl:2: not JSON"):
        read_pairs(bad)
    with pytest.raises(TrainError, match="no pairs file"):
        read_pairs(tmp_path / "missing.jsonl")


def test_too_few_pairs_for_a_batch_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="fewer than one batch"):
        finetune_embeddings(PAIRS[:3], tmp_path / "m", batch_size=4)
    with pytest.raises(TrainError, match="at least 2"):
        finetune_embeddings(PAIRS, tmp_path / "m", batch_size=1)


def test_generate_pairs_keeps_usable_questions() -> None:
    class Model:
        def __init__(self) -> None:
            self.replies = iter(["Question: Where is Paris located?", "??"])

        def invoke(self, prompt: str) -> str:
            return next(self.replies)

    pairs = generate_pairs(["Paris is in France.", "x"], Model())
    assert pairs == [Pair("Where is Paris located?", "Paris is in France.")]


@pytest.mark.slow
def test_the_fine_tuned_folder_loads_in_local_embeddings_and_moved(tmp_path: Path) -> None:
    import numpy as np

    from maru.rag.embeddings import LocalEmbeddings, default_model_path

    result = finetune_embeddings(PAIRS, tmp_path / "tuned", max_steps=3, lr=1e-3, **SMALL)
    assert result.steps == 3 and result.final_loss is not None and result.steps_per_s > 0
    assert (result.out / "modules.json").is_file() and not list(tmp_path.glob(".tuned.partial-*"))
    config = json.loads((result.out / "sentence_bert_config.json").read_text())
    assert config["max_seq_length"] == 32
    tuned = LocalEmbeddings(model=str(result.out)).embed_array(["Who wrote Hamlet?"])
    base = LocalEmbeddings(model=default_model_path()).embed_array(["Who wrote Hamlet?"])
    assert tuned.shape == base.shape == (1, 384)
    assert abs(float(np.linalg.norm(tuned[0])) - 1.0) < 1e-4
    assert not np.allclose(tuned, base, atol=1e-3)  # training changed the weights


def _weights(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ddp_run_stopped_and_resumed_equals_an_unbroken_one(tmp_path: Path) -> None:
    """Two processes under torchrun; stop at step 2, resume to 4 from the checkpoint: the same
    weights as 4 steps in one go."""
    import torch

    unbroken = launch_finetune(PAIRS, tmp_path / "unbroken", nproc=2, max_steps=4, **SMALL)
    ckpt = tmp_path / "ckpt"
    launch_finetune(PAIRS, tmp_path / "first", nproc=2, max_steps=2, checkpoint_dir=ckpt, checkpoint_every=2, **SMALL)
    resumed = launch_finetune(PAIRS, tmp_path / "resumed", nproc=2, max_steps=4, checkpoint_dir=ckpt,
                              checkpoint_every=2, **SMALL)
    assert unbroken.steps == resumed.steps == 4
    a, b = _weights(unbroken.out), _weights(resumed.out)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # type: ignore[arg-type]


def test_cli_bad_pairs_file_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from maru.cli import app

    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"query": "q"}\n')
    result = CliRunner().invoke(app, ["train", "embeddings", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "pairs.jsonl:1: 'positive' must be a non-empty string" in result.output
    assert "Traceback" not in result.output


def test_cli_pairs_from_a_passages_file_with_a_scripted_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from maru.cli import app, chat
    from maru.models import ScriptedChatModel

    passages = tmp_path / "passages.txt"
    passages.write_text("Paris is in France.\n\nHamlet was written by Shakespeare.\n")
    model = ScriptedChatModel(["Where is Paris?", "Who wrote Hamlet?"])
    monkeypatch.setattr(chat, "make_chat_model", lambda *_: model)
    result = CliRunner().invoke(app, ["train", "pairs", str(passages), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0, result.output
    assert read_pairs(tmp_path / "p.jsonl") == [
        Pair("Where is Paris?", "Paris is in France."), Pair("Who wrote Hamlet?", "Hamlet was written by Shakespeare.")]
