"""The volume create carries the fallback regions (issue 12, part 1, first step)."""

from __future__ import annotations

import pytest

from claw_operator.lifecycle.model import CreateVolume, VolumeView
from claw_operator.lifecycle.volumes import volume_name
from tests.unit.lifecycle.builders import UID, Case, check, instance, observed, ok, run, spec, status

NAME = volume_name(UID)

CASES = [
    Case(
        "the_first_volume_tries_the_region_then_the_fallbacks_in_order",
        instance(spec_=spec(fallback_regions=["ord", "ewr"])),
        observed(tagged=(), named=()),
        action=CreateVolume(region="iad", size_gb=10, name=NAME, fallback_regions=("ord", "ewr")),
    ),
    Case(
        "without_fallbacks_only_the_region",
        instance(),
        observed(tagged=(), named=()),
        action=CreateVolume(region="iad", size_gb=10, name=NAME),
    ),
    Case(
        "a_volume_created_in_a_fallback_region_moves_status_region_there",
        instance(spec_=spec(fallback_regions=["ord"])),
        observed(tagged=(), named=()),
        decided=CreateVolume(region="iad", size_gb=10, name=NAME, fallback_regions=("ord",)),
        result=ok(volume_=VolumeView(id="vol9", region="ord", size_gb=10)),
        fields={"region": "ord", "volume_id": "vol9"},
        events=("VolumeCreated",),
    ),
    Case(
        "a_replacement_starts_where_the_volume_was_then_the_others",
        instance(spec_=spec(fallback_regions=["ord", "ewr"]), status_=status(region="ord")),
        observed(tagged=(), named=()),
        action=CreateVolume(region="ord", size_gb=10, name=NAME, fallback_regions=("iad", "ewr")),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_region_fallback(case: Case) -> None:
    check(case, run(case))
