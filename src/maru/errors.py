"""Every error maru raises on purpose. Each message says what was wrong and what to do about it."""

from __future__ import annotations


class MaruError(Exception):
    """Base class of maru's own errors."""


class ConfigurationError(MaruError):
    """Something needed to run is not configured (an API key, a base URL, a model name)."""


class TargetError(ConfigurationError):
    """A ``module:object`` target (``maru run``, ``maru serve``, ``serve("…")``) cannot be loaded:
    malformed, not importable, no such attribute, or not a runnable. ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class PromptError(MaruError, KeyError):
    """A prompt template got a missing or unexpected variable, or a template is malformed.

    Also a ``KeyError`` so code written for LangChain's prompt errors still catches it.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutputParserError(MaruError, ValueError):
    """A model's output could not be parsed. ``raw`` holds the text that failed."""

    def __init__(self, message: str, raw: str = "") -> None:
        shown = raw if len(raw) <= 500 else raw[:500] + f"… ({len(raw)} chars)"
        super().__init__(f"{message}\n--- raw model output ---\n{shown}")
        self.reason = message
        """What was wrong, without the raw output (to show the model in a repair round)."""
        self.raw = raw


class ProviderError(MaruError):
    """A model provider answered with an error that retrying will not fix (bad request, auth)."""


class ToolCallError(MaruError, ValueError):
    """A model asked for a tool call that cannot be parsed or run."""


class CacheError(MaruError):
    """A response cache cannot be used: its SQLite file is corrupt or from another schema, or its
    server (Redis) is unreachable and the cache was told to raise rather than warn."""


class TraceStoreError(MaruError):
    """The trace store cannot be used: its SQLite file is missing (when only reading), corrupt, from
    another schema, or stayed locked by another writer for too long."""


class BlockedAddressError(MaruError, PermissionError):
    """A network request was refused by the guard: its host resolves to a private, loopback,
    link-local, multicast or reserved address and is not on the allow-list."""


class FetchError(MaruError):
    """A URL could not be fetched within the guard's limits (size, time, content type, redirects)."""


class LoaderError(MaruError, ValueError):
    """A document source could not be read: a missing path, an unsupported format, a broken file."""


class FilterError(MaruError, ValueError):
    """A metadata filter names a field the store does not know, or compares it with the wrong type."""


class VectorStoreError(MaruError):
    """A vector store cannot be used as asked: dimension mismatch, a missing extra, a broken folder."""


class IndexingError(MaruError):
    """Indexing cannot proceed: the record manager and the store disagree in a way it cannot repair."""


class TrainError(MaruError):
    """The trainer was configured or used wrongly (a task without ``training_step``, a bad strategy)."""


class CheckpointError(MaruError):
    """No checkpoint could be read, or one could not be written, under the checkpoint directory."""


class UnsafeSQLError(MaruError, ValueError):
    """Generated SQL was refused by the validator: not exactly one read-only query, or it uses a
    statement or function that can write, read files or change the session."""


class SQLExecutionError(MaruError):
    """A validated query failed on the database (unknown column, timeout …). ``sql`` holds the query."""

    def __init__(self, message: str, sql: str = "") -> None:
        super().__init__(message)
        self.sql = sql


class LaunchError(MaruError):
    """A scheduler refused or failed a request (submit, status, logs, cancel), or the job asked
    for is not there. The message says which job, what the scheduler answered and what to do."""


class EvaluationError(MaruError, ValueError):
    """An evaluation cannot run as asked: a dataset file or row that cannot be read (the message
    names the file and line), or an experiment name already used with another dataset or config."""
