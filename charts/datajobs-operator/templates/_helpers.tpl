{{/* Names, labels and small shared fragments. */}}

{{- define "datajobs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "datajobs.fullname" -}}
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

{{- define "datajobs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object; pass a dict with "ctx" (the root) and "component". */}}
{{- define "datajobs.labels" -}}
helm.sh/chart: {{ include "datajobs.chart" .ctx }}
{{ include "datajobs.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: datajobs-operator
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "datajobs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datajobs.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "datajobs.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "datajobs.workerImage" -}}
{{- default (include "datajobs.image" .) .Values.worker.image -}}
{{- end -}}

{{- define "datajobs.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "datajobs.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "datajobs.adapterServiceAccount" -}}
{{- if .Values.adapter.serviceAccount.create -}}
{{- default (printf "%s-adapter" (include "datajobs.fullname" .)) .Values.adapter.serviceAccount.name -}}
{{- else -}}
{{- required "adapter.serviceAccount.name is required when adapter.serviceAccount.create is false" .Values.adapter.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The default worker's ServiceAccount name; empty when workers use their namespace's default account. */}}
{{- define "datajobs.workerServiceAccount" -}}
{{- if .Values.worker.serviceAccount.create -}}
{{- default (printf "%s-worker" (include "datajobs.fullname" .)) .Values.worker.serviceAccount.name -}}
{{- else -}}
{{- .Values.worker.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespaces that get the worker ServiceAccount, as a JSON list. */}}
{{- define "datajobs.workerNamespaces" -}}
{{- $ns := .Values.worker.serviceAccount.namespaces | default .Values.watchNamespaces | default (list .Release.Namespace) -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/* The Secret holding the adapter's keys document (data key keys.yaml). */}}
{{- define "datajobs.adapterKeysSecret" -}}
{{- default (printf "%s-adapter-keys" (include "datajobs.fullname" .)) .Values.adapter.apiKeys.existingSecret -}}
{{- end -}}

{{- define "datajobs.apiKeySecret" -}}
{{- printf "%s-api-key" (include "datajobs.fullname" .) -}}
{{- end -}}

{{- define "datajobs.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "datajobs.operatorRules" -}}
# delete: a finished job whose ttlSecondsAfterFinished is over
- apiGroups: ["datajobs.io"]
  resources: ["integrityjobs", "maskingexecutions"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["datajobs.io"]
  resources: ["integrityjobs/status", "maskingexecutions/status"]
  verbs: ["patch"]
# A worker pod's ownerReference sets blockOwnerDeletion; clusters that enforce owner references
# (OwnerReferencesPermissionEnforcement, on by default in OpenShift) require this to allow it.
- apiGroups: ["datajobs.io"]
  resources: ["integrityjobs/finalizers", "maskingexecutions/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# the tail of a worker's log, kept in a ConfigMap owned by its job before the pod is deleted (or on failure)
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create"]
{{- end -}}

{{- define "datajobs.adapterRules" -}}
- apiGroups: ["datajobs.io"]
  resources: ["integrityjobs", "maskingexecutions"]
  verbs: ["get", "list", "watch", "patch"]
{{- end -}}
