"""Per-call configuration passed down a chain.

A config is a plain dict (or ``None``, the common case). Nothing on the hot path copies or merges it:
composites hand their config to their children unchanged, and only wrappers that add something
(``with_config``) build a new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict


class RunConfig(TypedDict, total=False):
    """Options for one call. Every key is optional.

    - ``run_name``: the name this call's run carries in events and traces (not inherited by children).
    - ``tags`` / ``metadata``: attached to this run and every run below it.
    - ``max_concurrency``: the most items ``batch``/``abatch`` run at once (inherited).
    - ``configurable``: free-form values for steps that read them.
    """

    run_name: str
    tags: list[str]
    metadata: dict[str, Any]
    max_concurrency: int
    configurable: dict[str, Any]


CONFIG_KEYS = frozenset(RunConfig.__annotations__)


def validate_config(config: Mapping[str, Any]) -> None:
    """Reject unknown keys early: a typo like ``max_concurency`` would otherwise be silently ignored."""
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        raise TypeError(
            f"unknown config key(s) {sorted(unknown)}; valid keys are {sorted(CONFIG_KEYS)}"
        )


def merge_configs(base: RunConfig | None, extra: RunConfig | None) -> RunConfig | None:
    """Combine two configs: ``extra`` wins for scalars, tags are concatenated, metadata merged."""
    if not extra:
        return base
    if not base:
        return extra
    merged: dict[str, Any] = {**base, **extra}
    if "tags" in base and "tags" in extra:
        merged["tags"] = [*base["tags"], *(t for t in extra["tags"] if t not in base["tags"])]
    if "metadata" in base and "metadata" in extra:
        merged["metadata"] = {**base["metadata"], **extra["metadata"]}
    if "configurable" in base and "configurable" in extra:
        merged["configurable"] = {**base["configurable"], **extra["configurable"]}
    return merged  # type: ignore[return-value]


def configs_for_batch(
    config: RunConfig | Sequence[RunConfig | None] | None, n: int
) -> list[RunConfig | None]:
    """One config per batch item: a single config is shared, a list must match the inputs."""
    if config is None or isinstance(config, Mapping):
        return [config] * n  # type: ignore[list-item]
    configs = list(config)
    if len(configs) != n:
        raise ValueError(
            f"batch got {n} inputs but {len(configs)} configs; pass one config or one per input"
        )
    return configs
