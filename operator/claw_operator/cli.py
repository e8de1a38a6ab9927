"""`claw-operator`: the operator, its sandbox (flysim, kubesim) and the demo."""

from __future__ import annotations

import argparse
import os
import sys
from argparse import SUPPRESS
from collections.abc import Callable, Sequence

from claw_operator import __version__

Command = Callable[[argparse.Namespace], int]


def _no_sandbox(command: str, missing: ModuleNotFoundError) -> int:
    """The simulators' dependencies are an extra: say how to get them (exit status 2)."""
    if (missing.name or "").startswith("claw_operator"):
        raise missing  # our own module missing is a broken install, not a missing extra
    print(
        f"claw-operator {command}: needs the sandbox extra (no module {missing.name!r}): "
        "pip install 'claw-operator[sandbox]'",
        file=sys.stderr,
    )
    return 2


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the operator against the current kubeconfig (or in-cluster config)",
        description=(
            "Run the operator: reconcile ClawInstances against the Fly Machines API. "
            "The Fly token comes from env FLY_API_TOKEN or --fly-token-file."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces (default)")
    parser.add_argument(
        "--default-app", metavar="APP", help="Fly app for instances without spec.app (env FLY_APP)"
    )
    # The flags with a default declare none here (argparse.SUPPRESS: absent unless given); the
    # operator's configuration states each default once (kube/config.py, lifecycle Timings).
    parser.add_argument("--fly-api-url", metavar="URL", default=SUPPRESS, help="Fly Machines API base URL")
    parser.add_argument(
        "--fly-token-file", metavar="PATH", help="read the Fly token from this file instead of FLY_API_TOKEN"
    )
    parser.add_argument(
        "--metrics-port",
        metavar="P",
        type=int,
        default=SUPPRESS,
        help="port of /metrics, /healthz and /readyz",
    )
    parser.add_argument(
        "--watch-stale-after",
        metavar="S",
        type=float,
        default=SUPPRESS,
        help="/healthz fails when the watch stream owes an event for longer than this (seconds)",
    )
    parser.add_argument("--log-format", choices=["json", "text"], default=SUPPRESS, help="log line format")
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig to use (default: in-cluster, then $KUBECONFIG or ~/.kube/config)",
    )
    # Each sets the lifecycle Timings field of its name (`timings_from_seconds`).
    timing = parser.add_argument_group(
        "timing (seconds unless noted; KiloClaw's defaults)", argument_default=SUPPRESS
    )
    timing.add_argument("--poll-starting", type=float, help="check cadence while Starting")
    timing.add_argument("--poll-running", type=float, help="check cadence while Running")
    timing.add_argument("--poll-destroying", type=float, help="check cadence while Destroying")
    timing.add_argument("--poll-idle", type=float, help="check cadence in other phases")
    timing.add_argument(
        "--poll-jitter", type=float, help="random extra delay added to each check, up to this"
    )
    timing.add_argument(
        "--starting-timeout",
        type=float,
        help="Starting longer than this becomes Stopped (StartTimeout)",
    )
    timing.add_argument(
        "--stopped-threshold",
        type=int,
        help="consecutive stopped sightings before marking Stopped (a count)",
    )
    timing.add_argument("--fly-wait-timeout", type=float, help="server-side timeout of one Fly wait call")
    timing.add_argument(
        "--crash-window",
        type=float,
        help="a machine that stops or fails within this long of its start is a crash",
    )
    timing.add_argument(
        "--crash-backoff",
        type=float,
        help="wait before the start after a crash; doubled for each further consecutive crash",
    )
    timing.add_argument("--crash-backoff-max", type=float, help="the longest wait after consecutive crashes")
    shards = parser.add_argument_group(
        "shards (several replicas share the fleet through Kubernetes Leases; docs/operations.md)"
    )
    shards.add_argument(
        "--shards",
        choices=["off", "auto"],
        default=SUPPRESS,
        help="auto: hold a Lease in the ring and reconcile only this replica's share (default: off, "
        "a single replica reconciles everything)",
    )
    shards.add_argument(
        "--shard-lease-duration",
        type=int,
        default=SUPPRESS,
        help="leaseDurationSeconds of this replica's Lease (whole seconds)",
    )
    shards.add_argument(
        "--shard-renew-deadline",
        type=float,
        default=SUPPRESS,
        help="stop every Fly mutation when the Lease was not renewed for this long (seconds)",
    )
    shards.add_argument(
        "--shard-retry-period",
        type=float,
        default=SUPPRESS,
        help="renew and list the ring this often (seconds)",
    )
    shards.add_argument(
        "--shard-identity", help="this replica's name in the ring (default: POD_NAME, hostname)"
    )
    shards.add_argument(
        "--shard-namespace", help="where the Leases live (default: POD_NAMESPACE, the operator's namespace)"
    )
    parser.set_defaults(command=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from claw_operator.kube.config import ConfigError, config_from_flags
    from claw_operator.kube.logs import setup_logging
    from claw_operator.kube.runner import run_operator

    try:
        config = config_from_flags(vars(args))
    except ConfigError as exc:
        print(f"claw-operator run: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_format)
    if os.environ.get("CLAW_OPERATOR_TRACEMALLOC"):  # a benchmark's diagnostic (kube/memtrace.py)
        from claw_operator.kube.memtrace import install_from_env

        install_from_env()
    from claw_operator.kube.preflight import StartupError

    try:
        asyncio.run(run_operator(config))
    except KeyboardInterrupt:
        return 130
    except StartupError as exc:
        print(f"claw-operator run: {exc}", file=sys.stderr)
        return 2
    return 0


async def _until_signalled() -> None:
    """Serve until SIGINT or SIGTERM (a simulator's command)."""
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def _add_flysim(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "flysim",
        help="serve the Fly Machines API simulator",
        description="Serve a Fly Machines API simulator (for tests, the demo and benchmarks).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4280)
    parser.add_argument("--profile", choices=["fast", "realistic"], default="realistic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token", help="accept only this token (default: any)")
    parser.add_argument(
        "--rate-limit", action="store_true", help="enforce Fly's documented rate limits (429s)"
    )
    parser.add_argument(
        "--auto-apps",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create an unknown app on first use (default: on)",
    )

    def serve(args: argparse.Namespace) -> int:
        import asyncio

        try:
            from claw_operator.sim.flysim import FlySim
        except ModuleNotFoundError as missing:
            return _no_sandbox("flysim", missing)

        async def run() -> None:
            sim = FlySim(
                profile=args.profile,
                seed=args.seed,
                token=args.token,
                rate_limit=args.rate_limit,
                auto_apps=args.auto_apps,
            )
            base_url = await sim.start(args.host, args.port)
            print(f"flysim serving the Fly Machines API at {base_url}/v1 (control: {base_url}/_sim/)")
            print(f"FLY_API_URL={base_url}", flush=True)
            try:
                await _until_signalled()
            finally:
                await sim.stop()

        asyncio.run(run())
        print("flysim stopped", file=sys.stderr)
        return 0

    parser.set_defaults(command=serve)


def _add_kubesim(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "kubesim",
        help="serve the Kubernetes API emulator",
        description="Serve a Kubernetes API emulator that kubectl, kopf and client libraries use.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--kubeconfig", default="kubesim.kubeconfig", help="where to write the kubeconfig")
    parser.add_argument("--crds", help="apply every CRD in this directory at start")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a self-signed certificate (made with openssl, carried in the kubeconfig)",
    )

    def serve_kubesim(args: argparse.Namespace) -> int:
        import asyncio
        from pathlib import Path

        try:
            from claw_operator.sim.kubesim import KubeSim
            from claw_operator.sim.kubesim.tls import TlsUnavailable
        except ModuleNotFoundError as missing:
            return _no_sandbox("kubesim", missing)

        async def serve() -> None:
            sim = KubeSim(tls=args.tls)
            base_url = await sim.start(args.host, args.port)
            try:
                if args.crds:
                    names = await sim.apply_crds(args.crds)
                    print(f"applied CRDs: {', '.join(names) or '(none found)'}", file=sys.stderr)
                kubeconfig = sim.write_kubeconfig(args.kubeconfig).resolve()
                print(f"kubesim serving on {base_url} (Ctrl-C to stop)", file=sys.stderr)
                print(f"export KUBECONFIG={kubeconfig}", flush=True)
                await _until_signalled()
            finally:
                await sim.stop()

        if args.crds and not Path(args.crds).exists():
            print(f"claw-operator kubesim: no such CRD file or directory: {args.crds}", file=sys.stderr)
            return 2
        try:
            asyncio.run(serve())
        except OSError as exc:  # e.g. the port is taken
            print(f"claw-operator kubesim: {exc}", file=sys.stderr)
            return 1
        except TlsUnavailable as exc:
            print(f"claw-operator kubesim: --tls: {exc}", file=sys.stderr)
            return 1
        print("kubesim stopped", file=sys.stderr)
        return 0

    parser.set_defaults(command=serve_kubesim)


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole sandbox: kubesim + flysim + the operator",
        description="Start kubesim, flysim and the operator, install the CRD and an example.",
    )
    parser.add_argument(
        "--tour", action="store_true", help="run a scripted walk through the lifecycle and exit"
    )
    parser.add_argument(
        "--profile",
        choices=["fast", "realistic"],
        default="realistic",
        help="flysim's latency profile (default: realistic, seconds per step)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="where to write the kubeconfig, manifests and operator.log (default: a new temp dir)",
    )
    parser.add_argument(
        "--metrics-port", metavar="P", type=int, help="serve the operator's /metrics, /healthz, /readyz"
    )
    parser.set_defaults(command=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from claw_operator.demo import run_demo
    except ModuleNotFoundError as missing:
        return _no_sandbox("demo", missing)

    workdir = Path(args.workdir).resolve() if args.workdir else None
    return run_demo(tour=args.tour, profile=args.profile, workdir=workdir, metrics_port=args.metrics_port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claw-operator",
        description="Run ClawInstances (one Fly Volume + one Fly Machine) from Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_run(subparsers)
    _add_demo(subparsers)
    _add_flysim(subparsers)
    _add_kubesim(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.command
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
