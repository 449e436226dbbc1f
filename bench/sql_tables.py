"""Table-selection recall on Spider dev: does the chosen set hold every table the gold query reads?

    .venv/bin/python bench/sql_tables.py [--k 3]

Every Spider dev question (1,034, over 20 schemas from ``tables.json``; no database needed) and
32 of them translated to Korean by hand (``bench/data/spider_dev_ko30.jsonl``) go through
``choose_tables`` with two selectors side by side: ``lexical`` (English word overlap with table
and column names, maru's old way) and ``meaning`` (multilingual-e5-small cards per table and per
column, the default). A question counts when the gold query's tables are all in the chosen set
(the top ``k`` plus their foreign-key targets). ``hard`` keeps only the questions whose schema has
more than ``k`` tables — the only ones where selection can miss. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIDER = ROOT.parent / "shared" / "data" / "spider_dev_partial"
KOREAN = ROOT / "bench" / "data" / "spider_dev_ko30.jsonl"
sys.path.insert(0, str(ROOT / "src"))

from maru.sql.tables import (  # noqa: E402
    LexicalTableSelector,
    MeaningTableSelector,
    Schema,
    TableSelector,
    choose_tables,
)


def load_schemas() -> dict[str, Schema]:
    """Spider's ``tables.json`` as maru schemas (original table and column names, FK targets)."""
    out = {}
    for entry in json.loads((SPIDER / "tables.json").read_text()):
        tables = entry["table_names_original"]
        columns: dict[str, list[str]] = {t: [] for t in tables}
        for table_index, name in entry["column_names_original"]:
            if table_index >= 0:
                columns[tables[table_index]].append(name)
        owner = [ti for ti, _ in entry["column_names_original"]]
        references: dict[str, list[str]] = {t: [] for t in tables}
        for source, target in entry["foreign_keys"]:
            references[tables[owner[source]]].append(tables[owner[target]])
        out[entry["db_id"]] = Schema(columns, references)
    return out


def gold_tables(sql: str, schema: Schema) -> set[str]:
    """The schema tables a gold query reads (sqlglot sees every table reference)."""
    import sqlglot
    from sqlglot import exp

    by_lower = {t.lower(): t for t in schema.tables}
    tree = sqlglot.parse_one(sql, read="sqlite")
    return {by_lower[t.name.lower()] for t in tree.find_all(exp.Table) if t.name.lower() in by_lower}


def questions() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    dev = json.loads((SPIDER / "dev.json").read_text())
    english = [{"db": q["db_id"], "question": q["question"], "sql": q["query"]} for q in dev]
    korean = []
    for line in KOREAN.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        source = dev[item["index"]]
        korean.append({"db": source["db_id"], "question": item["question"], "sql": source["query"]})
    return english, korean


def recall(
    items: list[dict[str, str]], schemas: dict[str, Schema], selector: TableSelector, k: int
) -> dict[str, float]:
    hits = hard = hard_hits = 0
    started = time.perf_counter()
    for item in items:
        schema = schemas[item["db"]]
        chosen = set(choose_tables(item["question"], schema, k, selector))
        hit = gold_tables(item["sql"], schema) <= chosen
        hits += hit
        if len(schema.tables) > k:
            hard += 1
            hard_hits += hit
    return {
        "n": len(items),
        "recall": round(hits / len(items), 3),
        "hard_n": hard,
        "hard_recall": round(hard_hits / hard, 3) if hard else 1.0,
        "ms_per_question": round(1000 * (time.perf_counter() - started) / len(items), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3, help="tables chosen before FK neighbours")
    args = parser.parse_args()
    schemas = load_schemas()
    english, korean = questions()
    selectors: dict[str, TableSelector] = {
        "lexical": LexicalTableSelector(),
        "meaning": MeaningTableSelector(),
    }
    report: dict[str, object] = {"k": args.k}
    for language, items in (("en", english), ("ko", korean)):
        for name, selector in selectors.items():
            row = recall(items, schemas, selector, args.k)
            report[f"{language}_{name}"] = row
            print(f"{language:2} {name:8} {json.dumps(row)}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
