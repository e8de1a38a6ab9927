{{/* The chart name, overridable. */}}
{{- define "claw-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object this chart creates. */}}
{{- define "claw-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "claw-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "claw-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "claw-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "claw-operator.labels" -}}
helm.sh/chart: {{ include "claw-operator.chart" . }}
{{ include "claw-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: claw-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "claw-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "claw-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The rules on ClawInstances, their Secrets and Events: what the operator does in each namespace it
watches. Derived from the code (tests/contract/helm/test_chart_rbac.py holds the derivation and
checks it against a recorded run of the operator):
- kopf lists and watches ClawInstances, and patches them (its finalizer, its annotations);
- kube/kubeapi.py GETs a ClawInstance before each pass and PUTs its status subresource;
- kube/kubeapi.py GETs the Secrets named by spec.secretEnv;
- kopf posts core/v1 Events on the ClawInstance.
*/}}
{{- define "claw-operator.namespacedRules" -}}
- apiGroups: ["claw.dev"]
  resources: ["clawinstances"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["claw.dev"]
  resources: ["clawinstances/status"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "get", "patch"]
{{- end }}

{{/* kopf watches CRDs to notice when its resources appear, change or go. */}}
{{- define "claw-operator.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}

{{/* With a namespace list, kopf also watches namespaces, to notice the listed ones appear. */}}
{{- define "claw-operator.namespaceRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
