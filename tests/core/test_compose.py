"""Composition primitives: every one, sync and async, with assertions on results."""

import asyncio

import pytest

import maru
from maru import (
    Runnable,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    assign,
    branch,
    parallel,
    passthrough,
    pick,
    route,
    runnable,
)
from maru.core import Sequence


def add1(x):
    return x + 1


def double(x):
    return x * 2


def run(coro):
    return asyncio.run(coro)


def test_pipe_coerces_functions_and_runs_in_order():
    chain = runnable(add1) | double | (lambda x: x - 3)
    assert isinstance(chain, Sequence)
    assert len(chain.steps) == 3  # nested pipes are flattened
    assert chain.invoke(4) == 7
    assert run(chain.ainvoke(4)) == 7
    assert chain.batch([1, 2, 3]) == [1, 3, 5]
    assert run(chain.abatch([1, 2, 3])) == [1, 3, 5]


def test_function_on_the_left_of_a_runnable():
    chain = add1 | runnable(double)
    assert chain.invoke(1) == 4


def test_dict_in_a_pipe_is_a_parallel_map():
    chain = runnable(add1) | {"a": double, "b": lambda x: x * 10, "same": passthrough()}
    assert chain.invoke(1) == {"a": 4, "b": 20, "same": 2}
    assert run(chain.ainvoke(1)) == {"a": 4, "b": 20, "same": 2}


def test_dict_on_the_left_of_a_pipe():
    chain = {"x": add1, "y": double} | runnable(lambda d: d["x"] + d["y"])
    assert chain.invoke(3) == 10


def test_parallel_constructor_and_alias():
    p = parallel(a=add1, b=double)
    assert p.invoke(5) == {"a": 6, "b": 10}
    assert RunnableParallel({"a": add1}).invoke(1) == {"a": 2}
    assert list(p.invoke(5)) == ["a", "b"]  # keeps declaration order
    with pytest.raises(ValueError, match="at least one"):
        parallel()


def test_passthrough_and_langchain_aliases():
    assert passthrough().invoke({"q": 1}) == {"q": 1}
    chain = RunnablePassthrough.assign(total=lambda d: d["a"] + d["b"])
    assert chain.invoke({"a": 1, "b": 2}) == {"a": 1, "b": 2, "total": 3}
    assert RunnableLambda(add1).invoke(1) == 2
    assert maru.Runnable is Runnable


def test_assign_adds_keys_and_keeps_input():
    chain = assign(doubled=lambda d: d["x"] * 2, name=lambda d: "n")
    assert chain.invoke({"x": 3}) == {"x": 3, "doubled": 6, "name": "n"}
    assert run(chain.ainvoke({"x": 3})) == {"x": 3, "doubled": 6, "name": "n"}
    with pytest.raises(TypeError, match="needs a dict input"):
        chain.invoke(3)


def test_runnable_assign_and_pick_methods():
    chain = runnable(lambda x: {"x": x}).assign(y=lambda d: d["x"] + 1).pick("y")
    assert chain.invoke(1) == 2


def test_pick_one_key_gives_value_many_give_dict():
    data = {"a": 1, "b": 2, "c": 3}
    assert pick("a").invoke(data) == 1
    assert pick("a", "c").invoke(data) == {"a": 1, "c": 3}
    with pytest.raises(KeyError, match="no key 'z'"):
        pick("z").invoke(data)


def test_branch_selects_first_true_condition_else_default():
    b = branch(
        (lambda x: x > 0, lambda x: f"pos {x}"),
        (lambda x: x < 0, lambda x: f"neg {x}"),
        lambda x: "zero",
    )
    assert [b.invoke(v) for v in (2, -2, 0)] == ["pos 2", "neg -2", "zero"]
    assert run(b.ainvoke(-1)) == "neg -1"
    assert list(b.stream(3)) == ["pos 3"]


def test_branch_argument_errors_are_clear():
    with pytest.raises(TypeError, match="default"):
        branch((lambda x: True, add1), (lambda x: False, double))
    with pytest.raises(TypeError, match="pairs"):
        branch(add1, double)


def test_route_with_function_returning_a_step():
    pick_step = route(lambda x: double if x > 10 else add1)
    assert pick_step.invoke(20) == 40
    assert pick_step.invoke(1) == 2
    assert run(pick_step.ainvoke(20)) == 40


def test_route_with_table_and_default():
    r = route(lambda d: d["kind"], {"sql": lambda d: "SQL", "chat": lambda d: "CHAT"}, default=lambda d: "?")
    assert r.invoke({"kind": "sql"}) == "SQL"
    assert r.invoke({"kind": "other"}) == "?"
    strict = route(lambda d: d, {"a": add1})
    with pytest.raises(KeyError, match="no step for key 'b'"):
        strict.invoke("b")


def test_runnable_decorator_forms_and_config_argument():
    @runnable
    def shout(text):
        return text.upper()

    @runnable(name="tagged")
    def with_config(text, config=None):
        return (text, (config or {}).get("tags"))

    assert shout.invoke("hi") == "HI"
    assert with_config.name == "tagged"
    assert with_config.invoke("x", {"tags": ["t"]}) == ("x", ["t"])


def test_async_function_step_works_sync_and_async():
    @runnable
    async def slow_add(x):
        await asyncio.sleep(0)
        return x + 1

    assert slow_add.io_bound
    assert slow_add.invoke(1) == 2
    assert run(slow_add.ainvoke(1)) == 2
    chain = slow_add | double
    assert run(chain.ainvoke(1)) == 4
    assert chain.invoke(1) == 4


def test_async_step_called_sync_from_inside_a_running_loop():
    @runnable
    async def aone(x):
        return 1

    async def main():
        return aone.invoke(0)  # sync call on the loop's thread: must not deadlock

    assert run(main()) == 1


def test_coercion_rejects_non_steps_with_a_clear_message():
    with pytest.raises(TypeError, match="cannot use int"):
        runnable(add1) | 5
    with pytest.raises(TypeError, match="needs a callable"):
        runnable(3)


def test_returned_runnable_is_invoked_dynamically():
    chain = runnable(lambda x: runnable(lambda y: y * 100))
    assert chain.invoke(2) == 200


def test_custom_subclass_implementing_only_async_hook():
    class AsyncOnly(Runnable):
        async def _ainvoke(self, input, config=None, **kwargs):
            return input + 10

    step = AsyncOnly()
    assert step.invoke(1) == 11
    assert run(step.ainvoke(1)) == 11
    assert list(step.stream(1)) == [11]


def test_langchain_style_subclass_overriding_invoke():
    class Legacy(Runnable):
        def invoke(self, input, config=None, **kwargs):
            return input * 3

    assert (Legacy() | add1).invoke(2) == 7


def test_subclass_with_no_hooks_fails_clearly():
    class Empty(Runnable):
        pass

    with pytest.raises(TypeError, match="implements none of"):
        Empty().invoke(1)


def test_repr_reads_like_the_pipe():
    chain = runnable(add1) | runnable(double)
    assert repr(chain) == "runnable(add1) | runnable(double)"


def test_partials_and_callable_objects_are_classified():
    import functools

    async def scale(x, k):
        return x * k

    class Doubler:
        async def __call__(self, x):
            return x * 2

    step = runnable(functools.partial(scale, k=3))
    assert step.io_bound and step.invoke(2) == 6
    obj = runnable(Doubler())
    assert obj.io_bound and obj.name == "Doubler" and asyncio.run(obj.ainvoke(4)) == 8
