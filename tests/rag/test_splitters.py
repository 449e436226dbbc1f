"""Splitters: exact offsets, overlap, token limits, sentence boundaries (English, Korean on KorQuAD
paragraphs, Chinese, Japanese) and Markdown headers with code fences."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA
from maru.errors import ConfigurationError
from maru.rag.documents import Document
from maru.rag.splitters import (
    MarkdownHeaderSplitter,
    RecursiveSplitter,
    SentenceSplitter,
    sentence_spans,
    split_sentences,
)
from maru.usage.tokens import count_tokens

KORQUAD = SHARED_DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json"

ENGLISH = (
    "Retrieval quality depends on chunking. Dr. Kim measured it in 2023, e.g. on Cranfield.\n"
    "Pi is about 3.14 and the U.S. Army is large. Is that so? Yes! It is.\n\n"
    "A second paragraph follows here. It has two sentences.\n\n"
    + " ".join(f"word{i}" for i in range(300))
)


@pytest.fixture(scope="module")
def korquad_paragraphs() -> list[str]:
    if not KORQUAD.exists():
        pytest.skip("KorQuAD data is not available")
    data = json.loads(KORQUAD.read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"][:15] for p in article["paragraphs"]]


def assert_exact(text: str, docs: list[Document]) -> None:
    for i, doc in enumerate(docs):
        assert text[doc.metadata["start_index"] : doc.metadata["end_index"]] == doc.text
        assert doc.metadata["chunk_index"] == i
        assert doc.text == doc.text.strip() and doc.text
        assert doc.id is None


# ============================================================================ recursive
@pytest.mark.parametrize("size,overlap", [(50, 0), (120, 30), (400, 100), (1000, 200)])
def test_offsets_are_exact_and_sizes_respected(size: int, overlap: int) -> None:
    splitter = RecursiveSplitter(chunk_size=size, chunk_overlap=overlap)
    parent = Document(ENGLISH, {"source": "a.txt", "lang": "en"}, id="parent")
    docs = splitter.split_documents([parent])
    assert_exact(ENGLISH, docs)
    assert all(len(d.text) <= size for d in docs)
    assert all(d.metadata["source"] == "a.txt" and d.metadata["lang"] == "en" for d in docs)
    assert splitter.split_text(ENGLISH) == [d.text for d in docs]
    # nothing is lost: every non-space character is in some chunk
    covered = set()
    for d in docs:
        covered.update(range(d.metadata["start_index"], d.metadata["end_index"]))
    assert all(i in covered for i, ch in enumerate(ENGLISH) if not ch.isspace())


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    chunks = RecursiveSplitter(chunk_size=160, chunk_overlap=0).split_text(ENGLISH)
    assert chunks[0] == ENGLISH.split("\n\n")[0]  # the whole first paragraph fits
    chunks = RecursiveSplitter(chunk_size=100, chunk_overlap=0).split_text(ENGLISH)
    assert chunks[:2] == [
        "Retrieval quality depends on chunking. Dr. Kim measured it in 2023, e.g. on Cranfield.",
        "Pi is about 3.14 and the U.S. Army is large. Is that so? Yes! It is.",
    ]
    assert chunks[2].startswith("A second paragraph follows here. It has two sentences.")
    chunks = RecursiveSplitter(chunk_size=50, chunk_overlap=0).split_text(ENGLISH)
    assert chunks[:4] == [
        "Retrieval quality depends on chunking.",
        "Dr. Kim measured it in 2023, e.g. on Cranfield.",
        "Pi is about 3.14 and the U.S. Army is large.",
        "Is that so? Yes! It is.",
    ]


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"w{i:03d}" for i in range(200))  # 200 words of 4 chars
    docs = RecursiveSplitter(chunk_size=100, chunk_overlap=30).split_documents([Document(text)])
    assert_exact(text, docs)
    for prev, cur in zip(docs, docs[1:], strict=False):
        shared = prev.metadata["end_index"] - cur.metadata["start_index"]
        assert 0 < shared <= 30
        assert prev.text.endswith(text[cur.metadata["start_index"] : prev.metadata["end_index"]])
    no_overlap = RecursiveSplitter(chunk_size=100, chunk_overlap=0).split_documents(
        [Document(text)]
    )
    for prev, cur in zip(no_overlap, no_overlap[1:], strict=False):
        assert prev.metadata["end_index"] <= cur.metadata["start_index"]
    assert len(docs) > len(no_overlap)


def test_token_length_is_respected(korquad_paragraphs: list[str]) -> None:
    text = "\n\n".join(korquad_paragraphs[:6]) + "\n\n" + ENGLISH
    splitter = RecursiveSplitter(chunk_size=64, chunk_overlap=16, length="tokens")
    docs = splitter.split_documents([Document(text)])
    assert_exact(text, docs)
    counts = [count_tokens(d.text) for d in docs]
    assert max(counts) <= 64
    assert sum(counts) / len(counts) > 32  # chunks are packed, not one sentence each
    chars = RecursiveSplitter(chunk_size=64, chunk_overlap=16).split_text(text)
    assert len(chars) > len(docs)  # 64 characters hold far fewer tokens than 64 tokens


def test_text_without_separators_is_cut_by_characters() -> None:
    text = "가" * 250
    chunks = RecursiveSplitter(chunk_size=100, chunk_overlap=10).split_text(text)
    assert [len(c) for c in chunks] == [100, 100, 70]


def test_keep_separator_false_and_custom_separators() -> None:
    text = "alpha;beta;gamma;delta"
    kept = RecursiveSplitter(chunk_size=11, chunk_overlap=0, separators=[";"]).split_text(text)
    assert kept == ["alpha;beta;", "gamma;delta"]
    dropped = RecursiveSplitter(
        chunk_size=11, chunk_overlap=0, separators=[";"], keep_separator=False
    ).split_text(text)
    assert dropped == ["alpha;beta", "gamma;delta"]  # a separator inside a chunk stays


def test_short_and_empty_text() -> None:
    splitter = RecursiveSplitter(chunk_size=100, chunk_overlap=10)
    assert splitter.split_text("  hello  ") == ["hello"]
    assert splitter.split_text("") == []
    assert splitter.split_documents([Document("   ")]) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chunk_size": 0},
        {"chunk_size": 10, "chunk_overlap": 10},
        {"chunk_overlap": -1},
        {"length": "words"},
    ],
)
def test_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RecursiveSplitter(**kwargs)  # type: ignore[arg-type]


# ============================================================================ sentences
def test_english_sentences() -> None:
    text = (
        "Dr. Smith visited Washington, e.g. the capital, on Jan. 5. Pi is 3.14 exactly. "
        'It was J. R. R. Tolkien! Really? yes, really. She said "Stop." Then the U.S. Army left... '
        "See Fig. 3 for details."
    )
    assert split_sentences(text) == [
        "Dr. Smith visited Washington, e.g. the capital, on Jan. 5.",
        "Pi is 3.14 exactly.",
        "It was J. R. R. Tolkien!",
        "Really? yes, really.",
        'She said "Stop."',
        "Then the U.S. Army left...",
        "See Fig. 3 for details.",
    ]


def test_korean_sentence_endings_with_and_without_spaces() -> None:
    text = '오늘은 날씨가 좋다.그래서 산책을 했어요.정말 그랬을까?물론이죠! 그는 "안 돼."라고 말했다. 행사는 2019. 3. 1. 열렸다.'
    assert split_sentences(text) == [
        "오늘은 날씨가 좋다.",
        "그래서 산책을 했어요.",
        "정말 그랬을까?",
        "물론이죠!",
        '그는 "안 돼."라고 말했다.',
        "행사는 2019. 3. 1. 열렸다.",
    ]


def test_korquad_sentences(korquad_paragraphs: list[str]) -> None:
    first = korquad_paragraphs[0]
    sentences = split_sentences(first)
    assert sentences[0] == (
        "1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의(폭력행위등처벌에관한법률위반)으로 "
        "지명수배되었다."
    )
    assert (
        sentences[1]
        == "1989년 3월 12일 서울지방검찰청 공안부는 임종석의 사전구속영장을 발부받았다."
    )
    assert len(sentences) == 6
    # the same paragraph with no space after the full stops splits the same way
    assert split_sentences(first.replace(". ", ".")) == sentences
    for paragraph in korquad_paragraphs:
        spans = sentence_spans(paragraph)
        # sentences are in order, do not overlap, and lose only whitespace
        assert all(a < b <= c for (a, b), (c, _) in zip(spans, spans[1:], strict=False))
        assert "".join("".join(paragraph[a:b].split()) for a, b in spans) == "".join(
            paragraph.split()
        )
        for _, b in spans:
            # a quotation closed by a particle ("…했다"고 …) is not cut after the quote
            assert not (paragraph[b - 1] in "\"'”’" and "가" <= paragraph[b : b + 1] <= "힣")
    ends = [s[-1] for p in korquad_paragraphs for s in split_sentences(p)]
    assert ends.count(".") / len(ends) > 0.9


def test_chinese_and_japanese_sentences() -> None:
    assert split_sentences("今天天气很好。我们去公园吧！你来吗？他说：“好。”我们走了。") == [
        "今天天气很好。",
        "我们去公园吧！",
        "你来吗？",
        "他说：“好。”",
        "我们走了。",
    ]
    assert split_sentences("「はい。」と彼は言った。東京は大きい（首都）。本当ですか？ええ！") == [
        "「はい。」と彼は言った。",
        "東京は大きい（首都）。",
        "本当ですか？",
        "ええ！",
    ]


def test_sentence_splitter_packs_whole_sentences(korquad_paragraphs: list[str]) -> None:
    text = " ".join(korquad_paragraphs[:4])
    sentences = set(split_sentences(text))
    docs = SentenceSplitter(chunk_size=300, chunk_overlap=80).split_documents([Document(text)])
    assert_exact(text, docs)
    for doc in docs:
        assert len(doc.text) <= 300 or doc.text in sentences  # one long sentence may stand alone
        first, last = sentence_spans(doc.text)[0], sentence_spans(doc.text)[-1]
        assert doc.text[first[0] : first[1]] in sentences or len(doc.text) > 300
        assert doc.text[last[0] : last[1]] in sentences or len(doc.text) > 300
    # the overlap is whole sentences: a chunk starts where some sentence starts
    starts = {a for a, _ in sentence_spans(text)}
    assert all(d.metadata["start_index"] in starts for d in docs)
    assert any(
        prev.metadata["end_index"] > cur.metadata["start_index"]
        for prev, cur in zip(docs, docs[1:], strict=False)
    )


def test_sentence_splitter_tokens_cjk() -> None:
    text = "今天天气很好。我们去公园吧！你来吗？" * 20
    docs = SentenceSplitter(chunk_size=40, chunk_overlap=0, length="tokens").split_documents(
        [Document(text)]
    )
    assert_exact(text, docs)
    assert all(count_tokens(d.text) <= 40 for d in docs)
    assert all(d.text.endswith(("。", "！", "？")) for d in docs)


# ============================================================================= markdown
MARKDOWN = """Intro before any header.

