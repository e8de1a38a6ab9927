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

from claw_operator.api.reasons import EventReason, Reason
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
    """Every reason the operator can write: the members of the one vocabulary."""
    return {member.value for member in (*Reason, *EventReason)}


def _literal_reasons() -> list[str]:
    """Reason-shaped string literals passed where a reason goes: there must be none left."""
    found = []
    for path in LIFECYCLE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func not in ("event", "record", "override", "fail_start", "ConditionValue"):
                continue
            found += [
                f"{path.name}:{node.lineno} {arg.value}"
                for arg in node.args[1:3]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and REASON.match(arg.value)
            ]
    return found


def test_no_reason_is_a_string_literal() -> None:
    assert _literal_reasons() == []


@pytest.mark.parametrize("reason", sorted(lifecycle_reasons()))
def test_every_reason_is_explained_in_troubleshooting(reason: str) -> None:
    doc = (REPO / "docs" / "troubleshooting.md").read_text()
    assert f"`{reason}`" in doc, f"docs/troubleshooting.md does not explain {reason}"
