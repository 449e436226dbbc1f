"""The ``maru`` command: version, run, chat configuration and the REPL, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maru import __version__, cli
from maru.cli import chat as cli_chat
from maru.cli import demo as cli_demo
from maru.core import Runnable
from maru.messages import AIMessageChunk, BaseMessage

HERE = Path(__file__).resolve().parent
NO_MODEL_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL")

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real endpoint leaks in from the developer's shell; cli_fixtures is importable."""
    for name in NO_MODEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(HERE))


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(cli.app, list(args), input=input)


# ----------------------------------------------------------------------------- version, help
def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"maru {__version__}"


def test_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("demo", "chat", "run"):
        assert command in result.output


def test_import_is_light() -> None:
    code = (
        "import sys, maru.cli; "
        "print(sorted(m for m in ('openai', 'maru.models', 'maru.prompts', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- maru run
def test_run_plain_function_prints_json() -> None:
    result = invoke("run", "cli_fixtures:shout", "--input", '"hello"')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == "HELLO!"


def test_run_raw_prints_string_unquoted() -> None:
    result = invoke("run", "cli_fixtures:shout", "--input", '"hello"', "--raw")
    assert result.stdout == "HELLO!\n"


def test_run_chain_with_dict_input() -> None:
    result = invoke("run", "cli_fixtures:chain", "--input", '{"text": "one two three four"}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"words": 4, "long": True}


def test_run_message_output_uses_to_dict() -> None:
    result = invoke("run", "cli_fixtures:reply", "--input", '"hi"')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"role": "assistant", "content": "you said hi"}


def test_run_nested_non_json_values_are_converted() -> None:
    result = invoke("run", "cli_fixtures:structured", "--input", "null")
    assert json.loads(result.stdout) == {"tags": ["a"], "message": {"role": "assistant", "content": "hi"}}


def test_run_stream_text_chunks() -> None:
    result = invoke("run", "cli_fixtures:spell", "--input", '"hey"', "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hey\n"


def test_run_stream_message_chunks_write_their_text() -> None:
    result = invoke("run", "cli_fixtures:stream_message", "--input", '"big blue sky"', "--stream")
    assert result.stdout == "big blue sky \n"


def test_run_stream_dict_chunks_as_json_lines() -> None:
    result = invoke("run", "cli_fixtures:chain", "--input", '{"text": "a b"}', "--stream")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    merged = {k: v for chunk in lines for k, v in chunk.items()}
    assert merged == {"words": 2, "long": False}
    assert len(lines) == 2  # assign streams the input first, then the new key


def test_run_input_from_file(tmp_path: Path) -> None:
    data = tmp_path / "in.json"
    data.write_text('{"text": "x y z w v"}', encoding="utf-8")
    result = invoke("run", "cli_fixtures:chain", "--input", f"@{data}")
    assert json.loads(result.stdout) == {"words": 5, "long": True}


def test_run_input_from_stdin() -> None:
    result = invoke("run", "cli_fixtures:shout", "--input", "-", input='"piped"')
    assert json.loads(result.stdout) == "PIPED!"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("cli_fixtures", "expected module:object"),
        (":shout", "expected module:object"),
        ("no_such_module_xyz:thing", "cannot import module 'no_such_module_xyz'"),
        ("cli_fixtures:missing", "has no attribute 'missing'"),
        ("cli_fixtures:not_callable", "not a runnable or a callable"),
        ("maru.core:Runnable", "point at an instance"),
    ],
)
def test_run_bad_target_exits_2(target: str, message: str) -> None:
    result = invoke("run", target, "--input", "1")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_run_bad_json_exits_2() -> None:
    result = invoke("run", "cli_fixtures:shout", "--input", "{not json")
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.output


def test_run_unquoted_string_is_bad_json_with_a_hint() -> None:
    result = invoke("run", "cli_fixtures:shout", "--input", "hello")
    assert result.exit_code == 2
    assert "--input '\"hello\"'" in result.stderr


