"""Where "not found in these documents" should start: the relevance of answerable and unanswerable
questions, in English and Korean, for ``KnowledgeBase(min_relevance=...)``.

    .venv/bin/python bench/rag_relevance.py [--n 150]

For each question two scores (:func:`maru.rag.relevance.relevance`, the best of the passages):
- answerable: against its own paragraph plus three other paragraphs of the same corpus;
- unanswerable: against the four passages of an unrelated corpus closest to it by embedding (hard
  negatives: what retrieval would hand the model) — XQuAD and KorQuAD questions over Cranfield's
  aeronautics abstracts, and XQuAD questions over KorQuAD's Korean paragraphs.

It prints, per threshold, the share of answerable questions kept and of unanswerable ones refused,
with the embedding model ``KnowledgeBase`` uses by default. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def squad(path: Path) -> list[tuple[str, str]]:
    """(question, its paragraph) pairs of a SQuAD-format file."""
    pairs = []
    for article in json.loads(path.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            pairs.extend((qa["question"], paragraph["context"]) for qa in paragraph["qas"])
    return pairs


def cranfield(limit: int) -> list[str]:
    text = (DATA / "cranfield" / "cran.all.1400").read_text()
    return [r.split(".W", 1)[1].strip() for r in text.split(".I ")[1:] if ".W" in r][:limit]


def best(question: str, passages: list[str], embeddings: Any) -> float:
    from maru.rag.relevance import relevance

    return max(relevance(question, passages, embeddings))


def answerable(pairs: list[tuple[str, str]], embeddings: Any, rng: random.Random) -> list[float]:
    paragraphs = sorted({p for _, p in pairs})
    scores = []
    for question, own in pairs:
        others = rng.sample([p for p in paragraphs if p != own], 3)
        scores.append(best(question, [own, *others], embeddings))
    return scores


def unanswerable(questions: list[str], corpus: list[str], embeddings: Any) -> list[float]:
    import numpy as np

    vectors = np.asarray(embeddings.embed_documents(corpus), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = []
    for question in questions:
        query = np.asarray(embeddings.embed_query(question), dtype=np.float32)
        top = np.argsort(-(vectors @ query))[:4]
        scores.append(best(question, [corpus[i] for i in top], embeddings))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150, help="questions per set")
    args = parser.parse_args()
    from maru.rag.embeddings import LocalEmbeddings

    rng = random.Random(0)
    embeddings = LocalEmbeddings()
    english = rng.sample(squad(DATA / "xquad_en" / "xquad.en.json"), args.n)
    korean = rng.sample(squad(DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json"), args.n)
    korean_paragraphs = sorted({p for _, p in korean})
    sets = {
        "en answerable (XQuAD)": (answerable(english, embeddings, rng), True),
        "ko answerable (KorQuAD)": (answerable(korean, embeddings, rng), True),
        "en over Cranfield": (unanswerable([q for q, _ in english], cranfield(400), embeddings), False),
        "ko over Cranfield": (unanswerable([q for q, _ in korean], cranfield(400), embeddings), False),
        "en over KorQuAD": (unanswerable([q for q, _ in english], korean_paragraphs, embeddings), False),
    }
    print("share kept (answerable) / refused (unanswerable) per threshold")
    print(f"{'set':26s}" + "".join(f"{t:>7.2f}" for t in THRESHOLDS))
    figures: dict[str, dict[str, float]] = {}
    for name, (scores, relevant) in sets.items():
        shares = [sum((s >= t) == relevant for s in scores) / len(scores) for t in THRESHOLDS]
        figures[name] = {str(t): round(v, 3) for t, v in zip(THRESHOLDS, shares, strict=True)}
        print(f"{name:26s}" + "".join(f"{v:7.3f}" for v in shares))
    print(json.dumps({"bench": "rag_relevance", "n": args.n, "figures": figures}))


if __name__ == "__main__":
    main()
