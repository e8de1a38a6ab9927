"""Ready means healthy: with `spec.healthCheck`, a started machine is Ready only while Fly's
checks pass (KiloClaw's `waitForHealthy`).

What Fly last reported is kept in status (`unhealthySince`, `healthCheckOutput`), so every pass
— including one that only settles an action — derives the same `Ready`; the phase stays
`Running`. Past the check's grace period after the start, each pass that sees it failing adds
to one Warning `Unhealthy` Event series.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from claw_operator.api.reasons import EventReason
from claw_operator.lifecycle.desired import CHECK_NAME
from claw_operator.lifecycle.draft import Draft
from claw_operator.lifecycle.model import EventType, MachineView

_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_OUTPUT: Final = 1024


def duration(value: str) -> timedelta:
    """A Go duration ("1m30s") as a timedelta (the CRD validates the pattern)."""
    return timedelta(seconds=sum(float(n) * _UNIT[u] for n, u in _PART.findall(value)))


def _clear(d: Draft) -> None:
    d.status.unhealthy_since = None
    d.status.health_check_output = None


def failing_check(machine: MachineView) -> str | None:
    """What keeps the machine from being healthy (None: our check passes)."""
    checks = machine.checks or ()
    ours = [c for c in checks if c.name == CHECK_NAME] or list(checks)
    if not ours:
        return "no check result reported by Fly yet"
    for check in ours:
        if check.status != "passing":
            return f"check {check.name} is {check.status}: {check.output}".strip()
    return None


def observe_health(d: Draft, machine: MachineView | None) -> None:
    """Record what the started machine's checks say (nothing to record without a health check,
    or for a machine that is not started)."""
    status = d.status
    if d.instance.spec.health_check is None or (machine is not None and machine.state != "started"):
        _clear(d)
        return
    failing = failing_check(machine) if machine is not None else "no check result reported by Fly yet"
    if failing is None:
        if status.unhealthy_since is not None:
            d.log("healthy", machine_id=status.machine_id)
        _clear(d)
        return
    if status.unhealthy_since is None:
        status.unhealthy_since = d.now
    status.health_check_output = failing[:MAX_OUTPUT]


def report_unhealthy(d: Draft) -> float | None:
    """Past the grace period: the Warning Event (one series). Returns how soon to look again
    while unhealthy (the Starting cadence), None when healthy."""
    status = d.status
    check = d.instance.spec.health_check
    if check is None or status.unhealthy_since is None:
        return None
    started = status.last_started_at or status.unhealthy_since
    if d.now - started > duration(check.grace_period):
        since = int((d.now - status.unhealthy_since).total_seconds())
        message = f"machine {status.machine_id} is unhealthy for {since}s: {status.health_check_output}"
        d.event(EventType.WARNING, EventReason.UNHEALTHY, message[:MAX_OUTPUT])
        d.log("unhealthy", since_seconds=since, output=status.health_check_output)
    return d.timings.poll_starting.total_seconds()
