"""What every ``maru`` command shares: how a command group is made, the console, the exit codes,
and how a command fails (one message and a hint on stderr, never a traceback).

Only typer and the standard library are imported here, so ``import maru.cli`` stays light; rich is
imported when something is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

USAGE_ERROR = 2
"""Exit code for a command that cannot start: bad arguments, missing configuration, a missing extra."""


def command_group(name: str, help: str, callback: Callable[..., None] | None = None) -> typer.Typer:
    """A typer app set up the way every maru command group is: help when called bare, no
    shell-completion options, plain tracebacks. ``callback`` takes the group's own options; without
    one a no-op stands in, so that a group with a single command stays a group."""
    return typer.Typer(
        name=name,
        help=help,
        callback=callback or _no_options,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


def _no_options() -> None:
    pass


def make_console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def fail(message: str, hint: str | None = None, code: int = USAGE_ERROR) -> NoReturn:
    """Print an error (and what to do about it) to stderr and exit, without a traceback."""
    from rich.markup import escape

    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    if hint:
        err.print(hint, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def write(text: str) -> None:
    """Write streamed text to stdout as it comes (no buffering until the line ends)."""
    sys.stdout.write(text)
    sys.stdout.flush()
