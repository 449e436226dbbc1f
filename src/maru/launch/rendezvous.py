"""A rendezvous store that no training node hosts: ``python -m maru.launch.rendezvous PORT`` keeps
torchrun's c10d store on ``PORT`` until SIGTERM. torchrun agents started with
``--rdzv-conf is_host=false`` join through it, so losing any node (node 0 included) loses no
rendezvous state: the others re-rendezvous and go on. The local supervisor hosts the same store in
its own process; a JobSet gets one small pod of it (:mod:`maru.launch.k8s_jobs`).
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import timedelta
from typing import Any

__all__ = ["RDZV_MODULE", "host_store", "main"]

RDZV_MODULE = "maru.launch.rendezvous"


def host_store(host: str, port: int, timeout_s: float = 60.0) -> Any:
    """The c10d ``TCPStore`` server on ``port`` (many clients, started without waiting for them).
    Raises ``RuntimeError`` or ``ValueError`` when the port cannot be taken."""
    from torch.distributed import TCPStore

    return TCPStore(host, port, is_master=True, multi_tenant=True, wait_for_workers=False,
                    timeout=timedelta(seconds=timeout_s))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m maru.launch.rendezvous PORT", file=sys.stderr)
        raise SystemExit(2)
    store = host_store("0.0.0.0", int(args[0]))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"maru rendezvous store listening on port {args[0]}", flush=True)
    stop.wait()
    del store


if __name__ == "__main__":
    main()
