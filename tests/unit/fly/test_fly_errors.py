"""Classification of Fly error responses from status AND body text (fly-machines-api.md §1/§7)."""

from dataclasses import dataclass

import pytest

from claw_operator.fly.errors import (
    AmbiguousCreate,
    CapacityScope,
    Conflict,
    ConflictReason,
    FlyError,
    Forbidden,
    InsufficientCapacity,
    InvalidConfig,
    NotFound,
    Precondition,
    PreconditionReason,
    QuotaExceeded,
    RateLimited,
    Timeout,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    WaitTimeout,
    classify,
    parse_retry_after,
)


@dataclass(frozen=True)
class Case:
    reason: str
    status: int
    body: str
    kind: type[FlyError]
    retryable: bool
    method: str = "GET"
    ambiguous: bool = False
    detail: object = None  # Conflict/Precondition reason or CapacityScope


CASES = [
    Case("bad token", 401, '{"error":"Authenticate: token validation error"}', Unauthorized, False),
    Case("foreign app", 403, '{"error":"unauthorized"}', Forbidden, False),
    Case("gone machine", 404, '{"error":"not_found: machine not found"}', NotFound, False),
    Case("bad json body", 400, '{"error":"json: cannot unmarshal string"}', InvalidConfig, False, "POST"),
    # A body too large never succeeds: terminal, not "Fly having trouble" (issue 18).
    Case(
        "request too large",
        413,
        "<html><title>413 Request Entity Too Large</title></html>",
        InvalidConfig,
        False,
        "POST",
    ),
    Case(
        "wait timeout out of range",
        400,
        '{"error":"invalid_argument: timeout must be between 1 and 60"}',
        InvalidConfig,
        False,
    ),
    Case(
        "lease held by someone else",
        409,
        '{"error":"machine ID 1857156b526dd8 lease currently held by a@b.c, '
        'expires at 2026-01-01T00:00:00Z"}',
        Conflict,
        True,
        "POST",
        detail=ConflictReason.LEASE_HELD,
    ),
    Case(
        "lease envelope shape",
        409,
        '{"status":"error","message":"lease currently held by someone","code":"lease_held"}',
        Conflict,
        True,
        "POST",
        detail=ConflictReason.LEASE_HELD,
    ),
    Case(
        "concurrent update",
        409,
        '{"error":"aborted: machine is replacing: concurrent update in progress"}',
        Conflict,
        True,
        "POST",
        detail=ConflictReason.CONCURRENT_UPDATE,
    ),
    Case(
        "current_version mismatch",
        409,
        '{"error":"current_version does not match: machine version mismatch"}',
        Conflict,
        False,
        "POST",
        detail=ConflictReason.VERSION_MISMATCH,
    ),
    Case(
        "name taken",
        409,
        '{"error":"Validation failed: Name has already been taken","status":"name_taken"}',
        Conflict,
        False,
        "POST",
        detail=ConflictReason.NAME_TAKEN,
    ),
    Case(
        "host out of memory on start",
        409,
        '{"error":"could not reserve resource for machine: '
        'insufficient memory available to fulfill request"}',
        InsufficientCapacity,
        False,
        "POST",
        detail=CapacityScope.HOST,
    ),
    Case(
        "region full",
        412,
        '{"error":"no capacity available in iad"}',
        InsufficientCapacity,
        False,
        "POST",
        detail=CapacityScope.REGION,
    ),
    Case(
        "capacity code field",
        400,
        '{"error":"could not place machine","status":"insufficient_capacity"}',
        InsufficientCapacity,
        False,
        "POST",
        detail=CapacityScope.REGION,
    ),
    Case(
        "volume host full",
        412,
        '{"error":"insufficient resources to create new machine with existing volume \'vol_abc\'"}',
        InsufficientCapacity,
        False,
        "POST",
        detail=CapacityScope.VOLUME_HOST,
    ),
    Case(
        "volume claimed",
        412,
        '{"error":"failed_precondition: volume already claimed by machine 1857156b526dd8"}',
        Precondition,
        True,
        "POST",
        detail=PreconditionReason.VOLUME_CLAIMED,
    ),
    Case(
        "volume bound on delete",
        412,
        '{"error":"failed_precondition: volume is currently bound to machine: 1857156b526dd8"}',
        Precondition,
        True,
        "DELETE",
        detail=PreconditionReason.VOLUME_BOUND,
    ),
    Case(
        "destroy of a running machine",
        412,
        '{"error":"failed_precondition: unable to destroy machine, not currently stopped, suspended, '
        'failed or created"}',
        Precondition,
        False,
        "DELETE",
        detail=PreconditionReason.DESTROY_RUNNING,
    ),
    Case(
        "start while settling",
        412,
        '{"error":"failed_precondition: unable to start machine from current state: \'replacing\'"}',
        Precondition,
        True,
        "POST",
        detail=PreconditionReason.START_NOT_READY,
    ),
    Case(
        "start while still active",
        412,
        '{"error":"machine still active, refusing to start"}',
        Precondition,
        True,
        "POST",
        detail=PreconditionReason.START_NOT_READY,
    ),
    Case(
        "secrets not there yet",
        412,
        '{"error":"failed_precondition: min_secrets_version 4 is greater than current 3"}',
        Precondition,
        True,
        "POST",
        detail=PreconditionReason.SECRETS_VERSION,
    ),
    Case("org machine limit", 422, '{"error":"org machine limit reached"}', QuotaExceeded, False, "POST"),
    Case("quota on 412", 412, '{"error":"you are over the allowed quota"}', QuotaExceeded, False, "POST"),
    Case("rate limited", 429, '{"error":"rate limit exceeded"}', RateLimited, True, "POST"),
    Case(
        "upstream timeout on create is ambiguous",
        408,
        '{"error":"request timed out"}',
        Timeout,
        True,
        "POST",
        ambiguous=True,
    ),
    Case("timeout on a read is not ambiguous", 408, "", Timeout, True, "GET"),
    Case(
        "deadline prefix on a create is still an ambiguous timeout",
        408,
        '{"error":"deadline_exceeded: request timed out"}',
        Timeout,
        True,
        "POST",
        ambiguous=True,
    ),
    Case(
        "wait deadline",
        408,
        '{"error":"deadline_exceeded: machine failed to reach desired state, started, currently stopped"}',
        WaitTimeout,
        True,
    ),
    Case("503 on create is ambiguous", 503, '{"error":"oops"}', Unavailable, True, "POST", ambiguous=True),
    Case(
        "host maintenance",
        503,
        '{"error":"unavailable: deploys to this host are temporarily disabled"}',
        Unavailable,
        True,
        "POST",
        ambiguous=True,
    ),
    Case(
        "html 502 from the proxy",
        502,
        "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad</h1></body></html>",
        Unavailable,
        True,
    ),
    Case("504 is a timeout", 504, "gateway timeout", Timeout, True, "DELETE", ambiguous=True),
    Case(
        "odd status falls back to the grpc prefix",
        410,
        '{"error":"failed_precondition: volume is currently bound to machine: abc"}',
        Precondition,
        True,
        "DELETE",
        detail=PreconditionReason.VOLUME_BOUND,
    ),
    Case("odd status with nothing known", 418, "teapot", UnexpectedResponse, True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.reason for c in CASES])
