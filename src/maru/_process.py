"""Process and machine facts shared by packages that must not import each other: whether a pid
still runs (a store's write lock, a launched job's supervisor) and a free loopback port (the local
launcher's rendezvous, single-machine training tests)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this machine. A zombie (exited, not yet reaped) counts
    as dead; a process of another user (``EPERM``) as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): the signal check is all there is
        return True


def free_port() -> int:
    """A free TCP port on loopback, for single-machine tests and launches."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Ask a child to stop (SIGTERM), then kill it if it has not within ``timeout`` seconds; the
    child is reaped either way, so no zombie is left behind."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
