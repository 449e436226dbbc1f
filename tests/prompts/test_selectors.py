"""Example selectors: semantic similarity, MMR and token length, and their use with few-shot prompts."""

from __future__ import annotations

import pytest

from maru.errors import PromptError
from maru.models.embeddings import Embeddings
from maru.prompts.few_shot import FewShotPromptTemplate
from maru.prompts.selectors import LengthBasedSelector, MMRSelector, SemanticSimilaritySelector
from maru.prompts.string import PromptTemplate
from maru.usage.tokens import count_tokens


class WordEmbeddings(Embeddings):
    """Bag of words over a small vocabulary: similarity is word overlap."""

    VOCAB = ["happy", "sad", "tall", "short", "hot", "cold", "fast", "slow", "glad", "warm"]

    def __init__(self):
        self.calls = 0

    def embed_documents(self, texts):
        self.calls += 1
        return [[float(t.lower().count(w)) + 0.01 for w in self.VOCAB] for t in texts]


EXAMPLES = [
    {"input": "happy", "output": "sad"},
    {"input": "tall", "output": "short"},
    {"input": "hot", "output": "cold"},
    {"input": "fast", "output": "slow"},
]


def test_semantic_selector_picks_the_most_similar_first():
    sel = SemanticSimilaritySelector(EXAMPLES, WordEmbeddings(), k=2, input_keys=["input"])
    picked = sel.select({"input": "hot warm"})
    assert picked[0] == {"input": "hot", "output": "cold"}
    assert len(picked) == 2
    last = SemanticSimilaritySelector(EXAMPLES, WordEmbeddings(), k=2, input_keys=["input"],
                                      most_similar_last=True)
    assert last.select({"input": "hot warm"})[-1]["input"] == "hot"


def test_semantic_selector_add_example_and_copies():
    emb = WordEmbeddings()
    sel = SemanticSimilaritySelector(EXAMPLES, emb, k=1, input_keys=["input"])
    sel.add_example({"input": "warm", "output": "cool"})
    assert sel.select({"input": "warm"}) == [{"input": "warm", "output": "cool"}]
    sel.select({"input": "warm"})[0]["output"] = "changed"
    assert sel.examples[-1]["output"] == "cool"
    assert emb.calls == 1 + 1 + 2  # examples once, the new one once, then one per query
    assert SemanticSimilaritySelector([], emb).select({"input": "x"}) == []


def test_input_keys_default_uses_all_keys_and_missing_keys_error():
    sel = SemanticSimilaritySelector(EXAMPLES, WordEmbeddings(), k=1)
    assert sel.select({"input": "fast", "output": "slow"})[0]["input"] == "fast"
    with pytest.raises(PromptError, match="input_keys"):
        SemanticSimilaritySelector(EXAMPLES, WordEmbeddings(), input_keys=["question"])
    with pytest.raises(PromptError, match="dict"):
        SemanticSimilaritySelector(["not a dict"], WordEmbeddings())  # type: ignore[list-item]


def test_mmr_selector_prefers_diversity():
    examples = [{"input": "hot happy"}, {"input": "hot happy hot happy"}, {"input": "hot sad"}]
    sim = SemanticSimilaritySelector(examples, WordEmbeddings(), k=2)
    assert [e["input"] for e in sim.select({"input": "hot happy"})] == [
        "hot happy", "hot happy hot happy",
    ]
    mmr = MMRSelector(examples, WordEmbeddings(), k=2, lambda_mult=0.3)
    assert [e["input"] for e in mmr.select({"input": "hot happy"})] == ["hot happy", "hot sad"]
    pure = MMRSelector(examples, WordEmbeddings(), k=2, lambda_mult=1.0)
    assert pure.select({"input": "hot happy"})[1]["input"] == "hot happy hot happy"
    with pytest.raises(ValueError, match="lambda_mult"):
        MMRSelector(examples, WordEmbeddings(), lambda_mult=2)


EXAMPLE_PROMPT = PromptTemplate("Input: {input}\nOutput: {output}")


def test_length_selector_fits_the_token_budget_in_order():
    cost = count_tokens(EXAMPLE_PROMPT.format(**EXAMPLES[0]))
    sel = LengthBasedSelector(EXAMPLES, EXAMPLE_PROMPT, max_tokens=cost * 3 + 1)
    assert sel.select({"input": ""}) == EXAMPLES[:3]
    long_input = {"input": "word " * 200}
    assert sel.select(long_input) == []  # a long input leaves no room
    sel.add_example({"input": "x", "output": "y", "note": "extra keys are fine"})
    assert len(sel.examples) == 5
    with pytest.raises(PromptError, match="missing"):
        sel.add_example({"input": "only input"})
    with pytest.raises(ValueError, match="positive"):
        LengthBasedSelector(EXAMPLES, EXAMPLE_PROMPT, max_tokens=0)


def test_selected_examples_feed_a_few_shot_prompt():
    sel = SemanticSimilaritySelector(EXAMPLES, WordEmbeddings(), k=1, input_keys=["input"])
    prompt = FewShotPromptTemplate(
        examples=sel.select({"input": "tall"}),
        example_prompt=EXAMPLE_PROMPT,
        prefix="Give the antonym.",
        suffix="Input: {input}\nOutput:",
    )
    assert prompt.format(input="tall") == (
        "Give the antonym.\n\nInput: tall\nOutput: short\n\nInput: tall\nOutput:"
    )


def test_semantic_selector_with_real_embeddings_picks_by_meaning():
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from maru.rag.embeddings import LocalEmbeddings

    examples = [
        {"question": "What is 12 times 7?", "answer": "84"},
        {"question": "Translate 'good morning' into French.", "answer": "Bonjour"},
        {"question": "Who wrote Hamlet?", "answer": "Shakespeare"},
        {"question": "How many legs does a spider have?", "answer": "8"},
    ]
    sel = SemanticSimilaritySelector(examples, LocalEmbeddings(device="cpu"), k=1, input_keys=["question"])
    assert sel.select({"question": "Multiply 9 by 6"})[0]["answer"] == "84"
    assert sel.select({"question": "Which playwright created Macbeth?"})[0]["answer"] == "Shakespeare"
    assert sel.select({"question": "Say thank you in Spanish"})[0]["answer"] == "Bonjour"
