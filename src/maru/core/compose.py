"""Composition: sequence, parallel map, passthrough, assign, pick, branch and route."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from . import events as _events
from .chunks import agather, gather
from .closing import aclose_stream, close_stream
from .config import RunConfig
from .events import LISTENERS, SEQ_ERROR, current_run, traced_call
from .executor import run_bounded, submit
from .runnable import Lambda, Runnable, coerce

_NO_KWARGS: dict[str, Any] = {}


class Sequence(Runnable[Any, Any]):
    """``a | b | c``: each step's output is the next step's input. Streams flow through every step
    that can transform a stream; a step that cannot gathers its input first."""

    def __init__(self, *steps: Runnable[Any, Any], name: str | None = None) -> None:
        flat: list[Runnable[Any, Any]] = []
        for step in steps:
            step = coerce(step)
            if type(step) is Sequence and step._name is None:
                flat.extend(step.steps)
            else:
                flat.append(step)
        if len(flat) < 2:
            raise ValueError("a sequence needs at least two steps")
        self.steps: tuple[Runnable[Any, Any], ...] = tuple(flat)
        hooks = [s._invoke for s in flat]  # bound once
        self._first_hook, self._rest_hooks = hooks[0], tuple(hooks[1:])
        traced = [(s, hook, type(s).invoke is Runnable.invoke) for s, hook in zip(flat, hooks, strict=True)]
        self._traced_first, self._traced_rest = traced[0], tuple(traced[1:])
        # Every step traced directly: the sequence can take the inline lean path.
        self._lean = tuple(hook for _, hook, direct in traced) if all(d for _, _, d in traced) else ()
        self._name = name
        self.io_bound = any(s.io_bound for s in flat)

    @property
    def first(self) -> Runnable[Any, Any]:
        return self.steps[0]

    @property
    def last(self) -> Runnable[Any, Any]:
        return self.steps[-1]

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.steps)

    def invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        """Run the steps in order. Traced by a collector alone (the tracer, no event listeners),
        the sequence records its own run and its steps' runs inline (see :meth:`_invoke_lean`)."""
        state = current_run.get()
        if state is None and (state := _events.global_state) is None:  # nobody listens
            return self._invoke_untraced(input, config, kwargs)
        if self._lean and not state[LISTENERS] and not kwargs and not (config and "run_name" in config):
            return self._invoke_lean(state, input, config)
        return traced_call(self, state, self._invoke, input, config, kwargs)

    def _invoke_untraced(self, input: Any, config: RunConfig | None, kwargs: dict[str, Any]) -> Any:
        """The path when nobody listens: each step's hook called directly, in turn (bound at
        construction, which pays for this call). Call-time kwargs go to the first step only."""
        input = self._first_hook(input, config, **kwargs)
        for hook in self._rest_hooks:
            input = hook(input, config)
        return input

    def _invoke_lean(
        self,
        state: _events.State,
        input: Any,
        config: RunConfig | None,
        _next_id: Callable[[], int] = _events.next_run_id,  # bound once: locals are cheaper than globals here
        _clock: Callable[[], float] = _events.perf_counter,
        _set: Callable[..., Any] = current_run.set,
        _reset: Callable[..., Any] = current_run.reset,
        _copied: frozenset[type] = _events.COPIED,
        _snapshot: Callable[[Any], Any] = _events.snapshot,
    ) -> Any:
        """The traced hot path of the most common chain: one loop that records the sequence's run and
        its steps' runs together in one compact record (see ``events.SequenceRecord``), each step's
        end time doubling as the next one's start.

        No state is set for the sequence itself: nothing but this loop runs between its steps, and
        each step's run names the sequence as its parent directly. Each step still gets its own state
        while it runs, so whatever it invokes inside is parented to it."""
        _, collector, parent, trace_id, _, records = state
        seq_id = _next_id()
        if trace_id is None:  # the sequence is a trace's root
            trace_id = seq_id
            records = []
        elif records is None:  # nothing collects this trace
            return self._invoke(input, config)
        sent = _snapshot(input) if type(input) in _copied else input  # as sent: see events.snapshot
        record = [seq_id, parent, trace_id, self, config, None, sent, _clock()]
        value = input
        for hook in self._lean:
            run_id = _next_id()
            token = _set(((), collector, run_id, trace_id, (), records))
            try:
                value = hook(value, config)
            except BaseException as exc:
                _reset(token)
                record[SEQ_ERROR] = exc
                record += (run_id, None, _clock())
                records.append(record)
                if parent is None:
                    _events.submit_trace(collector, records)
                raise
            _reset(token)
            record += (run_id, _snapshot(value) if type(value) in _copied else value, _clock())
        records.append(record)
        if parent is None:
            _events.submit_trace(collector, records)
        return value

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        state = current_run.get() or _events.global_state
        if state is None:  # nobody listens
            return self._invoke_untraced(input, config, kwargs)
        # Steps whose public invoke is the base one are traced directly (one call fewer each).
        # Call-time kwargs go to the first step only.
        first, hook, direct = self._traced_first
        if direct:
            input = traced_call(first, state, hook, input, config, kwargs)
        else:
            input = first.invoke(input, config, **kwargs)
        for step, hook, direct in self._traced_rest:
            input = traced_call(step, state, hook, input, config, _NO_KWARGS) if direct else step.invoke(input, config)
        return input

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        steps = self.steps
        input = await steps[0].ainvoke(input, config, **kwargs)
        for step in steps[1:]:
            input = await step.ainvoke(input, config)
        return input

    # Each stream method hands back the piped generator itself (no extra layer per chunk); the
    # first step's stream is opened by the generator, so nothing starts before the first chunk.
    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        return self._piped(lambda: self.steps[0].stream(input, config, **kwargs), config)

    def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        return self._apiped(lambda: self.steps[0].astream(input, config, **kwargs), config)

    def _transform(self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        return self._piped(lambda: self.steps[0].transform(input, config, **kwargs), config)

    def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return self._apiped(lambda: self.steps[0].atransform(input, config, **kwargs), config)

    def _piped(self, first: Callable[[], Iterator[Any]], config: RunConfig | None) -> Iterator[Any]:
        """The first step's stream through the other steps' transforms. Closed early, every step's
        stream is closed, last first (see :mod:`maru.core.closing`)."""
        streams = [first()]
        for step in self.steps[1:]:
            streams.append(step.transform(streams[-1], config))
        try:
            yield from streams[-1]
        except BaseException:  # on a normal end every stream ran out: nothing to close
            for stream in reversed(streams):
                close_stream(stream)
            raise

    async def _apiped(self, first: Callable[[], AsyncIterator[Any]], config: RunConfig | None) -> AsyncIterator[Any]:
        """Async twin of :meth:`_piped`."""
        streams = [first()]
        for step in self.steps[1:]:
            streams.append(step.atransform(streams[-1], config))
        try:
            async for chunk in streams[-1]:
                yield chunk
        except BaseException:
            for stream in reversed(streams):
                await aclose_stream(stream)
            raise


class Parallel(Runnable[Any, dict[str, Any]]):
    """Run several steps on the same input; the output is a dict of their outputs.

    io-bound branches run concurrently (threads for sync steps, the event loop for async ones);
    pure-Python branches run inline, where a thread would only add overhead. Streaming yields
    ``{key: chunk}`` dicts as each branch produces them.
    """

    def __init__(self, steps: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        merged = {**(steps or {}), **kwargs}
        if not merged:
            raise ValueError("parallel() needs at least one step: parallel(a=step_a, b=step_b)")
        self.steps: dict[str, Runnable[Any, Any]] = {k: coerce(v) for k, v in merged.items()}
        self._items = tuple(self.steps.items())
        self._concurrent = sum(1 for s in self.steps.values() if s.io_bound) > 1
        self.io_bound = any(s.io_bound for s in self.steps.values())

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in self._items) + "}"

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        if not self._concurrent:
            return {key: step.invoke(input, config) for key, step in self._items}
        items = self._items
        results = run_bounded(lambda i: items[i][1].invoke(input, config), len(items), None)
        out = {}
        for (key, _), (ok, value) in zip(items, results, strict=True):
            if not ok:
                raise value
            out[key] = value
        return out

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        if not self._concurrent:
            return {key: await step.ainvoke(input, config) for key, step in self._items}
        import asyncio

        values = await asyncio.gather(*(step.ainvoke(input, config) for _, step in self._items))
        return dict(zip(self.steps, values, strict=True))

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        if not self._concurrent:
            for key, step in self._items:
                for chunk in step.stream(input, config):
                    yield {key: chunk}
            return
        factories: dict[str, Callable[[], Iterator[Any]]] = {
            key: (lambda s=step: s.stream(input, config)) for key, step in self._items  # type: ignore[misc]
        }
        yield from _merge_streams_threaded(factories)

    async def _astream(
        self, input: Any, config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        if not self._concurrent:
            for key, step in self._items:
                async for chunk in step.astream(input, config):
                    yield {key: chunk}
            return
        async for item in _merge_streams_async(
            {key: step.astream(input, config) for key, step in self._items}
        ):
            yield item


def _merge_streams_threaded(
    factories: Mapping[str, Callable[[], Iterator[Any]]],
) -> Iterator[dict[str, Any]]:
    """Drive each stream on the shared executor and yield ``{key: chunk}`` in arrival order."""
    from queue import SimpleQueue

    inbox: SimpleQueue[tuple[str, Any, BaseException | None, bool]] = SimpleQueue()

    def pump(key: str, factory: Callable[[], Iterator[Any]]) -> None:
        try:
            for chunk in factory():
                inbox.put((key, chunk, None, False))
        except BaseException as exc:
            inbox.put((key, None, exc, True))
            return
        inbox.put((key, None, None, True))

    futures = [submit(pump, key, factory) for key, factory in factories.items()]
    remaining = len(futures)
    while remaining:
        key, chunk, error, finished = inbox.get()
        if error is not None:
            raise error
        if finished:
            remaining -= 1
        else:
            yield {key: chunk}


async def _merge_streams_async(streams: Mapping[str, AsyncIterator[Any]]) -> AsyncIterator[dict[str, Any]]:
    import asyncio

    iterators = {key: aiter(s) for key, s in streams.items()}
    pending = {asyncio.ensure_future(anext(it)): key for key, it in iterators.items()}
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                key = pending.pop(task)
                try:
                    chunk = task.result()
                except StopAsyncIteration:
                    continue
                yield {key: chunk}
                pending[asyncio.ensure_future(anext(iterators[key]))] = key
    finally:
        for task in pending:
            task.cancel()


class Passthrough(Runnable[Any, Any]):
    """Returns its input unchanged; streams pass straight through."""

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return input

    def _transform(self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from input

    async def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        async for chunk in input:
            yield chunk

    @staticmethod
    def assign(**steps: Any) -> Assign:  # type: ignore[override]
        """``RunnablePassthrough.assign(...)`` for LangChain migrants."""
        return Assign(Parallel(steps))


def _require_dict(input: Any, who: str) -> dict[str, Any]:
    if not isinstance(input, Mapping):
        raise TypeError(
            f"{who} needs a dict input, got {type(input).__name__}: {input!r:.80}; "
            "put a step that returns a dict before it"
        )
    return input  # type: ignore[return-value]


class Assign(Runnable[dict[str, Any], dict[str, Any]]):
    """Pass a dict through and add keys computed from it. Streams the input first, then the new keys."""

    def __init__(self, mapper: Parallel) -> None:
        self.mapper = mapper
        self.io_bound = mapper.io_bound

    def __repr__(self) -> str:
        return f"assign({self.mapper!r})"

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return {**_require_dict(input, "assign()"), **self.mapper.invoke(input, config)}

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return {**_require_dict(input, "assign()"), **await self.mapper.ainvoke(input, config)}

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield dict(_require_dict(input, "assign()"))
        yield from self.mapper.stream(input, config)

    async def _astream(
        self, input: Any, config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        yield dict(_require_dict(input, "assign()"))
        async for chunk in self.mapper.astream(input, config):
            yield chunk


class Pick(Runnable[dict[str, Any], Any]):
    """Select keys from a dict: one key gives its value, several give a smaller dict."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("pick() needs at least one key")
        self.keys = keys

    def __repr__(self) -> str:
        return f"pick({', '.join(map(repr, self.keys))})"

    def _pick(self, input: Any) -> Any:
        data = _require_dict(input, "pick()")
        if len(self.keys) == 1:
            key = self.keys[0]
            if key not in data:
                raise KeyError(f"pick({key!r}): the input has no key {key!r}; it has {sorted(data)}")
            return data[key]
        return {k: data[k] for k in self.keys if k in data}

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return self._pick(input)

    def _transform(self, input: Iterable[Any], config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        if len(self.keys) == 1:  # a single value may not be addable dict-wise: gather it
            yield self._pick(gather(input))
            return
        for chunk in input:
            picked = {k: v for k, v in _require_dict(chunk, "pick()").items() if k in self.keys}
            if picked:
                yield picked

    async def _atransform(
        self, input: AsyncIterator[Any], config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        if len(self.keys) == 1:
            yield self._pick(await agather(input))
            return
        async for chunk in input:
            picked = {k: v for k, v in _require_dict(chunk, "pick()").items() if k in self.keys}
            if picked:
                yield picked


class Branch(Runnable[Any, Any]):
    """Run the first step whose condition holds for the input, else the default."""

    def __init__(self, cases: list[tuple[Runnable[Any, Any], Runnable[Any, Any]]], default: Runnable[Any, Any]):
        self.cases = cases
        self.default = default
        self.io_bound = default.io_bound or any(c.io_bound or r.io_bound for c, r in cases)

    def _select(self, input: Any, config: RunConfig | None) -> Runnable[Any, Any]:
        for condition, step in self.cases:
            if condition.invoke(input, config):
                return step
        return self.default

    async def _aselect(self, input: Any, config: RunConfig | None) -> Runnable[Any, Any]:
        for condition, step in self.cases:
            if await condition.ainvoke(input, config):
                return step
        return self.default

    def _invoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return self._select(input, config).invoke(input, config)

    async def _ainvoke(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Any:
        return await (await self._aselect(input, config)).ainvoke(input, config)

    def _stream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self._select(input, config).stream(input, config)

    async def _astream(self, input: Any, config: RunConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async for chunk in (await self._aselect(input, config)).astream(input, config):
            yield chunk


# --------------------------------------------------------------------------- constructors
def parallel(steps: Mapping[str, Any] | None = None, /, **named: Any) -> Parallel:
    """``parallel(summary=a, keywords=b)``: run both on the input, return ``{"summary": …, "keywords": …}``."""
    return Parallel(steps, **named)


def passthrough() -> Passthrough:
    return Passthrough()


def assign(**steps: Any) -> Assign:
    """``assign(context=retriever)``: pass the input dict through with ``context`` added."""
    if not steps:
        raise ValueError("assign() needs at least one key=step")
    return Assign(Parallel(steps))


def pick(*keys: str) -> Pick:
    return Pick(keys)


def branch(*cases_and_default: Any) -> Branch:
    """``branch((is_question, answer), (is_greeting, greet), fallback)``: the last argument is the
    default; every other is a ``(condition, step)`` pair."""
    if not cases_and_default:
        raise ValueError("branch() needs (condition, step) pairs followed by a default step")
    *cases, default = cases_and_default
    pairs = []
    for case in cases:
        if not (isinstance(case, tuple) and len(case) == 2):
            raise TypeError(
                f"branch() takes (condition, step) pairs and a default last; got {case!r:.80}"
            )
        pairs.append((coerce(case[0]), coerce(case[1])))
    if isinstance(default, tuple):
        raise TypeError("branch(): the last argument is the default step, not a (condition, step) pair")
    return Branch(pairs, coerce(default))


def route(
    fn: Callable[[Any], Any],
    routes: Mapping[Any, Any] | None = None,
    *,
    default: Any = None,
    name: str | None = None,
) -> Runnable[Any, Any]:
    """Choose the next step at run time.

    ``route(fn)``: ``fn(input)`` returns the step (or a plain value) to use. ``route(key_fn, {"sql":
    sql_chain, "chat": chat_chain}, default=chat_chain)``: ``key_fn(input)`` names the step.
    """
    key_step = coerce(fn)
    if routes is None:

        def choose_step(input: Any, config: RunConfig | None = None) -> Any:
            chosen = key_step.invoke(input, config)
            return coerce(chosen) if callable(chosen) else chosen

        return Lambda(choose_step, name or key_step.name)
    table = {key: coerce(step) for key, step in routes.items()}
    fallback = coerce(default) if default is not None else None

    def choose(input: Any, config: RunConfig | None = None) -> Runnable[Any, Any]:
        key = key_step.invoke(input, config)
        chosen = table.get(key, fallback)
        if chosen is None:
            raise KeyError(f"route: no step for key {key!r}; known keys {list(table)}; pass default=")
        return chosen

    router: Lambda[Any, Any] = Lambda(choose, name or "route")
    router.io_bound = any(s.io_bound for s in table.values()) or bool(fallback and fallback.io_bound)
    return router
