"""Which chat model answers when the user names none: an endpoint if one is configured, else the
local model.

Ollama and LM Studio made "a model on my machine" the expected default, so with no endpoint
configured maru runs the bundled SmolLM2-135M-Instruct in process (:class:`LlamaCppChat`): every
command answers offline, with no key. ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` (or a base URL
passed in) switch to any OpenAI-compatible endpoint; ``MARU_LOCAL_MODEL`` names another GGUF file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from .base import ChatModel

__all__ = ["default_chat_model", "describe_model", "endpoint_configured"]


def endpoint_configured(base_url: str | None = None) -> bool:
    """Whether a remote or self-hosted endpoint is configured (flag or environment)."""
    return bool(base_url or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"))


def default_chat_model(
    model: str | None = None, base_url: str | None = None, **options: Any
) -> ChatModel:
    """``OpenAIChat`` when an endpoint is configured, else ``LlamaCppChat`` on the bundled model
    (``model`` then names a GGUF file, or is ignored when it is a bare model name)."""
    if endpoint_configured(base_url):
        from .openai import OpenAIChat

        return OpenAIChat(model=model, base_url=base_url, **options)
    from .llamacpp import LlamaCppChat

    path = model if model and model.endswith(".gguf") else None
    return LlamaCppChat(path, **options)


def describe_model(model: Any) -> str:
    """One line that says which model answers and where it runs, for the CLI and the demo."""
    name = getattr(model, "model_name", "") or type(model).__name__
    if getattr(model, "provider", None) == "llama.cpp":
        return f"{name} (local, in process with llama.cpp)"
    base_url = _without_credentials(getattr(model, "base_url", None))
    where = f"at {base_url}" if base_url else "at OpenAI"
    if getattr(model, "local", False):
        where = f"local server {base_url}"
    return f"{name} ({where})"


def _without_credentials(url: str | None) -> str | None:
    """``url`` without a ``user:password@`` part: the line is printed, and a URL may carry a key."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
