"""A deadline for a request's headers, which uvicorn does not have.

uvicorn closes an idle keep-alive connection, but a client that sends one header byte every few
seconds holds its connection (and a slot of the server) for as long as h11 accepts header bytes:
hours. The HTTP protocol class is subclassed so that a connection whose request has not started
within ``header_timeout_s`` — from the moment it opened, or from the end of the previous response
— is closed. The body has its own deadline in :class:`~maru.serve.gate.RequestGate`.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["protocol_with_header_deadline"]


def protocol_with_header_deadline(http: Any, header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ``http`` (a name such as ``"auto"``/``"h11"``, or a class) with the
    header deadline added."""
    base = _protocol_class(http)

    class HeaderDeadline(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def _arm_header_deadline(self) -> None:
            self.loop.call_later(header_timeout_s, self._header_deadline_passed, self.cycle)

        def _header_deadline_passed(self, cycle: Any) -> None:
            """Close the connection when no request started since the deadline was armed (the
            same cycle, finished or none) — never one whose request is being answered."""
            waiting = self.cycle is cycle and (cycle is None or cycle.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"{base.__name__}WithHeaderDeadline"
    return HeaderDeadline


def _protocol_class(http: Any) -> type[asyncio.Protocol]:
    if not isinstance(http, str):
        return http  # type: ignore[no-any-return]
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    cls: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS.get(http, http))
    return cls
