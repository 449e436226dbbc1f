"""Process facts shared by the parts that leave files or jobs behind a pid (a store's write lock,
a launched job's supervisor)."""

from __future__ import annotations

import os
from pathlib import Path


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
