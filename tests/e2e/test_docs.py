"""The docs a user reads are checked against the code they describe:
- every flag of `claw-operator run --help` is in the README's configuration reference;
- every condition reason and Event reason the lifecycle can write is in docs/troubleshooting.md.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CLI = str(Path(sys.executable).parent / "claw-operator")
LIFECYCLE = REPO / "operator" / "claw_operator" / "lifecycle"
REASON = re.compile(r"^[A-Z][A-Za-z]*$")


def run_help_flags() -> list[str]:
    """Every option string `claw-operator run --help` prints (short and long)."""
    text = subprocess.run([CLI, "run", "--help"], capture_output=True, text=True, check=True).stdout
    options = text.split("options:", 1)[1]
    return sorted(set(re.findall(r"(?<![\w-])(--?[a-zA-Z][a-zA-Z-]*)", options)))


def section(markdown: str, heading: str) -> str:
    """The body of a `## heading` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def test_help_parsing_finds_the_flags() -> None:
    flags = run_help_flags()
    assert "--poll-starting" in flags and "-n" in flags and "--namespace" in flags and "-A" in flags
    assert len(flags) >= 17


@pytest.mark.parametrize("flag", run_help_flags())
def test_every_run_flag_is_in_the_readme_configuration_reference(flag: str) -> None:
    reference = section((REPO / "README.md").read_text(), "Configuration reference")
    assert re.search(rf"`{re.escape(flag)}[ `=]", reference), (
        f"{flag} is not in the README's configuration reference"
    )


def test_readme_keeps_try_it_and_test_it_first() -> None:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)\n", readme)
    assert commands[:2] == ["make demo", "make test"]
    headings = re.findall(r"^## (.+)$", readme, re.M)
    assert headings[:2] == ["Try it", "Test it"]


# ---------------------------------------------------------------------------- reasons


def lifecycle_reasons() -> set[str]:
    """Reasons the lifecycle writes: string constants passed to event/record/override/
    fail_start/ConditionValue, the constants they name, the failure-reason tables and the
    restart reasons."""
    trees = {path.name: ast.parse(path.read_text()) for path in LIFECYCLE.glob("*.py")}
    constants: dict[str, str] = {}
    for tree in trees.values():
        for node in tree.body:
            target = (
                node.target
                if isinstance(node, ast.AnnAssign)
                else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            )
            value = getattr(node, "value", None)
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                constants[target.id] = value.value
    # The reason tables: conditions.py names its reasons, failures.py its Fly-failure reasons.
    reasons = {
        value
        for name, value in constants.items()
        if REASON.match(value)
        and (name in _module_names(trees["conditions.py"]) or name in _module_names(trees["failures.py"]))
    }
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == "RestartReason":
                reasons.update(
                    s.value.value
                    for s in node.body
                    if isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant)
                )
            if name == "failures.py" and isinstance(node, ast.Dict):
                reasons.update(v.value for v in node.values if isinstance(v, ast.Constant))
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func not in ("event", "record", "override", "fail_start", "ConditionValue"):
                continue
            for arg in node.args[1:]:
                value = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", ""))
                if isinstance(value, str) and REASON.match(value):
                    reasons.add(value)
    return reasons


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_the_reason_scan_finds_the_known_ones() -> None:
    reasons = lifecycle_reasons()
    expected = {
        "StartFailed",
        "MountRepaired",
        "Restarting",
        "Paused",
        "VolumeLost",
        "MachineRecovered",
        "InsufficientCapacity",
        "FlyAPIError",
        "QuotaExceeded",
        "ConfigChanged",
        "NotStalled",
    }
    assert expected <= reasons, expected - reasons


@pytest.mark.parametrize("reason", sorted(lifecycle_reasons()))
def test_every_reason_is_explained_in_troubleshooting(reason: str) -> None:
    doc = (REPO / "docs" / "troubleshooting.md").read_text()
    assert f"`{reason}`" in doc, f"docs/troubleshooting.md does not explain {reason}"
