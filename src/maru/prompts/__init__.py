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
from .string import PromptTemplate
from .template import Field, Template, compile_template
from .values import ChatPromptValue, PromptValue, StringPromptValue, messages_to_text

__all__ = [
    "AIMessagePromptTemplate",
    "BaseMessagePromptTemplate",
    "BasePromptTemplate",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "FewShotChatMessagePromptTemplate",
    "FewShotPromptTemplate",
    "Field",
    "HumanMessagePromptTemplate",
    "MessagePromptTemplate",
    "MessagesPlaceholder",
    "PromptTemplate",
    "PromptValue",
    "StringPromptValue",
    "SystemMessagePromptTemplate",
    "Template",
    "compile_template",
    "messages_to_text",
]
