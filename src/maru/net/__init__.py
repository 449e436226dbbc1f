"""Guarded network access: the checks and the fetcher every maru component that reaches out to a URL
uses (RAG web loader, agents' web fetch and crawler)."""

from __future__ import annotations

from .guard import (
    DEFAULT_CONTENT_TYPES,
    FetchResult,
    NetworkPolicy,
    afetch,
    check_url,
    fetch,
    is_blocked_address,
)

__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "FetchResult",
    "NetworkPolicy",
    "afetch",
    "check_url",
    "fetch",
    "is_blocked_address",
]
