"""CRD schemas as the API server applies them with ``fieldValidation=Strict``: an object schema
that lists its properties (or lists none) accepts no other field unless it says
``x-kubernetes-preserve-unknown-fields`` or gives ``additionalProperties``; the root ``metadata``
is checked as ObjectMeta. Plain JSON-Schema validation would accept any misspelt field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def strict(schema: Any) -> Any:
    """A copy of ``schema`` with every open object closed (see the module docstring)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:  # a map of names to schemas, not a schema
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
    closed = (
        schema.get("type") == "object"
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and not schema.get("x-kubernetes-embedded-resource")
    )
    if closed:
        out["additionalProperties"] = False
    return out


def load_schemas(crd_dir: Path) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> the strict schema of every served version of every CRD there."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[tuple[str, str], Any] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = OBJECT_META
            found[(f"{group}/{version['name']}", kind)] = schema
    return found


def k8s_spec(kind: str | None = None, **overrides: Any) -> Any:
    """The Kubernetes tests' job spec (2 nodes of ``train.py --steps 10``); ``kind`` None keeps
    the default kind, ``kubernetes={...}`` adds options."""
    from maru.launch import parse_spec

    kube = {"image": "registry.example/maru:1", **overrides.pop("kubernetes", {})}
    if kind:
        kube.setdefault("kind", kind)
    data: dict[str, Any] = {
        "name": "fmnist",
        "entrypoint": {"script": "train.py", "args": ["--steps", "10"]},
        "nnodes": 2,
        "kubernetes": kube,
    }
    data.update(overrides)
    return parse_spec(data)


def validate(schemas: dict[tuple[str, str], Any], obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``obj`` fits its kind's strict schema."""
    import jsonschema

    schema = schemas[(obj["apiVersion"], obj["kind"])]
    jsonschema.Draft7Validator(schema).validate(obj)
