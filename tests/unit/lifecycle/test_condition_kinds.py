"""Every condition type is either recorded (carried from pass to pass, with a default) or derived
at the end of every pass, never both: adding a condition is its type (api/conditions.py), its
reasons (api/reasons.py) and one entry in lifecycle/conditions.py."""

from claw_operator.api.conditions import CONDITION_TYPES
from claw_operator.lifecycle.conditions import DEFAULTS, DERIVED, RECORDED_TYPES


def test_each_condition_is_recorded_or_derived() -> None:
    recorded, derived = set(RECORDED_TYPES), set(DERIVED)
    assert recorded.isdisjoint(derived)
    assert recorded | derived == set(CONDITION_TYPES)
    assert set(DEFAULTS) == recorded
