"""The ``Runnable``: one step with invoke / batch / stream in sync and async, and the function step.

How a step is written: subclass :class:`Runnable` and implement the hooks that match what the step
natively is — ``_invoke`` for sync code, ``_ainvoke`` for async code, ``_stream`` / ``_astream`` when it
produces output piece by piece, ``_transform`` / ``_atransform`` when it consumes a stream. Every other
method is derived once, here. The public methods (``invoke`` …) add tracing when someone listens and are
otherwise a direct call of the hook.

``io_bound`` says whether the step waits on the outside world (a model, a database, an async function).
Concurrency is spent only where it helps: ``batch`` and parallel maps fan io-bound steps out to the
shared executor (or the event loop) and run pure-Python steps inline, where threads only add cost.
"""

from __future__ import annotations

import inspect
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, ClassVar, Generic, TypeVar, overload

from . import events as _events
from .chunks import ChunkRecorder, agather, gather
from .closing import aclose_stream
from .config import RunConfig, configs_for_batch
from .event_filter import EventFilter, check_version
from .events import (
    RunEvent,
    current_run,
    listen,
    traced_acall,
    traced_aiter,
    traced_call,
    traced_iter,
)
from .executor import gather_bounded, run_bounded, run_coroutine_sync, run_in_thread

Input = TypeVar("Input")
Output = TypeVar("Output")
Other = TypeVar("Other")

_HOOKS = ("_invoke", "_ainvoke", "_stream", "_astream", "_transform", "_atransform")
_PUBLIC_TO_HOOK = {"invoke": "_invoke", "ainvoke": "_ainvoke", "stream": "_stream", "astream": "_astream"}


