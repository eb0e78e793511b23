{{/* Names and labels of every object of the chart. */}}

{{- define "cryptopipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>", or the release name when it contains the chart's name. */}}
{{- define "cryptopipeline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cryptopipeline.operatorName" -}}
{{- printf "%s-operator" (include "cryptopipeline.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cryptopipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "cryptopipeline.labels" -}}
helm.sh/chart: {{ include "cryptopipeline.chart" . }}
{{ include "cryptopipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cryptopipeline
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The immutable subset the operator's Deployment and Service select by. */}}
{{- define "cryptopipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cryptopipeline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "cryptopipeline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cryptopipeline.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest */}}
{{- define "cryptopipeline.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Prometheus Operator's kinds, when the cluster serves them. */}}
{{- define "cryptopipeline.hasServiceMonitor" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" -}}true{{- end -}}
{{- end -}}

{{- define "cryptopipeline.hasPrometheusRule" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PrometheusRule" -}}true{{- end -}}
{{- end -}}

{{/*
RBAC rules, the same as k8s/rbac.yaml (tests/chart compares them). Split in two so that a
namespace-scoped install grants the namespaced part through Roles only.
*/}}
{{- define "cryptopipeline.clusterRules" -}}
# kopf: discover resources and CRDs, namespaces
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- end -}}

{{- define "cryptopipeline.namespacedRules" -}}
# the custom resource: watch it, keep kopf's annotations and finalizer, write status
- apiGroups: [cryptopipeline.io]
  resources: [cryptopipelines]
  verbs: [get, list, watch, patch, update]
- apiGroups: [cryptopipeline.io]
  resources: [cryptopipelines/status, cryptopipelines/finalizers]
  verbs: [get, patch, update]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
# owned objects
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics]
  verbs: [get, list, watch, create, patch, update, delete]
# referenced Secrets: existence and keys (bot key), values only for ksqlDB's login
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end -}}
