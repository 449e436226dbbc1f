"""Wrappers that change how a step is called: bound arguments and config, retry, fallbacks.

A wrapper around a chat model still answers the model's builders (``bind_tools``,
``with_structured_output``): it builds on what it wraps and wraps the result the same way, so
``model.with_retry().bind_tools(tools)`` still retries and can go into an agent.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from .closing import aclose_stream
from .config import RunConfig, merge_configs, validate_config
from .runnable import Runnable, coerce

MODEL_BUILDERS = frozenset({"bind_tools", "with_structured_output"})
"""A chat model's methods that return a new step built on the model."""


def _no_builder(wrapper: Runnable[Any, Any], attr: str) -> AttributeError:
    return AttributeError(
        f"{type(wrapper).__name__!r} object has no attribute {attr!r}"
        + (f" (the step it wraps, {wrapper.bound.name}, has none)" if attr in MODEL_BUILDERS else "")  # type: ignore[attr-defined]
    )


class Binding(Runnable[Any, Any]):
    """A step with fixed keyword arguments and/or config. Transparent: calls go straight to the
    wrapped step with the arguments merged in, so it reports as that step (same kind; its name
    unless ``run_name`` was set) and adds no run of its own."""

    def __init__(
        self,
        bound: Runnable[Any, Any],
        kwargs: dict[str, Any] | None = None,
        config: RunConfig | None = None,
    ) -> None:
        if config:
            validate_config(config)
        self.bound = bound
        self.kwargs = kwargs or {}
        self.config: RunConfig | None = config or None
        self.kind = bound.kind  # type: ignore[misc]
        self.io_bound = bound.io_bound

    @classmethod
    def wrap(
        cls, runnable: Runnable[Any, Any], kwargs: dict[str, Any] | None = None, config: RunConfig | None = None
    ) -> Binding:
        """Bind onto ``runnable``, folding into an existing binding rather than nesting one."""
        if isinstance(runnable, Binding):
            merged = merge_configs(runnable.config, config)
            return cls(runnable.bound, {**runnable.kwargs, **(kwargs or {})}, merged)
        return cls(runnable, kwargs, config)

    @property
    def name(self) -> str:
        return (self.config or {}).get("run_name") or self.bound.name

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if self.config:
            parts.append(f"config={self.config!r}")
        return f"{self.bound!r}.bind({', '.join(parts)})"

    def __getattr__(self, attr: str) -> Any:
        # model.bind(...).model_name, chain.with_config(...).steps: read through to the wrapped step.
        if attr.startswith("__") or attr in ("bound", "kwargs", "config"):
            raise AttributeError(attr)
        found = getattr(self.bound, attr)
        return self._rebinding(found) if attr == "bind_tools" else found

    def _rebinding(self, bind_tools: Any) -> Any:
        """``bind_tools`` that keeps this binding's arguments and config (its own win)."""

        def rebound(*args: Any, **kwargs: Any) -> Any:
            step = bind_tools(*args, **kwargs)
            if isinstance(step, Binding):
                config = merge_configs(self.config, step.config)
                return Binding(step.bound, {**self.kwargs, **step.kwargs}, config)
            return Binding.wrap(step, self.kwargs, self.config)

        return rebound

    def _args(self, config: RunConfig | None, kwargs: dict[str, Any]) -> tuple[RunConfig | None, dict[str, Any]]:
        if self.config:
            config = merge_configs(self.config, config)
        if self.kwargs:
            kwargs = {**self.kwargs, **kwargs}
        return config, kwargs

    # Public calls delegate to the wrapped step's public calls, so its run carries the merged config.
    def invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        config, kwargs = self._args(config, kwargs)
        return self.bound.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        config, kwargs = self._args(config, kwargs)
        return await self.bound.ainvoke(input, config, **kwargs)

    def stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        config, kwargs = self._args(config, kwargs)
        return self.bound.stream(input, config, **kwargs)

    def astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        config, kwargs = self._args(config, kwargs)
        return self.bound.astream(input, config, **kwargs)

    def transform(self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        config, kwargs = self._args(config, kwargs)
        return self.bound.transform(input, config, **kwargs)

    def atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        config, kwargs = self._args(config, kwargs)
        return self.bound.atransform(input, config, **kwargs)

    # Hooks, for composites that call hooks directly when nobody listens.
    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        config, kwargs = self._args(config, kwargs)
        return self.bound._invoke(input, config, **kwargs)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        config, kwargs = self._args(config, kwargs)
        return await self.bound._ainvoke(input, config, **kwargs)

    def batch(self, inputs: Sequence[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        if self.config and config is None and "max_concurrency" in self.config:
            kwargs.setdefault("max_concurrency", self.config["max_concurrency"])
        return super().batch(inputs, config, **kwargs)

    async def abatch(self, inputs: Sequence[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        if self.config and config is None and "max_concurrency" in self.config:
            kwargs.setdefault("max_concurrency", self.config["max_concurrency"])
        return await super().abatch(inputs, config, **kwargs)


async def _asleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _as_tuple(exceptions: type[BaseException] | tuple[type[BaseException], ...]) -> tuple[type[BaseException], ...]:
    result = exceptions if isinstance(exceptions, tuple) else (exceptions,)
    for exc in result:
        if not (isinstance(exc, type) and issubclass(exc, BaseException)):
            raise TypeError(f"expected exception classes, got {exc!r}")
    return result


_RETRY_POLICY = ("retry_on", "max_attempts", "initial_delay", "max_delay", "backoff", "jitter")


class Retry(Runnable[Any, Any]):
    """Retry a step on listed exceptions with exponential backoff: the k-th wait is
    ``min(max_delay, initial_delay * backoff**k)``, scaled by a random factor in [0.5, 1.5) when
    ``jitter`` is on so that many clients do not retry in lockstep. A stream is retried only if it
    fails before its first chunk; after that the consumer has seen output and a retry would repeat it."""

    def __init__(
        self,
        bound: Runnable[Any, Any],
        *,
        retry_on: type[BaseException] | tuple[type[BaseException], ...],
        max_attempts: int,
        initial_delay: float,
        max_delay: float,
        backoff: float,
        jitter: bool,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"with_retry(max_attempts={max_attempts}): need at least 1 attempt")
        self.bound = bound
        self.retry_on = _as_tuple(retry_on)
        self.max_attempts = max_attempts
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.backoff = backoff
        self.jitter = jitter
        self.io_bound = bound.io_bound
        self._name = f"retry({bound.name})"

    def __getattr__(self, attr: str) -> Any:
        if attr not in MODEL_BUILDERS or not hasattr(self.bound, attr):
            raise _no_builder(self, attr)
        build = getattr(self.bound, attr)
        return lambda *args, **kwargs: self.around(build(*args, **kwargs))

    def around(self, step: Runnable[Any, Any]) -> Retry:
        """The same retry policy around another step."""
        return Retry(step, **{name: getattr(self, name) for name in _RETRY_POLICY})

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.backoff ** (attempt - 1))
        return base * random.uniform(0.5, 1.5) if self.jitter else base

    def _failed(self, exc: BaseException, attempt: int) -> float:
        """Decide after a failure: raise, or return how long to wait before the next attempt."""
        if not isinstance(exc, self.retry_on):
            raise exc
        if attempt >= self.max_attempts:
            exc.add_note(f"maru: gave up after {attempt} attempt(s) of {self.bound.name}")
            raise exc
        return self.delay(attempt)

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.bound.invoke(input, config, **kwargs)
            except Exception as exc:
                time.sleep(self._failed(exc, attempt))

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.bound.ainvoke(input, config, **kwargs)
            except Exception as exc:
                await _asleep(self._failed(exc, attempt))

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        attempt = 0
        while True:
            attempt += 1
            iterator = self.bound.stream(input, config, **kwargs)
            try:
                first = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                time.sleep(self._failed(exc, attempt))
                continue
            yield first
            yield from iterator
            return

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        attempt = 0
        while True:
            attempt += 1
            iterator = aiter(self.bound.astream(input, config, **kwargs))
            try:
                first = await anext(iterator)
            except StopAsyncIteration:
                return
            except Exception as exc:
                await _asleep(self._failed(exc, attempt))
                continue
            try:
                yield first
                async for chunk in iterator:
                    yield chunk
            except BaseException:  # closed early: close the step's stream now (core.closing)
                await aclose_stream(iterator)
                raise
            return


class Fallbacks(Runnable[Any, Any]):
    """Try a step, then each fallback in turn when it raises one of ``exceptions``. If all fail, the
    first error is raised with the later ones attached as notes. Streams fall back only before their
    first chunk."""

    def __init__(
        self,
        bound: Runnable[Any, Any],
        fallbacks: Sequence[Any],
        *,
        exceptions: type[BaseException] | tuple[type[BaseException], ...],
        exception_key: str | None,
    ) -> None:
        if not fallbacks:
            raise ValueError("with_fallbacks() needs at least one fallback step")
        self.bound = bound
        self.fallbacks = tuple(coerce(f) for f in fallbacks)
        self.exceptions = _as_tuple(exceptions)
        self.exception_key = exception_key
        self.io_bound = bound.io_bound or any(f.io_bound for f in self.fallbacks)
        self._name = f"fallbacks({bound.name})"

    @property
    def runnables(self) -> tuple[Runnable[Any, Any], ...]:
        return (self.bound, *self.fallbacks)

    def __getattr__(self, attr: str) -> Any:
        """A model builder applies to every step that has it (a fallback that is, say, a canned
        answer stays as it is)."""
        if attr not in MODEL_BUILDERS or not hasattr(self.bound, attr):
            raise _no_builder(self, attr)

        def build(*args: Any, **kwargs: Any) -> Fallbacks:
            first, *rest = (
                getattr(step, attr)(*args, **kwargs) if hasattr(step, attr) else step for step in self.runnables
            )
            return Fallbacks(first, rest, exceptions=self.exceptions, exception_key=self.exception_key)

        return build

    def _input_for(self, input: Any, error: BaseException | None) -> Any:
        if error is None or self.exception_key is None:
            return input
        if not isinstance(input, dict):
            raise TypeError(
                f"with_fallbacks(exception_key={self.exception_key!r}) needs dict input, "
                f"got {type(input).__name__}"
            )
        return {**input, self.exception_key: error}

    def _give_up(self, first: BaseException, errors: list[BaseException]) -> BaseException:
        for later in errors[1:]:
            first.add_note(f"maru: fallback also failed: {type(later).__name__}: {later}")
        return first

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        errors: list[BaseException] = []
        for step in self.runnables:
            try:
                return step.invoke(self._input_for(input, errors[-1] if errors else None), config, **kwargs)
            except self.exceptions as exc:
                errors.append(exc)
        raise self._give_up(errors[0], errors)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        errors: list[BaseException] = []
        for step in self.runnables:
            try:
                return await step.ainvoke(
                    self._input_for(input, errors[-1] if errors else None), config, **kwargs
                )
            except self.exceptions as exc:
                errors.append(exc)
        raise self._give_up(errors[0], errors)

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        errors: list[BaseException] = []
        for step in self.runnables:
            iterator = step.stream(self._input_for(input, errors[-1] if errors else None), config, **kwargs)
            try:
                first = next(iterator)
            except StopIteration:
                return
            except self.exceptions as exc:
                errors.append(exc)
                continue
            yield first
            yield from iterator
            return
        raise self._give_up(errors[0], errors)

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        errors: list[BaseException] = []
        for step in self.runnables:
            iterator = aiter(
                step.astream(self._input_for(input, errors[-1] if errors else None), config, **kwargs)
            )
            try:
                first = await anext(iterator)
            except StopAsyncIteration:
                return
            except self.exceptions as exc:
                errors.append(exc)
                continue
            try:
                yield first
                async for chunk in iterator:
                    yield chunk
            except BaseException:  # closed early: close the step's stream now (core.closing)
                await aclose_stream(iterator)
                raise
            return
        raise self._give_up(errors[0], errors)
