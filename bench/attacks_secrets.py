"""Secrets against the trace sinks: does any credential put into a traced call leave the process?

    .venv/bin/python bench/attacks_secrets.py

Each *kind* of secret (an OpenAI key, an AWS secret access key, a database URL with its password, a
bare JWT …) is generated fresh and fake for every attempt — realistic in shape, never a real one —
and placed where traced data goes: a run's input (as text, deep in a dict, across the 20,000-char
cut), its output, its metadata, a tag, its ``run_name`` and the message of the error it raises. One
tracer writes every trace to the SQLite run store, a JSONL file and OpenTelemetry (content
captured); the viewer's JSON API then serves the store. Logs are attacked apart: a sink that fails
quoting a secret, and a value whose conversion fails quoting one.

A secret *got through* a sink when any 8 characters in a row of its secret part appear in what the
sink holds (the store's raw file bytes, the JSONL text, the exported spans, the API's responses,
the log output). ``run()`` returns one row per kind × sink; ``__main__`` prints them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import random
import string
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALNUM = string.ascii_letters + string.digits
WINDOW = 8
"""A secret got through when this many characters in a row of it are found."""
MAX_VALUE_CHARS = 20_000
"""The tracer's default cut of a stored string: the ``cut`` placement straddles it."""


@dataclass(frozen=True)
class Secret:
    """A fake credential: ``text`` as it would appear, ``body`` its part that must never leave."""

    kind: str
    text: str
    body: str


