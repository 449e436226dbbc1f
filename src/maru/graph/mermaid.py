"""A graph as a Mermaid flowchart, to paste into Markdown or a Mermaid viewer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .builder import END, START

if TYPE_CHECKING:
    from .builder import Spec


def to_mermaid(spec: Spec) -> str:
    """Nodes as boxes, START and END as rounded ends, edges solid, conditional edges dotted (with
    the router's answer as the label when a path map names it), joins drawn from every source."""
    lines = ["flowchart TD"]
    lines.append(f"    {_id(START)}([start])")
    lines.extend(f"    {_id(name)}[{_label(name)}]" for name in spec.nodes)
    lines.append(f"    {_id(END)}([end])")
    for source, targets in spec.edges.items():
        lines.extend(f"    {_id(source)} --> {_id(t)}" for t in targets)
    for sources, target in spec.joins:
        lines.append(f"    {' & '.join(_id(s) for s in sources)} --> {_id(target)}")
    for source, branches in spec.branches.items():
        for branch in branches:
            if branch.path_map is None:
                lines.append(f"    {_id(source)} -.-> {_id(END)}")
                lines.extend(f"    {_id(source)} -.-> {_id(n)}" for n in spec.nodes)
                continue
            for answer, target in branch.path_map.items():
                label = "" if answer == target else f"|{_label(str(answer))}|"
                lines.append(f"    {_id(source)} -.->{label} {_id(target)}")
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    """A Mermaid-safe node id (names may hold spaces or punctuation)."""
    return "n_" + "".join(c if c.isalnum() or c == "_" else f"_{ord(c):x}_" for c in name)


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'
