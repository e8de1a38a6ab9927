"""RFC 3339 times as Kubernetes writes them: UTC, second precision, a trailing `Z`."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


def rfc3339(moment: datetime) -> str:
    """`2026-11-24T07:35:44Z` — the metav1.Time wire form."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: object) -> datetime | None:
    """An RFC 3339 time as Kubernetes and Fly write it (`Z` or an offset); None when absent or
    unreadable. A time without a zone is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str, when_used="json")]