# Guide

Welcome text.

## Install

Run the installer.

```bash
# this is a shell comment, not a header
pip install maru
```

~~~
## also not a header
~~~

### Details
#### Deep header stays in content
Detail text.

## Use

Use it well.

# Appendix
## Empty

# Final
Last words.
"""


def test_markdown_headers_and_code_fences() -> None:
    docs = MarkdownHeaderSplitter().split_documents([Document(MARKDOWN, {"source": "g.md"})])
    assert_exact(MARKDOWN, docs)
    got = [(d.metadata.get("h1"), d.metadata.get("h2"), d.metadata.get("h3")) for d in docs]
    assert got == [
        (None, None, None),
        ("Guide", None, None),
        ("Guide", "Install", None),
        ("Guide", "Install", "Details"),
        ("Guide", "Use", None),
        ("Final", None, None),
    ]
    install = docs[2].text
    assert install.startswith("## Install") and "# this is a shell comment" in install
    assert "## also not a header" in install
    assert "#### Deep header stays in content" in docs[3].text
    assert all(d.metadata["source"] == "g.md" for d in docs)


def test_markdown_strip_headers_and_then() -> None:
    stripped = MarkdownHeaderSplitter(strip_headers=True).split_text(MARKDOWN)
    assert stripped[1] == "Welcome text."
    assert stripped[-1] == "Last words."
    long_md = (
        "# Title\n\n"
        + " ".join(["A sentence of moderate length here."] * 40)
        + "\n\n## Next\nShort."
    )
    splitter = MarkdownHeaderSplitter(then=RecursiveSplitter(chunk_size=200, chunk_overlap=40))
    docs = splitter.split_documents([Document(long_md)])
    assert_exact(long_md, docs)
    assert len(docs) > 5
    assert all(len(d.text) <= 200 for d in docs)
    assert [d.metadata.get("h2") for d in docs][-1] == "Next"
    assert all(d.metadata["h1"] == "Title" for d in docs)
    with pytest.raises(ConfigurationError):
        MarkdownHeaderSplitter(headers=(("h1", "x"),))
