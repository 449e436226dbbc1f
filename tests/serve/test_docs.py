"""``/docs`` works with no internet: Swagger UI's page and every file it loads come from the server
itself, and without Swagger UI's package the page says what to install instead of reaching out."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from conftest import chromium
from maru.serve import create_app
from maru.serve.docs import openapi_30

from .conftest import live_server
from .serve_targets import travel_chain, typed_chain

LINK = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
SPEC_URL = re.compile(r"""\burl:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def docs_url() -> Iterator[str]:
    with live_server(create_app(typed_chain)) as url:
        yield url


def assert_offline_html(page: str, base: str) -> list[str]:
    """Every link of ``page`` stays on ``base``; returns the links, resolved."""
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered and "//cdn" not in lowered, page
    assert "cdn" not in lowered and "jsdelivr" not in lowered and "unpkg" not in lowered, page
    links = [urljoin(f"{base}/docs", link) for link in LINK.findall(page)]
    for link in links:
        assert urlsplit(link).netloc == urlsplit(base).netloc, link
    return links


def test_docs_page_and_its_assets_are_served_locally(client: httpx.Client, docs_url: str) -> None:
    r = client.get(f"{docs_url}/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    links = assert_offline_html(r.text, docs_url)
    assert len(links) >= 3  # the stylesheet, the favicon, the script
    wanted = {".js": ("javascript", 100_000), ".css": ("text/css", 10_000), ".png": ("image/png", 300)}
    for link in links:
        suffix = os.path.splitext(urlsplit(link).path)[1]
        kind, least = wanted[suffix]
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert kind in asset.headers["content-type"], (link, asset.headers["content-type"])
        assert len(asset.content) >= least, (link, len(asset.content))
    assert {os.path.splitext(link)[1] for link in links} == set(wanted)


def test_docs_page_loads_a_document_swagger_ui_4_can_read(client: httpx.Client, docs_url: str) -> None:
    page = client.get(f"{docs_url}/docs").text
    (spec,) = SPEC_URL.findall(page)
    r = client.get(urljoin(f"{docs_url}/docs", spec))
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    assert {"/invoke", "/batch", "/stream", "/stream_events", "/health"} <= set(doc["paths"])
    text = json.dumps(doc)
    assert '"type": "null"' not in text and '"const"' not in text and '"prefixItems"' not in text
    # The authoritative document is untouched.
    assert client.get(f"{docs_url}/openapi.json").json()["openapi"].startswith("3.1.")


def test_oauth2_redirect_is_local_and_redoc_is_off(client: httpx.Client, docs_url: str) -> None:
    r = client.get(f"{docs_url}/docs/oauth2-redirect")
    assert r.status_code == 200
    assert_offline_html(r.text, docs_url)
    assert client.get(f"{docs_url}/redoc").status_code == 404  # FastAPI's ReDoc page needs a CDN
    paths = client.get(f"{docs_url}/openapi.json").json()["paths"]
    assert not any(p.startswith("/docs") for p in paths)


def test_without_swagger_ui_the_page_says_what_to_install(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)  # `import` now raises ImportError
    with live_server(create_app(typed_chain, title="Typed <chain>")) as url:
        r = client.get(f"{url}/docs")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        links = assert_offline_html(r.text, url)
        assert links == [f"{url}/openapi.json"]
        assert 'pip install "maru[serve]"' in r.text
        assert "Typed &lt;chain&gt;" in r.text
        assert client.get(f"{url}/docs/static/swagger-ui.css").status_code == 404
        assert client.get(links[0]).status_code == 200


# ----------------------------------------------------------------------------- OpenAPI 3.1 → 3.0
def test_openapi_30_rewrites_what_swagger_ui_4_cannot_read() -> None:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/x": {
                "post": {
                    "parameters": [{"name": "q", "in": "query", "schema": {"type": ["integer", "null"]}}],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"const": 1}}}}},
                }
            }
        },
        "components": {
            "schemas": {
                "A": {
                    "type": "object",
                    "properties": {
                        "b": {"anyOf": [{"$ref": "#/components/schemas/B"}, {"type": "null"}], "default": None},
                        "s": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "S", "examples": ["hi"]},
                        "u": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                        "n": {"type": "number", "exclusiveMinimum": 0},
                        "t": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
                        "z": {"type": "null"},
                    },
                },
                "B": {"type": "string", "const": "b"},
            }
        },
    }
    out = openapi_30(doc)
    assert out["openapi"] == "3.0.3" and doc["openapi"] == "3.1.0"  # a copy; the input is untouched
    props = out["components"]["schemas"]["A"]["properties"]
    assert props["b"] == {"allOf": [{"$ref": "#/components/schemas/B"}], "nullable": True, "default": None}
    assert props["s"] == {"type": "string", "title": "S", "nullable": True, "example": "hi"}
    assert props["u"] == {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}
    assert props["n"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert props["t"] == {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}
    assert props["z"] == {"nullable": True}
    assert out["components"]["schemas"]["B"] == {"type": "string", "enum": ["b"]}
    post = out["paths"]["/x"]["post"]
    assert post["parameters"][0]["schema"] == {"type": "integer", "nullable": True}
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == {"enum": [1]}


def test_openapi_30_of_a_real_chain_has_no_31_left() -> None:
    doc = openapi_30(create_app(travel_chain(), allowed_kwargs=["temperature"]).openapi())
    text = json.dumps(doc)
    assert '"type": "null"' not in text and '"const"' not in text and '"examples": [' not in text


# ----------------------------------------------------------------------------- in a browser


@pytest.mark.integration
def test_swagger_ui_renders_offline_in_a_browser(docs_url: str) -> None:
    from playwright.sync_api import expect

    host = urlsplit(docs_url).netloc
    with chromium("the docs page's browser test") as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        blocked: list[str] = []
        problems: list[str] = []

        def only_this_server(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != host:
                blocked.append(url)
                route.abort()
            else:
                route.continue_()

        page.route("**/*", only_this_server)
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.set_default_timeout(15_000)

        page.goto(f"{docs_url}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("maru: Sequence")
        for path in ("/invoke", "/batch", "/stream", "/stream_events", "/health"):
            expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_be_visible()
        expect(page.locator(".swagger-ui")).not_to_contain_text("Unable to render this definition")

        # Open /invoke: the request body's example is built from the chain's input model.
        page.locator('.opblock-summary-path[data-path="/invoke"]').click()
        body = page.locator(".opblock.is-open .opblock-section-request-body")
        expect(body).to_contain_text('"repeat": 1')
        expect(body).not_to_contain_text('"kwargs"')  # none allowed: not advertised

        assert blocked == []
        assert problems == []
