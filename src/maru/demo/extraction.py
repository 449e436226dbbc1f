"""Structured extraction: a validated pydantic object out of free text, from a real local model.

``with_structured_output`` holds the in-process model to the schema's grammar, so even the bundled
135M model returns an object that parses and validates (its values are as good as a small model's
reading of the text).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

TEXT = (
    "Hi! I'm flying to Busan next Friday and staying for three days. "
    "I love seafood, beaches and night markets, and I'd like a hotel near Haeundae."
)


class Trip(BaseModel):
    """The details of a trip described in a message."""

    city: str = Field(description="The city the traveller visits")
    days: int = Field(description="How many days the trip lasts")
    interests: list[str] = Field(description="What the traveller likes")


def extract_trip(model: Any, text: str = TEXT) -> Trip:
    """The :class:`Trip` that ``text`` describes, as ``model`` reads it."""
    extractor = model.with_structured_output(Trip)
    trip: Trip = extractor.invoke([("system", "Extract the trip details from the message."), ("human", text)])
    return trip
