"""RFC 3339 times as Kubernetes writes them: UTC, a trailing `Z`, second precision (metav1.Time)
or microsecond precision (metav1.MicroTime)."""

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


def rfc3339_micro(moment: datetime) -> str:
    """`2026-11-24T07:35:44.123456Z` — the metav1.MicroTime wire form."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A time that must keep its fraction of a second (compared with Fly's millisecond timestamps).
MicroTimestamp = Annotated[datetime, PlainSerializer(rfc3339_micro, return_type=str, when_used="json")]
