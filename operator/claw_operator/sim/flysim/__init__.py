"""flysim: a Fly Machines API simulator with fault injection.

In-process: `async with FlySim(profile="fast", seed=0) as sim: sim.base_url`.
In a thread: `with run_in_thread(profile="fast") as sim: sim.base_url`.
As a server: `claw-operator flysim`. See docs/flysim.md.

"§N" in this package is a section of `docs/reference/fly-machines-api.md` ("the reference");
the tags say what a behaviour rests on: [D] Fly's docs, [C] Fly's own clients, [O] observed
against the real API, [I] our inference.
"""

from .clock import Clock, LoopClock, ManualClock
from .profiles import FAST, PROFILES, REALISTIC, LatencyProfile
from .runner import FlySimThread, run_in_thread
from .sim import FlySim
from .world import WorldSettings

__all__ = [
    "FAST",
    "PROFILES",
    "REALISTIC",
    "Clock",
    "FlySim",
    "FlySimThread",
    "LatencyProfile",
    "LoopClock",
    "ManualClock",
    "WorldSettings",
    "run_in_thread",
]
