"""The instance's volume: provided once (adopted, else created on a conclusive listing), grown to
the spec in any power state, and where the machine goes (the volume's real region).

Volumes carry no metadata on Fly and their names are not unique, so the only guard against a
second volume is to look for one named after the instance before creating — and to trust only
a listing that can show it: a failed listing, or one taken too soon after a create this process
sent, is "don't know", never "none".
"""

from __future__ import annotations

from claw_operator.fly.tags import volume_name
from claw_operator.lifecycle import transitions
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.failures import retry_delay
from claw_operator.lifecycle.loss import mounted_volume
from claw_operator.lifecycle.model import (
    CreateVolume,
    Decision,
    ExtendVolume,
    Lookup,
    MachineView,
    Observation,
)
from claw_operator.lifecycle.recovery import adopt_volume, live_volumes, select_named_volume


def provide_volume(
    d: Draft, observed: Observation, gated: bool, machine: MachineView | None = None
) -> Decision:
    """No volume in status: adopt the instance's volume (the one its machine mounts first), else
    create one — but only on a conclusive listing by name."""
    spec = d.instance.spec
    region = d.status.region or spec.region
    named = observed.named_volumes
    if named is None:
        failure = observed.named_failure
        if failure is None:
            # Not listed this pass (nothing to go on): the next pass lists.
            return d.finish()
        d.log("volume_listing_inconclusive", error=failure.message)
        return transitions.await_listing(d, failure, "listing of its volumes by name")
    mounted = mounted_volume(machine, spec.volume.mount_path)
    candidate = select_named_volume(named, region, mounted=mounted, machine_id=d.status.machine_id)
    if candidate is not None:
        live = live_volumes(named)
        if len(live) > 1:
            d.log(
                "multiple_volumes_found",
                count=len(live),
                volume_ids=[v.id for v in live],
                adopted=candidate.id,
            )
        adopt_volume(d, candidate)
        return d.finish(requeue_after=0)
    if gated:
        return d.finish()
    fallbacks = tuple(r for r in (spec.region, *spec.fallback_regions) if r != region)
    return d.finish(
        CreateVolume(
            region=region,
            size_gb=spec.volume.size_gb,
            name=volume_name(d.instance.uid),
            fallback_regions=fallbacks,
        )
    )


def grow_volume(d: Draft, observed: Observation, gated: bool) -> Decision | None:
    """Extend the volume when the spec asks for more than Fly reports (whatever the machine's
    power state: Fly extends a volume attached or not). None when there is nothing to grow."""
    lookup = observed.volume
    seen = lookup.volume
    if lookup.outcome == Lookup.FOUND and seen is not None and seen.id == d.status.volume_id:
        want = d.instance.spec.volume.size_gb
        if want <= seen.size_gb:
            return None
        if gated:
            return d.finish()
        return d.finish(ExtendVolume(volume_id=seen.id, size_gb=want))
    if lookup.outcome == Lookup.ERROR:
        # Its size is unknown: look again soon rather than call it right.
        return d.finish(retry=True, requeue_after=retry_delay(lookup.failure, d.instance, d.timings))
    return None


def locate_volume(d: Draft, observed: Observation) -> Decision | None:
    """Before a machine is created on the volume: make status.region where the volume really is
    (a machine must be in its volume's region; Fly answers 400 otherwise). None: go on."""
    status = d.status
    lookup = observed.volume
    seen = lookup.volume
    if lookup.outcome == Lookup.FOUND and seen is not None and seen.region:
        if seen.region != status.region:
            d.log("volume_region_corrected", from_region=status.region, region=seen.region, volume_id=seen.id)
            status.region = seen.region
        return None
    if lookup.outcome == Lookup.ERROR:
        return d.finish(retry=True, requeue_after=retry_delay(lookup.failure, d.instance, d.timings))
    return None
