"""RFC 3339 times as Kubernetes writes them: UTC, second precision, a trailing `Z`."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


def rfc3339(moment: datetime) -> str:
    """`2026-11-24T07:35:44Z` — the metav1.Time wire form."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str, when_used="json")]
