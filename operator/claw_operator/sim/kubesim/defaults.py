"""The built-in workload, service and storage kinds as the apiserver stores them: the required
fields it validates, the defaults it fills in (`SetDefaults_*` and the registries'
`PrepareForCreate`), and their initial status. No controller or kubelet runs: a Pod stays
`Pending`, a Deployment never gets a ReplicaSet, a PVC is never bound.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from typing import Any

from .errors import invalid

Causes = list[dict[str, str]]
# Allocates a free ClusterIP or NodePort: `allocate("clusterIP")` -> "10.96.0.12".
Allocator = Callable[[str], Any]

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
_RESTART_POLICIES = ("Always", "OnFailure", "Never")


def _required(causes: Causes, field: str, message: str = "Required value") -> None:
    causes.append({"reason": "FieldValueRequired", "message": message, "field": field})


def _unsupported(causes: Causes, field: str, value: Any, supported: tuple[str, ...]) -> None:
    allowed = ", ".join(f'"{s}"' for s in supported)
    causes.append(
        {
            "reason": "FieldValueNotSupported",
            "message": f'Unsupported value: "{value}": supported values: {allowed}',
            "field": field,
        }
    )


def _invalid_cause(causes: Causes, field: str, message: str) -> None:
    causes.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {message}", "field": field})


# --- pods ----------------------------------------------------------------------------------------


def _container(container: dict[str, Any], field: str, causes: Causes) -> None:
    if not container.get("name"):
        _required(causes, f"{field}.name")
    if not container.get("image"):
        _required(causes, f"{field}.image")
    image = str(container.get("image") or "")
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = image.endswith(":latest") or not tagged
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def pod_spec(
    spec: Any, field: str, causes: Causes, *, restart_policies: tuple[str, ...] = _RESTART_POLICIES
) -> None:
    """Validate and default a PodSpec in place (in a Pod or a workload's template)."""
    if not isinstance(spec, dict):
        _required(causes, field)
        return
    containers = spec.get("containers")
    if not containers:
        _required(causes, f"{field}.containers")
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            if isinstance(container, dict):
                _container(container, f"{field}.{key}[{index}]", causes)
    spec.setdefault("restartPolicy", "Always")
    if spec["restartPolicy"] not in restart_policies:
        _unsupported(causes, f"{field}.restartPolicy", spec["restartPolicy"], restart_policies)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")


def _template(spec: dict[str, Any], field: str, causes: Causes, **kwargs: Any) -> dict[str, Any]:
    template = spec.get("template")
    if not isinstance(template, dict):
        _required(causes, f"{field}.template")
        return {}
    template.setdefault("metadata", {})
    pod_spec(template.get("spec"), f"{field}.template.spec", causes, **kwargs)
    return template


def _selector_matches(spec: dict[str, Any], template: dict[str, Any], field: str, causes: Causes) -> None:
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        _required(causes, f"{field}.selector")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        _invalid_cause(
            causes,
            f"{field}.template.metadata.labels",
            f"{labels}: `selector` does not match template `labels`",
        )


def _pod(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec(spec, "spec", causes)
    if old is None:
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


# --- workloads -----------------------------------------------------------------------------------


def _deployment(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    template = _template(spec, "spec", causes, restart_policies=("Always",))
    _selector_matches(spec, template, "spec", causes)
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    if old is None:
        obj.setdefault("status", {})


def _replica_set(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    template = _template(spec, "spec", causes, restart_policies=("Always",))
    _selector_matches(spec, template, "spec", causes)
    spec.setdefault("replicas", 1)
    if old is None:
        obj["status"] = {"replicas": 0}


def _replication_controller(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    template = _template(spec, "spec", causes, restart_policies=("Always",))
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not spec.get("selector"):
        spec["selector"] = dict(labels)  # an RC's selector defaults to its template's labels
    if not spec["selector"]:
        _required(causes, "spec.selector")
    elif any(labels.get(k) != v for k, v in spec["selector"].items()):
        _invalid_cause(
            causes, "spec.template.metadata.labels", f"{labels}: `selector` does not match template `labels`"
        )
    if not obj["metadata"].get("labels") and labels:
        obj["metadata"]["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    if old is None:
        obj["status"] = {"replicas": 0}


def _stateful_set(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    template = _template(spec, "spec", causes, restart_policies=("Always",))
    _selector_matches(spec, template, "spec", causes)
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    if old is None:
        obj["status"] = {"replicas": 0, "availableReplicas": 0}


def _daemon_set(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    template = _template(spec, "spec", causes, restart_policies=("Always",))
    _selector_matches(spec, template, "spec", causes)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    if old is None:
        obj["status"] = {
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberMisscheduled": 0,
            "numberReady": 0,
        }


CONTROLLER_UID = "batch.kubernetes.io/controller-uid"


def _job_spec(spec: dict[str, Any], field: str, causes: Causes, metadata: dict[str, Any] | None) -> None:
    template = _template(spec, field, causes, restart_policies=("OnFailure", "Never"))
    spec.setdefault("parallelism", 1)
    if spec.get("completions") is None and spec.get("parallelism") == 1:
        spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    if metadata is not None and not spec.get("manualSelector"):
        # The apiserver generates the selector from the Job's uid, and labels the template with it.
        uid = metadata["uid"]
        labels = {
            CONTROLLER_UID: uid,
            "controller-uid": uid,
            "batch.kubernetes.io/job-name": metadata["name"],
            "job-name": metadata["name"],
        }
        spec.setdefault("selector", {"matchLabels": {CONTROLLER_UID: uid}})
        template_labels = template.setdefault("metadata", {}).setdefault("labels", {})
        for key, value in labels.items():
            template_labels.setdefault(key, value)


def _job(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    _job_spec(spec, "spec", causes, obj["metadata"] if old is None else None)
    if old is None:
        obj["status"] = {}


def _cron_job(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("schedule"):
        _required(causes, "spec.schedule")
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        _required(causes, "spec.jobTemplate")
    else:
        _job_spec(job_template.setdefault("spec", {}), "spec.jobTemplate.spec", causes, None)
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    if old is None:
        obj["status"] = {}


# --- services, networking, storage, nodes --------------------------------------------------------


def _service(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes, allocate: Allocator) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    kind = spec["type"]
    supported = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    if kind not in supported:
        _unsupported(causes, "spec.type", kind, supported)
        return
    ports = spec.get("ports") or []
    if kind == "ExternalName":
        if not spec.get("externalName"):
            _required(causes, "spec.externalName")
    elif not ports and spec.get("clusterIP") != "None":
        _required(causes, "spec.ports")
    for index, port in enumerate(ports):
        if not isinstance(port, dict) or not port.get("port"):
            _required(causes, f"spec.ports[{index}].port")
            continue
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
        if kind in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            previous = _old_port(old, port)
            port["nodePort"] = previous if previous is not None else allocate("nodePort")
    if len(ports) > 1 and not all(isinstance(p, dict) and p.get("name") for p in ports):
        _required(causes, "spec.ports[0].name", "Required value")
    spec.setdefault("sessionAffinity", "None")
    if kind != "ExternalName":
        old_spec = (old or {}).get("spec") or {}
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or allocate("clusterIP")
        elif old_spec.get("clusterIP") and spec["clusterIP"] != old_spec["clusterIP"]:
            _invalid_cause(causes, "spec.clusterIP", f'"{spec["clusterIP"]}": field is immutable')
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    obj.setdefault("status", {"loadBalancer": {}})


def _old_port(old: dict[str, Any] | None, port: dict[str, Any]) -> Any:
    for previous in ((old or {}).get("spec") or {}).get("ports") or []:
        if previous.get("port") == port.get("port") and previous.get("protocol", "TCP") == port.get(
            "protocol"
        ):
            return previous.get("nodePort")
    return None


def _ingress(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    for index, rule in enumerate(spec.get("rules") or []):
        for number, path in enumerate(((rule or {}).get("http") or {}).get("paths") or []):
            if isinstance(path, dict) and not path.get("pathType"):
                _required(causes, f"spec.rules[{index}].http.paths[{number}].pathType")
    if not spec.get("rules") and not spec.get("defaultBackend"):
        _invalid_cause(causes, "spec.rules", "either `defaultBackend` or `rules` must be specified")
    if old is None:
        obj["status"] = {"loadBalancer": {}}


def _storage_request(spec: dict[str, Any], field: str, causes: Causes) -> None:
    if not spec.get("accessModes"):
        _required(causes, f"{field}.accessModes")
    spec.setdefault("volumeMode", "Filesystem")


def _claim(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    _storage_request(spec, "spec", causes)
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        _required(causes, "spec.resources[storage]")
    if old is None:
        obj["status"] = {"phase": "Pending"}


def _volume(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    spec = obj.setdefault("spec", {})
    _storage_request(spec, "spec", causes)
    if not (spec.get("capacity") or {}).get("storage"):
        _required(causes, "spec.capacity")
    sources = [k for k in spec if k not in _PV_NON_SOURCES]
    if not sources:
        _required(causes, "spec", "Required value: must specify a volume type")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    if old is None:
        obj["status"] = {"phase": "Pending"}


_PV_NON_SOURCES = {
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeMode",
    "volumeAttributesClassName",
}


def _node(obj: dict[str, Any], old: dict[str, Any] | None, causes: Causes) -> None:
    obj.setdefault("spec", {})
    if old is None:
        obj.setdefault("status", {})
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/hostname", obj["metadata"]["name"])


Preparer = Callable[[dict[str, Any], dict[str, Any] | None, Causes], None]
_PREPARERS: dict[tuple[str, str], Preparer] = {
    ("", "pods"): _pod,
    ("", "replicationcontrollers"): _replication_controller,
    ("", "persistentvolumeclaims"): _claim,
    ("", "persistentvolumes"): _volume,
    ("", "nodes"): _node,
    ("apps", "deployments"): _deployment,
    ("apps", "replicasets"): _replica_set,
    ("apps", "statefulsets"): _stateful_set,
    ("apps", "daemonsets"): _daemon_set,
    ("batch", "jobs"): _job,
    ("batch", "cronjobs"): _cron_job,
    ("networking.k8s.io", "ingresses"): _ingress,
}


def prepare(
    group: str,
    plural: str,
    kind: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    allocate: Allocator,
) -> bool:
    """Default and validate `obj` (in place) if it is one of these kinds; 422 on what is missing.
    Returns whether the kind is handled here."""
    causes: Causes = []
    if (group, plural) == ("", "services"):
        _service(obj, old, causes, allocate)
    elif (group, plural) in _PREPARERS:
        if old is not None and "status" not in obj and "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        _PREPARERS[(group, plural)](obj, old, causes)
    else:
        return False
    if causes:
        raise invalid(kind, group, obj["metadata"].get("name", ""), causes)
    return True
