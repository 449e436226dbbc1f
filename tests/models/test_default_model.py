"""With no endpoint configured the local model answers; a base URL or key switches to it."""

from __future__ import annotations

import pytest

from maru.models import LlamaCppChat, OpenAIChat, default_chat_model, describe_model


@pytest.fixture
def no_endpoint(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "MARU_LOCAL_MODEL", "MARU_MODEL"):
        monkeypatch.delenv(name, raising=False)


def test_nothing_configured_means_the_bundled_local_model(no_endpoint):
    model = default_chat_model()
    assert isinstance(model, LlamaCppChat)
    assert model.model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert describe_model(model).endswith("(local, in process with llama.cpp)")


def test_a_base_url_or_key_switches_to_the_endpoint(no_endpoint, monkeypatch):
    model = default_chat_model("smollm2", base_url="http://127.0.0.1:9/v1")
    assert isinstance(model, OpenAIChat) and model.local
    assert "local server http://127.0.0.1:9/v1" in describe_model(model)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    hosted = default_chat_model()
    assert isinstance(hosted, OpenAIChat) and describe_model(hosted).endswith("(at OpenAI)")


def test_a_missing_gguf_file_says_what_to_pass(no_endpoint, monkeypatch, tmp_path):
    from maru.errors import ConfigurationError

    monkeypatch.setenv("MARU_LOCAL_MODEL", str(tmp_path / "nope.gguf"))
    with pytest.raises(ConfigurationError, match="no GGUF model file"):
        default_chat_model()


def test_the_model_line_never_shows_credentials_in_a_url(no_endpoint):
    model = default_chat_model("m", base_url="https://svc:sk-secret-123@proxy.example:8443/v1")
    line = describe_model(model)
    assert "sk-secret-123" not in line and "svc" not in line
    assert "https://proxy.example:8443/v1" in line
