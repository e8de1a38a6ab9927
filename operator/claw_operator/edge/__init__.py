"""The Fly port (crossplane's ExternalClient): observe Fly for one instance (shared per-app
lists, caches), execute one lifecycle Action, render the desired machine into a Fly config, and
turn Fly's answers into the lifecycle's views. Uses `claw_operator.fly`; never kopf, never the
Kubernetes API.
"""

from claw_operator.edge.env import ResolvedEnv, env_digest
from claw_operator.edge.gateway import FlyGateway, to_failure, volume_view
from claw_operator.edge.machineconfig import machine_view

__all__ = ["FlyGateway", "ResolvedEnv", "env_digest", "machine_view", "to_failure", "volume_view"]
