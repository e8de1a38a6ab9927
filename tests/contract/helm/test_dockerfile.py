"""The Dockerfile, checked statically (there is no container engine here) against the chart.

What a build would show is pinned where it can be without one: the stages and base images, the
final stage's user, entrypoint and port (they must match the chart's securityContext, args
and probes), no build tools in the final image, and that the build context the .dockerignore
lets through is enough to build the package the image installs.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.contract.helm.chart import load_values, one, render

DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "cmake", "clang", "python3-dev", "libc6-dev", "git")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def parse(text: str) -> list[Stage]:
    """Instructions by stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def deployment_pod() -> dict:  # type: ignore[type-arg]
    return dict(one(render(), "Deployment")["spec"]["template"]["spec"])


def test_multi_stage_on_slim_python_311() -> None:
    assert len(STAGES) >= 2
    for stage in STAGES:
        assert stage.base.startswith("python:3.11-slim"), stage.base


def test_the_final_stage_runs_as_the_charts_non_root_user() -> None:
    (user,) = FINAL.all("USER")
    uid, _, gid = user.partition(":")
    # Numeric, so the kubelet can enforce runAsNonRoot without resolving a name.
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    pod = load_values()["podSecurityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    assert deployment_pod()["securityContext"]["runAsUser"] == int(uid)


def test_the_entrypoint_is_claw_operator_run_and_the_chart_passes_only_flags() -> None:
    (entrypoint,) = FINAL.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["claw-operator", "run"]
    assert FINAL.all("CMD") == []
    (main,) = deployment_pod()["containers"]
    assert "command" not in main
    assert all(arg.startswith("-") for arg in main["args"])


def test_the_exposed_port_is_the_charts_metrics_port() -> None:
    assert FINAL.all("EXPOSE") == [str(load_values()["metrics"]["port"])]


def test_no_build_tools_in_the_final_image() -> None:
    for key, args in FINAL.instructions:
        if key == "RUN":
            words = args.replace(";", " ").replace("&&", " ").split()
            assert "apt-get" not in words and "apk" not in words and "pip" not in " ".join(words), args
            assert not any(tool in words for tool in BUILD_TOOLS), args
    copies = FINAL.all("COPY")
    assert copies and all(c.startswith("--from=") for c in copies), (
        "the final stage copies only from a build stage"
    )
    # The build stage installs the package itself (no editable install, no source tree at runtime).
    build = next(s for s in STAGES if s.name == FINAL.all("COPY")[0].split()[0].removeprefix("--from="))
    assert any("pip install" in run and " ." in run and "-e " not in run for run in build.all("RUN"))


def test_the_final_stage_keeps_the_root_filesystem_read_only_friendly() -> None:
    env = " ".join(FINAL.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # nothing written next to the code at runtime


def _context_files() -> list[Path]:
    """The files a `docker build .` would send, by the .dockerignore rules (last match wins)."""
    rules = [r.strip() for r in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [r for r in rules if r and not r.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    kept = []
    for name in tracked.split():
        included = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.removeprefix("!").rstrip("/")
            if (
                fnmatch.fnmatch(name, pattern)
                or fnmatch.fnmatch(name, pattern + "/*")
                or name.startswith(pattern + "/")
            ):
                included = negate
        if included:
            kept.append(Path(name))
    return kept


def test_every_copied_source_is_in_the_build_context() -> None:
    context = {str(p) for p in _context_files()}
    for stage in STAGES:
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _ = copy.split()
            for source in sources:
                assert source in context or any(f.startswith(source.rstrip("/") + "/") for f in context), (
                    source
                )


@pytest.mark.timeout(180)
def test_the_build_context_builds_the_package_with_the_entrypoint(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for relative in _context_files():
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    assert not (context / "tests").exists() and not (context / "helm").exists()
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(wheels),
            ".",
        ],
        cwd=context,
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("claw_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "claw-operator = claw_operator.cli:main" in archive.read(entry_points).decode()
    assert "claw_operator/cli.py" in names and "claw_operator/kube/runner.py" in names


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0] for requirement in requirements}


def test_the_image_installs_the_operator_without_the_sandbox_extra() -> None:
    """The simulators' dependencies (kubesim's CEL and schema validation) stay out of the image:
    they are the `[sandbox]` extra, which the build stage never asks for."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    sandbox = _names(project["optional-dependencies"]["sandbox"])
    assert {"cel-python", "jsonschema", "jsonpatch"} <= sandbox
    assert not _names(project["dependencies"]) & sandbox
    installs = [run for stage in STAGES for run in stage.all("RUN") if "pip install" in run]
    assert installs and not any("[" in run for run in installs), installs
