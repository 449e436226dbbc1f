"""Token counting: tokenizer resolution (registered, tiktoken file, HF, estimator), the estimator,
message overhead."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import socket
from pathlib import Path

import pytest
import tiktoken

from maru.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from maru.usage import (
    count_message_tokens,
    count_tokens,
    estimate_tokens,
    get_tokenizer,
    register_hf_tokenizer,
    register_tiktoken_file,
)
from maru.usage import tokens as tk

# Real counts, measured once with OpenAI's o200k_base and cl100k_base files (tiktoken 0.14).
KO = (
    "대한민국의 수도는 서울이며, 인구는 약 950만 명이다. 한강이 도시를 가로질러 흐르고, 조선 시대부터 "
    "600년 넘게 수도 역할을 해 왔다. 서울에는 경복궁, 창덕궁 같은 궁궐과 남산타워가 있다."
)
EN = (
    "The capital of South Korea is Seoul, with a population of about 9.5 million. The Han River flows "
    "through the city, which has served as the capital for more than 600 years since the Joseon dynasty."
)
REAL = {("ko", "o200k"): 68, ("ko", "cl100k"): 112, ("en", "o200k"): 45, ("en", "cl100k"): 45}

# A tiny BPE vocabulary: every byte, then a few merges.
MERGES = [b"ab", b"abc", b" a", b"lo", b"low", b"er"]
TINY_RANKS = {bytes([i]): i for i in range(256)} | {tok: 256 + i for i, tok in enumerate(MERGES)}


def tiny_encoding(pat_str: str = r"\S+|\s+", name: str = "tiny") -> tiktoken.Encoding:
    return tiktoken.Encoding(name=name, pat_str=pat_str, mergeable_ranks=TINY_RANKS, special_tokens={})


def write_ranks(path: Path) -> Path:
    path.write_bytes(
        b"".join(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n" for tok, rank in TINY_RANKS.items())
    )
    return path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network (or to let tiktoken fetch a file) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r:.200}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import tiktoken.load

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)


# ----------------------------------------------------------------------------- the estimator
def test_estimator_empty_and_tiny() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens(" ") == 1  # never 0 for non-empty text


@pytest.mark.parametrize(("lang", "text"), [("ko", KO), ("en", EN)])
@pytest.mark.parametrize("profile", ["o200k", "cl100k"])
def test_estimator_close_to_real_tokenizer(lang: str, text: str, profile: str) -> None:
    real = REAL[(lang, profile)]
    estimate = estimate_tokens(text, profile=profile)
    assert abs(estimate - real) / real < 0.10, (lang, profile, estimate, real)


def test_estimator_counts_hangul_far_denser_than_latin() -> None:
    # Korean has ~1.6 characters per o200k token, English ~4.9: a chars/4 rule is 60 % off on Korean.
    ko_per_char = estimate_tokens(KO) / len(KO)
    en_per_char = estimate_tokens(EN) / len(EN)
    assert ko_per_char > 2.5 * en_per_char
    # the older cl100k vocabulary spends many more tokens on Korean, about the same on English
    assert estimate_tokens(KO, profile="cl100k") > 1.4 * estimate_tokens(KO, profile="o200k")
    assert abs(estimate_tokens(EN, profile="cl100k") - estimate_tokens(EN)) <= 2


def test_estimator_classes() -> None:
    assert estimate_tokens("가" * 100) > estimate_tokens("a" * 100)
    assert estimate_tokens("word " * 50) > estimate_tokens("word" * 50)  # 50 words > one long string
    assert 15 <= estimate_tokens("中文" * 10) <= 20  # ~0.75 per CJK character
    assert estimate_tokens("😀" * 10) >= 10
    assert estimate_tokens("1234567890") >= 3
    assert estimate_tokens("\ud800 lone surrogate") >= 2  # never raises on odd strings


def test_estimator_unknown_profile() -> None:
    with pytest.raises(ValueError, match="unknown estimator profile"):
        estimate_tokens("x", profile="nope")


# ----------------------------------------------------------------------------- resolution
def test_without_files_openai_models_use_the_estimator(no_network: None) -> None:
    tok = get_tokenizer("gpt-4o")
    assert tok.exact is False and tok.name == "estimate:o200k"
    assert get_tokenizer("gpt-4").name == "estimate:cl100k"  # its generation's calibration
    assert get_tokenizer("gemini-2.5-flash").name == "estimate:o200k"
    assert get_tokenizer(None).name == "estimate:o200k"
    assert tok.count(KO) == estimate_tokens(KO)


def test_resolution_is_cached() -> None:
    first = get_tokenizer("gpt-4o-mini")
    assert get_tokenizer("gpt-4o-mini") is first
    assert tk._resolved["gpt-4o-mini"] is first


def test_registered_tiktoken_encoding_is_used_and_exact() -> None:
    register_tiktoken_file("tiny-", tiny_encoding())
    tok = get_tokenizer("tiny-model-v2")
    assert isinstance(tok, tk.TiktokenTokenizer)
    assert tok.exact is True
    assert tok.count("abc abc") == 3  # "abc", " ", "abc"
    assert tok.count("lower") == 2  # "low" + "er"
    assert tok.count("xyz") == 3
    assert tok.count("") == 0
    assert get_tokenizer("other-model").exact is False  # the prefix does not match


def test_registered_tiktoken_file_uses_the_named_encodings_regex(tmp_path: Path) -> None:
    path = write_ranks(tmp_path / "tiny.tiktoken")
    register_tiktoken_file("gpt-4o", path, encoding="o200k_base")
    tok = get_tokenizer("gpt-4o-2024-08-06")
    assert tok.exact and isinstance(tok, tk.TiktokenTokenizer)
    # the same ranks under o200k's own pre-tokenizer regex
    reference = tiny_encoding(pat_str=tk._ENCODINGS["o200k_base"].pat_str)
    for text in ("abc abc", "lower lowest", " a b", "숫자 123", KO):
        assert tok.count(text) == len(reference.encode_ordinary(text))


def test_encoding_specs_match_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    """maru builds Encodings from files itself; its regexes and special tokens are tiktoken's."""
    from tiktoken_ext import openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: TINY_RANKS)
    for name, spec in tk._ENCODINGS.items():
        params = openai_public.ENCODING_CONSTRUCTORS[name]()
        assert params["pat_str"] == spec.pat_str, name
        assert params["special_tokens"] == dict(spec.special_tokens), name


