"""Chat models and embeddings: the interfaces, the OpenAI-compatible provider and a scripted test double."""

from .base import ChatModel
from .embeddings import Embeddings
from .openai import OpenAIChat
from .scripted import ScriptedChatModel
from .tools_schema import to_openai_tool

__all__ = ["ChatModel", "Embeddings", "OpenAIChat", "ScriptedChatModel", "to_openai_tool"]
