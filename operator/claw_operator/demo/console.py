"""What the demo shows on the terminal: the real `kubectl` against the sandbox, and its story."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
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

    def _command(self, args: tuple[str, ...]) -> list[str]:
        return [
            self.kubectl_path,
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
        ]

    def kubectl(self, *args: str, show: bool = True, check: bool = True) -> str:
        """Run the real kubectl against kubesim; print the command and its output."""
        done = subprocess.run(self._command(args), capture_output=True, text=True, timeout=120, check=False)
        output = (done.stdout + done.stderr).rstrip()
        if show:
            self.say(f"$ kubectl {' '.join(_quote(a) for a in args)}")
            if output:
                self.say(indent(output))
        if check and done.returncode != 0:
            raise SandboxError(f"kubectl {' '.join(args)} failed ({done.returncode}): {output}")
        return output

    @contextlib.contextmanager
    def watching(self, *args: str) -> Iterator[list[str]]:
        """`kubectl <args> --watch` in the background for the `with` block, which gets the lines
        printed so far; they are shown (a repeated line once) when the block ends. A change that
        comes and goes between two polls is still seen: the watch gets every event."""
        self.say(f"$ kubectl {' '.join(_quote(a) for a in args)} --watch   # in the background")
        process = subprocess.Popen(
            [*self._command(args), "--watch"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: list[str] = []
        assert process.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        reader.start()
        try:
            yield lines
        finally:
            process.terminate()
            process.wait(timeout=10)
            reader.join(timeout=10)
            shown = [line.rstrip() for n, line in enumerate(lines) if n == 0 or line != lines[n - 1]]
            self.say("   ... meanwhile, the watch printed:")
            self.say(indent("\n".join(shown)))


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' {}[]"$\\') else arg


def indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
