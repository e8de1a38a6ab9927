"""The decisions: given spec + observed Fly state + status, what to do next and what status
results. Pure and synchronous: no kopf, no HTTP, no clock (`now` is an argument).

One pass: `decide()` → `kube` executes at most one action → `settle()` → one status write.
`settle()` returns the whole pass (its Decision repeats `decide()`'s events and logs before its
own), so `kube` applies exactly one Decision per pass: the settled one, or the decided one when
there was no action. `requeue_after=None` means "at `cadence(phase)` plus jitter".
"""

from claw_operator.fly.tags import volume_name
from claw_operator.lifecycle.decide import decide
from claw_operator.lifecycle.drift import config_drift, mount_is_correct, restart_trigger
from claw_operator.lifecycle.recovery import RECOVERY_PRIORITY, select_recovery_candidate
from claw_operator.lifecycle.settle import settle
from claw_operator.lifecycle.timing import backoff, cadence

__all__ = [
    "RECOVERY_PRIORITY",
    "backoff",
    "cadence",
    "config_drift",
    "decide",
    "mount_is_correct",
    "restart_trigger",
    "select_recovery_candidate",
    "settle",
    "volume_name",
]
