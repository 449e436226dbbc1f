"""The worker entry wrapper: ``python -m maru.launch.entry script.py ARGS`` or
``python -m maru.launch.entry -m package.module ARGS`` runs the user's entrypoint like ``python``
would, inside torchelastic's ``record`` so an uncaught exception lands in the worker's error file
(``TORCHELASTIC_ERROR_FILE``) together with the rank and the ``file:line`` it was raised at.

A run stopped by preemption (``SystemExit(143)``, see :mod:`maru.train.dist`) leaves a marker in
``$MARU_JOB_DIR/preempted/`` so the local backend can report the job as "requeue" whatever exit
code torchrun's agent ends with.

The reading side is here too: :func:`read_error_file` and :func:`parse_child_failed` (torchrun's
``ChildFailedError`` table, the fallback for workers killed by a signal, which write no error file)
give :class:`RootCause` records; :func:`format_root_cause` is the summary a failed job ends with.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "RootCause",
    "format_root_cause",
    "main",
    "parse_child_failed",
    "read_error_file",
]

PREEMPTED_EXIT_CODE = 143
USAGE = "usage: python -m maru.launch.entry SCRIPT.py [ARGS...] | -m MODULE [ARGS...]"
_SKIP_FILES = (os.sep + "runpy.py", os.path.join("maru", "launch", "entry.py"))


@dataclass(frozen=True)
class RootCause:
    """The first failure of a job: which rank, which exception, where."""

    rank: str
    exc_type: str
    message: str
    where: str = ""
    exitcode: int | None = None
    host: str = ""
    timestamp: float = 0.0
    traceback: str = ""
    source: str = ""


# ----------------------------------------------------------------------------------- writing
def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc``'s traceback (where it was raised)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.endswith(_SKIP_FILES)]
    if not frames:
        return ""
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def _error_handler() -> Any:
    """torchelastic's ErrorHandler, writing the rank and ``file:line`` into ``extraInfo`` too."""
    from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

    class RankErrorHandler(ErrorHandler):
        def record_exception(self, e: BaseException) -> None:
            file = self._get_error_file_path()
            if not file:
                return super().record_exception(e)
            data = {
                "message": {
                    "message": f"{type(e).__name__}: {e}",
                    "extraInfo": {
                        "py_callstack": "".join(traceback.format_exception(e)),
                        "timestamp": str(int(time.time())),
                        "rank": os.environ.get("RANK", ""),
                        "local_rank": os.environ.get("LOCAL_RANK", ""),
                        "host": socket.gethostname(),
                        "exc_type": type(e).__name__,
                        "where": _where(e),
                    },
                }
            }
            with open(file, "w", encoding="utf-8") as fp:
                json.dump(data, fp)

    return RankErrorHandler()


def _mark_preempted(code: object) -> None:
    folder = os.environ.get("MARU_JOB_DIR")
    if code != PREEMPTED_EXIT_CODE or not folder:
        return
    rank = os.environ.get("RANK", "0")
    try:
        marks = Path(folder) / "preempted"
        marks.mkdir(parents=True, exist_ok=True)
        (marks / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "time": time.time()}))
    except OSError:
        pass


def _run(argv: list[str]) -> None:
    try:
        if argv[0] == "-m":
            if len(argv) < 2:
                raise SystemExit(USAGE)
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            script = argv[0]
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        _mark_preempted(exc.code)
        raise


def main(argv: list[str] | None = None) -> None:
    """Run the entrypoint in ``argv`` (default ``sys.argv[1:]``) under ``record``."""
    from torch.distributed.elastic.multiprocessing.errors import record

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        raise SystemExit(0 if args else 2)
    record(_run, error_handler=_error_handler())(args)


# ----------------------------------------------------------------------------------- reading
def read_error_file(path: str | os.PathLike[str]) -> RootCause | None:
    """The failure recorded in a torchelastic error file; ``None`` when unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, str):  # torchelastic's newer flat format
        message = {"message": message, "extraInfo": {}}
    if not isinstance(message, dict):
        return None
    info = message.get("extraInfo") or {}
    text = str(message.get("message", ""))
    exc_type, _, rest = text.partition(": ")
    stack = str(info.get("py_callstack", ""))
    where = str(info.get("where") or _last_frame(stack))
    code = message.get("errorCode")
    return RootCause(
        rank=str(info.get("rank", "")),
        exc_type=str(info.get("exc_type") or exc_type),
        message=rest if rest else text,
        where=where,
        exitcode=int(code) if isinstance(code, int) else None,
        host=str(info.get("host", "")),
        timestamp=float(info.get("timestamp") or 0),
        traceback=stack,
        source=str(path),
    )


def _last_frame(stack: str) -> str:
    found = re.findall(r'File "([^"]+)", line (\d+)', stack)
    found = [f for f in found if not f[0].endswith(_SKIP_FILES)]
    return f"{found[-1][0]}:{found[-1][1]}" if found else ""


_FAILURE = re.compile(
    r"time\s*:\s*(?P<time>.+?)\n\s*host\s*:\s*(?P<host>\S*)\n\s*rank\s*:\s*(?P<rank>\d+)"
    r".*?\n\s*exitcode\s*:\s*(?P<code>-?\d+)(?P<rest>.*?)\n\s*error_file\s*:\s*(?P<file>\S+)"
    r"\n\s*traceback\s*:\s*(?P<tb>.*?)(?:\n\s*[-=]{8,}|\n\[\d+\]:|\Z)",
    re.S,
)


def parse_child_failed(text: str) -> RootCause | None:
    """The root cause out of torchrun's ``ChildFailedError`` report in an agent's output (the
    "Root Cause (first observed failure)" block, else the first failure listed)."""
    start = text.rfind("Root Cause (first observed failure)")
    if start < 0:
        start = text.rfind("ChildFailedError")
    if start < 0:
        return None
    found = _FAILURE.search(text, start)
    if found is None:
        return None
    code = int(found["code"])
    signal_name = re.search(r"Signal (\d+) \((\w+)\)", found["rest"] + found["tb"])
    error_file = found["file"]
    if error_file not in ("<N/A>", "N/A") and Path(error_file).exists():
        recorded = read_error_file(error_file)
        if recorded is not None:
            return RootCause(**{**recorded.__dict__, "rank": recorded.rank or found["rank"], "exitcode": code})
    if signal_name:
        exc_type, message = signal_name[2], f"worker killed by signal {signal_name[1]} ({signal_name[2]})"
    else:
        exc_type, message = "exit", f"worker exited with code {code}"
    return RootCause(
        rank=found["rank"],
        exc_type=exc_type,
        message=message,
        exitcode=code,
        host=found["host"],
        traceback=found["tb"].strip(),
        source="torchrun ChildFailedError",
    )


def format_root_cause(cause: RootCause) -> str:
    """A few lines for a failed job's summary: rank, exception, message, where."""
    lines = [f"root cause: rank {cause.rank or '?'}: {cause.exc_type}: {cause.message}"]
    if cause.where:
        lines.append(f"  at {cause.where}")
    if cause.exitcode is not None:
        lines.append(f"  exit code {cause.exitcode}" + (f" on {cause.host}" if cause.host else ""))
    if cause.source:
        lines.append(f"  from {cause.source}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
