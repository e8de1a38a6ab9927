"""kubesim: a Kubernetes API emulator that unmodified kopf, kubectl and client libraries use.

    sim = KubeSim()
    base_url = await sim.start()            # http://127.0.0.1:<free port>
    await sim.apply_crds("crds")
    sim.write_kubeconfig(tmp / "kubeconfig")
    ...
    await sim.stop()

or, with the server on its own loop in a thread: `with run_in_thread(crds="crds") as kubesim:`.
"""

from .errors import ApiError
from .sim import DEFAULT_NAMESPACES, KubeSim, KubeSimThread, run_in_thread

__all__ = ["DEFAULT_NAMESPACES", "ApiError", "KubeSim", "KubeSimThread", "run_in_thread"]
