"""claw-operator: run ClawInstances (one Fly Volume + one Fly Machine) from Kubernetes."""

__version__ = "0.1.0"
