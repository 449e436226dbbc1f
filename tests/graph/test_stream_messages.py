"""stream_mode="messages": the chat-model output of the nodes while they run."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any, TypedDict

from maru.graph import START, StateGraph, add_messages
from maru.messages import AIMessage, AIMessageChunk
from maru.models import ScriptedChatModel


class Chat(TypedDict, total=False):
    messages: Annotated[list, add_messages]


def two_nodes(model: ScriptedChatModel, first_token: threading.Event | None = None) -> Any:
    """``streamer`` streams the model (and waits for the reader to see its first token); ``caller``
    invokes it."""
    def streamer(state: Chat) -> dict[str, Any]:
        text = ""
        for chunk in model.stream(state["messages"]):
            text += chunk.text
            if first_token is not None and text and not first_token.wait(5):
                raise AssertionError("the reader saw no token while the node was running")
        return {"messages": [AIMessage(text)]}

    def caller(state: Chat) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(Chat)
    graph.add_node("streamer", streamer).add_node("caller", caller)
    graph.add_edge(START, "streamer").add_edge("streamer", "caller")
    return graph.compile()


def test_tokens_arrive_while_the_node_runs_and_invoked_models_give_their_message() -> None:
    first = threading.Event()
    app = two_nodes(ScriptedChatModel(["one two three", "whole reply"]), first)
    seen: list[tuple[Any, dict[str, Any]]] = []
    for chunk, meta in app.stream({"messages": "hi"}, stream_mode="messages"):
        seen.append((chunk, meta))
        first.set()
    streamed = [c for c, m in seen if m["langgraph_node"] == "streamer"]
    assert all(isinstance(c, AIMessageChunk) for c in streamed) and len(streamed) >= 3
    assert "".join(c.text for c in streamed) == "one two three"
    [(whole, meta)] = [(c, m) for c, m in seen if m["langgraph_node"] == "caller"]
    assert whole.text == "whole reply"


def test_messages_mix_with_other_modes_in_the_order_they_happen() -> None:
    app = two_nodes(ScriptedChatModel(["a b", "c"]))
    kinds = [mode if mode != "updates" else f"updates:{next(iter(chunk))}"
             for mode, chunk in app.stream({"messages": "hi"}, stream_mode=["updates", "messages"])]
    assert kinds[-1] == "updates:caller" and kinds.index("updates:streamer") < len(kinds) - 2
    assert kinds[: kinds.index("updates:streamer")] == ["messages"] * kinds.index("updates:streamer")


def test_async_messages_stream_and_errors_reach_the_reader() -> None:
    app = two_nodes(ScriptedChatModel(["x y", ValueError("model down")]))

    async def read() -> list[Any]:
        out = []
        try:
            async for _chunk, meta in app.astream({"messages": "hi"}, stream_mode="messages"):
                out.append(meta["langgraph_node"])
        except ValueError as exc:
            out.append(str(exc))
        return out

    seen = asyncio.run(read())
    assert seen[0] == "streamer" and seen[-1] == "model down"


def test_a_traced_graph_streams_messages_too_and_its_nodes_stay_its_children() -> None:
    from maru.core import listen

    app = two_nodes(ScriptedChatModel(["p q", "r"]))
    events: list[Any] = []
    with listen(events.append):
        nodes = [meta["langgraph_node"] for _, meta in app.stream({"messages": "hi"}, stream_mode="messages")]
    assert nodes[0] == "streamer" and nodes[-1] == "caller"
    starts = {e.name: e for e in events if e["event"] == "on_chain_start"}
    graph_run = starts["StateGraph"].run_id
    assert starts["step 1"].parent_id == starts["step 2"].parent_id == graph_run  # supersteps under the graph
    assert (starts["streamer"].parent_id, starts["caller"].parent_id) == (starts["step 1"].run_id, starts["step 2"].run_id)
