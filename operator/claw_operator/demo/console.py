"""What the demo shows on the terminal: the real `kubectl` against the sandbox, and its story."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from claw_operator.demo.sandbox import SandboxError

__all__ = ["Console", "indent"]


class Console:
    """Prints to `out`; runs `kubectl` with the sandbox's kubeconfig and a cache of its own."""

    def __init__(self, kubeconfig: Path, cache_dir: Path, *, out: TextIO = sys.stdout) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise SandboxError("kubectl is not installed: run `make tools` (or install kubectl) and retry")
        self.kubectl_path = kubectl
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.out = out

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def kubectl(self, *args: str, show: bool = True, check: bool = True) -> str:
        """Run the real kubectl against kubesim; print the command and its output."""
        command = [
            self.kubectl_path,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        output = (done.stdout + done.stderr).rstrip()
        if show:
            self.say(f"$ kubectl {' '.join(_quote(a) for a in args)}")
            if output:
                self.say(indent(output))
        if check and done.returncode != 0:
            raise SandboxError(f"kubectl {' '.join(args)} failed ({done.returncode}): {output}")
        return output


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' {}[]"$\\') else arg


def indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
