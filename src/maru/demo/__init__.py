"""The programs of ``maru demo``, shipped in the package so that the tour runs from an installed
wheel, offline: a chat chain, the composition tour, cost/cache/traces, RAG over maru's README and
a two-process training run.

Each module is small and self-contained, one per section, and written like an example (absolute
``maru`` imports): the scripts in the repository's ``examples/`` import them and print their own
way. Nothing else in maru imports this package.
"""
