"""Fine-tune the retriever's MiniLM with maru's Trainer (DDP, 2 processes) and measure what it buys
on splits the training never saw; time raw sentence-transformers training of the same loss beside.

Training pairs: KorQuAD questions of articles 40.. and XQuAD questions of articles 16.. with the
paragraph that answers them. Held out (never trained on): KorQuAD articles 0..39, XQuAD articles
0..15, all of Cranfield. For each: dense nDCG@10 / hit@1 before and after, and the hybrid (dense +
BM25, default fusion) after, beside BM25 alone.

    .venv/bin/python bench/finetune_embeddings.py [--steps 120] [--batch-size 16] [--max-length 128] [--nproc 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion import KORQUAD, XQUAD, _dataset, _paragraphs  # noqa: E402
from retrieval_quality import CACHE, Dataset, _run, cranfield, metrics  # noqa: E402

from maru.finetune import Pair, finetune_embeddings, launch_finetune  # noqa: E402
from maru.rag.embeddings import LocalEmbeddings, default_model_path  # noqa: E402
from maru.rag.lexical import BM25Retriever  # noqa: E402
from maru.rag.retrievers.hybrid import HybridRetriever  # noqa: E402
from maru.rag.stores.memory import InMemoryStore  # noqa: E402


def split(path: Path, held_articles: int, label: str) -> tuple[Dataset, list[Pair]]:
    """(held-out dataset of the first ``held_articles`` articles, training pairs of the rest)."""
    held_docs, held_pairs = _paragraphs(path, articles=held_articles)
    all_docs, all_pairs = _paragraphs(path)
    texts = {d.id: d.text for d in all_docs}
    held_ids = {d.id for d in held_docs}
    train = [Pair(q, texts[pid]) for q, pid in all_pairs if pid not in held_ids]
    return _dataset(label, held_docs, held_pairs), train


def evaluate(ds: Dataset, model_path: str) -> dict[str, dict[str, float]]:
    emb = LocalEmbeddings(model=model_path)
    store = InMemoryStore(emb)
    store.add(ds.docs)
    dense = store.as_retriever(k=10)
    bm25 = BM25Retriever(ds.docs, k=10)
    out = {}
    for name, r in (("dense", dense), ("bm25", bm25), ("hybrid", HybridRetriever([dense, bm25], k=10))):
        out[name] = metrics(_run(r.retrieve, ds.queries, lambda d: d.id), ds.qrels)
    return out


def cached_before(held: list[Dataset]) -> dict[str, dict[str, dict[str, float]]]:
    """The base model's scores (they do not change between runs: cached in .bench-cache)."""
    path = CACHE / "finetune-before.json"
    names = [d.name for d in held]
    if path.exists():
        saved = json.loads(path.read_text())
        if list(saved) == names:
            return saved  # type: ignore[no-any-return]
    before = {d.name: evaluate(d, default_model_path()) for d in held}
    CACHE.mkdir(exist_ok=True)
    path.write_text(json.dumps(before))
    return before


def raw_sentence_transformers(pairs: list[Pair], steps: int, batch_size: int, max_length: int) -> float:
    """Steps/s of sentence-transformers' own trainer on the same loss, data and batch size (one
    process: the peer's DDP needs accelerate's launcher)."""
    from datasets import Dataset as HFDataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(default_model_path(), device="cpu")
    model.max_seq_length = max_length
    data = HFDataset.from_dict({"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]})
    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=5e-5,
            warmup_steps=min(30, steps), logging_steps=10_000, save_strategy="no", report_to=[],
            use_cpu=True, dataloader_drop_last=True, seed=0,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model))
        t0 = time.perf_counter()
        trainer.train()
        return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--peer-steps", type=int, default=20)
    ap.add_argument("--out", default=".bench-cache/minilm-finetuned")
    args = ap.parse_args()

    korquad, ko_train = split(KORQUAD, 40, "korquad_heldout40")
    xquad, en_train = split(XQUAD, 16, "xquad_heldout16")
    held = [korquad, xquad, cranfield()]
    pairs = ko_train + en_train
    random.Random(7).shuffle(pairs)
    print(f"training pairs: {len(ko_train)} Korean + {len(en_train)} English; held out: "
          + ", ".join(f"{d.name} ({len(d.docs)} docs, {len(d.queries)} q)" for d in held), flush=True)

    before = cached_before(held)
    result = launch_finetune(pairs, args.out, nproc=args.nproc, max_steps=args.steps,
                             batch_size=args.batch_size, max_length=args.max_length, lr=args.lr,
                             warmup_steps=max(1, args.steps // 10), checkpoint_dir=f"{args.out}.ckpt",
                             checkpoint_every=max(1, args.steps // 4), log_every=max(1, args.steps // 12))
    after = {d.name: evaluate(d, str(result.out)) for d in held}
    ddp_rate = args.steps / result.seconds
    with tempfile.TemporaryDirectory() as tmp:  # one process each, same batch: the overhead ratio
        maru_rate = finetune_embeddings(pairs, Path(tmp) / "m", max_steps=args.peer_steps,
                                        batch_size=args.batch_size, max_length=args.max_length).steps_per_s
    peer_rate = raw_sentence_transformers(pairs, args.peer_steps, args.batch_size, args.max_length)

    print(f"\n{'split':20} {'dense before':>14} {'dense after':>14} {'bm25':>14} {'hybrid after':>14}   (nDCG@10 / hit@1)")
    for d in held:
        b, a = before[d.name], after[d.name]
        cells = [b["dense"], a["dense"], a["bm25"], a["hybrid"]]
        print(f"{d.name:20} " + " ".join(f"{c['ndcg@10']:6.3f}/{c['hit@1']:.3f}" for c in cells))
    print(f"\nfine-tune: DDP x{args.nproc}, {args.steps} steps of global batch {args.batch_size * args.nproc} "
          f"in {result.seconds:.0f} s ({ddp_rate:.3f} steps/s)")
    print(f"one process, batch {args.batch_size}, {args.peer_steps} steps: maru Trainer {maru_rate:.3f} steps/s, "
          f"sentence-transformers trainer {peer_rate:.3f} steps/s (ratio {maru_rate / peer_rate:.2f})")
    print(json.dumps({"bench": "finetune_embeddings", "before": before, "after": after, "ddp_steps_per_s": ddp_rate,
                      "maru_steps_per_s": maru_rate, "peer_steps_per_s": peer_rate, "nproc": args.nproc}))


if __name__ == "__main__":
    main()
