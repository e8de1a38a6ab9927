"""`claw-operator demo`: kubesim + flysim + the operator in one process, and a guided tour.

- `sandbox.py`: `Sandbox`, the three started together — what the demo and the integration
  tests (tests/integration/conftest.py) both run;
- `tour.py`: the scripted walk through an instance's lifecycle (`--tour`), shown with kubectl
  (`console.py`), and the picture that ends it (`timeline.py`: every instance's phase and
  conditions over the tour, with Fly's record of its machines);
- `main.py`: `run_demo`, the command itself.

Needs the `[sandbox]` extra (the simulators' dependencies).
"""

from claw_operator.demo.main import run_demo

__all__ = ["run_demo"]
