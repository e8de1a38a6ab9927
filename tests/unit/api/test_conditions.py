"""set_condition: the one way conditions change."""

from datetime import UTC, datetime, timedelta

from claw_operator.api import Condition, ConditionStatus, find_condition, set_condition

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def test_new_condition_is_appended_with_now_as_transition_time() -> None:
    conditions = set_condition([], "Ready", UNKNOWN, "Provisioning", "", generation=1, now=T0)
    assert conditions == [
        Condition(
            type="Ready",
            status=UNKNOWN,
            reason="Provisioning",
            message="",
            last_transition_time=T0,
            observed_generation=1,
        )
    ]


def test_unchanged_status_keeps_transition_time_but_takes_new_reason_message_generation() -> None:
    before = set_condition([], "Ready", FALSE, "Starting", "booting", generation=1, now=T0)
    after = set_condition(before, "Ready", FALSE, "StartFailed", "no capacity", generation=2, now=T1)
    ready = find_condition(after, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T0
    assert (ready.reason, ready.message, ready.observed_generation) == ("StartFailed", "no capacity", 2)


def test_status_flip_moves_transition_time() -> None:
    before = set_condition([], "Ready", FALSE, "Starting", "", generation=1, now=T0)
    after = set_condition(before, "Ready", TRUE, "Running", "", generation=1, now=T1)
    ready = find_condition(after, "Ready")
    assert ready is not None and ready.status == TRUE and ready.last_transition_time == T1


def test_upsert_keeps_other_conditions_and_their_order() -> None:
    conditions = set_condition([], "Ready", FALSE, "Starting", "", generation=1, now=T0)
    conditions = set_condition(conditions, "Stalled", FALSE, "Starting", "", generation=1, now=T0)
    conditions = set_condition(conditions, "Ready", TRUE, "Running", "", generation=1, now=T1)
    assert [c.type for c in conditions] == ["Ready", "Stalled"]
    stalled = find_condition(conditions, "Stalled")
    assert stalled is not None and stalled.last_transition_time == T0


def test_an_identical_condition_is_kept_as_it_is_in_a_new_list() -> None:
    before = set_condition([], "Ready", TRUE, "Running", "up", generation=1, now=T0)
    after = set_condition(before, "Ready", TRUE, "Running", "up", generation=1, now=T1)
    assert after == before and after is not before
    assert after[0] is before[0]  # not rebuilt (a quiet check's six conditions)
    # Any difference rebuilds it: here the generation (the transition time stays).
    moved = set_condition(before, "Ready", TRUE, "Running", "up", generation=2, now=T1)
    assert moved[0].observed_generation == 2 and moved[0].last_transition_time == T0


def test_input_list_is_not_modified() -> None:
    original = set_condition([], "Ready", FALSE, "Starting", "", generation=1, now=T0)
    snapshot = list(original)
    set_condition(original, "Ready", TRUE, "Running", "", generation=1, now=T1)
    assert original == snapshot


def test_wire_form_is_metav1_condition() -> None:
    conditions = set_condition(
        [], "StartFailed", TRUE, "InsufficientCapacity", "no room", generation=3, now=T0
    )
    assert conditions[0].to_wire() == {
        "type": "StartFailed",
        "status": "True",
        "reason": "InsufficientCapacity",
        "message": "no room",
        "lastTransitionTime": "2026-11-24T08:00:00Z",
        "observedGeneration": 3,
    }
    assert Condition.model_validate(conditions[0].to_wire()) == conditions[0]


def test_find_condition_absent() -> None:
    assert find_condition([], "Ready") is None
