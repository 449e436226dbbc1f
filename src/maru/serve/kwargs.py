"""Which keyword arguments a request may pass to the served runnable's call.

None by default: a client could otherwise override, say, a model's parameters. The server names
the ones it accepts (``create_app(..., allowed_kwargs=[...])``, ``maru serve --kwarg NAME``); the
request models describe exactly those, and a request that sends any other is refused with 422.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import SkipJsonSchema

__all__ = ["RESERVED_KWARGS", "check_allowed_kwargs", "kwargs_field", "refuse_kwargs", "requested_kwargs"]

RESERVED_KWARGS = frozenset(
    {
        "self", "input", "inputs", "config", "return_exceptions", "max_concurrency",
        "include_names", "include_kinds", "include_tags",
    }
)


def check_allowed_kwargs(names: Iterable[str]) -> tuple[str, ...]:
    """The allow-list, checked: each name an identifier, none reserved, in the given order."""
    if isinstance(names, str):
        raise TypeError(f"allowed_kwargs takes a list of names, not the string {names!r}")
    allowed = tuple(dict.fromkeys(names))
    bad = [n for n in allowed if not isinstance(n, str) or not n.isidentifier() or n in RESERVED_KWARGS]
    if bad:
        raise ValueError(
            f"{bad} cannot be allowed as kwargs: names must be identifiers other than "
            f"{sorted(RESERVED_KWARGS)}"
        )
    return allowed


def kwargs_field(allowed: tuple[str, ...], types: Mapping[str, Any] | None = None) -> tuple[Any, Any]:
    """The request models' ``kwargs`` field: an object of the allowed names, each with its type
    from ``types`` (``Any`` when not known), so that FastAPI validates them and the OpenAPI
    document shows them. With nothing allowed it is left out of the document (a request that
    sends it still gets the 422 that says how to allow a keyword)."""
    if not allowed:
        return Annotated[dict[str, Any] | None, SkipJsonSchema()], None
    names = ", ".join(f"`{n}`" for n in allowed)
    return (
        _kwargs_model(allowed, types or {}) | None,
        Field(default=None, description=f"Keyword arguments for the call. This server accepts: {names}."),
    )


def _kwargs_model(allowed: tuple[str, ...], types: Mapping[str, Any]) -> type[BaseModel]:
    # Fields are named k0, k1 … with the keyword as alias, so that no keyword can collide with a
    # pydantic attribute (``json``, ``model_config`` …). Other keys are let through here and
    # refused by the route with the message that says how to allow one.
    config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})
    fields: dict[str, Any] = {
        f"k{i}": (types.get(name, Any), Field(default=None, alias=name)) for i, name in enumerate(allowed)
    }
    model: type[BaseModel] = create_model("CallKwargs", __config__=config, **fields)
    return model


def requested_kwargs(kwargs: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    """The keywords a request sent, by name, with their validated values (unsent ones left out)."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, BaseModel):
        return dict(kwargs)
    fields = type(kwargs).model_fields
    sent = {fields[name].alias or name: getattr(kwargs, name) for name in kwargs.model_fields_set if name in fields}
    return {**sent, **(kwargs.model_extra or {})}


def refuse_kwargs(refused: list[str], allowed: tuple[str, ...]) -> tuple[str, list[dict[str, Any]]]:
    """The 422 message and details for kwargs outside the allow-list."""
    reserved = [k for k in refused if k in RESERVED_KWARGS or not k.isidentifier()]
    others = [k for k in refused if k not in reserved]
    accepts = f"it accepts {list(allowed)}" if allowed else "it accepts none"
    parts = []
    if others:
        parts.append(
            f"kwargs {others} are not allowed by this server ({accepts}); to allow one, start it "
            "with `maru serve --kwarg NAME` or `create_app(..., allowed_kwargs=[NAME])`"
        )
    if reserved:
        parts.append(
            f"kwargs {reserved} can never be passed: keys must be identifiers other than "
            f"{sorted(RESERVED_KWARGS)} (put the input in 'input' and run options in 'config')"
        )
    details = [
        {
            "loc": ["body", "kwargs", k],
            "msg": "reserved or invalid keyword" if k in reserved else "keyword not allowed",
            "type": "value_error",
        }
        for k in refused
    ]
    return "; ".join(parts), details
