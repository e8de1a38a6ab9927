"""Generate the claw-operator Grafana dashboard with Grafana's own SDK (grafana-foundation-sdk).

    python docs/monitoring/dashboard.py          # writes the chart's files/claw-operator-dashboard.json
    python docs/monitoring/dashboard.py --check  # fails when the committed JSON is stale

The chart ships the JSON in a ConfigMap for Grafana's dashboard sidecar
(`grafanaDashboard.enabled`); it also imports as is (Dashboards → Import). Every query names
only metrics the operator exports (tests/contract/monitoring/ checks them against a scrape).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig, VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode, VariableRefresh

REPO = Path(__file__).resolve().parent.parent.parent
OUTPUT = REPO / "helm" / "claw-operator" / "files" / "claw-operator-dashboard.json"
UID = "claw-operator"

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
JOB = 'job=~"$job"'
RATE = "$__rate_interval"


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).range()


def series(
    title: str, description: str, *queries: prometheus.Dataquery, unit: str = "short"
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .height(8)
        .span(12)
    )
    for q in queries:
        panel = panel.with_target(q)
    return panel


def stacked(panel: timeseries.Panel) -> timeseries.Panel:
    return panel.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(60)


def single(title: str, description: str, expr: str, *, red_from: float | None = None) -> stat.Panel:
    steps = [Threshold(value=None, color="green")]
    if red_from is not None:
        steps.append(Threshold(value=red_from, color="red"))
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr).instant())
        .thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .graph_mode(BigValueGraphMode.AREA)
        .height(4)
        .span(6)
    )


def quantiles(metric: str, by: str = "") -> list[prometheus.Dataquery]:
    group = f"{by}, le" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{JOB}}}[{RATE}])))",
            f"p{int(q * 100)}{suffix}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
    ]


def build() -> dict[str, Any]:
    board = (
        dashboard.Dashboard("claw-operator")
        .uid(UID)
        .description("ClawInstances on Fly.io: the fleet, Fly's API, the reconciles and the operator itself.")
        .tags(["claw-operator", "fly.io", "kubernetes"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .editable()
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("job")
            .label("Operator job")
            .datasource(DATASOURCE)
            .query("label_values(claw_instances, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
        )
        .with_row(dashboard.Row("Fleet"))
        .with_panel(
            single("Instances", "ClawInstances the operator watches.", f"sum(claw_instances{{{JOB}}})")
        )
        .with_panel(
            single(
                "Ready", "ClawInstances with Ready=True.", f'sum(claw_instances_ready{{{JOB}, ready="True"}})'
            )
        )
        .with_panel(
            single(
                "Stalled",
                "ClawInstances blocked by an error retrying will not fix (alert ClawInstancesStalled).",
                f'sum(claw_instances_condition{{{JOB}, condition="Stalled", status="True"}})',
                red_from=1,
            )
        )
        .with_panel(
            single(
                "Destroys failing",
                "Deleted ClawInstances whose last destroy step failed; their finalizer holds them.",
                f"sum(claw_instances_destroy_failing{{{JOB}}})",
                red_from=1,
            )
        )
        .with_panel(
            stacked(
                series(
                    "Instances by phase",
                    "status.phase of every ClawInstance (None: not reconciled yet).",
                    query(f"sum by (phase) (claw_instances{{{JOB}}})", "{{phase}}"),
                )
            )
        )
        .with_panel(
            stacked(
                series(
                    "Instances by Ready",
                    "The Ready condition of every ClawInstance.",
                    query(f"sum by (ready) (claw_instances_ready{{{JOB}}})", "Ready={{ready}}"),
                )
            )
        )
        .with_panel(
            series(
                "Time to Ready",
                "From a ClawInstance's creation to its first Ready=True (quantiles over the rate window).",
                *quantiles("claw_instance_time_to_ready_seconds"),
                unit="s",
            )
        )
        .with_panel(
            series(
                "Restarts, repairs and failures",
                "Completed restarts by reason, mount repairs, and failed restarts.",
                query(
                    f"sum by (reason) (increase(claw_restarts_total{{{JOB}}}[{RATE}]))",
                    "restart {{reason}}",
                    "A",
                ),
                query(f"sum(increase(claw_mount_repairs_total{{{JOB}}}[{RATE}]))", "mount repaired", "B"),
                query(
                    f"sum by (reason) (increase(claw_restart_failures_total{{{JOB}}}[{RATE}]))",
                    "failed {{reason}}",
                    "C",
                ),
            )
        )
        .with_row(dashboard.Row("Fly Machines API"))
        .with_panel(
            stacked(
                series(
                    "Fly requests by operation and status",
                    "HTTP exchanges with the Fly Machines API per second "
                    "(each retry counts; error: no answer).",
                    query(
                        f"sum by (operation, status) (rate(claw_fly_requests_total{{{JOB}}}[{RATE}]))",
                        "{{operation}} {{status}}",
                    ),
                    unit="reqps",
                )
            )
        )
        .with_panel(
            series(
                "Fly errors and rate limits",
                "5xx, 429 and unanswered exchanges per second, by status (alerts ClawFlyAPIErrors, "
                "ClawFlyRateLimited).",
                query(
                    "sum by (status) "
                    f'(rate(claw_fly_requests_total{{{JOB}, status=~"5..|429|error"}}[{RATE}]))',
                    "{{status}}",
                ),
                unit="reqps",
            )
        )
        .with_panel(
            series(
                "Fly latency p90 by operation",
                "90th percentile of one exchange (waits are long polls, up to --fly-wait-timeout).",
                query(
                    "histogram_quantile(0.9, sum by (operation, le) "
                    f"(rate(claw_fly_request_duration_seconds_bucket{{{JOB}}}[{RATE}])))",
                    "{{operation}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            series(
                "Fly latency quantiles (all operations but waits)",
                "Quantiles of one exchange, the wait long polls left out.",
                *[
                    query(
                        f"histogram_quantile({q}, sum by (le) (rate(claw_fly_request_duration_seconds_bucket"
                        f'{{{JOB}, operation!="wait_machine"}}[{RATE}])))',
                        f"p{int(q * 100)}",
                        ref,
                    )
                    for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
                ],
                unit="s",
            )
        )
        .with_row(dashboard.Row("Reconciles"))
        .with_panel(
            stacked(
                series(
                    "Reconciles by outcome",
                    "success: settled; retry: a Fly call failed, backing off; conflict: status writes "
                    "kept conflicting; error: raised (alert ClawReconcileErrors).",
                    query(f"sum by (outcome) (rate(claw_reconciles_total{{{JOB}}}[{RATE}]))", "{{outcome}}"),
                    unit="ops",
                )
            )
        )
        .with_panel(
            series(
                "Reconcile duration",
                "One reconcile, all its passes and Fly calls included.",
                *quantiles("claw_reconcile_duration_seconds"),
                unit="s",
            )
        )
        .with_panel(
            series(
                "Warning Events by reason",
                "Kubernetes Warning Events the operator posted "
                "(StartFailed, CrashLoopBackOff, DestroyFailed…).",
                query(
                    f'sum by (reason) (increase(claw_events_total{{{JOB}, type="Warning"}}[{RATE}]))',
                    "{{reason}}",
                ),
            )
        )
        .with_panel(
            series(
                "Watch stream debt",
                "How long the watch has owed an event the operator caused; /healthz fails past "
                "--watch-stale-after (alert ClawWatchStale).",
                query(f"max(claw_watch_owed_event_seconds{{{JOB}}})", "owed for"),
                unit="s",
            )
        )
        .with_row(dashboard.Row("Operator process"))
        .with_panel(
            series(
                "Operator CPU",
                "CPU seconds per second of the operator process.",
                query(f"rate(process_cpu_seconds_total{{{JOB}}}[{RATE}])", "{{pod}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Operator memory (RSS)",
                "Resident memory of the operator process.",
                query(f"process_resident_memory_bytes{{{JOB}}}", "{{pod}}"),
                unit="bytes",
            )
        )
    )
    built = board.build()
    data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
    return data


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when the committed JSON is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if OUTPUT.exists() and OUTPUT.read_text() == text:
            return 0
        sys.stderr.write(f"{OUTPUT.relative_to(REPO)} is stale: run python docs/monitoring/dashboard.py\n")
        return 1
    OUTPUT.write_text(text)
    sys.stdout.write(f"wrote {OUTPUT.relative_to(REPO)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
