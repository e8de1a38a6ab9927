"""`python -m claw_operator.plugin`: the same as `kubectl-claw` (the krew shim runs this)."""

from claw_operator.plugin.main import run

run()
