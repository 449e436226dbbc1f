"""The SQLite saver's write path: how often its WAL is folded into the file, and the encoding every
superstep pays for."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from maru.graph import GraphCheckpointError, SQLiteSaver
from maru.graph.checkpoint import decode, encode, new_checkpoint
from maru.graph.sqlite import WAL_CHECKPOINT_PAGES, WAL_KEEP_BYTES
from maru.messages import AIMessage


def test_the_wal_is_folded_every_few_thousand_pages_not_every_thousand(tmp_path: Path) -> None:
    saver = SQLiteSaver(tmp_path / "t.sqlite")
    conn = saver._connections.get()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_PAGES > 1000
    assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == WAL_KEEP_BYTES
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_committed_step_is_in_the_file_for_another_connection_at_once(tmp_path: Path) -> None:
    saver = SQLiteSaver(tmp_path / "t.sqlite")
    saver.put("t", new_checkpoint(0, [("a", {"x": 1})], ("b",), {}, "loop"))
    other = sqlite3.connect(tmp_path / "t.sqlite")
    assert other.execute("SELECT thread_id, step FROM maru_graph_checkpoints").fetchall() == [("t", 0)]


def test_encoding_keeps_text_and_messages_and_refuses_a_cycle() -> None:
    writes: list[tuple[str, dict[str, Any] | None]] = [("a", {"text": "서울 — ok", "m": [AIMessage("hi", id="m1")], "n": 1.5})]
    cp = new_checkpoint(3, writes, ("b",), {"j": ["a"]}, "loop")
    body = encode(cp)
    assert "서울" in body and '"n":1.5' in body  # compact, not ASCII-escaped
    back = decode(3, body, cp.created_at)
    assert back.writes == writes and back.next == ("b",) and back.waiting == {"j": ["a"]}
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(GraphCheckpointError, match="cannot be stored in a checkpoint"):
        encode(new_checkpoint(4, [("a", looped)], (), {}, "loop"))
