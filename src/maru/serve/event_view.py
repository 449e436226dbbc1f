"""What a client sees of the run events of its own call.

Run events carry the merged config of every step, and a server configures its steps too: a
``with_config(metadata={"api_key": ..., "db": "postgresql://svc:pw@..."})`` or a tenant tag would
reach any client of ``/stream_events``. So by default an event shows only the tags and metadata the
request itself sent (plus its ``request_id``); a server that wants its own shown opts in
(``create_app(expose_server_metadata=True)``, ``maru serve --expose-server-metadata``). Either way
the event is masked like a trace before it leaves (:mod:`maru.redact`): events are logs that leave
the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..redact import default_redactor
from .encoding import event_to_dict, to_json_safe

__all__ = ["EventView"]


@dataclass(frozen=True, slots=True)
class EventView:
    """Turns a run event into the JSON object one client may see."""

    tags: tuple[str, ...]
    metadata: Mapping[str, Any]
    expose_server_metadata: bool = False

    @classmethod
    def of_call(cls, config: Mapping[str, Any], expose_server_metadata: bool) -> EventView:
        """The view for a call run with ``config`` (the request's tags and metadata)."""
        tags: Sequence[str] = config.get("tags") or ()
        return cls(tuple(tags), dict(config.get("metadata") or {}), expose_server_metadata)

    def __call__(self, event: Any) -> dict[str, Any]:
        out = event_to_dict(event)
        if not self.expose_server_metadata:
            out["tags"] = [t for t in out.get("tags") or () if t in self.tags]
            out["metadata"] = to_json_safe(self.metadata)
        masked: dict[str, Any] = default_redactor(out)
        return masked
