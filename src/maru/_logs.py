"""Every log record a maru logger writes is masked, whoever configured the handlers.

Why: a listener, a tracer or a worker that fails logs its exception, and an exception often
carries a credential (a provider echoes the key it was sent). A filter on the ``maru`` logger
would not see records of ``maru.core.events`` (filters apply on the logger a record starts from),
and the handlers belong to the application. A record factory sees every record when it is made,
so records named ``maru`` or ``maru.*`` are masked there (:func:`maru.redact.redact_record`);
other records pass untouched. :mod:`maru.redact` is imported at the first maru record, so
``import maru`` pays nothing for it.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["mask_maru_records"]

_installed = False


def mask_maru_records() -> None:
    """Wrap the current log record factory once (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(name: str, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(name, *args, **kwargs)
        if name == "maru" or name.startswith("maru."):
            from .redact import redact_record

            redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