def _chars(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _jwt(rng: random.Random) -> Secret:
    header = _b64url({"alg": "HS256", "typ": "JWT"})
    payload = _b64url({"sub": _chars(rng, 12), "exp": rng.randrange(1_700_000_000, 1_900_000_000)})
    signature = _chars(rng, 43, ALNUM + "-_")
    token = f"{header}.{payload}.{signature}"
    return Secret("jwt", token, signature)  # the payload starts alike in every token


def _pem(rng: random.Random) -> Secret:
    lines = [_chars(rng, 64, ALNUM + "+/") for _ in range(4)]
    body = "\n".join(lines)
    return Secret("private_key_pem", f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----", body)


def _simple(kind: str, make: Callable[[random.Random], tuple[str, str]]) -> Callable[[random.Random], Secret]:
    """A maker from ``rng -> (prefix, body)``: the secret's text is the prefix then the body."""

    def secret(rng: random.Random) -> Secret:
        prefix, body = make(rng)
        return Secret(kind, prefix + body, body)

    return secret


MAKERS: dict[str, Callable[[random.Random], Secret]] = {
    "openai_key": _simple("openai_key", lambda r: ("sk-proj-", _chars(r, 48, ALNUM + "-_"))),
    "anthropic_key": _simple("anthropic_key", lambda r: ("sk-ant-api03-", _chars(r, 86, ALNUM + "-_"))),
    "aws_access_key_id": _simple("aws_access_key_id", lambda r: ("AKIA", _chars(r, 16, string.ascii_uppercase + string.digits))),
    "aws_secret_access_key": _simple(
        "aws_secret_access_key", lambda r: ("aws_secret_access_key=", _chars(r, 40, ALNUM + "+/"))
    ),
    "url_password": _simple("url_password", lambda r: ("postgresql://svc:", _chars(r, 20))),
    "huggingface_token": _simple("huggingface_token", lambda r: ("hf_", _chars(r, 34))),
    "github_pat": _simple("github_pat", lambda r: ("github_pat_", _chars(r, 22) + "_" + _chars(r, 59))),
    "github_token": _simple("github_token", lambda r: ("ghp_", _chars(r, 36))),
    "gitlab_token": _simple("gitlab_token", lambda r: ("glpat-", _chars(r, 20, ALNUM + "-_"))),
    "stripe_live_key": _simple("stripe_live_key", lambda r: ("sk_live_", _chars(r, 24))),
    "google_api_key": _simple("google_api_key", lambda r: ("AIza", _chars(r, 35, ALNUM + "-_"))),
    "slack_bot_token": _simple(
        "slack_bot_token", lambda r: ("xoxb-", f"{_chars(r, 12, string.digits)}-{_chars(r, 24)}")
    ),
    "bearer_header": _simple("bearer_header", lambda r: ("Authorization: Bearer ", _chars(r, 40, ALNUM + "._-"))),
    "token_param": _simple("token_param", lambda r: ("https://api.example.com/v1/export?token=", _chars(r, 32))),
    "password_field": _simple("password_field", lambda r: ('"password": "', _chars(r, 16) + '"')),
    "jwt": _jwt,
    "private_key_pem": _pem,
}
"""How to make each kind of fake secret."""


def _placed(secret: Secret) -> str:
    """A URL password needs the rest of its URL around it."""
    return f"{secret.text}@db.internal:5432/app" if secret.kind == "url_password" else secret.text


# ------------------------------------------------------------------------------ placements
# Each placement runs one traced call that carries the secret in one place.


def _echo(value: Any) -> Any:
    return value


def _as_input(secret: Secret) -> None:
    _step("echo").invoke(f"please call the API with {_placed(secret)} today")


def _deep_in_a_dict(secret: Secret) -> None:
    _step("echo").invoke({"request": {"settings": [{"note": _placed(secret)}]}, "question": "why?"})


def _across_the_cut(secret: Secret) -> None:
    text = _placed(secret)
    _step("echo").invoke("x " * ((MAX_VALUE_CHARS - len(text) // 2) // 2) + text + " and more")


def _as_output(secret: Secret) -> None:
    from maru import runnable

    runnable(lambda _: f"the answer quotes {_placed(secret)}", name="answer").invoke("q")


def _in_metadata(secret: Secret) -> None:
    _step("echo").invoke("q", {"metadata": {"dsn": _placed(secret), "team": "ml"}})


def _in_a_tag(secret: Secret) -> None:
    _step("echo").invoke("q", {"tags": ["prod", _placed(secret)]})


def _as_run_name(secret: Secret) -> None:
    _step("echo").invoke("q", {"run_name": f"call {_placed(secret)}"})


def _in_an_error(secret: Secret) -> None:
    from maru import runnable

    def fail(_: Any) -> Any:
        raise ConnectionError(f"provider rejected {_placed(secret)}")

    with contextlib.suppress(ConnectionError):
        runnable(fail, name="fail").invoke("q")


def _step(name: str) -> Any:
    from maru import runnable

    return runnable(_echo, name=name)


PLACEMENTS: dict[str, Callable[[Secret], None]] = {
    "input": _as_input,
    "input_deep": _deep_in_a_dict,
    "input_across_cut": _across_the_cut,
    "output": _as_output,
    "metadata": _in_metadata,
    "tag": _in_a_tag,
    "run_name": _as_run_name,
    "error": _in_an_error,
}
"""Where a secret is put in a traced call."""


# ------------------------------------------------------------------------------ sinks
def _spans_text(exporter: Any) -> str:
    parts = []
    for span in exporter.get_finished_spans():
        parts.append(span.name)
        parts.append(json.dumps(dict(span.attributes or {}), default=str))
        parts.append(str(span.status.description))
        for event in span.events:
            parts.append(json.dumps(dict(event.attributes or {}), default=str))
    return "\n".join(parts)


def _viewer_text(store: Any) -> str:
    from fastapi.testclient import TestClient

    from maru.tracing.viewer import create_viewer_app

    client = TestClient(create_viewer_app(store))
    listing = client.get("/api/traces", params={"limit": 1000})
    parts = [listing.text]
    for trace in listing.json()["traces"]:
        parts.append(client.get(f"/api/traces/{trace['trace_id']}").text)
    return "\n".join(parts)


def _file_text(path: Path) -> str:
    """A file's bytes as text (and its WAL's): what anyone reading the file would find."""
    text = ""
    for part in (path, path.with_name(path.name + "-wal")):
        if part.exists():
            text += part.read_bytes().decode("latin-1")
    return text


def sink_texts(placed: list[tuple[str, Secret]]) -> dict[str, str]:
    """Run every placement of every secret through one tracer writing to the SQLite run store, a
    JSONL file and OpenTelemetry; what each sink (and the viewer's API) then holds, as text."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from maru.tracing import JSONLSink, OTelSink, RunStore, tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tempfile.TemporaryDirectory() as tmp:
        store_path, jsonl_path = Path(tmp) / "traces.sqlite", Path(tmp) / "runs.jsonl"
        store = RunStore(store_path)
        sinks = [store, JSONLSink(jsonl_path), OTelSink(provider, capture_content=True, max_content_chars=10**6)]
        with tracing(sinks):
            for placement, secret in placed:
                PLACEMENTS[placement](secret)
        texts = {"viewer_api": _viewer_text(store)}
        store.close()
        texts["sqlite"] = _file_text(store_path)
        texts["jsonl"] = jsonl_path.read_text(encoding="utf-8")
    texts["otel"] = _spans_text(exporter)
    return texts


LOG_PLACEMENTS = ("failing_sink", "failing_conversion")
"""How a secret is put in the tracer's logs: a sink that fails quoting it, a value whose conversion
fails quoting it (a ``__repr__`` that raises)."""


def log_text(placed: list[tuple[str, Secret]]) -> str:
    """The tracer's log output for these ``(log placement, secret)`` pairs."""
    from maru import runnable
    from maru.tracing import tracing

    class FailingSink:
        def __init__(self, secret: Secret) -> None:
            self.secret = secret

        def write(self, runs: list[Any]) -> None:
            raise RuntimeError(f"collector answered 401 to {_placed(self.secret)}")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    class Unprintable:
        def __init__(self, secret: Secret) -> None:
            self.secret = secret

        def __repr__(self) -> str:
            raise ValueError(f"cannot show {_placed(self.secret)}")

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("maru.tracing")
    logger.addHandler(handler)
    try:
        for placement, secret in placed:
            if placement == "failing_sink":
                with tracing([FailingSink(secret)]):
                    runnable(_echo, name="echo").invoke("q")
            else:
                with tracing([]):
                    runnable(_echo, name="echo").invoke(Unprintable(secret))
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


# ------------------------------------------------------------------------------ counting
def got_through(secret: Secret, text: str) -> bool:
    """Whether ``WINDOW`` characters in a row of the secret's body are in ``text``."""
    body = secret.body
    return any(body[i : i + WINDOW] in text for i in range(max(1, len(body) - WINDOW + 1)))


def cases(placements: Iterable[str], seed: int) -> list[tuple[str, Secret]]:
    """Every placement of a fresh fake secret of every kind: ``(placement, secret)``."""
    rng = random.Random(seed)
    return [(placement, make(rng)) for make in MAKERS.values() for placement in placements]


def attack(seed: int = 16) -> tuple[list[tuple[str, Secret]], list[tuple[str, Secret]], dict[str, str]]:
    """Run every attack: the ``(placement, secret)`` pairs traced, those logged, and what each sink
    (``sqlite``, ``jsonl``, ``otel``, ``viewer_api``, ``logs``) holds afterwards."""
    placed = cases(PLACEMENTS, seed)
    texts = sink_texts(placed)
    logged = cases(LOG_PLACEMENTS, seed + 1)
    texts["logs"] = log_text(logged)
    return placed, logged, texts


def run(seed: int = 16) -> list[dict[str, Any]]:
    """One row per secret kind × sink: ``family``, ``attempts``, ``refused``, ``got_through``."""
    return rows(*attack(seed))


def rows(
    placed: list[tuple[str, Secret]], logged: list[tuple[str, Secret]], texts: dict[str, str]
) -> list[dict[str, Any]]:
    """The counts of :func:`attack`'s results, one row per secret kind × sink."""
    rows = []
    for kind in MAKERS:
        for sink, text in texts.items():
            ofkind = [s for _, s in (logged if sink == "logs" else placed) if s.kind == kind]
            leaked = sum(got_through(s, text) for s in ofkind)
            rows.append(_row(f"secrets/{kind}/{sink}", len(ofkind), leaked))
    return rows


def _row(family: str, attempts: int, leaked: int) -> dict[str, Any]:
    return {"family": family, "attempts": attempts, "refused": attempts - leaked, "got_through": leaked}


def main() -> None:
    rows = run()
    width = max(len(r["family"]) for r in rows)
    for row in rows:
        print(f"{row['family']:<{width}}  attempts {row['attempts']:3d}  refused {row['refused']:3d}  "
              f"got through {row['got_through']:3d}")
    total = {k: sum(r[k] for r in rows) for k in ("attempts", "refused", "got_through")}
    print(f"all: {total['attempts']} attempts, {total['refused']} refused, {total['got_through']} got through")
    print(json.dumps(total))


if __name__ == "__main__":
    main()
