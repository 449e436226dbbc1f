"""Chat models and embeddings: the interfaces, the local llama.cpp model (the default), the
OpenAI-compatible provider and a scripted test double."""

from .base import ChatModel
from .default import default_chat_model, describe_model
from .e5 import E5Embeddings
from .embeddings import Embeddings
from .llamacpp import LlamaCppChat
from .openai import OpenAIChat
from .scripted import ScriptedChatModel
from .tools_schema import to_openai_tool

__all__ = [
    "ChatModel",
    "E5Embeddings",
    "Embeddings",
    "LlamaCppChat",
    "OpenAIChat",
    "ScriptedChatModel",
    "default_chat_model",
    "describe_model",
    "to_openai_tool",
]
