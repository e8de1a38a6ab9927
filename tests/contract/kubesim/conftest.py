"""kubesim's fixtures, for the contract tests with real clients."""

from claw_operator.sim.kubesim.testing import kubesim, kubesim_thread

__all__ = ["kubesim", "kubesim_thread"]
