"""JSONLSink and read_jsonl: one run per line, threads and processes appending, crash leftovers."""

from __future__ import annotations

import json
import multiprocessing
import threading
import warnings
from pathlib import Path

import pytest

from maru.tracing.jsonl import JSONLSink, read_jsonl
from maru.tracing.sinks import RunSink

from .traces import make_trace

T0 = 1_764_000_000.0


def test_each_run_is_one_line_and_reads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "runs.jsonl"  # the folder is created
    first, second = make_trace("a", start=T0), make_trace("b", start=T0 + 1, error="ValueError: no")
    with JSONLSink(path) as sink:
        assert isinstance(sink, RunSink)
        sink.write(first)
        # Written through to the file at once: nothing waits in a buffer.
        assert len(path.read_text(encoding="utf-8").splitlines()) == len(first)
        sink.write(second)
        sink.write([])
        sink.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(first) + len(second)
    assert json.loads(lines[0])["inputs"] == {"question": "서울 날씨는?"}  # UTF-8, not \u escapes
    assert "서울" in lines[0]
    assert list(read_jsonl(path)) == first + second


def test_writing_after_close_is_an_error(tmp_path: Path) -> None:
    sink = JSONLSink(tmp_path / "r.jsonl")
    sink.close()
    sink.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        sink.write(make_trace("a", start=T0))


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLSink(path) as sink:
        sink.write(make_trace("a", start=T0))
    whole = path.read_bytes()
    path.write_bytes(whole[:-40])  # a crash in the middle of the last line
    with pytest.warns(RuntimeWarning, match="last line is cut short"):
        runs = list(read_jsonl(path))
    assert [r.id for r in runs] == [r.id for r in make_trace("a", start=T0)][:-1]


def test_a_new_sink_ends_a_partial_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLSink(path) as sink:
        sink.write(make_trace("a", start=T0))
    path.write_bytes(path.read_bytes()[:-25])  # the previous process died mid-line
    with JSONLSink(path) as sink:
        sink.write(make_trace("b", start=T0 + 1))
    with pytest.warns(RuntimeWarning, match=r"line 5 is not a run"):
        runs = list(read_jsonl(path))
    # The broken root run of "a" is lost; every run of "b" survives, none glued to the broken line.
    assert [r.id for r in runs] == ["a-2", "a-3", "a-5", "a-4"] + [r.id for r in make_trace("b", start=T0 + 1)]


def test_blank_lines_and_a_clean_file_give_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with JSONLSink(path) as sink:
        sink.write(make_trace("a", start=T0))
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(read_jsonl(path))) == 5


def test_threads_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sink = JSONLSink(path)
    big = "x" * 20_000  # lines longer than any buffer

    def worker(n: int) -> None:
        for i in range(25):
            runs = make_trace(f"t{n}-{i}", start=T0)
            runs[0].inputs = big
            sink.write(runs)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = list(read_jsonl(path))
    assert len(runs) == 8 * 25 * 5
    # Each trace's runs are contiguous: one write per trace.
    traces = [r.trace_id for r in runs]
    assert all(traces[i] == traces[i - i % 5] for i in range(len(traces)))


def _append(path: str, n: int) -> None:
    with JSONLSink(path) as sink:
        for i in range(40):
            sink.write(make_trace(f"p{n}-{i}", start=T0))


def test_processes_append_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(path), n)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = list(read_jsonl(path))
    assert len({r.trace_id for r in runs}) == 120
    assert len(runs) == 600
