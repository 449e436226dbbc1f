"""What every ``maru`` command shares: how a command group is made, the console, the exit codes,
and how a command fails (one message and a hint on stderr, never a traceback).

Only typer and the standard library are imported here, so ``import maru.cli`` stays light; rich is
imported when something is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from typer.core import TyperGroup

USAGE_ERROR = 2
"""Exit code for a command that cannot start: bad arguments, missing configuration, a missing extra."""


def command_group(
    name: str, help: str, callback: Callable[..., None] | None = None, cls: type[TyperGroup] | None = None
) -> typer.Typer:
    """A typer app set up the way every maru command group is: help when called bare, no
    shell-completion options, plain tracebacks. ``callback`` takes the group's own options; without
    one a no-op stands in, so that a group with a single command stays a group. ``cls`` is the
    click group class (the root's turns user errors into one message)."""
    return typer.Typer(
        name=name,
        help=help,
        cls=cls,
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
    """Print an error (and what to do about it) to stderr and exit, without a traceback. Called
    while an exception is handled under ``maru --debug``, it raises that exception instead."""
    from rich.markup import escape

    handling = sys.exc_info()[1]
    if handling is not None and debugging():
        raise handling

    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    if hint:
        err.print(hint, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def debugging() -> bool:
    """Whether the command runs under ``maru --debug`` (or ``MARU_DEBUG=1``)."""
    return _debug.get()


def set_debugging(on: bool) -> None:
    """Called by the root command with its ``--debug`` option, before any command runs."""
    _debug.set(on)


_debug: ContextVar[bool] = ContextVar("maru_cli_debug", default=False)


def write(text: str) -> None:
    """Write streamed text to stdout as it comes (no buffering until the line ends)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def ensure_port_free(host: str, port: int) -> int:
    """Exit 2 saying so when nothing can listen on ``host:port`` (the port is taken, the host is
    not this machine's, a low port needs privileges) — before a URL is printed that would not
    work. Port 0 picks a free port; the port to use is returned.

    The test binds with ``SO_REUSEADDR``, as uvicorn does, so a port left in TIME_WAIT by a
    server that just stopped counts as free, as it is for uvicorn."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            return int(probe.getsockname()[1])
    except socket.gaierror as exc:
        fail(f"cannot listen on {host!r}: {exc.strerror}", "Pass --host with this machine's name or address (127.0.0.1 by default).")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is in use: another server listens there",
                 "Stop that server, or pick another port: --port N (--port 0 takes any free one).")
        if exc.errno == errno.EACCES:
            fail(f"no permission to listen on port {port}", "Pick a port above 1023: --port N.")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", "Check --host and --port.")
