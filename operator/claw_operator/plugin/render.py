"""Text for a person: the inspect report laid out like `kubectl describe`, and tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from claw_operator.plugin.kubeside import parse_time
from claw_operator.plugin.report import age


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> list[str]:
    """Columns padded like kubectl's (three spaces apart); None shows as <none>."""
    cells = [[str(h) for h in headers]] + [["<none>" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        (indent + "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip()
        for row in cells
    ]


def _fly_lines(fly: dict[str, Any], now: datetime) -> list[str]:
    if not fly.get("looked"):
        return [f"Fly:         not looked at: {fly.get('note')}", "             (the Kubernetes side only)"]
    lines = [f"Fly:         app {fly.get('app')} at {fly.get('apiUrl')}"]
    if fly.get("note"):
        lines.append(f"  {fly['note']}")
    for error in fly.get("errors") or []:
        lines.append(f"  error:     {error}")
    machine = fly.get("machine")
    if machine:
        lines.append(
            f"  Machine:   {machine['id']}  {machine['state']}  version {machine['version'] or '<none>'}  "
            f"region {machine['region']}"
        )
        lines.append(f"             image {machine['image']}  guest {machine['guest']}")
        mounts = ", ".join(machine["mounts"]) or "(no mount)"
        lines.append(
            f"             mounts {mounts}{'' if machine['mountsOwnVolume'] else '  <- not its own volume'}"
        )
    elif fly.get("machineGone"):
        lines.append("  Machine:   gone on Fly (404 or destroyed)")
    checks = fly.get("checks") or []
    if machine:
        if checks:
            lines.append("  Checks:")
            lines += table(
                ["NAME", "STATUS", "OUTPUT"], [[c["name"], c["status"], c["output"]] for c in checks], "    "
            )
        else:
            lines.append("  Checks:    none reported")
    volume = fly.get("volume")
    if volume:
        attached = volume["attachedMachineId"] or "nothing"
        lines.append(
            f"  Volume:    {volume['id']}  {volume['sizeGB']}GB  region {volume['region']}  "
            f"{volume['state']}  attached to {attached}"
        )
    elif fly.get("volumeGone"):
        lines.append("  Volume:    gone on Fly (404 or destroyed)")
    if machine:
        drift = fly.get("drift")
        if drift:
            lines.append(f"  Drift:     {drift['change']}: {drift['pending']} ({drift['reason']})")
        else:
            lines.append("  Drift:     none (the machine matches the spec)")
        if fly.get("envCompared") is False:
            lines.append("             env not compared (secretEnv values are never read)")
    events = fly.get("events") or []
    if events:
        lines.append("  Recent Fly machine events:")
        lines += table(
            ["AGE", "TYPE", "STATUS", "SOURCE"],
            [[age(parse_time(e["at"]), now), e["type"], e["status"], e["source"]] for e in events],
            "    ",
        )
    return lines


def render_inspect(report: dict[str, Any], now: datetime) -> str:
    spec = report["spec"]
    ready = report["ready"] + (f" ({report['readyReason']})" if report.get("readyReason") else "")
    lines = [
        f"Name:        {report['name']}",
        f"Namespace:   {report['namespace']}",
        f"Age:         {report['age']}" + ("  (being deleted)" if report["deleting"] else ""),
        f"Phase:       {report['phase'] or '<not reconciled yet>'}",
        f"Ready:       {ready}",
        f"Generation:  {report['generation']} (observed {report['observedGeneration']})",
        f"Paused:      {'yes' if report['paused'] else 'no'}",
        f"Spec:        app {spec['app']}  region {spec['region']}  image {spec['image']}",
        f"             guest {spec['guest']}  volume {spec['volume']}  state {spec['state']}",
    ]
    if spec.get("restartedAt"):
        lines.append(f"             restartedAt {spec['restartedAt']}")
    if spec["secretEnv"]:
        lines.append(f"             secretEnv {', '.join(spec['secretEnv'])}")
    status = report["status"]
    lines.append(
        f"Status:      machine {status['machineId'] or '<none>'} ({status['machineState'] or '?'})  "
        f"volume {status['volumeId'] or '<none>'}  region {status['region'] or '<none>'}"
    )
    lines.append("Conditions:")
    if report["conditions"]:
        lines += table(
            ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
            [[c["type"], c["status"], c["reason"], c["age"], c["message"]] for c in report["conditions"]],
            "  ",
        )
    else:
        lines.append("  <none yet: the operator has not reconciled it>")
    start_error = report.get("lastStartError")
    lines.append(
        f"Last start error:    {start_error['message']} (at {start_error['at']})"
        if start_error
        else "Last start error:    none"
    )
    destroy_error = report.get("lastDestroyError")
    lines.append(
        (
            f"Last destroy error:  {destroy_error['op']} ({destroy_error['status']}): "
            f"{destroy_error['message']} (at {destroy_error['at']})"
        )
        if destroy_error
        else "Last destroy error:  none"
    )
    lines.append(f"Next check:  {report['nextCheck']}")
    lines += _fly_lines(report["fly"], now)
    lines.append("Events:")
    if report["events"]:
        lines += table(
            ["AGE", "TYPE", "REASON", "COUNT", "MESSAGE"],
            [[e["age"], e["type"], e["reason"], e["count"], e["message"]] for e in report["events"]],
            "  ",
        )
    else:
        lines.append("  <none>")
    return "\n".join(lines)
