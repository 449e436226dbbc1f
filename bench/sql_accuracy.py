"""Execution accuracy of ``SQLQueryChain`` on the runnable Spider dev questions, with the local model.

    .venv/bin/python bench/sql_accuracy.py [--limit N] [--repairs N] [--unconstrained-limit N]

The 110 questions of Spider dev whose databases ship in ``../shared/data/spider_dev_partial``
(``flight_2`` and ``singer``) go through the chain with ``answer=False``: question → pruned schema →
model → validated, read-only SQL (with repair rounds) → rows. A question counts as correct when the
rows equal the gold query's rows (as a multiset; in order when the gold query orders them).
30 of the 110 gold queries return no rows (``flight_2``'s codes carry stray spaces), and any
query with no rows matches those; ``nonempty`` counts the correct answers among the other 80.

Rows of figures, side by side in one run:
- ``gold``: a scripted model that replies with the gold SQL, the plumbing ceiling (what the
  chain's schema pruning, validation, limits and execution let through when the model is right);
- ``local_constrained``: the bundled SmolLM2-135M-Instruct in process (``LlamaCppChat``), greedy
  decoding held to the chain's SELECT grammar of the picked tables (the chain's default for it);
- ``local_unconstrained``: the same model writing free text (``constrain=False``), on the first
  ``--unconstrained-limit`` questions (default: all).

A 135M model is not a SQL model; the point is an honest figure, and how much the repair rounds
recover (``repaired`` counts questions that needed one). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPIDER = ROOT.parent / "shared" / "data" / "spider_dev_partial"
RUNNABLE = ("flight_2", "singer")


def questions() -> list[dict[str, str]]:
    """(db, question, gold SQL) for every runnable question, in dev.json order."""
    dev = json.loads((SPIDER / "dev.json").read_text())
    return [
        {"db": item["db_id"], "question": item["question"], "gold": item["query"]}
        for item in dev
        if item["db_id"] in RUNNABLE
    ]


def db_path(name: str) -> Path:
    return SPIDER / "database" / name / f"{name}.sqlite"


def gold_rows(item: dict[str, str]) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db_path(item['db'])}?mode=ro", uri=True) as conn:
        return conn.execute(item["gold"]).fetchall()


def same_rows(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], ordered: bool) -> bool:
    return got == expected if ordered else Counter(got) == Counter(expected)


def run(
    model_for: Any, items: list[dict[str, str]], repairs: int, constrain: bool | None = None
) -> dict[str, Any]:
    """Ask every question; count correct, repaired, refused (no valid SQL) and the time."""
    from maru.sql import SQLDatabase, SQLQueryChain

    dbs = {name: SQLDatabase(f"sqlite:///{db_path(name)}") for name in RUNNABLE}
    correct = nonempty = repaired = refused = 0
    start = time.perf_counter()
    for item in items:
        chain = SQLQueryChain(
            model_for(item), dbs[item["db"]], answer=False, max_repairs=repairs, constrain=constrain
        )
        try:
            answer = chain.invoke(item["question"])
        except Exception:  # a refusal or a database error after the last repair
            refused += 1
            continue
        repaired += answer.repaired
        ordered = "order by" in item["gold"].lower()
        expected = gold_rows(item)
        right = same_rows(answer.result.rows, expected, ordered)
        correct += right
        nonempty += right and bool(expected)
    for db in dbs.values():
        db.close()
    seconds = time.perf_counter() - start
    return {
        "questions": len(items),
        "correct": correct,
        "accuracy": round(correct / len(items), 3),
        "nonempty": nonempty,
        "repaired": repaired,
        "no_valid_sql": refused,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--repairs", type=int, default=2, help="repair rounds per question")
    parser.add_argument("--unconstrained-limit", type=int, default=0,
                        help="only the first N questions for the unconstrained row (it is slow)")
    args = parser.parse_args()
    if not SPIDER.is_dir():
        print(f"sql_accuracy: {SPIDER} is missing; nothing to measure")
        return
    from maru.models import LlamaCppChat, ScriptedChatModel

    items = questions()[: args.limit or None]
    local = LlamaCppChat(max_tokens=160)
    figures = {
        "gold": run(lambda item: ScriptedChatModel([f"```sql\n{item['gold']}\n```"]), items, args.repairs),
        "local_constrained": run(lambda item: local, items, args.repairs, constrain=True),
        "local_unconstrained": run(
            lambda item: local, items[: args.unconstrained_limit or None], args.repairs, constrain=False
        ),
    }
    print(f"Spider dev, runnable questions ({len(items)}), execution accuracy:")
    for name, row in figures.items():
        print(f"  {name:20s} {row['correct']:4d}/{row['questions']} = {row['accuracy']:.3f}  "
              f"nonempty {row['nonempty']:3d}  repaired {row['repaired']:3d}  no valid SQL {row['no_valid_sql']:3d}  {row['seconds']:7.1f} s")
    print(json.dumps({"bench": "sql_accuracy", "model": local.model_name, **figures}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
