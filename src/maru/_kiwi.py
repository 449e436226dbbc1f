"""One Kiwi (the Korean morphological analyser of ``kiwipiepy``) per process.

Two packages read Korean by morpheme: ``rag``'s BM25 analyser and ``cache``'s guard. Loading Kiwi
takes a second or more and about 100 MB, so they share one instance, built on first use. A leaf:
it imports nothing of maru, so each caller words its own error when kiwipiepy is missing
(:class:`ImportError` comes through unchanged).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["available", "tokenize"]

_kiwi: Any = None
_load_lock = threading.Lock()
_call_lock = threading.Lock()  # Kiwi objects are not documented as thread-safe


def available() -> bool:
    """True when kiwipiepy is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("kiwipiepy") is not None


def _instance() -> Any:
    global _kiwi
    if _kiwi is None:
        with _load_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                _kiwi = Kiwi()
    return _kiwi


def tokenize(text: str) -> list[tuple[str, str]]:
    """``text`` as ``(form, tag)`` morphemes, Sejong tags (``NNP`` proper noun, ``SN`` number,
    ``VX`` auxiliary verb …). Raises :class:`ImportError` when kiwipiepy is not installed."""
    kiwi = _instance()
    with _call_lock:
        tokens = kiwi.tokenize(text)
    return [(tok.form, tok.tag) for tok in tokens]
