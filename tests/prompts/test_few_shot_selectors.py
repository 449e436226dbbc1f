"""Few-shot prompts whose examples are chosen per input by an example selector."""

from __future__ import annotations

import pytest

from maru.errors import PromptError
from maru.models.embeddings import Embeddings
from maru.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    LengthBasedSelector,
    PromptTemplate,
    SemanticSimilaritySelector,
)

EXAMPLES = [
    {"input": "happy", "output": "sad"},
    {"input": "tall", "output": "short"},
    {"input": "energetic", "output": "lethargic"},
    {"input": "sunny", "output": "gloomy"},
]


class TopicEmbeddings(Embeddings):
    """Mood words on one axis, size words on another, weather on a third."""

    AXES = {"happy": 0, "sad": 0, "cheerful": 0, "energetic": 0, "tall": 1, "big": 1, "sunny": 2, "windy": 2}

    def embed_documents(self, texts):
        out = []
        for text in texts:
            v = [0.01, 0.01, 0.01]
            for word, axis in self.AXES.items():
                if word in text:
                    v[axis] += 1
            out.append(v)
        return out


EXAMPLE_PROMPT = PromptTemplate("Input: {input}\nOutput: {output}")


def test_semantic_selector_picks_examples_per_input():
    selector = SemanticSimilaritySelector(EXAMPLES, TopicEmbeddings(), k=1, input_keys=["input"])
    prompt = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=EXAMPLE_PROMPT,
        prefix="Give the antonym of every input.",
        suffix="Input: {input}\nOutput:",
    )
    big = prompt.format(input="big")
    assert "Input: tall" in big and "Input: happy" not in big
    windy = prompt.invoke({"input": "windy"}).to_string()
    assert windy == "Give the antonym of every input.\n\nInput: sunny\nOutput: gloomy\n\nInput: windy\nOutput:"
    assert prompt.input_variables == ["input"]


def test_length_selector_keeps_prompt_under_a_token_budget():
    selector = LengthBasedSelector(EXAMPLES, EXAMPLE_PROMPT, max_tokens=25)
    prompt = FewShotPromptTemplate(example_selector=selector, example_prompt=EXAMPLE_PROMPT, suffix="Input: {input}\nOutput:")
    short = prompt.format(input="big")
    long = prompt.format(input="big " * 40)
    assert short.count("Output:") > long.count("Output:")


def test_chat_few_shot_with_selector():
    selector = SemanticSimilaritySelector(EXAMPLES, TopicEmbeddings(), k=2, input_keys=["input"])
    few_shot = FewShotChatMessagePromptTemplate(
        example_selector=selector,
        input_variables=["input"],
        example_prompt=ChatPromptTemplate.from_messages([("human", "{input}"), ("ai", "{output}")]),
    )
    prompt = ChatPromptTemplate.from_messages([("system", "Antonyms."), few_shot, ("human", "{input}")])
    messages = prompt.format_messages(input="cheerful")
    assert [m.type for m in messages] == ["system", "human", "ai", "human", "ai", "human"]
    assert {messages[1].content, messages[3].content} == {"happy", "energetic"}
    assert messages[-1].content == "cheerful"


def test_examples_and_selector_are_exclusive():
    with pytest.raises(PromptError, match="exactly one"):
        FewShotPromptTemplate(example_prompt=EXAMPLE_PROMPT, suffix="{x}")
    with pytest.raises(PromptError, match="exactly one"):
        FewShotPromptTemplate(
            examples=EXAMPLES, example_selector=LengthBasedSelector(EXAMPLES, EXAMPLE_PROMPT),
            example_prompt=EXAMPLE_PROMPT, suffix="{x}",
        )
