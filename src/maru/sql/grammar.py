"""A GBNF grammar that admits only SELECT queries over one schema's tables and columns.

A 135M model asked for SQL mostly writes prose ("There are 12 singers in the dataset."), and a
loose grammar that only demands a leading ``SELECT`` gets "SELECT is a table with 1000 rows…".
Holding the decoder to the shape of a query *and* to the schema's own names leaves the model only
the choices that matter (which columns, which filter), which a small model makes far better than
it writes SQL from nothing. The grammar is text in llama.cpp's GBNF; nothing here imports
llama.cpp, so it is built and tested without a model.

The subset::

    SELECT [DISTINCT] * | item, … FROM table [JOIN table ON column = column]…
      [WHERE condition [AND|OR condition]…] [GROUP BY column, … [HAVING aggregate op number]]
      [ORDER BY key [ASC|DESC], …] [LIMIT n];

An item is a column (``name`` or ``table.name``) or ``count|avg|sum|min|max`` of ``*``, a column or
``DISTINCT`` column. A condition compares a column with a number, a quoted string or another
column, or is ``[NOT] LIKE``, ``[NOT] IN (values | SELECT column FROM table [WHERE …])`` or
``BETWEEN``. Every reply ends with ``;``, so decoding stops there. Identifiers are written the way
:meth:`SQLDatabase.describe <maru.sql.database.SQLDatabase.describe>` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .database import quote_identifier

__all__ = ["select_grammar"]

_COMMON = r"""
function ::= "count" | "avg" | "sum" | "min" | "max" | "COUNT" | "AVG" | "SUM" | "MIN" | "MAX"
compare ::= "=" | "!=" | "<" | "<=" | ">" | ">="
number ::= "-"? [0-9]{1,12} ("." [0-9]{1,6})?
string ::= "'" ([^'\n] | "''"){0,60} "'"
limit ::= " LIMIT " [1-9] [0-9]{0,3}
""".strip()

_SCOPE = r"""
query-{s} ::= "SELECT " ("DISTINCT ")? items-{s} " FROM " source-{s} where-{s}? group-{s}? order-{s}? limit? ";"
items-{s} ::= "*" | item-{s} (", " item-{s}){0,3}
item-{s} ::= aggregate-{s} | column-{s}
aggregate-{s} ::= function "(" ("*" | ("DISTINCT ")? column-{s}) ")"
where-{s} ::= " WHERE " condition-{s} ((" AND " | " OR ") condition-{s}){0,3}
condition-{s} ::= column-{s} (" " compare " " value-{s} | (" NOT")? " LIKE " string | (" NOT")? " IN (" in-list-{s} ")" | " BETWEEN " number " AND " number)
in-list-{s} ::= subquery | value-{s} (", " value-{s}){0,9}
value-{s} ::= number | string | column-{s}
group-{s} ::= " GROUP BY " column-{s} (", " column-{s}){0,2} (" HAVING " aggregate-{s} " " compare " " number)?
order-{s} ::= " ORDER BY " key-{s} (", " key-{s}){0,2}
key-{s} ::= (aggregate-{s} | column-{s}) (" ASC" | " DESC")?
""".strip()
"""The query shape within one scope: one table, or two joined, whose columns only it may name."""


def select_grammar(tables: Mapping[str, Sequence[str]]) -> str:
    """The GBNF grammar of :mod:`this module's <maru.sql.grammar>` SELECT subset over ``tables``
    (table name → its column names, e.g. from :meth:`SQLDatabase.columns
    <maru.sql.database.SQLDatabase.columns>`): only those tables, only their columns.

    A query over one table may name only that table's columns; a query that joins two tables
    only theirs, written ``table.column``. The model names its columns before it writes FROM, so
    every table and every pair is its own alternative, decoded side by side until the names tell
    them apart; that keeps "no such column" and "ambiguous column" out of what it can write."""
    if not tables or not all(tables.values()):
        raise ValueError("select_grammar needs at least one table, and every table needs a column")
    names = [quote_identifier(t) for t in tables]
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    scopes = [str(i) for i in range(len(names))] + [f"{a}-{b}" for a, b in pairs]
    rules = [_rule("root", [f"query-{s}" for s in scopes]), _COMMON]
    rules += [_SCOPE.replace("{s}", s) for s in scopes]
    for i, (table, cols) in enumerate(zip(names, tables.values(), strict=True)):
        rules += [
            _rule(f"name-{i}", [_literal(quote_identifier(c)) for c in cols]),
            _rule(f"qualified-{i}", [f"{_literal(table + '.')} name-{i}"]),
            _rule(f"column-{i}", [f"name-{i}", f"qualified-{i}"]),
            _rule(f"source-{i}", [_literal(table)]),
        ]
    for a, b in pairs:
        on = f'" ON " column-{a}-{b} " = " column-{a}-{b}'
        joins = [f"{names[a]} JOIN {names[b]}", f"{names[b]} JOIN {names[a]}"]
        rules += [
            _rule(f"column-{a}-{b}", [f"qualified-{a}", f"qualified-{b}"]),
            _rule(f"source-{a}-{b}", [f"{_literal(join)} {on}" for join in joins]),
        ]
    subqueries = [f'"SELECT " column-{i} " FROM " source-{i} where-{i}?' for i in range(len(names))]
    rules.append(_rule("subquery", subqueries))
    return "\n".join(rules) + "\n"


def _rule(name: str, alternatives: Sequence[str]) -> str:
    return f"{name} ::= " + " | ".join(alternatives)


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
