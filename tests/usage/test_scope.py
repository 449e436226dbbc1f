"""The usage scope ContextVar: pushing, restoring, crossing threads; and import cost."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading

from maru.usage import Budget, UsageScope, UsageTracker, current_scope, track


def test_default_is_none() -> None:
    assert current_scope.get() is None


def test_push_extends_and_exit_restores() -> None:
    b = Budget(max_requests=10)
    with track() as outer:
        assert current_scope.get() == UsageScope((outer,), ())
        with b:
            with track() as inner:
                scope = current_scope.get()
                assert scope is not None
                assert scope.trackers == (outer, inner) and scope.budgets == (b,)
            assert current_scope.get() == UsageScope((outer,), (b,))
        assert current_scope.get() == UsageScope((outer,), ())
    assert current_scope.get() is None


def test_exit_out_of_order_restores_the_scope_before_the_owner() -> None:
    a, b = UsageTracker(), UsageTracker()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)  # leaves a (and b, opened inside it)
    assert current_scope.get() is None
    b.__exit__(None, None, None)  # no longer active here: nothing to do
    assert current_scope.get() is None


def test_scope_is_per_context() -> None:
    seen: list[object] = []
    with track() as t:
        ctx = contextvars.copy_context()
        plain = threading.Thread(target=lambda: seen.append(current_scope.get()))  # a new context
        plain.start()
        plain.join()
        seen.append(ctx.run(current_scope.get))  # a copied context (as the shared pool uses)
    assert seen[0] is None
    assert seen[1] is not None and seen[1].trackers == (t,)  # type: ignore[attr-defined]


def test_a_shared_budget_entered_in_two_threads() -> None:
    budget = Budget(max_requests=100)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with budget:
                barrier.wait()
                scope = current_scope.get()
                assert scope is not None and scope.budgets == (budget,)
                barrier.wait()
            assert current_scope.get() is None
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_importing_models_loads_only_the_scope() -> None:
    code = (
        "import sys, maru.models; "
        "print(sorted(m for m in sys.modules if m.startswith('maru.usage') "
        "or m in ('tiktoken', 'tokenizers', 'rich', 'tomllib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['maru.usage', 'maru.usage.scope']"
