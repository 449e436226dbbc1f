"""No secret leaves ``maru serve``: not in a 500's log (message, traceback, chained exceptions,
uvicorn's loggers), not in ``/stream_events`` (server-side config stays on the server unless it
opts in). The secrets here are generated fakes shaped like the real ones."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest

from maru import runnable
from maru.serve import create_app

from .conftest import asgi_request

OPENAI_KEY = "sk-proj-" + "Zq7" * 12
BEARER = "Bearer " + "tOk9" * 6
AWS_ID = "AKIA" + "QX7TZ3W9B2KD5MN8"
SECRETS = (OPENAI_KEY[8:], BEARER[7:], AWS_ID[4:])


class AuthenticationError(Exception):
    """Shaped like openai's: the provider echoes the key it was sent."""


@runnable
def calls_provider(text: str) -> str:
    try:
        raise AuthenticationError(f"Error code: 401 - Incorrect API key provided: {OPENAI_KEY}")
    except AuthenticationError as exc:
        raise RuntimeError(f"upstream said no (sent Authorization: {BEARER}, aws {AWS_ID})") from exc


class Unwritable:
    def to_dict(self) -> dict[str, Any]:
        raise ValueError(f"cannot encode; token {OPENAI_KEY}")


@runnable
def odd_output(text: str) -> Any:
    return Unwritable()


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def post(app: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return asgi_request(app, "POST", path, json=body)  # type: ignore[no-any-return]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


@pytest.mark.parametrize("path", ["/invoke", "/batch", "/stream", "/stream_events"])
def test_a_500_logs_no_secret_in_message_traceback_or_chained_cause(
    caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    body: dict[str, Any] = {"inputs": ["x"]} if path == "/batch" else {"input": "x"}
    r = post(create_app(calls_provider), path, body)
    assert r.status_code in (200, 500)
    text = logged(caplog)
    assert "Traceback" in text and "AuthenticationError" in text  # still useful to the operator
    assert_clean(text)
    assert_clean(r.text)


def test_a_failure_outside_the_runnable_is_a_json_500_and_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    r = post(create_app(odd_output), "/invoke", {"input": "x"})
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "internal_error" and r.headers["x-request-id"] in error["message"]
    text = logged(caplog)
    assert "Traceback" in text
    assert_clean(text)


def test_uvicorn_handlers_and_loggers_redact_after_installation() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        from maru.serve.logs import install_log_redaction

        install_log_redaction()
        try:
            calls_provider.invoke("x")
        except RuntimeError as exc:
            logger.error("Exception in ASGI application: %s", exc, exc_info=exc)
        logger.warning("GET /invoke?api_key=%s HTTP/1.1", OPENAI_KEY)  # access lines carry queries
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "GET /invoke?api_key=" in text
    assert_clean(text)


SERVER_CONFIG = {"api_key": OPENAI_KEY, "db": "postgresql://svc:pw-Zq7Zq7@db.internal/app"}


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    lines = response.text.splitlines()
    return [json.loads(line[6:]) for line in lines if line.startswith('data: {"event"')]


def test_stream_events_keep_server_side_metadata_and_tags_on_the_server() -> None:
    step = runnable(lambda s: s.upper()).with_config(metadata=SERVER_CONFIG, tags=["tenant-7"])
    body = {"input": f"my key is {OPENAI_KEY}", "config": {"metadata": {"user": "u1"}, "tags": ["web"]}}
    r = post(create_app(step), "/stream_events", body)
    events = events_of(r)
    assert events
    for event in events:
        assert set(event["metadata"]) == {"user", "request_id"}
        assert event["tags"] == ["web"]
    assert "svc:pw" not in r.text and "db.internal" not in r.text and "tenant-7" not in r.text
    assert_clean(r.text)  # the client's own input is masked too: events are logs that leave


def test_stream_events_show_server_metadata_when_the_server_opts_in_still_redacted() -> None:
    step = runnable(lambda s: s.upper()).with_config(metadata=SERVER_CONFIG, tags=["tenant-7"])
    app = create_app(step, expose_server_metadata=True)
    r = post(app, "/stream_events", {"input": "hi"})
    events = events_of(r)
    assert events and all("db" in e["metadata"] and "tenant-7" in e["tags"] for e in events)
    assert "pw-Zq7Zq7" not in r.text  # the URL's password is masked even when shown
    assert_clean(r.text)