def test_register_tiktoken_file_checks_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        register_tiktoken_file("x", tmp_path / "missing.tiktoken")
    with pytest.raises(ValueError, match="unknown encoding"):
        register_tiktoken_file("x", write_ranks(tmp_path / "t.tiktoken"), encoding="nope")
    with pytest.raises(TypeError):
        register_tiktoken_file("x", 42)  # type: ignore[arg-type]


def test_corrupt_tiktoken_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("not a bpe file at all\n")
    register_tiktoken_file("bad-", bad)
    with pytest.raises(ValueError, match="bad.tiktoken: line 1"):
        get_tokenizer("bad-model")


def _as_cached_o200k(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the tiny ranks where tiktoken caches o200k_base, and make maru accept its hash."""
    spec = tk._ENCODINGS["o200k_base"]
    path = write_ranks(folder / hashlib.sha1(spec.url.encode()).hexdigest())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(tk._ENCODINGS, "o200k_base", dataclasses.replace(spec, sha256=digest))
    monkeypatch.setitem(tk._ENCODING_BY_HASH, digest, "o200k_base")
    return path


def test_tiktoken_cache_dir_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    _as_cached_o200k(tmp_path, monkeypatch)
    tok = get_tokenizer("gpt-4o")
    assert tok.exact and tok.name == "tiktoken:o200k_base"
    assert tok.count("abc abc") == len(tiny_encoding(tk._O200K_PAT).encode_ordinary("abc abc"))
    assert get_tokenizer("gpt-4.1-mini") is tok  # one Encoding shared by every o200k model
    assert get_tokenizer("gpt-4").exact is False  # no cl100k file


def test_a_cached_file_with_the_wrong_hash_is_ignored_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    spec = tk._ENCODINGS["o200k_base"]
    write_ranks(tmp_path / hashlib.sha1(spec.url.encode()).hexdigest())  # right name, wrong content
    tok = get_tokenizer("gpt-4o")
    assert tok.exact is False
    assert (tmp_path / hashlib.sha1(spec.url.encode()).hexdigest()).exists()  # left alone


def test_maru_tiktoken_file_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    path = write_ranks(tmp_path / "o200k_base.tiktoken")  # recognised by its name
    monkeypatch.setenv("MARU_TIKTOKEN_FILE", str(path))
    tok = get_tokenizer("gpt-5-mini")
    assert tok.exact
    assert get_tokenizer("gpt-4").exact is False  # cl100k model: this file is not its encoding


def test_maru_tiktoken_file_env_unrecognised_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARU_TIKTOKEN_FILE", str(write_ranks(tmp_path / "mystery.bin")))
    with pytest.warns(UserWarning, match="cannot tell which encoding"):
        assert get_tokenizer("gpt-4o").exact is False


def test_registration_beats_a_tiktoken_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    _as_cached_o200k(tmp_path, monkeypatch)
    assert get_tokenizer("gpt-4o").name == "tiktoken:o200k_base"
    register_tiktoken_file("gpt-4o", tiny_encoding(name="mine"))  # clears the cache
    assert get_tokenizer("gpt-4o").name == "tiktoken:mine"
    assert get_tokenizer("gpt-4.1").name == "tiktoken:o200k_base"


def _hf_tokenizer_file(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "안녕": 1, "하세요": 2, "hello": 3, "world": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def test_registered_hf_tokenizer(tmp_path: Path) -> None:
    path = _hf_tokenizer_file(tmp_path)
    register_hf_tokenizer("my-llama", path)
    tok = get_tokenizer("my-llama-3-8b")
    assert isinstance(tok, tk.HFTokenizer) and tok.exact
    assert tok.count("hello world hello") == 3
    assert tok.count("") == 0
    register_hf_tokenizer("other", tmp_path)  # a folder holding tokenizer.json
    assert get_tokenizer("other-model").count("hello") == 1


def test_longest_registered_prefix_wins(tmp_path: Path) -> None:
    register_hf_tokenizer("acme", _hf_tokenizer_file(tmp_path))
    register_tiktoken_file("acme-bpe", tiny_encoding())
    assert isinstance(get_tokenizer("acme-chat"), tk.HFTokenizer)
    assert isinstance(get_tokenizer("acme-bpe-2"), tk.TiktokenTokenizer)
    assert isinstance(get_tokenizer("vllm/acme-chat"), tk.HFTokenizer)  # provider prefix stripped


def test_register_hf_tokenizer_checks_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        register_hf_tokenizer("x", tmp_path / "nope.json")


# ----------------------------------------------------------------------------- message overhead
def test_message_overhead_openai_format() -> None:
    register_tiktoken_file("tiny", tiny_encoding())
    system = SystemMessage("abc")  # 1 token
    human = HumanMessage("abc abc", name="bob")  # 3 tokens + name "bob" (3 byte tokens)
    expected = 3 + (4 + 1) + (4 + 3 + 1 + 3)  # reply priming; per message (framing + role); name
    assert count_message_tokens([system, human], "tiny") == expected
    assert count_tokens([system, human], "tiny") == expected
    assert count_tokens(system, "tiny") == 4 + 1  # one message: no reply priming
    assert count_tokens("abc", "tiny") == 1  # text alone: no overhead
    assert count_tokens([("system", "abc"), {"role": "user", "content": "abc abc", "name": "bob"}], "tiny") == expected


def test_tool_calls_tool_messages_images_and_tools() -> None:
    register_tiktoken_file("tiny", tiny_encoding())
    call = AIMessage("", tool_calls=[ToolCall(name="ab", args={"q": "abc"}, id="c1")])
    args_json = '{"q":"abc"}'
    expected_call = 4 + 0 + 3 + 1 + len(tiny_encoding().encode_ordinary(args_json))
    assert count_tokens(call, "tiny") == expected_call
    assert count_tokens(ToolMessage("abc", tool_call_id="c1"), "tiny") == 4 + 1
    image = HumanMessage([{"type": "text", "text": "abc"}, {"type": "image_url", "image_url": {"url": "x", "detail": "low"}}])
    assert count_tokens(image, "tiny") == 4 + 1 + tk.IMAGE_TOKENS_LOW
    tools = [{"type": "function", "function": {"name": "ab", "parameters": {}}}]
    base = count_message_tokens([HumanMessage("abc")], "tiny")
    with_tools = count_message_tokens([HumanMessage("abc")], "tiny", tools=tools)
    assert with_tools - base == tk.OPENAI.per_tool + tiny_encoding().encode_ordinary('{"name":"ab","parameters":{}}').__len__()


def test_chat_formats() -> None:
    assert tk.chat_format_for("gpt-4o") is tk.OPENAI
    assert tk.chat_format_for("gemini-2.5-flash") is tk.OPENAI
    assert tk.chat_format_for("meta-llama/Llama-3.1-8B-Instruct") is tk.LLAMA3
    assert tk.chat_format_for("Qwen2.5-7B-Instruct") is tk.CHATML
    assert tk.chat_format_for(None) is tk.OPENAI
    custom = tk.ChatFormat("exaone", per_message=6, per_name=1, reply=2)
    tk.register_chat_format("EXAONE", custom)
    assert tk.chat_format_for("exaone-3.5-7.8b") is custom
    register_tiktoken_file("exaone", tiny_encoding())
    assert count_message_tokens([HumanMessage("abc")], "exaone-3.5") == 2 + 6 + 1


def test_korean_message_counts_more_than_english_of_same_meaning() -> None:
    ko = count_message_tokens([HumanMessage(KO)], "gpt-4o")
    en = count_message_tokens([HumanMessage(EN)], "gpt-4o")
    assert ko > en
    assert ko == estimate_tokens(KO) + 4 + 3
