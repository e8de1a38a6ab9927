"""FlyClientOptions: the typed tuning of the operator's Fly client (issue 16), field by field
over the operator's fleet defaults."""

from __future__ import annotations

from claw_operator.fly import FlyClientOptions, RateLimits, RetryPolicy
from claw_operator.kube.config import OperatorConfig
from claw_operator.kube.runner import FLEET_FLY_CLIENT, fly_client


def test_overrides_name_only_the_fields_set() -> None:
    retry = RetryPolicy(attempts=2)
    assert FlyClientOptions().overrides() == {}
    assert FlyClientOptions(retry=retry, create_resolve_delay=0.1).overrides() == {
        "retry": retry,
        "create_resolve_delay": 0.1,
    }


def test_the_operator_client_is_sized_for_a_fleet_unless_told_otherwise() -> None:
    default = fly_client(OperatorConfig(fly_token="t"))
    assert default.config.max_connections == FLEET_FLY_CLIENT.max_connections == 512
    limits = RateLimits(action_rate=100, action_burst=100)
    tuned = fly_client(
        OperatorConfig(
            fly_token="t", fly_client_options=FlyClientOptions(rate_limits=limits, max_connections=8)
        )
    )
    assert tuned.config.max_connections == 8
    assert tuned.config.rate_limits == limits
    assert tuned.config.max_keepalive_connections == FLEET_FLY_CLIENT.max_keepalive_connections
