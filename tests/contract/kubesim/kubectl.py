"""Running the real kubectl against kubesim."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl")

requires_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make tools)")


class Kubectl:
    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        self.base = [KUBECTL or "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache_dir)]

    def command(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
