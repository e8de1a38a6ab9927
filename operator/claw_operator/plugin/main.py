"""`kubectl claw VERB …`: the verbs, their flags, and exit codes a script can rely on.

Read-only unless the verb says otherwise: `inspect` and `get` only read (Kubernetes, and Fly
when a token is given); `restart`, `pause`, `resume` and `reconcile` write one field or
annotation of the ClawInstance, the way the kubectl cookbook in the README does by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from claw_operator import __version__
from claw_operator.api import PAUSED_ANNOTATION, RECONCILE_REQUEST_ANNOTATION
from claw_operator.fly import DEFAULT_BASE_URL
from claw_operator.fly.models import DESTROYED_MACHINE_STATES
from claw_operator.kube.instance import to_instance
from claw_operator.plugin import flyside
from claw_operator.plugin.errors import EXIT_CODES_HELP, ExitCode, PluginError
from claw_operator.plugin.kubeside import Cluster, parse_time
from claw_operator.plugin.render import render_inspect, table
from claw_operator.plugin.report import age, build_report, condition

PROG = "kubectl claw"
Verb = Callable[[argparse.Namespace], int]


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- Fly access


@dataclass(frozen=True)
class FlyAccess:
    """How to reach Fly: the token (never printed) or why there is none."""

    token: str | None
    api_url: str
    missing: str | None = None  # why Fly is not looked at

    def __repr__(self) -> str:  # the token never reaches a log line or a traceback
        return f"FlyAccess(api_url={self.api_url!r}, token={'set' if self.token else 'unset'})"


def fly_access(args: argparse.Namespace, cluster: Cluster) -> FlyAccess:
    url = args.fly_api_url or os.environ.get("FLY_API_URL") or DEFAULT_BASE_URL
    if args.no_fly:
        return FlyAccess(None, url, "--no-fly")
    if args.fly_token_secret:
        ref = args.fly_token_secret
        namespace, _, rest = ref.rpartition("/")
        name, _, key = rest.partition(":")
        token = cluster.read_secret_key(namespace or cluster.namespace, name, key or "token")
        if not token:
            raise PluginError(ExitCode.NOT_FOUND, f"the Fly token in Secret {ref} is empty")
        return FlyAccess(token, url)
    token = os.environ.get("FLY_API_TOKEN", "").strip()
    if not token:
        return FlyAccess(
            None,
            url,
            "no Fly token (set FLY_API_TOKEN, or pass --fly-token-secret [NS/]NAME[:KEY])",
        )
    return FlyAccess(token, url)


def _app_of(obj: dict[str, Any], default_app: str | None) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return str(spec.get("app") or status.get("appName") or default_app or "")


def _default_app(args: argparse.Namespace) -> str | None:
    return args.default_app or os.environ.get("FLY_APP") or None


# ---------------------------------------------------------------------------- verbs


def _dump(data: Any, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2, default=str)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def cmd_inspect(args: argparse.Namespace) -> int:
    cluster = _connect(args)
    namespace = args.namespace or cluster.namespace
    obj = cluster.get_instance(namespace, args.name)
    events = cluster.events(namespace, args.name, obj["metadata"].get("uid"))
    access = fly_access(args, cluster)
    app = _app_of(obj, _default_app(args))
    status = obj.get("status") or {}
    fly: flyside.FlySide | None = None
    note = access.missing
    if access.token and not app:
        note = "no Fly app known (spec.app, status.appName or --default-app / FLY_APP)"
    elif access.token:
        fly = flyside.observe(
            access.token, access.api_url, app, status.get("machineId"), status.get("volumeId")
        )
    now = _now()
    report = build_report(obj, events, fly=fly, fly_note=note, app=app, fly_api_url=access.api_url, now=now)
    print(_dump(report, args.output) if args.output else render_inspect(report, now))
    return ExitCode.OK


def _row(
    obj: dict[str, Any], machines: dict[str, Any] | str | None, now: datetime, app: str
) -> dict[str, Any]:
    metadata, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ready = condition(obj, "Ready")
    row: dict[str, Any] = {
        "namespace": metadata.get("namespace"),
        "name": metadata["name"],
        "phase": status.get("phase"),
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason"),
        "machine": status.get("machineId"),
        "flyState": None,
        "version": None,
        "region": status.get("region") or spec.get("region"),
        "image": spec.get("image"),
        "drift": None,
        "paused": str(metadata.get("annotations", {}).get(PAUSED_ANNOTATION, "")).lower() == "true",
        "age": age(parse_time(metadata.get("creationTimestamp")), now),
    }
    machine_id = status.get("machineId")
    if machines is None:
        row["flyState"] = "?"
    elif isinstance(machines, str):
        row["flyState"] = "error"
    elif machine_id:
        view = machines.get(machine_id)
        if view is None or view.state in DESTROYED_MACHINE_STATES:
            row["flyState"] = "gone"
        else:
            row["flyState"], row["version"] = view.state, view.instance_id
            found = flyside.drift(to_instance(obj, default_app=app, env=None, failures=0), view)
            row["drift"] = found.reason
    return row


def cmd_get(args: argparse.Namespace) -> int:
    cluster = _connect(args)
    namespace = None if args.all_namespaces else (args.namespace or cluster.namespace)
    items = cluster.list_instances(namespace)
    missing: set[str] = set()
    if args.names:
        wanted = set(args.names)
        missing = wanted - {o["metadata"]["name"] for o in items}
        items = [o for o in items if o["metadata"]["name"] in wanted]
        for name in sorted(missing):
            print(f'{PROG}: clawinstance "{name}" not found', file=sys.stderr)
        if not items:
            return ExitCode.NOT_FOUND
    access = fly_access(args, cluster)
    default_app = _default_app(args)
    apps = sorted({a for a in (_app_of(o, default_app) for o in items) if a})
    by_app: dict[str, Any] = {}
    if access.token and apps:
        by_app = flyside.machines_by_app(access.token, access.api_url, apps)
        for app, error in by_app.items():
            if isinstance(error, str):
                print(f"{PROG}: Fly app {app}: {error}", file=sys.stderr)
    elif access.missing and items:
        print(f"{PROG}: Fly state not shown: {access.missing}", file=sys.stderr)
    now = _now()
    rows = [
        _row(o, by_app.get(_app_of(o, default_app)) if access.token else None, now, _app_of(o, default_app))
        for o in items
    ]
    # Like kubectl: the rows found are shown, and a name not found still fails the command.
    done = ExitCode.NOT_FOUND if missing else ExitCode.OK
    if args.output:
        print(_dump(rows, args.output))
        return done
    if not rows:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        print(f"No clawinstances found in {where}.", file=sys.stderr)
        return ExitCode.OK
    headers = ["NAMESPACE", "NAME", "PHASE", "READY", "REASON", "MACHINE", "FLY-STATE", "VERSION", "REGION"]
    headers += ["DRIFT", "PAUSED", "IMAGE", "AGE"]
    keys = ["namespace", "name", "phase", "ready", "reason", "machine", "flyState", "version", "region"]
    keys += ["drift", "paused", "image", "age"]
    values = [[("yes" if r[k] else "no") if k == "paused" else r[k] for k in keys] for r in rows]
    print("\n".join(table(headers, values)))
    return done


def _patch_verb(args: argparse.Namespace, body: dict[str, Any], done: str) -> int:
    cluster = _connect(args)
    namespace = args.namespace or cluster.namespace
    cluster.patch_instance(namespace, args.name, body)
    print(f"clawinstance.claw.dev/{args.name} {done}")
    return ExitCode.OK


def cmd_restart(args: argparse.Namespace) -> int:
    stamp = _stamp(_now())
    return _patch_verb(
        args, {"spec": {"restartedAt": stamp}}, f"restart requested (spec.restartedAt={stamp})"
    )


def cmd_pause(args: argparse.Namespace) -> int:
    body = {"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}}
    return _patch_verb(args, body, f"paused ({PAUSED_ANNOTATION}=true: no Fly calls until resumed)")


def cmd_resume(args: argparse.Namespace) -> int:
    body = {"metadata": {"annotations": {PAUSED_ANNOTATION: None}}}
    return _patch_verb(args, body, f"resumed ({PAUSED_ANNOTATION} removed)")


def cmd_reconcile(args: argparse.Namespace) -> int:
    stamp = _stamp(_now())
    body = {"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: stamp}}}
    return _patch_verb(args, body, f"reconcile requested ({RECONCILE_REQUEST_ANNOTATION}={stamp})")


def _connect(args: argparse.Namespace) -> Cluster:
    return Cluster.connect(args.kubeconfig, args.context, getattr(args, "namespace", None))


# ---------------------------------------------------------------------------- the parser


VERBS = ("inspect", "get", "restart", "pause", "resume", "reconcile")


def _cluster_flags(parser: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    group = parser.add_argument_group("cluster")
    if all_namespaces:
        scope = group.add_mutually_exclusive_group()
        scope.add_argument("-n", "--namespace", metavar="NS", help="namespace (default: the context's)")
        scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    else:
        group.add_argument("-n", "--namespace", metavar="NS", help="namespace (default: the context's)")
    group.add_argument(
        "--kubeconfig", metavar="PATH", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
    )
    group.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")


def _fly_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Fly (read-only; without a token only the Kubernetes side is shown)")
    group.add_argument(
        "--fly-token-secret",
        metavar="[NS/]NAME[:KEY]",
        help="read the Fly token from this Secret (key default: token); default: env FLY_API_TOKEN",
    )
    group.add_argument(
        "--fly-api-url", metavar="URL", help=f"Fly Machines API (env FLY_API_URL; default {DEFAULT_BASE_URL})"
    )
    group.add_argument(
        "--default-app", metavar="APP", help="Fly app of instances without spec.app (env FLY_APP)"
    )
    group.add_argument("--no-fly", action="store_true", help="do not ask Fly (the Kubernetes side only)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look at and operate ClawInstances (one Fly Volume + one Fly Machine each).",
        epilog=EXIT_CODES_HELP + "\n\nshell completion: see `kubectl claw completion --help`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kubectl-claw {__version__}")
    verbs = parser.add_subparsers(title="verbs", metavar="VERB", required=True)

    def verb(name: str, summary: str, description: str, command: Verb) -> argparse.ArgumentParser:
        sub = verbs.add_parser(
            name,
            help=summary,
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(command=command)
        return sub

    inspect = verb(
        "inspect",
        "one instance: status, conditions, Events, and the live Fly machine and volume (read-only)",
        "Show a ClawInstance's phase, conditions (with age and reason), recent Events, and what Fly "
        "says: the machine (state, version, image, guest, region, mounts, checks, recent Fly events), "
        "the volume (size, region, attachment), the drift between spec and machine, the next check, "
        "and the last start/destroy errors. Without a Fly token, the Kubernetes side only.",
        cmd_inspect,
    )
    inspect.add_argument("name", metavar="NAME")
    inspect.add_argument("-o", "--output", choices=["yaml", "json"], help="machine-readable output")
    _cluster_flags(inspect)
    _fly_flags(inspect)

    get = verb(
        "get",
        "a wide table: status next to the Fly machine's state, version and drift (read-only)",
        "List ClawInstances with their status and, with a Fly token, each machine's live state, "
        "version and drift (one Fly list per app).",
        cmd_get,
    )
    get.add_argument("names", metavar="NAME", nargs="*", help="only these (default: all)")
    get.add_argument("-o", "--output", choices=["yaml", "json"], help="machine-readable output")
    _cluster_flags(get, all_namespaces=True)
    _fly_flags(get)

    for name, summary, description, command in (
        (
            "restart",
            "restart the machine: sets spec.restartedAt to now (writes)",
            "Request a restart (stop, update, start) by setting spec.restartedAt to the current time, "
            "like `kubectl rollout restart`.",
            cmd_restart,
        ),
        (
            "pause",
            f"stop reconciling: annotates {PAUSED_ANNOTATION}=true (writes)",
            "Pause reconciliation: the operator makes no Fly call for this instance until resumed "
            "(reported as Reconciling=False/Paused).",
            cmd_pause,
        ),
        (
            "resume",
            f"reconcile again: removes {PAUSED_ANNOTATION} (writes)",
            "Resume reconciliation of a paused instance.",
            cmd_resume,
        ),
        (
            "reconcile",
            f"check Fly now and lift a stall: sets {RECONCILE_REQUEST_ANNOTATION} (writes)",
            "Request a reconcile now: the operator observes Fly at once (lifting a Stalled condition) "
            "and echoes the value into status.lastHandledReconcileAt.",
            cmd_reconcile,
        ),
    ):
        sub = verb(name, summary, description, command)
        sub.add_argument("name", metavar="NAME")
        _cluster_flags(sub)

    completion = verb(
        "completion", "how to enable shell completion for `kubectl claw`", COMPLETION_HELP, cmd_completion
    )
    completion.add_argument(
        "shell", nargs="?", choices=["bash", "zsh"], help="print a script for kubectl-claw itself"
    )
    return parser


COMPLETION_HELP = (
    "kubectl (1.26+) completes a plugin's arguments through an executable named "
    "kubectl_complete-claw on PATH; this package installs it next to kubectl-claw, so "
    "`kubectl claw <TAB>` completes verbs, flags and ClawInstance names once kubectl's own "
    "completion is enabled (e.g. `source <(kubectl completion bash)`). With `bash` or `zsh`, "
    "prints a completion script for calling `kubectl-claw` directly."
)

BASH_COMPLETION = """# kubectl-claw completion (bash; zsh with bashcompinit)
_kubectl_claw() {
    local IFS=$'\\n'
    local out
    out=$(kubectl_complete-claw "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    COMPREPLY=( $(printf '%s\\n' "$out" | grep -v '^:' | cut -f1) )
}
complete -F _kubectl_claw kubectl-claw
"""


def cmd_completion(args: argparse.Namespace) -> int:
    if args.shell == "zsh":
        print("autoload -U +X bashcompinit && bashcompinit")
    if args.shell:
        print(BASH_COMPLETION, end="")
        return ExitCode.OK
    print(COMPLETION_HELP)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Verb = args.command
    try:
        return int(command(args))
    except PluginError as exc:
        print(f"{PROG}: {exc.message}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        return 130


def run() -> None:
    sys.exit(main())
