"""The gateway's volume rules that need no Fly: when an empty listing by name proves nothing yet,
and when the volume must be read although a started machine mounts it."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from claw_operator.edge import FlyGateway
from claw_operator.edge.gateway import volume_needs_a_look
from claw_operator.lifecycle.model import Lookup, MachineLookup, Timings
from tests.unit.lifecycle.builders import UID, instance, machine, running, running_status, spec

TIMINGS = Timings(listing_settle=timedelta(seconds=30))


def gateway() -> FlyGateway:
    return FlyGateway(client=Any, timings=TIMINGS)  # type: ignore[arg-type]  # no call is made


def born(seconds_before_start: float, gw: FlyGateway, **overrides: Any) -> Any:
    return instance(created_at=gw._started_at - timedelta(seconds=seconds_before_start), **overrides)


@pytest.mark.parametrize("kind", ["volume", "machine"])
def test_an_empty_listing_right_after_our_own_create_proves_nothing(kind: str) -> None:
    gw = gateway()
    sent = gw._volume_creates_sent if kind == "volume" else gw._machine_creates_sent
    inst = born(-60, gw)  # created after this process started
    assert gw._unsettled(inst, kind, sent) is None
    sent[UID] = time.monotonic()
    unsettled = gw._unsettled(inst, kind, sent)
    assert unsettled is not None and unsettled.retryable
    assert unsettled.retry_after is not None and 29 < unsettled.retry_after <= 30
    # Once the settle time has passed, empty means none.
    sent[UID] = time.monotonic() - 31
    assert gw._unsettled(inst, kind, sent) is None


def test_after_a_restart_an_older_instance_waits_for_the_list_to_settle() -> None:
    gw = gateway()
    older = born(5, gw)
    sent = gw._volume_creates_sent
    assert gw._unsettled(older, "volume", sent) is not None
    # A deletion too: a destroy that trusted a stale empty listing would leak what it missed ...
    assert gw._unsettled(replace(older, deleting=True), "machine", gw._machine_creates_sent) is not None
    # ... but not once the process has run for the settle time.
    gw._started_monotonic -= 31
    assert gw._unsettled(older, "volume", sent) is None


def test_an_instance_created_within_a_second_of_the_start_is_not_older() -> None:
    gw = gateway()
    sent = gw._volume_creates_sent
    assert gw._unsettled(born(0.5, gw), "volume", sent) is None
    assert gw._unsettled(instance(created_at=datetime(2020, 1, 1, tzinfo=UTC)), "volume", sent) is not None


def test_the_volume_is_read_while_the_status_size_is_behind_the_spec() -> None:
    gw = gateway()
    started = MachineLookup(Lookup.FOUND, machine("started"))
    gw._volume_sizes["vol1"] = 20
    grown = spec(volume={"sizeGB": 20})
    assert not gw._volume_needs_a_look(
        instance(spec_=grown, status_=running_status(volume_size_gb=20)), started
    )
    # The extend's status write was lost: the status still says 10, so look (and record 20).
    assert gw._volume_needs_a_look(instance(spec_=grown, status_=running_status(volume_size_gb=10)), started)
    assert gw._volume_needs_a_look(running(), started)  # no size recorded yet


GROWN = spec(volume={"sizeGB": 20})
STARTED = MachineLookup(Lookup.FOUND, machine("started"))


@pytest.mark.parametrize(
    ("case", "inst", "lookup", "size_seen", "looks"),
    [
        # After a restart (nothing seen by this process): the status's size is trusted when
        # the spec asks for exactly it and a started machine mounts the recorded volume.
        ("restart, spec = recorded", running(volume_size_gb=10), STARTED, None, False),
        (
            "restart, spec grown past recorded",
            instance(spec_=GROWN, status_=running_status(volume_size_gb=10)),
            STARTED,
            None,
            True,
        ),
        ("restart, recorded above spec", running(volume_size_gb=20), STARTED, None, True),
        ("restart, no size recorded", running(), STARTED, None, True),
        (
            "restart, machine stopped",
            running(volume_size_gb=10),
            MachineLookup(Lookup.FOUND, machine("stopped")),
            None,
            True,
        ),
        (
            "restart, another volume mounted",
            running(volume_size_gb=10),
            MachineLookup(Lookup.FOUND, machine("started", volume="vol-other")),
            None,
            True,
        ),
        (
            "restart, nothing mounted",
            running(volume_size_gb=10),
            MachineLookup(Lookup.FOUND, machine("started", volume=None)),
            None,
            True,
        ),
        ("restart, machine gone", running(volume_size_gb=10), MachineLookup(Lookup.GONE), None, True),
        ("restart, machine read failed", running(volume_size_gb=10), MachineLookup(Lookup.ERROR), None, True),
        ("restart, deleting", replace(running(volume_size_gb=10), deleting=True), STARTED, None, True),
        ("no volume recorded", running(volume_id=None, volume_size_gb=10), STARTED, None, True),
        # Seen by this process: trusted while neither it nor the status is below the spec.
        ("seen = spec", running(volume_size_gb=10), STARTED, 10, False),
        ("seen above spec", running(volume_size_gb=10), STARTED, 20, False),
        (
            "seen below grown spec",
            instance(spec_=GROWN, status_=running_status(volume_size_gb=20)),
            STARTED,
            10,
            True,
        ),
        (
            "status below grown spec",
            instance(spec_=GROWN, status_=running_status(volume_size_gb=10)),
            STARTED,
            20,
            True,
        ),
        ("seen, no size recorded", running(), STARTED, 10, True),
    ],
)
def test_volume_needs_a_look(
    case: str, inst: Any, lookup: MachineLookup, size_seen: int | None, looks: bool
) -> None:
    assert volume_needs_a_look(inst, lookup, size_seen) is looks, case
