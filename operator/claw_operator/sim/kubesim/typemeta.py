# ruff: noqa: E501
"""The shape of the built-in kinds kubesim serves, as strategic merge patch and server-side
apply need it: per object type, its non-scalar fields — nested types, list types and map
keys, patch strategies and merge keys. Generated from the Kubernetes v1.32.0 OpenAPI
schemas by tests/contract/kubesim/test_typemeta.py; do not edit by hand."""

from typing import Any

KINDS: dict[tuple[str, str], str] = {
    ("", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("", "Endpoints"): "io.k8s.api.core.v1.Endpoints",
    ("", "Event"): "io.k8s.api.core.v1.Event",
    ("", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("", "Node"): "io.k8s.api.core.v1.Node",
    ("", "PersistentVolume"): "io.k8s.api.core.v1.PersistentVolume",
    ("", "PersistentVolumeClaim"): "io.k8s.api.core.v1.PersistentVolumeClaim",
    ("", "Pod"): "io.k8s.api.core.v1.Pod",
    ("", "ReplicationController"): "io.k8s.api.core.v1.ReplicationController",
    ("", "Secret"): "io.k8s.api.core.v1.Secret",
    ("", "Service"): "io.k8s.api.core.v1.Service",
    ("", "ServiceAccount"): "io.k8s.api.core.v1.ServiceAccount",
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
    ): "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ("apps", "DaemonSet"): "io.k8s.api.apps.v1.DaemonSet",
    ("apps", "Deployment"): "io.k8s.api.apps.v1.Deployment",
    ("apps", "ReplicaSet"): "io.k8s.api.apps.v1.ReplicaSet",
    ("apps", "StatefulSet"): "io.k8s.api.apps.v1.StatefulSet",
    ("batch", "CronJob"): "io.k8s.api.batch.v1.CronJob",
    ("batch", "Job"): "io.k8s.api.batch.v1.Job",
    ("coordination.k8s.io", "Lease"): "io.k8s.api.coordination.v1.Lease",
    ("events.k8s.io", "Event"): "io.k8s.api.events.v1.Event",
    ("networking.k8s.io", "Ingress"): "io.k8s.api.networking.v1.Ingress",
    ("rbac.authorization.k8s.io", "ClusterRole"): "io.k8s.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ("rbac.authorization.k8s.io", "Role"): "io.k8s.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io", "RoleBinding"): "io.k8s.api.rbac.v1.RoleBinding",
}

TYPES: dict[str, dict[str, Any]] = {
    "io.k8s.api.apps.v1.DaemonSet": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.DaemonSetSpec"},
        "status": {"type": "io.k8s.api.apps.v1.DaemonSetStatus"},
    },
    "io.k8s.api.apps.v1.DaemonSetCondition": {},
    "io.k8s.api.apps.v1.DaemonSetSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
        "updateStrategy": {"type": "io.k8s.api.apps.v1.DaemonSetUpdateStrategy"},
    },
    "io.k8s.api.apps.v1.DaemonSetStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.apps.v1.DaemonSetCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        }
    },
    "io.k8s.api.apps.v1.DaemonSetUpdateStrategy": {
        "rollingUpdate": {"type": "io.k8s.api.apps.v1.RollingUpdateDaemonSet"}
    },
    "io.k8s.api.apps.v1.Deployment": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.DeploymentSpec"},
        "status": {"type": "io.k8s.api.apps.v1.DeploymentStatus"},
    },
    "io.k8s.api.apps.v1.DeploymentCondition": {},
    "io.k8s.api.apps.v1.DeploymentSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "strategy": {"type": "io.k8s.api.apps.v1.DeploymentStrategy", "strategy": "retainKeys"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.DeploymentStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.apps.v1.DeploymentCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        }
    },
    "io.k8s.api.apps.v1.DeploymentStrategy": {
        "rollingUpdate": {"type": "io.k8s.api.apps.v1.RollingUpdateDeployment"}
    },
    "io.k8s.api.apps.v1.ReplicaSet": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.ReplicaSetSpec"},
        "status": {"type": "io.k8s.api.apps.v1.ReplicaSetStatus"},
    },
    "io.k8s.api.apps.v1.ReplicaSetCondition": {},
    "io.k8s.api.apps.v1.ReplicaSetSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.ReplicaSetStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.apps.v1.ReplicaSetCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        }
    },
    "io.k8s.api.apps.v1.RollingUpdateDaemonSet": {},
    "io.k8s.api.apps.v1.RollingUpdateDeployment": {},
    "io.k8s.api.apps.v1.RollingUpdateStatefulSetStrategy": {},
    "io.k8s.api.apps.v1.StatefulSet": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.StatefulSetSpec"},
        "status": {"type": "io.k8s.api.apps.v1.StatefulSetStatus"},
    },
    "io.k8s.api.apps.v1.StatefulSetCondition": {},
    "io.k8s.api.apps.v1.StatefulSetOrdinals": {},
    "io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy": {},
    "io.k8s.api.apps.v1.StatefulSetSpec": {
        "ordinals": {"type": "io.k8s.api.apps.v1.StatefulSetOrdinals"},
        "persistentVolumeClaimRetentionPolicy": {
            "type": "io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy"
        },
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
        "updateStrategy": {"type": "io.k8s.api.apps.v1.StatefulSetUpdateStrategy"},
        "volumeClaimTemplates": {"list": "atomic", "type": "io.k8s.api.core.v1.PersistentVolumeClaim"},
    },
    "io.k8s.api.apps.v1.StatefulSetStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.apps.v1.StatefulSetCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        }
    },
    "io.k8s.api.apps.v1.StatefulSetUpdateStrategy": {
        "rollingUpdate": {"type": "io.k8s.api.apps.v1.RollingUpdateStatefulSetStrategy"}
    },
    "io.k8s.api.batch.v1.CronJob": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.batch.v1.CronJobSpec"},
        "status": {"type": "io.k8s.api.batch.v1.CronJobStatus"},
    },
    "io.k8s.api.batch.v1.CronJobSpec": {"jobTemplate": {"type": "io.k8s.api.batch.v1.JobTemplateSpec"}},
    "io.k8s.api.batch.v1.CronJobStatus": {
        "active": {"list": "atomic", "type": "io.k8s.api.core.v1.ObjectReference"}
    },
    "io.k8s.api.batch.v1.Job": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.batch.v1.JobSpec"},
        "status": {"type": "io.k8s.api.batch.v1.JobStatus"},
    },
    "io.k8s.api.batch.v1.JobCondition": {},
    "io.k8s.api.batch.v1.JobSpec": {
        "podFailurePolicy": {"type": "io.k8s.api.batch.v1.PodFailurePolicy"},
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "successPolicy": {"type": "io.k8s.api.batch.v1.SuccessPolicy"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.batch.v1.JobStatus": {
        "conditions": {
            "list": "atomic",
            "type": "io.k8s.api.batch.v1.JobCondition",
            "strategy": "merge",
            "mergeKey": "type",
        },
        "uncountedTerminatedPods": {"type": "io.k8s.api.batch.v1.UncountedTerminatedPods"},
    },
    "io.k8s.api.batch.v1.JobTemplateSpec": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.batch.v1.JobSpec"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicy": {
        "rules": {"list": "atomic", "type": "io.k8s.api.batch.v1.PodFailurePolicyRule"}
    },
    "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement": {"values": {"list": "set"}},
    "io.k8s.api.batch.v1.PodFailurePolicyOnPodConditionsPattern": {},
    "io.k8s.api.batch.v1.PodFailurePolicyRule": {
        "onExitCodes": {"type": "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement"},
        "onPodConditions": {
            "list": "atomic",
            "type": "io.k8s.api.batch.v1.PodFailurePolicyOnPodConditionsPattern",
        },
    },
    "io.k8s.api.batch.v1.SuccessPolicy": {
        "rules": {"list": "atomic", "type": "io.k8s.api.batch.v1.SuccessPolicyRule"}
    },
    "io.k8s.api.batch.v1.SuccessPolicyRule": {},
    "io.k8s.api.batch.v1.UncountedTerminatedPods": {"failed": {"list": "set"}, "succeeded": {"list": "set"}},
    "io.k8s.api.coordination.v1.Lease": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.coordination.v1.LeaseSpec"},
    },
    "io.k8s.api.coordination.v1.LeaseSpec": {},
    "io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource": {},
    "io.k8s.api.core.v1.Affinity": {
        "nodeAffinity": {"type": "io.k8s.api.core.v1.NodeAffinity"},
        "podAffinity": {"type": "io.k8s.api.core.v1.PodAffinity"},
        "podAntiAffinity": {"type": "io.k8s.api.core.v1.PodAntiAffinity"},
    },
    "io.k8s.api.core.v1.AppArmorProfile": {},
    "io.k8s.api.core.v1.AttachedVolume": {},
    "io.k8s.api.core.v1.AzureDiskVolumeSource": {},
    "io.k8s.api.core.v1.AzureFilePersistentVolumeSource": {},
    "io.k8s.api.core.v1.AzureFileVolumeSource": {},
    "io.k8s.api.core.v1.CSIPersistentVolumeSource": {
        "controllerExpandSecretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
        "controllerPublishSecretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
        "nodeExpandSecretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
        "nodePublishSecretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
        "nodeStageSecretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
        "volumeAttributes": {"map": True},
    },
    "io.k8s.api.core.v1.CSIVolumeSource": {
        "nodePublishSecretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
        "volumeAttributes": {"map": True},
    },
    "io.k8s.api.core.v1.Capabilities": {"add": {"list": "atomic"}, "drop": {"list": "atomic"}},
    "io.k8s.api.core.v1.CephFSPersistentVolumeSource": {
        "monitors": {"list": "atomic"},
        "secretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
    },
    "io.k8s.api.core.v1.CephFSVolumeSource": {
        "monitors": {"list": "atomic"},
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.CinderPersistentVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.SecretReference"}
    },
    "io.k8s.api.core.v1.CinderVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"}
    },
    "io.k8s.api.core.v1.ClientIPConfig": {},
    "io.k8s.api.core.v1.ClusterTrustBundleProjection": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"}
    },
    "io.k8s.api.core.v1.ConfigMap": {
        "binaryData": {"map": True},
        "data": {"map": True},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.core.v1.ConfigMapEnvSource": {},
    "io.k8s.api.core.v1.ConfigMapKeySelector": {"$atomic": True},
    "io.k8s.api.core.v1.ConfigMapNodeConfigSource": {},
    "io.k8s.api.core.v1.ConfigMapProjection": {
        "items": {"list": "atomic", "type": "io.k8s.api.core.v1.KeyToPath"}
    },
    "io.k8s.api.core.v1.ConfigMapVolumeSource": {
        "items": {"list": "atomic", "type": "io.k8s.api.core.v1.KeyToPath"}
    },
    "io.k8s.api.core.v1.Container": {
        "args": {"list": "atomic"},
        "command": {"list": "atomic"},
        "env": {
            "list": "map",
            "type": "io.k8s.api.core.v1.EnvVar",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "envFrom": {"list": "atomic", "type": "io.k8s.api.core.v1.EnvFromSource"},
        "lifecycle": {"type": "io.k8s.api.core.v1.Lifecycle"},
        "livenessProbe": {"type": "io.k8s.api.core.v1.Probe"},
        "ports": {
            "list": "map",
            "type": "io.k8s.api.core.v1.ContainerPort",
            "keys": ["containerPort", "protocol"],
            "strategy": "merge",
            "mergeKey": "containerPort",
        },
        "readinessProbe": {"type": "io.k8s.api.core.v1.Probe"},
        "resizePolicy": {"list": "atomic", "type": "io.k8s.api.core.v1.ContainerResizePolicy"},
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "securityContext": {"type": "io.k8s.api.core.v1.SecurityContext"},
        "startupProbe": {"type": "io.k8s.api.core.v1.Probe"},
        "volumeDevices": {
            "list": "map",
            "type": "io.k8s.api.core.v1.VolumeDevice",
            "keys": ["devicePath"],
            "strategy": "merge",
            "mergeKey": "devicePath",
        },
        "volumeMounts": {
            "list": "map",
            "type": "io.k8s.api.core.v1.VolumeMount",
            "keys": ["mountPath"],
            "strategy": "merge",
            "mergeKey": "mountPath",
        },
    },
    "io.k8s.api.core.v1.ContainerImage": {"names": {"list": "atomic"}},
    "io.k8s.api.core.v1.ContainerPort": {},
    "io.k8s.api.core.v1.ContainerResizePolicy": {},
    "io.k8s.api.core.v1.ContainerState": {
        "running": {"type": "io.k8s.api.core.v1.ContainerStateRunning"},
        "terminated": {"type": "io.k8s.api.core.v1.ContainerStateTerminated"},
        "waiting": {"type": "io.k8s.api.core.v1.ContainerStateWaiting"},
    },
    "io.k8s.api.core.v1.ContainerStateRunning": {},
    "io.k8s.api.core.v1.ContainerStateTerminated": {},
    "io.k8s.api.core.v1.ContainerStateWaiting": {},
    "io.k8s.api.core.v1.ContainerStatus": {
        "allocatedResources": {"map": True},
        "allocatedResourcesStatus": {
            "list": "map",
            "type": "io.k8s.api.core.v1.ResourceStatus",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "lastState": {"type": "io.k8s.api.core.v1.ContainerState"},
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "state": {"type": "io.k8s.api.core.v1.ContainerState"},
        "user": {"type": "io.k8s.api.core.v1.ContainerUser"},
        "volumeMounts": {
            "list": "map",
            "type": "io.k8s.api.core.v1.VolumeMountStatus",
            "keys": ["mountPath"],
            "strategy": "merge",
            "mergeKey": "mountPath",
        },
    },
    "io.k8s.api.core.v1.ContainerUser": {"linux": {"type": "io.k8s.api.core.v1.LinuxContainerUser"}},
    "io.k8s.api.core.v1.DaemonEndpoint": {},
    "io.k8s.api.core.v1.DownwardAPIProjection": {
        "items": {"list": "atomic", "type": "io.k8s.api.core.v1.DownwardAPIVolumeFile"}
    },
    "io.k8s.api.core.v1.DownwardAPIVolumeFile": {
        "fieldRef": {"type": "io.k8s.api.core.v1.ObjectFieldSelector"},
        "resourceFieldRef": {"type": "io.k8s.api.core.v1.ResourceFieldSelector"},
    },
    "io.k8s.api.core.v1.DownwardAPIVolumeSource": {
        "items": {"list": "atomic", "type": "io.k8s.api.core.v1.DownwardAPIVolumeFile"}
    },
    "io.k8s.api.core.v1.EmptyDirVolumeSource": {},
    "io.k8s.api.core.v1.EndpointAddress": {
        "targetRef": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "$atomic": True,
    },
    "io.k8s.api.core.v1.EndpointPort": {"$atomic": True},
    "io.k8s.api.core.v1.EndpointSubset": {
        "addresses": {"list": "atomic", "type": "io.k8s.api.core.v1.EndpointAddress"},
        "notReadyAddresses": {"list": "atomic", "type": "io.k8s.api.core.v1.EndpointAddress"},
        "ports": {"list": "atomic", "type": "io.k8s.api.core.v1.EndpointPort"},
    },
    "io.k8s.api.core.v1.Endpoints": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "subsets": {"list": "atomic", "type": "io.k8s.api.core.v1.EndpointSubset"},
    },
    "io.k8s.api.core.v1.EnvFromSource": {
        "configMapRef": {"type": "io.k8s.api.core.v1.ConfigMapEnvSource"},
        "secretRef": {"type": "io.k8s.api.core.v1.SecretEnvSource"},
    },
    "io.k8s.api.core.v1.EnvVar": {"valueFrom": {"type": "io.k8s.api.core.v1.EnvVarSource"}},
    "io.k8s.api.core.v1.EnvVarSource": {
        "configMapKeyRef": {"type": "io.k8s.api.core.v1.ConfigMapKeySelector"},
        "fieldRef": {"type": "io.k8s.api.core.v1.ObjectFieldSelector"},
        "resourceFieldRef": {"type": "io.k8s.api.core.v1.ResourceFieldSelector"},
        "secretKeyRef": {"type": "io.k8s.api.core.v1.SecretKeySelector"},
    },
    "io.k8s.api.core.v1.EphemeralContainer": {
        "args": {"list": "atomic"},
        "command": {"list": "atomic"},
        "env": {
            "list": "map",
            "type": "io.k8s.api.core.v1.EnvVar",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "envFrom": {"list": "atomic", "type": "io.k8s.api.core.v1.EnvFromSource"},
        "lifecycle": {"type": "io.k8s.api.core.v1.Lifecycle"},
        "livenessProbe": {"type": "io.k8s.api.core.v1.Probe"},
        "ports": {
            "list": "map",
            "type": "io.k8s.api.core.v1.ContainerPort",
            "keys": ["containerPort", "protocol"],
            "strategy": "merge",
            "mergeKey": "containerPort",
        },
        "readinessProbe": {"type": "io.k8s.api.core.v1.Probe"},
        "resizePolicy": {"list": "atomic", "type": "io.k8s.api.core.v1.ContainerResizePolicy"},
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "securityContext": {"type": "io.k8s.api.core.v1.SecurityContext"},
        "startupProbe": {"type": "io.k8s.api.core.v1.Probe"},
        "volumeDevices": {
            "list": "map",
            "type": "io.k8s.api.core.v1.VolumeDevice",
            "keys": ["devicePath"],
            "strategy": "merge",
            "mergeKey": "devicePath",
        },
        "volumeMounts": {
            "list": "map",
            "type": "io.k8s.api.core.v1.VolumeMount",
            "keys": ["mountPath"],
            "strategy": "merge",
            "mergeKey": "mountPath",
        },
    },
    "io.k8s.api.core.v1.EphemeralVolumeSource": {
        "volumeClaimTemplate": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimTemplate"}
    },
    "io.k8s.api.core.v1.Event": {
        "involvedObject": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "related": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "series": {"type": "io.k8s.api.core.v1.EventSeries"},
        "source": {"type": "io.k8s.api.core.v1.EventSource"},
    },
    "io.k8s.api.core.v1.EventSeries": {},
    "io.k8s.api.core.v1.EventSource": {},
    "io.k8s.api.core.v1.ExecAction": {"command": {"list": "atomic"}},
    "io.k8s.api.core.v1.FCVolumeSource": {"targetWWNs": {"list": "atomic"}, "wwids": {"list": "atomic"}},
    "io.k8s.api.core.v1.FlexPersistentVolumeSource": {
        "options": {"map": True},
        "secretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
    },
    "io.k8s.api.core.v1.FlexVolumeSource": {
        "options": {"map": True},
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.FlockerVolumeSource": {},
    "io.k8s.api.core.v1.GCEPersistentDiskVolumeSource": {},
    "io.k8s.api.core.v1.GRPCAction": {},
    "io.k8s.api.core.v1.GitRepoVolumeSource": {},
    "io.k8s.api.core.v1.GlusterfsPersistentVolumeSource": {},
    "io.k8s.api.core.v1.GlusterfsVolumeSource": {},
    "io.k8s.api.core.v1.HTTPGetAction": {
        "httpHeaders": {"list": "atomic", "type": "io.k8s.api.core.v1.HTTPHeader"}
    },
    "io.k8s.api.core.v1.HTTPHeader": {},
    "io.k8s.api.core.v1.HostAlias": {"hostnames": {"list": "atomic"}},
    "io.k8s.api.core.v1.HostIP": {},
    "io.k8s.api.core.v1.HostPathVolumeSource": {},
    "io.k8s.api.core.v1.ISCSIPersistentVolumeSource": {
        "portals": {"list": "atomic"},
        "secretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
    },
    "io.k8s.api.core.v1.ISCSIVolumeSource": {
        "portals": {"list": "atomic"},
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ImageVolumeSource": {},
    "io.k8s.api.core.v1.KeyToPath": {},
    "io.k8s.api.core.v1.Lifecycle": {
        "postStart": {"type": "io.k8s.api.core.v1.LifecycleHandler"},
        "preStop": {"type": "io.k8s.api.core.v1.LifecycleHandler"},
    },
    "io.k8s.api.core.v1.LifecycleHandler": {
        "exec": {"type": "io.k8s.api.core.v1.ExecAction"},
        "httpGet": {"type": "io.k8s.api.core.v1.HTTPGetAction"},
        "sleep": {"type": "io.k8s.api.core.v1.SleepAction"},
        "tcpSocket": {"type": "io.k8s.api.core.v1.TCPSocketAction"},
    },
    "io.k8s.api.core.v1.LinuxContainerUser": {"supplementalGroups": {"list": "atomic"}},
    "io.k8s.api.core.v1.LoadBalancerIngress": {
        "ports": {"list": "atomic", "type": "io.k8s.api.core.v1.PortStatus"}
    },
    "io.k8s.api.core.v1.LoadBalancerStatus": {
        "ingress": {"list": "atomic", "type": "io.k8s.api.core.v1.LoadBalancerIngress"}
    },
    "io.k8s.api.core.v1.LocalObjectReference": {"$atomic": True},
    "io.k8s.api.core.v1.LocalVolumeSource": {},
    "io.k8s.api.core.v1.ModifyVolumeStatus": {},
    "io.k8s.api.core.v1.NFSVolumeSource": {},
    "io.k8s.api.core.v1.Namespace": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.NamespaceSpec"},
        "status": {"type": "io.k8s.api.core.v1.NamespaceStatus"},
    },
    "io.k8s.api.core.v1.NamespaceCondition": {},
    "io.k8s.api.core.v1.NamespaceSpec": {"finalizers": {"list": "atomic"}},
    "io.k8s.api.core.v1.NamespaceStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.core.v1.NamespaceCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        }
    },
    "io.k8s.api.core.v1.Node": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.NodeSpec"},
        "status": {"type": "io.k8s.api.core.v1.NodeStatus"},
    },
    "io.k8s.api.core.v1.NodeAddress": {},
    "io.k8s.api.core.v1.NodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {
            "list": "atomic",
            "type": "io.k8s.api.core.v1.PreferredSchedulingTerm",
        },
        "requiredDuringSchedulingIgnoredDuringExecution": {"type": "io.k8s.api.core.v1.NodeSelector"},
    },
    "io.k8s.api.core.v1.NodeCondition": {},
    "io.k8s.api.core.v1.NodeConfigSource": {
        "configMap": {"type": "io.k8s.api.core.v1.ConfigMapNodeConfigSource"}
    },
    "io.k8s.api.core.v1.NodeConfigStatus": {
        "active": {"type": "io.k8s.api.core.v1.NodeConfigSource"},
        "assigned": {"type": "io.k8s.api.core.v1.NodeConfigSource"},
        "lastKnownGood": {"type": "io.k8s.api.core.v1.NodeConfigSource"},
    },
    "io.k8s.api.core.v1.NodeDaemonEndpoints": {
        "kubeletEndpoint": {"type": "io.k8s.api.core.v1.DaemonEndpoint"}
    },
    "io.k8s.api.core.v1.NodeFeatures": {},
    "io.k8s.api.core.v1.NodeRuntimeHandler": {
        "features": {"type": "io.k8s.api.core.v1.NodeRuntimeHandlerFeatures"}
    },
    "io.k8s.api.core.v1.NodeRuntimeHandlerFeatures": {},
    "io.k8s.api.core.v1.NodeSelector": {
        "nodeSelectorTerms": {"list": "atomic", "type": "io.k8s.api.core.v1.NodeSelectorTerm"},
        "$atomic": True,
    },
    "io.k8s.api.core.v1.NodeSelectorRequirement": {"values": {"list": "atomic"}},
    "io.k8s.api.core.v1.NodeSelectorTerm": {
        "matchExpressions": {"list": "atomic", "type": "io.k8s.api.core.v1.NodeSelectorRequirement"},
        "matchFields": {"list": "atomic", "type": "io.k8s.api.core.v1.NodeSelectorRequirement"},
        "$atomic": True,
    },
    "io.k8s.api.core.v1.NodeSpec": {
        "configSource": {"type": "io.k8s.api.core.v1.NodeConfigSource"},
        "podCIDRs": {"list": "set", "strategy": "merge"},
        "taints": {"list": "atomic", "type": "io.k8s.api.core.v1.Taint"},
    },
    "io.k8s.api.core.v1.NodeStatus": {
        "addresses": {
            "list": "map",
            "type": "io.k8s.api.core.v1.NodeAddress",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        },
        "allocatable": {"map": True},
        "capacity": {"map": True},
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.core.v1.NodeCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        },
        "config": {"type": "io.k8s.api.core.v1.NodeConfigStatus"},
        "daemonEndpoints": {"type": "io.k8s.api.core.v1.NodeDaemonEndpoints"},
        "features": {"type": "io.k8s.api.core.v1.NodeFeatures"},
        "images": {"list": "atomic", "type": "io.k8s.api.core.v1.ContainerImage"},
        "nodeInfo": {"type": "io.k8s.api.core.v1.NodeSystemInfo"},
        "runtimeHandlers": {"list": "atomic", "type": "io.k8s.api.core.v1.NodeRuntimeHandler"},
        "volumesAttached": {"list": "atomic", "type": "io.k8s.api.core.v1.AttachedVolume"},
        "volumesInUse": {"list": "atomic"},
    },
    "io.k8s.api.core.v1.NodeSystemInfo": {},
    "io.k8s.api.core.v1.ObjectFieldSelector": {"$atomic": True},
    "io.k8s.api.core.v1.ObjectReference": {"$atomic": True},
    "io.k8s.api.core.v1.PersistentVolume": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PersistentVolumeSpec"},
        "status": {"type": "io.k8s.api.core.v1.PersistentVolumeStatus"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaim": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimSpec"},
        "status": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimStatus"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimCondition": {},
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": {
        "accessModes": {"list": "atomic"},
        "dataSource": {"type": "io.k8s.api.core.v1.TypedLocalObjectReference"},
        "dataSourceRef": {"type": "io.k8s.api.core.v1.TypedObjectReference"},
        "resources": {"type": "io.k8s.api.core.v1.VolumeResourceRequirements"},
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimStatus": {
        "accessModes": {"list": "atomic"},
        "allocatedResourceStatuses": {"map": True},
        "allocatedResources": {"map": True},
        "capacity": {"map": True},
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.core.v1.PersistentVolumeClaimCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        },
        "modifyVolumeStatus": {"type": "io.k8s.api.core.v1.ModifyVolumeStatus"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimTemplate": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimSpec"},
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimVolumeSource": {},
    "io.k8s.api.core.v1.PersistentVolumeSpec": {
        "accessModes": {"list": "atomic"},
        "awsElasticBlockStore": {"type": "io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource"},
        "azureDisk": {"type": "io.k8s.api.core.v1.AzureDiskVolumeSource"},
        "azureFile": {"type": "io.k8s.api.core.v1.AzureFilePersistentVolumeSource"},
        "capacity": {"map": True},
        "cephfs": {"type": "io.k8s.api.core.v1.CephFSPersistentVolumeSource"},
        "cinder": {"type": "io.k8s.api.core.v1.CinderPersistentVolumeSource"},
        "claimRef": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "csi": {"type": "io.k8s.api.core.v1.CSIPersistentVolumeSource"},
        "fc": {"type": "io.k8s.api.core.v1.FCVolumeSource"},
        "flexVolume": {"type": "io.k8s.api.core.v1.FlexPersistentVolumeSource"},
        "flocker": {"type": "io.k8s.api.core.v1.FlockerVolumeSource"},
        "gcePersistentDisk": {"type": "io.k8s.api.core.v1.GCEPersistentDiskVolumeSource"},
        "glusterfs": {"type": "io.k8s.api.core.v1.GlusterfsPersistentVolumeSource"},
        "hostPath": {"type": "io.k8s.api.core.v1.HostPathVolumeSource"},
        "iscsi": {"type": "io.k8s.api.core.v1.ISCSIPersistentVolumeSource"},
        "local": {"type": "io.k8s.api.core.v1.LocalVolumeSource"},
        "mountOptions": {"list": "atomic"},
        "nfs": {"type": "io.k8s.api.core.v1.NFSVolumeSource"},
        "nodeAffinity": {"type": "io.k8s.api.core.v1.VolumeNodeAffinity"},
        "photonPersistentDisk": {"type": "io.k8s.api.core.v1.PhotonPersistentDiskVolumeSource"},
        "portworxVolume": {"type": "io.k8s.api.core.v1.PortworxVolumeSource"},
        "quobyte": {"type": "io.k8s.api.core.v1.QuobyteVolumeSource"},
        "rbd": {"type": "io.k8s.api.core.v1.RBDPersistentVolumeSource"},
        "scaleIO": {"type": "io.k8s.api.core.v1.ScaleIOPersistentVolumeSource"},
        "storageos": {"type": "io.k8s.api.core.v1.StorageOSPersistentVolumeSource"},
        "vsphereVolume": {"type": "io.k8s.api.core.v1.VsphereVirtualDiskVolumeSource"},
    },
    "io.k8s.api.core.v1.PersistentVolumeStatus": {},
    "io.k8s.api.core.v1.PhotonPersistentDiskVolumeSource": {},
    "io.k8s.api.core.v1.Pod": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PodSpec"},
        "status": {"type": "io.k8s.api.core.v1.PodStatus"},
    },
    "io.k8s.api.core.v1.PodAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {
            "list": "atomic",
            "type": "io.k8s.api.core.v1.WeightedPodAffinityTerm",
        },
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "list": "atomic",
            "type": "io.k8s.api.core.v1.PodAffinityTerm",
        },
    },
    "io.k8s.api.core.v1.PodAffinityTerm": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "matchLabelKeys": {"list": "atomic"},
        "mismatchLabelKeys": {"list": "atomic"},
        "namespaceSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "namespaces": {"list": "atomic"},
    },
    "io.k8s.api.core.v1.PodAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": {
            "list": "atomic",
            "type": "io.k8s.api.core.v1.WeightedPodAffinityTerm",
        },
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "list": "atomic",
            "type": "io.k8s.api.core.v1.PodAffinityTerm",
        },
    },
    "io.k8s.api.core.v1.PodCondition": {},
    "io.k8s.api.core.v1.PodDNSConfig": {
        "nameservers": {"list": "atomic"},
        "options": {"list": "atomic", "type": "io.k8s.api.core.v1.PodDNSConfigOption"},
        "searches": {"list": "atomic"},
    },
    "io.k8s.api.core.v1.PodDNSConfigOption": {},
    "io.k8s.api.core.v1.PodIP": {},
    "io.k8s.api.core.v1.PodOS": {},
    "io.k8s.api.core.v1.PodReadinessGate": {},
    "io.k8s.api.core.v1.PodResourceClaim": {},
    "io.k8s.api.core.v1.PodResourceClaimStatus": {},
    "io.k8s.api.core.v1.PodSchedulingGate": {},
    "io.k8s.api.core.v1.PodSecurityContext": {
        "appArmorProfile": {"type": "io.k8s.api.core.v1.AppArmorProfile"},
        "seLinuxOptions": {"type": "io.k8s.api.core.v1.SELinuxOptions"},
        "seccompProfile": {"type": "io.k8s.api.core.v1.SeccompProfile"},
        "supplementalGroups": {"list": "atomic"},
        "sysctls": {"list": "atomic", "type": "io.k8s.api.core.v1.Sysctl"},
        "windowsOptions": {"type": "io.k8s.api.core.v1.WindowsSecurityContextOptions"},
    },
    "io.k8s.api.core.v1.PodSpec": {
        "affinity": {"type": "io.k8s.api.core.v1.Affinity"},
        "containers": {
            "list": "map",
            "type": "io.k8s.api.core.v1.Container",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "dnsConfig": {"type": "io.k8s.api.core.v1.PodDNSConfig"},
        "ephemeralContainers": {
            "list": "map",
            "type": "io.k8s.api.core.v1.EphemeralContainer",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "hostAliases": {
            "list": "map",
            "type": "io.k8s.api.core.v1.HostAlias",
            "keys": ["ip"],
            "strategy": "merge",
            "mergeKey": "ip",
        },
        "imagePullSecrets": {
            "list": "map",
            "type": "io.k8s.api.core.v1.LocalObjectReference",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "initContainers": {
            "list": "map",
            "type": "io.k8s.api.core.v1.Container",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "nodeSelector": {"map": True, "atomic": True},
        "os": {"type": "io.k8s.api.core.v1.PodOS"},
        "overhead": {"map": True},
        "readinessGates": {"list": "atomic", "type": "io.k8s.api.core.v1.PodReadinessGate"},
        "resourceClaims": {
            "list": "map",
            "type": "io.k8s.api.core.v1.PodResourceClaim",
            "keys": ["name"],
            "strategy": "merge,retainKeys",
            "mergeKey": "name",
        },
        "resources": {"type": "io.k8s.api.core.v1.ResourceRequirements"},
        "schedulingGates": {
            "list": "map",
            "type": "io.k8s.api.core.v1.PodSchedulingGate",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
        "securityContext": {"type": "io.k8s.api.core.v1.PodSecurityContext"},
        "tolerations": {"list": "atomic", "type": "io.k8s.api.core.v1.Toleration"},
        "topologySpreadConstraints": {
            "list": "map",
            "type": "io.k8s.api.core.v1.TopologySpreadConstraint",
            "keys": ["topologyKey", "whenUnsatisfiable"],
            "strategy": "merge",
            "mergeKey": "topologyKey",
        },
        "volumes": {
            "list": "map",
            "type": "io.k8s.api.core.v1.Volume",
            "keys": ["name"],
            "strategy": "merge,retainKeys",
            "mergeKey": "name",
        },
    },
    "io.k8s.api.core.v1.PodStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.core.v1.PodCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        },
        "containerStatuses": {"list": "atomic", "type": "io.k8s.api.core.v1.ContainerStatus"},
        "ephemeralContainerStatuses": {"list": "atomic", "type": "io.k8s.api.core.v1.ContainerStatus"},
        "hostIPs": {
            "list": "atomic",
            "type": "io.k8s.api.core.v1.HostIP",
            "strategy": "merge",
            "mergeKey": "ip",
        },
        "initContainerStatuses": {"list": "atomic", "type": "io.k8s.api.core.v1.ContainerStatus"},
        "podIPs": {
            "list": "map",
            "type": "io.k8s.api.core.v1.PodIP",
            "keys": ["ip"],
            "strategy": "merge",
            "mergeKey": "ip",
        },
        "resourceClaimStatuses": {
            "list": "map",
            "type": "io.k8s.api.core.v1.PodResourceClaimStatus",
            "keys": ["name"],
            "strategy": "merge,retainKeys",
            "mergeKey": "name",
        },
    },
    "io.k8s.api.core.v1.PodTemplateSpec": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.PodSpec"},
    },
    "io.k8s.api.core.v1.PortStatus": {},
    "io.k8s.api.core.v1.PortworxVolumeSource": {},
    "io.k8s.api.core.v1.PreferredSchedulingTerm": {
        "preference": {"type": "io.k8s.api.core.v1.NodeSelectorTerm"}
    },
    "io.k8s.api.core.v1.Probe": {
        "exec": {"type": "io.k8s.api.core.v1.ExecAction"},
        "grpc": {"type": "io.k8s.api.core.v1.GRPCAction"},
        "httpGet": {"type": "io.k8s.api.core.v1.HTTPGetAction"},
        "tcpSocket": {"type": "io.k8s.api.core.v1.TCPSocketAction"},
    },
    "io.k8s.api.core.v1.ProjectedVolumeSource": {
        "sources": {"list": "atomic", "type": "io.k8s.api.core.v1.VolumeProjection"}
    },
    "io.k8s.api.core.v1.QuobyteVolumeSource": {},
    "io.k8s.api.core.v1.RBDPersistentVolumeSource": {
        "monitors": {"list": "atomic"},
        "secretRef": {"type": "io.k8s.api.core.v1.SecretReference"},
    },
    "io.k8s.api.core.v1.RBDVolumeSource": {
        "monitors": {"list": "atomic"},
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"},
    },
    "io.k8s.api.core.v1.ReplicationController": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.ReplicationControllerSpec"},
        "status": {"type": "io.k8s.api.core.v1.ReplicationControllerStatus"},
    },
    "io.k8s.api.core.v1.ReplicationControllerCondition": {},
    "io.k8s.api.core.v1.ReplicationControllerSpec": {
        "selector": {"map": True, "atomic": True},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.core.v1.ReplicationControllerStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.api.core.v1.ReplicationControllerCondition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        }
    },
    "io.k8s.api.core.v1.ResourceClaim": {},
    "io.k8s.api.core.v1.ResourceFieldSelector": {"$atomic": True},
    "io.k8s.api.core.v1.ResourceHealth": {},
    "io.k8s.api.core.v1.ResourceRequirements": {
        "claims": {"list": "map", "type": "io.k8s.api.core.v1.ResourceClaim", "keys": ["name"]},
        "limits": {"map": True},
        "requests": {"map": True},
    },
    "io.k8s.api.core.v1.ResourceStatus": {
        "resources": {"list": "map", "type": "io.k8s.api.core.v1.ResourceHealth", "keys": ["resourceID"]}
    },
    "io.k8s.api.core.v1.SELinuxOptions": {},
    "io.k8s.api.core.v1.ScaleIOPersistentVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.SecretReference"}
    },
    "io.k8s.api.core.v1.ScaleIOVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"}
    },
    "io.k8s.api.core.v1.SeccompProfile": {},
    "io.k8s.api.core.v1.Secret": {
        "data": {"map": True},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "stringData": {"map": True},
    },
    "io.k8s.api.core.v1.SecretEnvSource": {},
    "io.k8s.api.core.v1.SecretKeySelector": {"$atomic": True},
    "io.k8s.api.core.v1.SecretProjection": {
        "items": {"list": "atomic", "type": "io.k8s.api.core.v1.KeyToPath"}
    },
    "io.k8s.api.core.v1.SecretReference": {"$atomic": True},
    "io.k8s.api.core.v1.SecretVolumeSource": {
        "items": {"list": "atomic", "type": "io.k8s.api.core.v1.KeyToPath"}
    },
    "io.k8s.api.core.v1.SecurityContext": {
        "appArmorProfile": {"type": "io.k8s.api.core.v1.AppArmorProfile"},
        "capabilities": {"type": "io.k8s.api.core.v1.Capabilities"},
        "seLinuxOptions": {"type": "io.k8s.api.core.v1.SELinuxOptions"},
        "seccompProfile": {"type": "io.k8s.api.core.v1.SeccompProfile"},
        "windowsOptions": {"type": "io.k8s.api.core.v1.WindowsSecurityContextOptions"},
    },
    "io.k8s.api.core.v1.Service": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.core.v1.ServiceSpec"},
        "status": {"type": "io.k8s.api.core.v1.ServiceStatus"},
    },
    "io.k8s.api.core.v1.ServiceAccount": {
        "imagePullSecrets": {"list": "atomic", "type": "io.k8s.api.core.v1.LocalObjectReference"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "secrets": {
            "list": "map",
            "type": "io.k8s.api.core.v1.ObjectReference",
            "keys": ["name"],
            "strategy": "merge",
            "mergeKey": "name",
        },
    },
    "io.k8s.api.core.v1.ServiceAccountTokenProjection": {},
    "io.k8s.api.core.v1.ServicePort": {},
    "io.k8s.api.core.v1.ServiceSpec": {
        "clusterIPs": {"list": "atomic"},
        "externalIPs": {"list": "atomic"},
        "ipFamilies": {"list": "atomic"},
        "loadBalancerSourceRanges": {"list": "atomic"},
        "ports": {
            "list": "map",
            "type": "io.k8s.api.core.v1.ServicePort",
            "keys": ["port", "protocol"],
            "strategy": "merge",
            "mergeKey": "port",
        },
        "selector": {"map": True, "atomic": True},
        "sessionAffinityConfig": {"type": "io.k8s.api.core.v1.SessionAffinityConfig"},
    },
    "io.k8s.api.core.v1.ServiceStatus": {
        "conditions": {
            "list": "map",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.Condition",
            "keys": ["type"],
            "strategy": "merge",
            "mergeKey": "type",
        },
        "loadBalancer": {"type": "io.k8s.api.core.v1.LoadBalancerStatus"},
    },
    "io.k8s.api.core.v1.SessionAffinityConfig": {"clientIP": {"type": "io.k8s.api.core.v1.ClientIPConfig"}},
    "io.k8s.api.core.v1.SleepAction": {},
    "io.k8s.api.core.v1.StorageOSPersistentVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.ObjectReference"}
    },
    "io.k8s.api.core.v1.StorageOSVolumeSource": {
        "secretRef": {"type": "io.k8s.api.core.v1.LocalObjectReference"}
    },
    "io.k8s.api.core.v1.Sysctl": {},
    "io.k8s.api.core.v1.TCPSocketAction": {},
    "io.k8s.api.core.v1.Taint": {},
    "io.k8s.api.core.v1.Toleration": {},
    "io.k8s.api.core.v1.TopologySpreadConstraint": {
        "labelSelector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "matchLabelKeys": {"list": "atomic"},
    },
    "io.k8s.api.core.v1.TypedLocalObjectReference": {"$atomic": True},
    "io.k8s.api.core.v1.TypedObjectReference": {},
    "io.k8s.api.core.v1.Volume": {
        "awsElasticBlockStore": {"type": "io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource"},
        "azureDisk": {"type": "io.k8s.api.core.v1.AzureDiskVolumeSource"},
        "azureFile": {"type": "io.k8s.api.core.v1.AzureFileVolumeSource"},
        "cephfs": {"type": "io.k8s.api.core.v1.CephFSVolumeSource"},
        "cinder": {"type": "io.k8s.api.core.v1.CinderVolumeSource"},
        "configMap": {"type": "io.k8s.api.core.v1.ConfigMapVolumeSource"},
        "csi": {"type": "io.k8s.api.core.v1.CSIVolumeSource"},
        "downwardAPI": {"type": "io.k8s.api.core.v1.DownwardAPIVolumeSource"},
        "emptyDir": {"type": "io.k8s.api.core.v1.EmptyDirVolumeSource"},
        "ephemeral": {"type": "io.k8s.api.core.v1.EphemeralVolumeSource"},
        "fc": {"type": "io.k8s.api.core.v1.FCVolumeSource"},
        "flexVolume": {"type": "io.k8s.api.core.v1.FlexVolumeSource"},
        "flocker": {"type": "io.k8s.api.core.v1.FlockerVolumeSource"},
        "gcePersistentDisk": {"type": "io.k8s.api.core.v1.GCEPersistentDiskVolumeSource"},
        "gitRepo": {"type": "io.k8s.api.core.v1.GitRepoVolumeSource"},
        "glusterfs": {"type": "io.k8s.api.core.v1.GlusterfsVolumeSource"},
        "hostPath": {"type": "io.k8s.api.core.v1.HostPathVolumeSource"},
        "image": {"type": "io.k8s.api.core.v1.ImageVolumeSource"},
        "iscsi": {"type": "io.k8s.api.core.v1.ISCSIVolumeSource"},
        "nfs": {"type": "io.k8s.api.core.v1.NFSVolumeSource"},
        "persistentVolumeClaim": {"type": "io.k8s.api.core.v1.PersistentVolumeClaimVolumeSource"},
        "photonPersistentDisk": {"type": "io.k8s.api.core.v1.PhotonPersistentDiskVolumeSource"},
        "portworxVolume": {"type": "io.k8s.api.core.v1.PortworxVolumeSource"},
        "projected": {"type": "io.k8s.api.core.v1.ProjectedVolumeSource"},
        "quobyte": {"type": "io.k8s.api.core.v1.QuobyteVolumeSource"},
        "rbd": {"type": "io.k8s.api.core.v1.RBDVolumeSource"},
        "scaleIO": {"type": "io.k8s.api.core.v1.ScaleIOVolumeSource"},
        "secret": {"type": "io.k8s.api.core.v1.SecretVolumeSource"},
        "storageos": {"type": "io.k8s.api.core.v1.StorageOSVolumeSource"},
        "vsphereVolume": {"type": "io.k8s.api.core.v1.VsphereVirtualDiskVolumeSource"},
    },
    "io.k8s.api.core.v1.VolumeDevice": {},
    "io.k8s.api.core.v1.VolumeMount": {},
    "io.k8s.api.core.v1.VolumeMountStatus": {},
    "io.k8s.api.core.v1.VolumeNodeAffinity": {"required": {"type": "io.k8s.api.core.v1.NodeSelector"}},
    "io.k8s.api.core.v1.VolumeProjection": {
        "clusterTrustBundle": {"type": "io.k8s.api.core.v1.ClusterTrustBundleProjection"},
        "configMap": {"type": "io.k8s.api.core.v1.ConfigMapProjection"},
        "downwardAPI": {"type": "io.k8s.api.core.v1.DownwardAPIProjection"},
        "secret": {"type": "io.k8s.api.core.v1.SecretProjection"},
        "serviceAccountToken": {"type": "io.k8s.api.core.v1.ServiceAccountTokenProjection"},
    },
    "io.k8s.api.core.v1.VolumeResourceRequirements": {"limits": {"map": True}, "requests": {"map": True}},
    "io.k8s.api.core.v1.VsphereVirtualDiskVolumeSource": {},
    "io.k8s.api.core.v1.WeightedPodAffinityTerm": {
        "podAffinityTerm": {"type": "io.k8s.api.core.v1.PodAffinityTerm"}
    },
    "io.k8s.api.core.v1.WindowsSecurityContextOptions": {},
    "io.k8s.api.events.v1.Event": {
        "deprecatedSource": {"type": "io.k8s.api.core.v1.EventSource"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "regarding": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "related": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "series": {"type": "io.k8s.api.events.v1.EventSeries"},
    },
    "io.k8s.api.events.v1.EventSeries": {},
    "io.k8s.api.networking.v1.HTTPIngressPath": {
        "backend": {"type": "io.k8s.api.networking.v1.IngressBackend"}
    },
    "io.k8s.api.networking.v1.HTTPIngressRuleValue": {
        "paths": {"list": "atomic", "type": "io.k8s.api.networking.v1.HTTPIngressPath"}
    },
    "io.k8s.api.networking.v1.Ingress": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.networking.v1.IngressSpec"},
        "status": {"type": "io.k8s.api.networking.v1.IngressStatus"},
    },
    "io.k8s.api.networking.v1.IngressBackend": {
        "resource": {"type": "io.k8s.api.core.v1.TypedLocalObjectReference"},
        "service": {"type": "io.k8s.api.networking.v1.IngressServiceBackend"},
    },
    "io.k8s.api.networking.v1.IngressLoadBalancerIngress": {
        "ports": {"list": "atomic", "type": "io.k8s.api.networking.v1.IngressPortStatus"}
    },
    "io.k8s.api.networking.v1.IngressLoadBalancerStatus": {
        "ingress": {"list": "atomic", "type": "io.k8s.api.networking.v1.IngressLoadBalancerIngress"}
    },
    "io.k8s.api.networking.v1.IngressPortStatus": {},
    "io.k8s.api.networking.v1.IngressRule": {
        "http": {"type": "io.k8s.api.networking.v1.HTTPIngressRuleValue"}
    },
    "io.k8s.api.networking.v1.IngressServiceBackend": {
        "port": {"type": "io.k8s.api.networking.v1.ServiceBackendPort"}
    },
    "io.k8s.api.networking.v1.IngressSpec": {
        "defaultBackend": {"type": "io.k8s.api.networking.v1.IngressBackend"},
        "rules": {"list": "atomic", "type": "io.k8s.api.networking.v1.IngressRule"},
        "tls": {"list": "atomic", "type": "io.k8s.api.networking.v1.IngressTLS"},
    },
    "io.k8s.api.networking.v1.IngressStatus": {
        "loadBalancer": {"type": "io.k8s.api.networking.v1.IngressLoadBalancerStatus"}
    },
    "io.k8s.api.networking.v1.IngressTLS": {"hosts": {"list": "atomic"}},
    "io.k8s.api.networking.v1.ServiceBackendPort": {"$atomic": True},
    "io.k8s.api.rbac.v1.AggregationRule": {
        "clusterRoleSelectors": {
            "list": "atomic",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        }
    },
    "io.k8s.api.rbac.v1.ClusterRole": {
        "aggregationRule": {"type": "io.k8s.api.rbac.v1.AggregationRule"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "rules": {"list": "atomic", "type": "io.k8s.api.rbac.v1.PolicyRule"},
    },
    "io.k8s.api.rbac.v1.ClusterRoleBinding": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "roleRef": {"type": "io.k8s.api.rbac.v1.RoleRef"},
        "subjects": {"list": "atomic", "type": "io.k8s.api.rbac.v1.Subject"},
    },
    "io.k8s.api.rbac.v1.PolicyRule": {
        "apiGroups": {"list": "atomic"},
        "nonResourceURLs": {"list": "atomic"},
        "resourceNames": {"list": "atomic"},
        "resources": {"list": "atomic"},
        "verbs": {"list": "atomic"},
    },
    "io.k8s.api.rbac.v1.Role": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "rules": {"list": "atomic", "type": "io.k8s.api.rbac.v1.PolicyRule"},
    },
    "io.k8s.api.rbac.v1.RoleBinding": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "roleRef": {"type": "io.k8s.api.rbac.v1.RoleRef"},
        "subjects": {"list": "atomic", "type": "io.k8s.api.rbac.v1.Subject"},
    },
    "io.k8s.api.rbac.v1.RoleRef": {"$atomic": True},
    "io.k8s.api.rbac.v1.Subject": {"$atomic": True},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceColumnDefinition": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceConversion": {
        "webhook": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion"}
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec"
        },
        "status": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus"
        },
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionCondition": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames": {
        "categories": {"list": "atomic"},
        "shortNames": {"list": "atomic"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": {
        "conversion": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceConversion"
        },
        "names": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames"
        },
        "versions": {
            "list": "atomic",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
        },
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": {
        "acceptedNames": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames"
        },
        "conditions": {
            "list": "map",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionCondition",
            "keys": ["type"],
        },
        "storedVersions": {"list": "atomic"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion": {
        "additionalPrinterColumns": {
            "list": "atomic",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceColumnDefinition",
        },
        "schema": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation"
        },
        "selectableFields": {
            "list": "atomic",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.SelectableField",
        },
        "subresources": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresources"
        },
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresourceScale": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresources": {
        "scale": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresourceScale"
        }
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation": {
        "openAPIV3Schema": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
        }
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ExternalDocumentation": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps": {
        "allOf": {
            "list": "atomic",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        },
        "anyOf": {
            "list": "atomic",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        },
        "definitions": {
            "map": True,
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        },
        "dependencies": {"map": True},
        "enum": {"list": "atomic"},
        "externalDocs": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ExternalDocumentation"
        },
        "not": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "oneOf": {
            "list": "atomic",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        },
        "patternProperties": {
            "map": True,
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        },
        "properties": {
            "map": True,
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        },
        "required": {"list": "atomic"},
        "x-kubernetes-list-map-keys": {"list": "atomic"},
        "x-kubernetes-validations": {
            "list": "map",
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule",
            "keys": ["rule"],
            "strategy": "merge",
            "mergeKey": "rule",
        },
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.SelectableField": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ServiceReference": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule": {},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookClientConfig": {
        "service": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ServiceReference"}
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion": {
        "clientConfig": {
            "type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookClientConfig"
        },
        "conversionReviewVersions": {"list": "atomic"},
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition": {},
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {
        "matchExpressions": {
            "list": "atomic",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        },
        "matchLabels": {"map": True},
        "$atomic": True,
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement": {"values": {"list": "atomic"}},
    "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry": {},
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
        "annotations": {"map": True},
        "finalizers": {"list": "set", "strategy": "merge"},
        "labels": {"map": True},
        "managedFields": {
            "list": "atomic",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
        },
        "ownerReferences": {
            "list": "map",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
            "keys": ["uid"],
            "strategy": "merge",
            "mergeKey": "uid",
        },
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": {"$atomic": True},
}
