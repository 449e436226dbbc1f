"""``maru usage REPORT.json``: the table of a tracked run's usage and cost (``UsageTracker.save``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._shared import fail, make_console


def usage(
    report: Annotated[Path, typer.Argument(help="A usage report saved with UsageTracker.save(path).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
) -> None:
    """Print the usage report of a tracked run: tokens, cache hits and cost per model, and totals.

    Save one with:  with maru.usage.track() as t: ...;  t.save("usage.json")
    """
    from ..usage.tracker import UsageTracker

    hint = 'A report is written by a tracker:  with maru.usage.track() as t: ...  then  t.save("usage.json")'
    try:
        tracker = UsageTracker.load(report)
    except FileNotFoundError:
        fail(f"usage report {str(report)!r} not found.", hint)
    except IsADirectoryError:
        fail(f"{str(report)!r} is a folder, not a usage report.", hint)
    except UnicodeDecodeError:
        fail(f"{str(report)!r} is not a usage report (not UTF-8 text).", hint)
    except ValueError as exc:
        fail(f"not a usage report: {exc}", hint)
    except OSError as exc:
        fail(f"cannot read {str(report)!r}: {exc.strerror or exc}")
    if as_json:
        typer.echo(tracker.to_json())
        return
    make_console().print(tracker.table(title=f"Usage: {tracker.name or report.name}"))
