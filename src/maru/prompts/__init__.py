"""Prompt templates: text and chat templates, message placeholders, partials and few-shot prompts."""

from .base import BasePromptTemplate
from .chat import (
    AIMessagePromptTemplate,
    BaseMessagePromptTemplate,
    ChatPromptTemplate,
    HumanMessagePromptTemplate,
    MessagePromptTemplate,
    MessagesPlaceholder,
    SystemMessagePromptTemplate,
)
from .few_shot import FewShotChatMessagePromptTemplate, FewShotPromptTemplate
from .selectors import ExampleSelector, LengthBasedSelector, MMRSelector, SemanticSimilaritySelector
from .string import PromptTemplate
from .template import Field, Template, compile_template
from .values import ChatPromptValue, PromptValue, StringPromptValue, messages_to_text

__all__ = [
    "AIMessagePromptTemplate",
    "BaseMessagePromptTemplate",
    "BasePromptTemplate",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "ExampleSelector",
    "FewShotChatMessagePromptTemplate",
    "FewShotPromptTemplate",
    "Field",
    "HumanMessagePromptTemplate",
    "LengthBasedSelector",
    "MMRSelector",
    "MessagePromptTemplate",
    "MessagesPlaceholder",
    "PromptTemplate",
    "PromptValue",
    "SemanticSimilaritySelector",
    "StringPromptValue",
    "SystemMessagePromptTemplate",
    "Template",
    "compile_template",
    "messages_to_text",
]
