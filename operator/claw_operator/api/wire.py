"""The base of every model that travels as Kubernetes JSON: camelCase on the wire."""

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Field names are snake_case in Python and camelCase on the wire.

    Unknown fields are ignored when reading (the apiserver prunes them anyway, and a newer CRD
    may carry fields an older operator does not know); `to_wire` never emits unset optionals.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        validate_assignment=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict, camelCase, without fields that are None."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
