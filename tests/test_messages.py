import pytest

from maru.core import add_chunks
from maru.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    Usage,
    message_from_dict,
    messages_from_dicts,
    messages_to_dicts,
    to_message,
    to_messages,
)


def test_roles_and_text():
    assert [m.role for m in (SystemMessage("s"), HumanMessage("h"), AIMessage("a"), ToolMessage("t"))] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
    parts = HumanMessage([{"type": "text", "text": "look "}, {"type": "image_url", "image_url": {"url": "x"}},
                          {"type": "text", "text": "here"}])
    assert parts.text == "look here"


def test_round_trip_through_dicts():
    original = [
        SystemMessage("be brief", id="m0"),
        HumanMessage("weather?", name="kim"),
        AIMessage("", tool_calls=[ToolCall("weather", {"city": "Seoul"}, id="c1")], usage=Usage(10, 3, 2),
                  response_metadata={"model": "x"}),
        ToolMessage("sunny", tool_call_id="c1"),
        ToolMessage("no such city", tool_call_id="c2", status="error"),
        AIMessage("It is sunny."),
    ]
    data = messages_to_dicts(original)
    assert data[2]["tool_calls"] == [{"id": "c1", "name": "weather", "args": {"city": "Seoul"}}]
    assert data[2]["usage"] == {"input_tokens": 10, "output_tokens": 3, "cached_tokens": 2}
    assert messages_from_dicts(data) == original


def test_reads_openai_wire_tool_calls():
    msg = message_from_dict({
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}],
    })
    assert msg == AIMessage("", tool_calls=[ToolCall("add", {"a": 1}, id="c9")])


def test_unknown_role_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown message role 'robot'"):
        message_from_dict({"role": "robot", "content": "x"})
    with pytest.raises(ValueError, match="unknown message role"):
        to_message(("robot", "x"))
    with pytest.raises(TypeError, match="cannot make a chat message from int"):
        to_message(5)


def test_to_messages_accepts_what_users_write():
    assert to_messages("hi") == [HumanMessage("hi")]
    assert to_messages([("system", "s"), {"role": "user", "content": "u"}, AIMessage("a")]) == [
        SystemMessage("s"),
        HumanMessage("u"),
        AIMessage("a"),
    ]

    class Value:
        def to_messages(self):
            return [HumanMessage("from prompt")]

    assert to_messages(Value()) == [HumanMessage("from prompt")]
    with pytest.raises(TypeError, match="takes a string, messages or a prompt value"):
        to_messages(3.5)


def test_chunks_add_text_tool_calls_and_usage():
    chunks = [
        AIMessageChunk("Let me ", id="r1"),
        AIMessageChunk("check.", tool_call_chunks=[ToolCallChunk(0, "c1", "weather", '{"ci')]),
        AIMessageChunk("", tool_call_chunks=[ToolCallChunk(0, args='ty": "Busan"}'),
                                             ToolCallChunk(1, "c2", "time", "{}")]),
        AIMessageChunk("", usage=Usage(20, 7)),
    ]
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == "Let me check."
    assert total.id == "r1"
    assert total.usage == Usage(20, 7)
    message = total.to_message()
    assert message.tool_calls == [ToolCall("weather", {"city": "Busan"}, "c1"), ToolCall("time", {}, "c2")]
    assert chunks[1].tool_call_chunks[0].args == '{"ci'  # adding never mutates the operands


def test_chunks_gather_through_core_add():
    from maru.core.chunks import gather

    assert add_chunks(AIMessageChunk("a"), AIMessageChunk("b")).content == "ab"
    assert gather([AIMessageChunk("x"), AIMessageChunk("y", usage=Usage(1, 2))]).usage == Usage(1, 2)


def test_bad_streamed_tool_arguments_raise_with_the_text():
    broken = AIMessageChunk("", tool_call_chunks=[ToolCallChunk(0, "c", "f", '{"a": ')])
    with pytest.raises(ValueError, match="not valid JSON"):
        broken.to_message()


def test_usage_adds():
    assert Usage(1, 2, 0) + Usage(3, 4, 1) == Usage(4, 6, 1)
    assert Usage(1, 1).total_tokens == 2
    assert sum([Usage(1, 0), Usage(2, 0)], Usage()) == Usage(3, 0)