class Runnable(Generic[Input, Output]):
    """A unit of work that can be invoked, batched and streamed, sync or async, and composed with ``|``."""

    kind: ClassVar[str] = "chain"
    """What the step is, for events and traces: chain, chat_model, prompt, parser, tool, retriever …"""
    io_bound: bool = False
    _native: ClassVar[frozenset[str]] = frozenset()
    _name: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A LangChain-style subclass that overrides the public method is taken at its word.
        for public, hook in _PUBLIC_TO_HOOK.items():
            if public in cls.__dict__ and hook not in cls.__dict__:
                setattr(cls, hook, _hook_from_public(cls.__dict__[public]))
        native: set[str] = set()
        for klass in cls.__mro__:
            if klass is Runnable:
                break
            native.update(h for h in _HOOKS if h in klass.__dict__)
        cls._native = frozenset(native)

    # ----------------------------------------------------------------- identity
    @property
    def name(self) -> str:
        return self._name or type(self).__name__

    def get_name(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name or ''})"

    # ----------------------------------------------------------------- public API
    def invoke(self, input: Input, config: RunConfig | None = None, **kwargs: Any) -> Output:
        """Run on one input and return the output."""
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:
            return self._invoke(input, config, **kwargs)
        return traced_call(self, state, self._invoke, input, config, kwargs)

    async def ainvoke(self, input: Input, config: RunConfig | None = None, **kwargs: Any) -> Output:
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:
            return await self._ainvoke(input, config, **kwargs)
        return await traced_acall(self, state, self._ainvoke, input, config, kwargs)

    def stream(self, input: Input, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Output]:
        """Yield the output in chunks as they are produced (one chunk if the step cannot stream)."""
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:
            return iter(self._stream(input, config, **kwargs))
        return traced_iter(self, state, self._stream, input, config, kwargs)

    def astream(
        self, input: Input, config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:
            return self._astream(input, config, **kwargs)
        return traced_aiter(self, state, self._astream, input, config, kwargs)

    def transform(
        self, input: Iterable[Input], config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        """Consume a stream of input chunks and yield output chunks (used between piped steps)."""
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:
            return iter(self._transform(input, config, **kwargs))
        return traced_iter(self, state, self._transform, ChunkRecorder(input), config, kwargs)

    def atransform(
        self, input: AsyncIterator[Input], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:
            return self._atransform(input, config, **kwargs)
        return traced_aiter(self, state, self._atransform, ChunkRecorder(input), config, kwargs)

    def batch(
        self,
        inputs: Sequence[Input],
        config: RunConfig | Sequence[RunConfig | None] | None = None,
        *,
        return_exceptions: bool = False,
        max_concurrency: int | None = None,
        **kwargs: Any,
    ) -> list[Output]:
        """Run on many inputs. io-bound steps run concurrently on the shared executor, at most
        ``max_concurrency`` at once; pure-Python steps run inline. With ``return_exceptions`` a failed
        item's exception takes its place in the result instead of raising."""
        inputs = list(inputs)
        n = len(inputs)
        if n == 0:
            return []
        configs = configs_for_batch(config, n)
        invoke = self.invoke
        if not self.io_bound or n == 1:
            if config is None and not kwargs and not return_exceptions:
                return [invoke(x) for x in inputs]
            out: list[Any] = []
            for x, c in zip(inputs, configs, strict=True):
                try:
                    out.append(invoke(x, c, **kwargs))
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    out.append(exc)
            return out
        if max_concurrency is None and configs[0]:
            max_concurrency = configs[0].get("max_concurrency")
        results = run_bounded(lambda i: invoke(inputs[i], configs[i], **kwargs), n, max_concurrency)
        return _unwrap_results(results, return_exceptions)

    async def abatch(
        self,
        inputs: Sequence[Input],
        config: RunConfig | Sequence[RunConfig | None] | None = None,
        *,
        return_exceptions: bool = False,
        max_concurrency: int | None = None,
        **kwargs: Any,
    ) -> list[Output]:
        inputs = list(inputs)
        n = len(inputs)
        if n == 0:
            return []
        configs = configs_for_batch(config, n)
        if max_concurrency is None and configs[0]:
            max_concurrency = configs[0].get("max_concurrency")
        ainvoke = self.ainvoke
        if not self.io_bound:
            out: list[Any] = []
            for x, c in zip(inputs, configs, strict=True):
                try:
                    out.append(await ainvoke(x, c, **kwargs))
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    out.append(exc)
            return out
        factories = [
            (lambda x=x, c=c: ainvoke(x, c, **kwargs)) for x, c in zip(inputs, configs, strict=True)
        ]
        return await gather_bounded(factories, max_concurrency, return_exceptions)  # type: ignore[return-value]

    async def astream_events(
        self,
        input: Input,
        config: RunConfig | None = None,
        *,
        version: str = "v2",
        include_names: Sequence[str] | None = None,
        include_kinds: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_kinds: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[RunEvent]:
        """Stream this step and yield the events of every run inside it, in order: starts, stream
        chunks, ends and errors, from the outer chain down to each model token.

        The keywords are LangChain's, taken here and never passed to the steps: ``version`` ("v1"
        and "v2" get the same events), and filters that keep a run's events when it matches any
        ``include_*`` (all, if none is given) and no ``exclude_*``; ``*_types`` is LangChain's name
        for ``*_kinds``. Other keyword arguments go to the steps, as with ``astream``."""
        import asyncio

        check_version(version)
        wanted = EventFilter(
            include_names, _either(include_kinds, include_types), include_tags,
            exclude_names, _either(exclude_kinds, exclude_types), exclude_tags,
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def listener(event: RunEvent) -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                queue.put_nowait(event)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, event)

        async def drive() -> None:
            try:
                with listen(listener):
                    async for _ in self.astream(input, config, **kwargs):
                        pass
            finally:
                queue.put_nowait(done)

        task = asyncio.ensure_future(drive())
        try:
            while True:
                event = await queue.get()
                if event is done:
                    break
                if wanted(event):
                    yield event
            await task  # re-raise the chain's error, after its error events were yielded
        finally:
            if not task.done():
                task.cancel()

    # ----------------------------------------------------------------- hooks (derived defaults)
    def _invoke(self, input: Input, config: RunConfig | None = None, **kwargs: Any) -> Output:
        native = self._native
        if "_stream" in native:
            return gather(self._stream(input, config, **kwargs))
        if "_ainvoke" in native or "_astream" in native:
            return run_coroutine_sync(self._ainvoke(input, config, **kwargs))
        raise TypeError(
            f"{type(self).__name__} implements none of _invoke, _ainvoke, _stream, _astream; "
            "implement at least one"
        )

    async def _ainvoke(self, input: Input, config: RunConfig | None = None, **kwargs: Any) -> Output:
        native = self._native
        if "_invoke" in native or "_stream" in native:
            if self.io_bound:
                return await run_in_thread(lambda: self._invoke(input, config, **kwargs))
            return self._invoke(input, config, **kwargs)
        if "_astream" in native:
            return await agather(self._astream(input, config, **kwargs))
        raise TypeError(
            f"{type(self).__name__} implements none of _invoke, _ainvoke, _stream, _astream; "
            "implement at least one"
        )

    def _stream(self, input: Input, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Output]:
        yield self._invoke(input, config, **kwargs)

    async def _astream(
        self, input: Input, config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        if "_stream" in self._native and "_ainvoke" not in self._native:
            iterator = iter(self._stream(input, config, **kwargs))
            if not self.io_bound:
                for chunk in iterator:
                    yield chunk
                return
            end = object()
            while (chunk := await run_in_thread(next, iterator, end)) is not end:
                yield chunk
        else:
            yield await self._ainvoke(input, config, **kwargs)

    def _transform(
        self, input: Iterable[Input], config: RunConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        yield from self._stream(gather(input), config, **kwargs)

    async def _atransform(
        self, input: AsyncIterator[Input], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        stream = self._astream(await agather(input), config, **kwargs)
        try:
            async for chunk in stream:
                yield chunk
        except BaseException:  # closed early: close the step's own stream now (maru.core.closing)
            await aclose_stream(stream)
            raise

    # ----------------------------------------------------------------- composition
    def __or__(self, other: Any) -> Runnable[Input, Any]:
        from .compose import Sequence as Seq

        return Seq(self, coerce(other))

    def __ror__(self, other: Any) -> Runnable[Any, Output]:
        from .compose import Sequence as Seq

        return Seq(coerce(other), self)

    def pipe(self, *others: Any) -> Runnable[Input, Any]:
        from .compose import Sequence as Seq

        return Seq(self, *(coerce(o) for o in others))

    def assign(self, **steps: Any) -> Runnable[Input, dict[str, Any]]:
        """Pipe into a step that adds ``steps``' outputs as keys of this step's dict output."""
        from .compose import assign

        return self | assign(**steps)

    def pick(self, *keys: str) -> Runnable[Input, Any]:
        from .compose import pick

        return self | pick(*keys)

    def bind(self, **kwargs: Any) -> Runnable[Input, Output]:
        """Fix keyword arguments passed to every call (``model.bind(stop=["\\n"])``)."""
        from .wrappers import Binding

        return Binding.wrap(self, kwargs=kwargs)

    def with_config(self, config: RunConfig | None = None, **options: Any) -> Runnable[Input, Output]:
        """Fix config for every call: ``run_name``, ``tags``, ``metadata``, ``max_concurrency`` …"""
        from .wrappers import Binding

        merged: RunConfig = {**(config or {}), **options}  # type: ignore[typeddict-item]
        return Binding.wrap(self, config=merged)

    def with_retry(
        self,
        *,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        max_attempts: int = 3,
        initial_delay: float = 0.5,
        max_delay: float = 30.0,
        backoff: float = 2.0,
        jitter: bool = True,
    ) -> Runnable[Input, Output]:
        """Retry failures of the listed exception types with exponential backoff (and jitter);
        any other exception is raised at once."""
        from .wrappers import Retry

        return Retry(
            self,
            retry_on=retry_on,
            max_attempts=max_attempts,
            initial_delay=initial_delay,
            max_delay=max_delay,
            backoff=backoff,
            jitter=jitter,
        )

    def with_fallbacks(
        self,
        fallbacks: Sequence[Any],
        *,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        exception_key: str | None = None,
    ) -> Runnable[Input, Output]:
        """On one of ``exceptions``, try each fallback in order. With ``exception_key`` (dict input)
        the fallback sees the error under that key."""
        from .wrappers import Fallbacks

        return Fallbacks(self, fallbacks, exceptions=exceptions, exception_key=exception_key)


def _either(kinds: Sequence[str] | None, types: Sequence[str] | None) -> list[str] | None:
    """maru's ``*_kinds`` and LangChain's ``*_types`` name one filter; given both, both count."""
    return None if kinds is None and types is None else [*(kinds or ()), *(types or ())]


def _hook_from_public(method: Callable[..., Any]) -> Callable[..., Any]:
    def hook(self: Runnable, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return method(self, input, config, **kwargs)

    return hook


def _unwrap_results(results: list[tuple[bool, Any]], return_exceptions: bool) -> list[Any]:
    out = []
    for ok, value in results:
        if not ok and not return_exceptions:
            raise value
        out.append(value)
    return out


# --------------------------------------------------------------------------- function steps
def _wants_config(fn: Callable[..., Any]) -> bool:
    try:
        return "config" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _mode_of(fn: Callable[..., Any]) -> str:
    """sync, async, gen (sync stream transform) or agen (async stream transform)."""
    call = None if inspect.isroutine(fn) else type(fn).__call__  # a callable object's method
    for candidate in (fn, call):
        if inspect.isasyncgenfunction(candidate):
            return "agen"
        if inspect.isgeneratorfunction(candidate):
            return "gen"
        if inspect.iscoroutinefunction(candidate):
            return "async"
    return "sync"


class Lambda(Runnable[Input, Output]):
    """A plain function as a step.

    - ``def f(x)``: called with the input (and ``config=`` if it has that parameter).
    - ``async def f(x)``: awaited; io-bound, so ``abatch`` and parallel maps run it concurrently.
    - ``def f(chunks)`` / ``async def f(chunks)`` generators: transform a stream chunk by chunk.
    If the function returns a Runnable, that runnable is run on the same input (dynamic routing).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        io_bound: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"runnable() needs a callable, got {type(fn).__name__}: {fn!r}")
        self.fn = fn
        self._name = name or getattr(fn, "__name__", None) or type(fn).__name__
        if self._name == "<lambda>":
            self._name = "lambda"
        self._mode = _mode_of(fn)
        self._config_arg = _wants_config(fn)
        self.io_bound = self._mode in ("async", "agen") if io_bound is None else io_bound

    def __repr__(self) -> str:
        return f"runnable({self._name})"

    def _call(self, input: Any, config: RunConfig | None, kwargs: dict[str, Any]) -> Any:
        if self._config_arg:
            return self.fn(input, config=config, **kwargs)
        return self.fn(input, **kwargs)

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        mode = self._mode
        if mode == "sync":
            out = self.fn(input, **kwargs) if not self._config_arg else self._call(input, config, kwargs)
        elif mode == "gen":
            return gather(self._call(iter((input,)), config, kwargs))
        else:
            return run_coroutine_sync(self._ainvoke(input, config, **kwargs))
        if isinstance(out, Runnable):
            return out.invoke(input, config)
        return out

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        mode = self._mode
        if mode == "async":
            out = await self._call(input, config, kwargs)
        elif mode == "agen":
            return await agather(self._call(_aiter_one(input), config, kwargs))
        elif self.io_bound:
            out = await run_in_thread(self._call, input, config, kwargs)
        else:
            out = self._invoke(input, config, **kwargs)
            return out
        if isinstance(out, Runnable):
            return await out.ainvoke(input, config)
        return out

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        if self._mode == "gen":
            yield from self._call(iter((input,)), config, kwargs)
            return
        if self._mode == "sync":
            out = self._call(input, config, kwargs)
            if isinstance(out, Runnable):
                yield from out.stream(input, config)
            else:
                yield out
            return
        yield self._invoke(input, config, **kwargs)

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        if self._mode == "agen":
            async for chunk in self._call(_aiter_one(input), config, kwargs):
                yield chunk
            return
        if self._mode == "gen":
            for chunk in self._call(iter((input,)), config, kwargs):
                yield chunk
            return
        if self._mode == "async":
            out = await self._call(input, config, kwargs)
        elif self.io_bound:
            out = await run_in_thread(self._call, input, config, kwargs)
        else:
            out = self._call(input, config, kwargs)
        if isinstance(out, Runnable):
            async for chunk in out.astream(input, config):
                yield chunk
        else:
            yield out

    def _transform(self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        if self._mode == "gen":
            yield from self._call(iter(input), config, kwargs)
        else:
            yield from self._stream(gather(input), config, **kwargs)

    async def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        if self._mode == "agen":
            async for chunk in self._call(input, config, kwargs):
                yield chunk
        elif self._mode == "gen":
            collected = [chunk async for chunk in input]
            for chunk in self._call(iter(collected), config, kwargs):
                yield chunk
        else:
            async for chunk in self._astream(await agather(input), config, **kwargs):
                yield chunk


async def _aiter_one(value: Any) -> AsyncIterator[Any]:
    yield value


# --------------------------------------------------------------------------- coercion
def coerce(thing: Any) -> Runnable[Any, Any]:
    """Turn what a user writes in a pipe into a step: a Runnable as is, a dict into a parallel map,
    a LangChain runnable into one step that calls it, a callable into a function step."""
    if isinstance(thing, Runnable):
        return thing
    if isinstance(thing, Mapping):
        from .compose import Parallel

        return Parallel(thing)
    if type(thing).__module__.startswith("langchain"):
        from .foreign import LangChainStep, is_langchain_runnable

        if is_langchain_runnable(thing):
            return LangChainStep(thing)
    if callable(thing):
        return Lambda(thing)
    raise TypeError(
        f"cannot use {type(thing).__name__} {thing!r:.200} as a step: expected a Runnable, a function, "
        "a dict of steps or a LangChain runnable"
    )


@overload
def runnable(fn: Callable[..., Awaitable[Output]], *, name: str | None = ..., io_bound: bool | None = ...) -> Runnable[Any, Output]: ...
@overload
def runnable(fn: Callable[..., Output], *, name: str | None = ..., io_bound: bool | None = ...) -> Runnable[Any, Output]: ...
@overload
def runnable(fn: None = None, *, name: str | None = ..., io_bound: bool | None = ...) -> Callable[[Callable[..., Any]], Runnable[Any, Any]]: ...
def runnable(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, io_bound: bool | None = None
) -> Any:
    """Make a function a step: ``runnable(f)``, or as a decorator ``@runnable`` /
    ``@runnable(name="clean", io_bound=True)``. Mark a sync function that does I/O ``io_bound=True``
    so batches and parallel maps run it on the shared executor."""
    if fn is None:
        return lambda f: Lambda(f, name, io_bound=io_bound)
    return Lambda(fn, name, io_bound=io_bound)
