"""``/docs``, the interactive API page, served entirely by the app itself.

FastAPI's default page loads Swagger UI from a CDN; maru runs on machines with no internet, so the
assets come from the ``swagger-ui-bundle`` package (in the ``serve`` extra) instead. That package
ships Swagger UI 4, which reads OpenAPI 3.0 only, while FastAPI writes 3.1: the page therefore
loads ``/docs/openapi-3.0.json``, the same document rewritten in 3.0 terms (``/openapi.json``
stays the authoritative 3.1 document). Without the package, ``/docs`` is a short page that says
what to install — never a page that reaches out to the network.
"""

from __future__ import annotations

import copy
import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["add_docs", "openapi_30"]

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"
OPENAPI_30_URL = "/docs/openapi-3.0.json"


def add_docs(app: FastAPI) -> None:
    """Add ``GET /docs`` (and its assets) to ``app``, which must be built with ``docs_url=None``."""
    from fastapi import Request
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse, JSONResponse

    assets = swagger_assets()
    openapi_url = app.openapi_url or "/openapi.json"

    if assets is None:

        async def install_hint(request: Request) -> HTMLResponse:
            return HTMLResponse(fallback_page(app.title, _root(request) + openapi_url))

        app.add_route(DOCS_URL, install_hint, include_in_schema=False)
        return

    from starlette.staticfiles import StaticFiles

    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_30_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon-32x32.png",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def openapi_for_swagger_ui(request: Request) -> JSONResponse:
        return JSONResponse(openapi_30(app.openapi()))

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OPENAPI_30_URL, openapi_for_swagger_ui, include_in_schema=False)
    if redirect_url:

        async def oauth2_redirect(request: Request) -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

        app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.mount(STATIC_URL, StaticFiles(directory=str(assets)), name="swagger-ui")


def swagger_assets() -> Any:
    """The folder with Swagger UI's files, or ``None`` when ``swagger-ui-bundle`` is missing."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return swagger_ui_path


def fallback_page(title: str, openapi_url: str) -> str:
    """A self-contained page (no external URL) for when Swagger UI's files are not installed."""
    t, url = html.escape(title), html.escape(openapi_url, quote=True)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{t} - API docs</title></head>\n'
        '<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">\n'
        f"<h1>{t}</h1>\n"
        "<p>The interactive API docs need Swagger UI's files, which this server does not have. "
        'Install them with <code>pip install "maru[serve]"</code> and restart the server.</p>\n'
        f'<p>The OpenAPI document is at <a href="{url}">{url}</a>.</p>\n'
        "</body></html>\n"
    )


def _root(request: Any) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


# =============================================================================== OpenAPI 3.1 → 3.0
def openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (OpenAPI 3.1, as FastAPI writes it) in OpenAPI 3.0 terms, for Swagger UI 4.

    Covers what pydantic's schemas use: ``{"type": "null"}`` in ``anyOf``/``oneOf`` becomes
    ``nullable``, ``const`` an ``enum``, ``examples`` an ``example``, numeric
    ``exclusiveMinimum``/``exclusiveMaximum`` the boolean form, ``prefixItems`` an ``items``.
    """
    doc = copy.deepcopy(document)
    doc["openapi"] = "3.0.3"
    doc.pop("webhooks", None)
    doc.pop("jsonSchemaDialect", None)
    components = doc.get("components") or {}
    for name, schema in (components.get("schemas") or {}).items():
        components["schemas"][name] = _schema_30(schema)
    for path_item in (doc.get("paths") or {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                _operation_30(operation)
    return doc


def _operation_30(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters") or ():
        if isinstance(parameter, dict) and "schema" in parameter:
            parameter["schema"] = _schema_30(parameter["schema"])
    bodies = [operation.get("requestBody") or {}, *(operation.get("responses") or {}).values()]
    for body in bodies:
        for media in (body.get("content") or {}).values():
            if isinstance(media, dict) and "schema" in media:
                media["schema"] = _schema_30(media["schema"])


def _schema_30(schema: Any) -> Any:
    """A JSON Schema (2020-12, as pydantic writes it) in OpenAPI 3.0's dialect, recursively."""
    if not isinstance(schema, dict):
        return schema
    s = _children_30(dict(schema))
    _tuple_items_30(s)
    _types_30(s)
    _keywords_30(s)
    return _nullable_members_30(s)


def _children_30(s: dict[str, Any]) -> dict[str, Any]:
    for key in ("properties", "patternProperties"):
        if isinstance(s.get(key), dict):
            s[key] = {name: _schema_30(sub) for name, sub in s[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(s.get(key), dict):
            s[key] = _schema_30(s[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(s.get(key), list):
            s[key] = [_schema_30(sub) for sub in s[key]]
    return s


def _tuple_items_30(s: dict[str, Any]) -> None:
    if isinstance(s.get("prefixItems"), list):
        members = s.pop("prefixItems")
        s.setdefault("items", members[0] if len(members) == 1 else {"anyOf": members})


def _types_30(s: dict[str, Any]) -> None:
    """``type: [X, "null"]`` and ``type: "null"`` become ``nullable``; several types an anyOf."""
    if isinstance(s.get("type"), list):
        types = [t for t in s["type"] if t != "null"]
        if len(types) < len(s["type"]):
            s["nullable"] = True
        if len(types) == 1:
            s["type"] = types[0]
        else:
            del s["type"]
            if types:
                s["anyOf"] = [{"type": t} for t in types]
    if s.get("type") == "null":
        del s["type"]
        s["nullable"] = True


def _keywords_30(s: dict[str, Any]) -> None:
    """const → enum, examples → example, numeric exclusive bounds → boolean ones."""
    if "const" in s:
        s["enum"] = [s.pop("const")]
    if isinstance(s.get("examples"), list):
        examples = s.pop("examples")
        if examples:
            s.setdefault("example", examples[0])
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = s.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            s[bound], s[exclusive] = value, True


def _nullable_members_30(s: dict[str, Any]) -> dict[str, Any]:
    """An anyOf/oneOf with a null member: the member goes, ``nullable`` comes."""
    for key in ("anyOf", "oneOf"):
        members = s.get(key)
        if not isinstance(members, list):
            continue
        kept = [m for m in members if m != {"nullable": True}]
        if len(kept) == len(members):
            continue
        s["nullable"] = True
        del s[key]
        if len(kept) == 1:
            only = kept[0]
            if "$ref" in only:
                s["allOf"] = [only]  # a $ref cannot carry `nullable` beside it in 3.0
            else:
                s = {**only, **s}
        elif kept:
            s[key] = kept
    return s
