"""Load order between native libraries that would otherwise break each other.

usearch's extension carries its own copy of the C++ runtime. The C++ runtime keeps the ids of
locale facets in symbols that the dynamic loader shares across the whole process, while each copy
numbers them with its own counter; whichever copy touches the wide-character converter first
fixes its id. When usearch comes first, llama.cpp later fails to read any model's vocabulary
(``std::bad_cast``, seen as "Failed to load model from file") — so `maru ask`, which opens the
vector index before the model, could not load the local model. Reading one vocabulary through
llama.cpp before usearch is imported settles the ids for both (a vocabulary-only load of the
bundled model, about 0.1 s, once per process, and only where llama.cpp is installed).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Iterator

__all__ = ["before_usearch"]


@functools.cache
def before_usearch() -> None:
    """Call before importing usearch; a no-op without llama.cpp or its bundled model."""
    if importlib.util.find_spec("llama_cpp") is None:
        return
    from .errors import ConfigurationError
    from .models.bundled import bundled_model_path

    try:
        path = bundled_model_path()
    except ConfigurationError:
        return
    from llama_cpp import Llama

    with _quiet_stderr():  # llama.cpp warns that a vocabulary alone has no training context
        Llama(model_path=str(path), vocab_only=True, verbose=False).close()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what C code writes to file descriptor 2 (Python's ``sys.stderr`` is untouched)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
