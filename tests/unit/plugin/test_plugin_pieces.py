"""The plugin's pure pieces: the krew manifest, completion, the next-check line, ages."""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from claw_operator import __version__
from claw_operator.plugin.completion import candidates
from claw_operator.plugin.main import VERBS, build_parser
from claw_operator.plugin.report import age, next_check
from tests.conftest import REPO

KREW = REPO / "docs" / "krew"


def _archive_module() -> Any:
    spec = importlib.util.spec_from_file_location("krew_archive", KREW / "archive.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_krew_manifest_is_a_valid_plugin_pinned_to_the_shim_archive() -> None:
    manifest = yaml.safe_load((KREW / "claw.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "claw"  # `kubectl claw`
    spec = manifest["spec"]
    assert spec["version"] == f"v{__version__}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", spec["version"])
    assert 0 < len(spec["shortDescription"]) <= 50
    assert spec["homepage"].startswith("https://")
    for platform in spec["platforms"]:
        assert platform["selector"]["matchExpressions"][0]["key"] == "os"
        assert platform["uri"].startswith("https://") and spec["version"] in platform["uri"]
        assert platform["bin"] == "kubectl-claw"
        assert platform["sha256"] == _archive_module().sha256()  # python docs/krew/archive.py


def test_krew_archive_is_reproducible() -> None:
    archive = _archive_module()
    assert archive.archive_bytes() == archive.archive_bytes()


def test_completion_offers_verbs_flags_and_output_formats() -> None:
    assert set(candidates([""])) == {*VERBS, "completion"}
    assert candidates(["res"]) == ["restart", "resume"]
    assert candidates(["inspect", "-o", ""]) == ["yaml", "json"]
    assert "--fly-token-secret" in candidates(["inspect", "--fly"])
    assert "--all-namespaces" in candidates(["get", "--a"])
    assert "--all-namespaces" not in candidates(["inspect", "--a"])
    assert candidates(["completion", ""]) == ["bash", "zsh"]
    assert candidates(["nonsense", ""]) == []


def test_every_verb_has_help_naming_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in (*VERBS, "completion"):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args([verb, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: kubectl claw {verb}")
        assert "exit codes:" in out and "3  no such ClawInstance" in out


def _obj(**status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = status.pop("metadata", {})
    return {"metadata": {"name": "web", **meta}, "spec": {}, "status": status}


def _stalled(reason: str) -> dict[str, Any]:
    return {"type": "Stalled", "status": "True", "reason": reason}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(_obj(phase="Running"), "every 5m (+ up to 1m jitter) while Running", id="running"),
        pytest.param(_obj(phase="Starting"), "every 1m (+ up to 1m jitter) while Starting", id="starting"),
        pytest.param(_obj(phase="Stopped"), "every 30m (+ up to 1m jitter) while Stopped", id="idle"),
        pytest.param(
            _obj(phase="Running", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}),
            "every 1m (+ up to 1m jitter) while Destroying",
            id="deleting",
        ),
        pytest.param(
            _obj(phase="Running", metadata={"annotations": {"claw.dev/paused": "true"}}),
            "none: reconciliation is paused (kubectl claw resume web)",
            id="paused",
        ),
        pytest.param(
            _obj(phase="Stopped", conditions=[_stalled("Unauthorized")]),
            "none: Stalled (Unauthorized) waits for a spec change or kubectl claw reconcile web",
            id="stalled",
        ),
        pytest.param(
            _obj(phase="Running", metadata={"annotations": {"claw.dev/reconcile-requested-at": "r1"}}),
            "now: a reconcile was requested (r1) and is not handled yet",
            id="requested",
        ),
        pytest.param(
            _obj(
                phase="Running",
                lastHandledReconcileAt="r1",
                metadata={"annotations": {"claw.dev/reconcile-requested-at": "r1"}},
            ),
            "every 5m (+ up to 1m jitter) while Running",
            id="request-handled",
        ),
    ],
)
def test_next_check_says_when_the_operator_looks_again(obj: dict[str, Any], expected: str) -> None:
    assert next_check(obj).startswith(expected)


def test_age_reads_like_kubectl() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert age(None, now) == "<unknown>"
    assert age(now - timedelta(seconds=45), now) == "45s"
    assert age(now - timedelta(minutes=12), now) == "12m"
    assert age(now - timedelta(hours=5), now) == "5h"
    assert age(now - timedelta(days=3), now) == "3d"
