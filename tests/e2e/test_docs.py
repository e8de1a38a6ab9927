"""The docs a user reads are checked against the code they describe:
- every flag of `claw-operator run --help` is in the README's configuration reference, with
  the default the operator states (OperatorConfig, Timings);
- every condition reason and Event reason the lifecycle can write is in docs/troubleshooting.md.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from claw_operator.api.reasons import EventReason, Reason
from claw_operator.cli import build_parser
from claw_operator.fly.config import FlyClientConfig
from claw_operator.kube.config import OperatorConfig
from claw_operator.lifecycle.model import Timings
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


def _operator_default(dest: str) -> str:
    """The default of a `claw-operator run` flag as the README writes it, from the one place the
    operator states it."""
    config = OperatorConfig()
    value = getattr(config.timings, dest) if hasattr(config.timings, dest) else getattr(config, dest, None)
    if dest.startswith("shard_") and hasattr(config.shard_timings, dest.removeprefix("shard_")):
        value = getattr(config.shard_timings, dest.removeprefix("shard_"))  # --shard-lease-duration …
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_readme_states_the_operators_defaults() -> None:
    reference = section((REPO / "README.md").read_text(), "Configuration reference")
    rows = {
        match["flag"]: match["default"]
        for match in re.finditer(r"^\| `(?P<flag>--[a-z-]+)[^`]*` \| `(?P<default>[^`]*)`", reference, re.M)
    }
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    with_defaults = [
        action
        for action in commands.choices["run"]._actions
        if action.default is argparse.SUPPRESS and action.option_strings != ["-h", "--help"]
    ]
    assert len(with_defaults) >= 15
    for action in with_defaults:
        flag = action.option_strings[-1]
        assert rows.get(flag) == _operator_default(action.dest), f"the README's default of {flag}"


DURATION = re.compile(r"`(?:Timings\.|FlyClientConfig\.)?(?P<name>[a-z_]+)` \((?P<seconds>\d+) s\)")


def test_durations_named_in_the_docs_are_the_codes() -> None:
    """ "`Timings.loss_grace` (30 s)": a duration the docs name with its value is the code's."""
    stated: dict[str, float] = {
        f.name: getattr(Timings(), f.name).total_seconds()
        for f in fields(Timings)
        if isinstance(getattr(Timings(), f.name), timedelta)
    }
    stated |= {f.name: getattr(FlyClientConfig(token="t"), f.name) for f in fields(FlyClientConfig)}
    docs = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", REPO / "benchmarks" / "README.md"]
    checked = 0
    for path in docs:
        for match in DURATION.finditer(path.read_text()):
            if match["name"] in stated:
                assert float(match["seconds"]) == stated[match["name"]], f"{path.name}: {match[0]}"
                checked += 1
    assert checked >= 3


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