def test_run_missing_input_file_exits_2(tmp_path: Path) -> None:
    result = invoke("run", "cli_fixtures:shout", "--input", f"@{tmp_path / 'nope.json'}")
    assert result.exit_code == 2
    assert "cannot read input file" in result.stderr


def test_run_step_error_propagates_with_exit_1() -> None:
    result = invoke("run", "cli_fixtures:broken", "--input", "1")
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_run_as_a_real_process() -> None:
    """The installed console script, end to end."""
    proc = subprocess.run(
        [sys.executable, "-m", "maru.cli", "run", "cli_fixtures:shout", "--input", '"ok"'],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=_env_without_model(),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == "OK!"


# ----------------------------------------------------------------------------- maru chat
def test_chat_without_configuration_uses_the_local_model() -> None:
    result = invoke("chat", input="/exit\n")
    assert result.exit_code == 0, result.output
    assert "model: SmolLM2-135M-Instruct" in result.stderr
    assert "(local, in process with llama.cpp)" in result.stderr


@pytest.mark.real_model
def test_chat_without_configuration_answers_in_a_real_process() -> None:
    """A newcomer's first `maru chat`: no key, no server, a real model answers."""
    proc = subprocess.run(
        [sys.executable, "-m", "maru.cli", "chat"],
        input="Say hello.\n/exit\n",
        capture_output=True,
        text=True,
        env=_env_without_model(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "model: SmolLM2-135M-Instruct" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.strip()  # whatever it said, it said something


def test_chat_help_for_a_bad_endpoint_lists_the_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import maru.models.openai
    from maru.errors import ConfigurationError

    def refuse(**kwargs: Any) -> None:
        raise ConfigurationError("no model name: pass --model")

    monkeypatch.setattr(maru.models.openai, "OpenAIChat", refuse)
    result = invoke("chat", "--base-url", "http://localhost:11434/v1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    for needed in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MARU_MODEL", "--base-url", "--model", "MARU_LOCAL_MODEL"):
        assert needed in result.stderr
    for provider in ("Gemini", "Ollama", "vLLM", "llama.cpp", "generativelanguage.googleapis.com"):
        assert provider in result.stderr


class EchoChat(Runnable[Any, Any]):
    """A chat model double that streams back how many messages it was given and the last one."""

    kind = "chat_model"

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def _stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        self.calls.append(list(input))
        yield AIMessageChunk(content=f"[{len(input)} msgs] ")
        yield AIMessageChunk(content=f"echo: {input[-1].text}")


def test_chat_repl_streams_and_keeps_history(monkeypatch: pytest.MonkeyPatch) -> None:
    model = EchoChat()
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda model_name, base_url: model)
    result = invoke("chat", "--system", "be brief", input="hello\n\nsecond\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "[2 msgs] echo: hello" in result.stdout
    assert "[4 msgs] echo: second" in result.stdout
    second = model.calls[1]
    assert [m.type for m in second] == ["system", "human", "ai", "human"]
    assert second[0].text == "be brief"
    assert second[2].text == "[2 msgs] echo: hello"  # the assistant's earlier reply, gathered


def test_chat_repl_reset_and_eof(monkeypatch: pytest.MonkeyPatch) -> None:
    model = EchoChat()
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda model_name, base_url: model)
    result = invoke("chat", input="one\n/reset\ntwo\n")  # ends with EOF, not /exit
    assert result.exit_code == 0, result.output
    assert [len(call) for call in model.calls] == [1, 1]


def test_chat_repl_survives_a_failed_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    class Flaky(EchoChat):
        def _stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
            if not self.calls:
                self.calls.append([])
                raise ConnectionError("endpoint unreachable")
            yield from super()._stream(input, config, **kwargs)

    model = Flaky()
    monkeypatch.setattr(cli_chat, "make_chat_model", lambda model_name, base_url: model)
    result = invoke("chat", input="first\nsecond\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "ConnectionError: endpoint unreachable" in result.output
    assert "[1 msgs] echo: second" in result.stdout  # the failed turn was not kept in history


def test_chat_builds_openai_model_from_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    import maru.models.openai

    seen: dict[str, Any] = {}

    def fake_openai_chat(**kwargs: Any) -> EchoChat:
        seen.update(kwargs)
        return EchoChat()

    monkeypatch.setattr(maru.models.openai, "OpenAIChat", fake_openai_chat)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("MARU_MODEL", "env-model")
    result = invoke("chat", "--base-url", "http://localhost:11434/v1", input="/exit\n")
    assert result.exit_code == 0, result.output
    assert seen == {"model": "env-model", "base_url": "http://localhost:11434/v1"}  # the key: from the env


def test_chat_local_base_url_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import maru.models.openai

    seen: dict[str, Any] = {}
    monkeypatch.setattr(maru.models.openai, "OpenAIChat", lambda **kw: seen.update(kw) or EchoChat())
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    result = invoke("chat", "--model", "flag-model", input="")
    assert result.exit_code == 0, result.output
    assert seen == {"model": "flag-model", "base_url": "http://localhost:8000/v1"}


# ----------------------------------------------------------------------------- maru demo
# Runs `maru demo` and records every file opened under the checkout's examples/ folder.
DEMO_AUDITED = """
import sys
examples, opened = sys.argv[1], []
sys.addaudithook(lambda event, args: event == "open" and str(args[0]).startswith(examples) and opened.append(args[0]))
sys.argv = ["maru", "demo"]
from maru.cli import main
try:
    main()
finally:
    print(f"examples opened: {opened}", file=sys.stderr)
"""


@pytest.mark.real_model
@pytest.mark.timeout(300)  # ~65 s alone; a loaded 2-core machine has taken over 120 s
def test_demo_runs_offline_with_the_local_model(tmp_path: Path) -> None:
    """As from an installed wheel: run outside the checkout, without reading examples/; the chat,
    extraction and RAG sections answer with the real local model, and the output says which."""
    examples = str(HERE.parent / "examples")
    env = {k: v for k, v in _env_without_model().items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", DEMO_AUDITED, examples],
        capture_output=True, text=True, cwd=tmp_path, env={**env, "COLUMNS": "120"},
        stdin=subprocess.DEVNULL, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "examples opened: []" in proc.stderr
    out = proc.stdout
    assert "model: SmolLM2-135M-Instruct" in out and "(local, in process with llama.cpp)" in out
    assert "Trip (validated): Trip(city=" in out  # the structured extraction parsed and validated
    assert "(written by SmolLM2-135M-Instruct" in out or "(not found)" in out  # RAG: generative
    flat = " ".join(out.replace("│", " ").split())  # the notice panel wraps its lines
    assert "ScriptedChatModel, a scripted test double" in flat  # said where it is used
    assert "maru chat" in out  # how to reach a larger model
    assert "Traceback" not in proc.stderr
    assert "Demo complete" in out
    assert "section failed" not in out
    for section in cli_demo.DEMO_SECTIONS:
        assert section.title in out


def test_demo_section_selection() -> None:
    result = invoke("demo", "--section", "2")
    assert result.exit_code == 0, result.output
    assert cli_demo.DEMO_SECTIONS[1].title in result.stdout
    assert cli_demo.DEMO_SECTIONS[0].title not in result.stdout
    bad = invoke("demo", "--section", "99")
    assert bad.exit_code == 2


def test_demo_reports_a_failing_section(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(console: Any) -> None:
        raise ValueError("broken on purpose")

    monkeypatch.setattr(cli_demo, "DEMO_SECTIONS", [cli_demo.DemoSection("Broken", "a failing section", boom)])
    result = invoke("demo")
    assert result.exit_code == 1
    assert "ValueError: broken on purpose" in result.stdout


def _env_without_model() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in NO_MODEL_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    return env