def test_classification_from_status_and_body(case: Case) -> None:
    error = classify(case.status, case.body, method=case.method, route="/v1/x", request_id="req-1")
    assert type(error) is case.kind, (case.reason, error)
    assert error.retryable is case.retryable
    assert error.ambiguous is case.ambiguous
    assert error.status == case.status
    assert error.request_id == "req-1"
    if case.detail is not None:
        assert getattr(error, "reason", None) == case.detail or getattr(error, "scope", None) == case.detail


def test_html_body_gives_a_readable_message_and_keeps_an_excerpt() -> None:
    body = "<html><head><title>503 Service Unavailable</title></head><body>" + "x" * 5000 + "</body></html>"
    error = classify(503, body, method="GET", route="/v1/apps/{app}/machines", request_id="01J-yyz")
    assert error.message == "503 Service Unavailable"
    assert error.body is not None and len(error.body) <= 500
    assert "01J-yyz" in str(error)
    assert "GET /v1/apps/{app}/machines" in str(error)


def test_empty_body_still_has_a_message() -> None:
    error = classify(500, "", method="GET")
    assert isinstance(error, Unavailable)
    assert error.message == "HTTP 500"


def test_machine_readable_code_is_carried() -> None:
    error = classify(409, '{"error":"Name has already been taken","status":"name_taken"}', method="POST")
    assert error.code == "name_taken"


def test_wait_timeout_parses_the_current_state_and_is_never_ambiguous() -> None:
    error = classify(
        408,
        '{"error":"deadline_exceeded: machine failed to reach desired state, started, currently stopped"}',
        method="GET",
    )
    assert isinstance(error, WaitTimeout)
    assert error.current_state == "stopped"
    assert error.ambiguous is False


def test_retry_after_header_is_parsed_into_the_error() -> None:
    error = classify(429, "{}", method="GET", retry_after="3")
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("2", 2.0),
        ("0.5", 0.5),
        ("-1", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),  # 10 s after `now` below
        ("not a date", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=now) == expected


def test_every_failure_kind_is_raised_by_some_error() -> None:
    # The edge maps errors to the decisions' vocabulary by `error.kind` alone.
    from claw_operator import fly
    from claw_operator.fly import FailureKind

    classes = [c for c in vars(fly).values() if isinstance(c, type) and issubclass(c, FlyError)]
    assert len(classes) >= 14
    assert all(isinstance(c.kind, FailureKind) for c in classes)
    assert {c.kind for c in classes} == set(FailureKind)
    assert AmbiguousCreate.kind == WaitTimeout.kind == FailureKind.TIMEOUT
