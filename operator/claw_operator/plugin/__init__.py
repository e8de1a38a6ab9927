"""`kubectl claw`: the kubectl plugin for ClawInstances (installed as the `kubectl-claw` script).

It sits at the CLI level: it reads and writes ClawInstances with the operator's own Kubernetes
client code, and looks at Fly through the operator's own Fly edge (`flyside.py` is the one
place that knows where that edge lives).
"""
