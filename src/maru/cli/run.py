"""``maru run module:object --input JSON [--stream] [--raw]``: invoke (or stream) any runnable or
plain function and print the result as JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._shared import fail, write

if TYPE_CHECKING:
    from ..core import Runnable


def run(
    target: Annotated[str, typer.Argument(help="What to run, as module:object (a runnable or a function).")],
    input: Annotated[
        str,
        typer.Option("--input", "-i", help="The input as JSON; @file.json reads a file, - reads stdin."),
    ],
    stream: Annotated[bool, typer.Option("--stream", help="Stream the output as it is produced.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print a string result without JSON quotes.")] = False,
) -> None:
    """Invoke a runnable (or a plain function) on a JSON input and print the result as JSON."""
    from ..errors import ConfigurationError, PromptError

    step = load_runnable(target)
    value = parse_input(input)
    try:
        if stream:
            _stream_output(step.stream(value), raw)
        else:
            typer.echo(format_result(step.invoke(value), raw=raw))
    except ConfigurationError as exc:
        fail(str(exc))
    except PromptError as exc:
        fail(str(exc), "Give each variable the prompt expects as a key of the --input JSON object.")


def load_runnable(target: str) -> Runnable[Any, Any]:
    """:func:`maru.serve.target.load_target`, exiting 2 with its hint when the target is bad."""
    from ..errors import TargetError
    from ..serve.target import load_target

    try:
        return load_target(target)
    except TargetError as exc:
        fail(str(exc), exc.hint)


def parse_input(raw: str) -> Any:
    """Parse ``--input``: JSON text, ``@path`` to read a JSON file, or ``-`` to read JSON from stdin."""
    source = "--input"
    if raw == "-":
        raw, source = sys.stdin.read(), "stdin"
    elif raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            fail(f"cannot read input file {str(path)!r}: {exc.strerror or exc}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "Quote it for the shell; a string needs JSON quotes too, e.g. --input '\"hello\"' "
            "or --input '{\"question\": \"hi\"}'.",
        )


def to_jsonable(value: Any) -> Any:
    """``json.dumps`` default: messages via ``to_dict()``, pydantic models, dataclasses, sets."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_result(value: Any, *, raw: bool = False, indent: int | None = 2) -> str:
    """JSON when the value can be made JSON, else its ``str``. With ``raw`` a string prints as is."""
    if raw and isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=to_jsonable, ensure_ascii=False, indent=indent)
    except (TypeError, ValueError):
        return str(value)


def _stream_output(chunks: Iterator[Any], raw: bool) -> None:
    """Text chunks (strings, message chunks) are written as they arrive; anything else is printed
    as one JSON value per line."""
    in_text = False
    for chunk in chunks:
        text = _text_of(chunk)
        if text is not None:
            write(text)
            in_text = True
            continue
        if in_text:
            write("\n")
            in_text = False
        write(format_result(chunk, raw=raw, indent=None) + "\n")
    if in_text:
        write("\n")


def _text_of(chunk: Any) -> str | None:
    """The text of a text chunk (a string, or a message chunk that carries no tool call)."""
    from ..messages import BaseMessage

    if isinstance(chunk, str):
        return chunk
    if (
        isinstance(chunk, BaseMessage)
        and isinstance(chunk.content, str)
        and not getattr(chunk, "tool_call_chunks", None)
    ):
        return chunk.content
    return None
