"""Tool → OpenAI function schema conversion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from maru.models.tools_schema import to_openai_tool


class Address(BaseModel):
    street: str
    zip: str | None = None


class CreateUser(BaseModel):
    """Create a user account.

    Only admins may call this."""

    name: str = Field(description="full name")
    age: int = 0
    address: Address


def test_pydantic_model() -> None:
    tool = to_openai_tool(CreateUser)
    fn = tool["function"]
    assert tool["type"] == "function" and fn["name"] == "CreateUser"
    assert fn["description"] == "Create a user account.\n\nOnly admins may call this."
    params = fn["parameters"]
    assert params["required"] == ["name", "address"]
    assert params["properties"]["name"] == {"description": "full name", "type": "string"}
    assert params["properties"]["age"] == {"default": 0, "type": "integer"}
    assert params["properties"]["address"] == {"$ref": "#/$defs/Address"}
    assert "Address" in params["$defs"] and "title" not in params


def test_pydantic_model_without_docstring_has_no_description() -> None:
    class Bare(BaseModel):
        x: int

    assert "description" not in to_openai_tool(Bare)["function"]


def test_typed_function_with_google_docstring() -> None:
    def search(
        query: str, k: int = 5, tags: list[str] | None = None, json: bool = False
    ) -> list[str]:
        """Search the knowledge base.

        Args:
            query: what to look for,
                in plain words.
            k (int): how many hits.
            tags: only documents with these tags.
            json: return raw JSON.

        Returns:
            The hits.
        """
        return []

    fn = to_openai_tool(search)["function"]
    assert fn["name"] == "search" and fn["description"] == "Search the knowledge base."
    props = fn["parameters"]["properties"]
    assert list(props) == ["query", "k", "tags", "json"]  # `json` does not clash with BaseModel
    assert props["query"] == {"description": "what to look for, in plain words.", "type": "string"}
    assert props["k"] == {"default": 5, "description": "how many hits.", "type": "integer"}
    assert props["tags"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    assert fn["parameters"]["required"] == ["query"]


def test_function_with_sphinx_docstring_annotated_and_literal() -> None:
    def convert(
        amount: float, unit: Annotated[Literal["km", "mi"], "target unit"], *args: Any, **kw: Any
    ) -> float:
        """Convert a distance.

        :param amount: the distance
        :returns: converted
        """
        return amount

    fn = to_openai_tool(convert)["function"]
    props = fn["parameters"]["properties"]
    assert fn["description"] == "Convert a distance."
    assert props["amount"] == {"description": "the distance", "type": "number"}
    assert props["unit"]["enum"] == ["km", "mi"] and props["unit"]["description"] == "target unit"
    assert set(props) == {"amount", "unit"}  # *args / **kwargs are not tool parameters


def test_dict_forms() -> None:
    wire = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
    }
    assert to_openai_tool(wire) == wire
    bare = to_openai_tool({"name": "g", "description": "does g", "parameters": {"type": "object"}})
    assert bare == {
        "type": "function",
        "function": {"name": "g", "description": "does g", "parameters": {"type": "object"}},
    }
    schema = to_openai_tool(
        {"title": "h", "description": "does h", "type": "object", "properties": {"a": {}}}
    )
    assert schema["function"] == {
        "name": "h",
        "description": "does h",
        "parameters": {"type": "object", "properties": {"a": {}}},
    }
    with pytest.raises(ValueError, match="a tool dict needs"):
        to_openai_tool({"parameters": {}})


def test_object_with_to_openai_tool_and_typed_dict() -> None:
    class MyTool:
        def to_openai_tool(self) -> dict[str, Any]:
            return {
                "type": "function",
                "function": {"name": "mine", "parameters": {"type": "object"}},
            }

    assert to_openai_tool(MyTool())["function"]["name"] == "mine"

    class Point(TypedDict):
        """A point."""

        x: int
        y: int

    fn = to_openai_tool(Point)["function"]
    assert fn["name"] == "Point" and fn["parameters"]["required"] == ["x", "y"]


def test_unusable_tool_is_rejected() -> None:
    with pytest.raises(TypeError, match="cannot make a tool schema from int"):
        to_openai_tool(3)
