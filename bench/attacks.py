"""Re-run every attack family against maru and count: attempts, refused, got through.

    .venv/bin/python bench/attacks.py [--pg URL]

Three families of families, each in its own script so it can run alone:
- ``bench/attacks_secrets.py``: realistic fake secrets through every sink (trace store, JSONL,
  OpenTelemetry, the viewer's API, logs), before and after the truncation limit;
- ``bench/attacks_net.py``: the network guard (private, loopback and link-local targets, redirect
  chains, header and body drips, port scope) and ``maru serve`` (secrets in 500s, server metadata in
  events, bad UTF-8, deep JSON, slow bodies);
- ``bench/attacks_sql.py``: writes, multi-statements, PRAGMA writes, ATTACH/VACUUM INTO, resource
  bombs and deep expressions on SQLite; forbidden functions and session leftovers on PostgreSQL
  when ``--pg`` names a reachable server.

Everything runs on loopback, bounded in count and time. A row with ``got_through > 0`` is a
finding; the exit status is 1 when any row has one. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

FAMILIES = ("attacks_secrets", "attacks_net", "attacks_sql")


def run_family(module_name: str, pg_url: str | None) -> list[dict[str, Any]]:
    module = importlib.import_module(module_name)
    if module_name == "attacks_sql" and pg_url:
        return list(module.run(pg_url))
    return list(module.run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="a PostgreSQL URL for the PostgreSQL families")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name in FAMILIES:
        for row in run_family(name, args.pg):
            rows.append({"script": name, **row})
            print(f"{row['family']:<48} attempts {row['attempts']:>4}  refused {row['refused']:>4}  "
                  f"got through {row['got_through']:>3}")
    totals = {key: sum(r[key] for r in rows) for key in ("attempts", "refused", "got_through")}
    print(f"{'total':<48} attempts {totals['attempts']:>4}  refused {totals['refused']:>4}  "
          f"got through {totals['got_through']:>3}")
    print(json.dumps({"families": rows, "total": totals}))
    return 1 if totals["got_through"] else 0


if __name__ == "__main__":
    sys.exit(main())
