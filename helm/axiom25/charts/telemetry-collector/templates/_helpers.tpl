{{/* Full name: `<release>-telemetry-collector`, or the release name when it already says telemetry-collector. */}}
{{- define "telemetry-collector.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (no version, no chart). */}}
{{- define "telemetry-collector.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every label of an object. */}}
{{- define "telemetry-collector.labels" -}}
{{ include "telemetry-collector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: telemetry
app.kubernetes.io/part-of: axiom25
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with (.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference: this chart's digest or tag, else global's, else the appVersion; at one level a digest beats a tag. */}}
{{- define "telemetry-collector.image" -}}
{{- $global := .Values.global | default dict -}}
{{- $ref := printf ":%s" .Chart.AppVersion -}}
{{- $globalDigest := index ($global.imageDigests | default dict) .Chart.Name | default "" -}}
{{- if .Values.image.digest }}{{ $ref = printf "@%s" .Values.image.digest }}
{{- else if .Values.image.tag }}{{ $ref = printf ":%s" .Values.image.tag }}
{{- else if $globalDigest }}{{ $ref = printf "@%s" $globalDigest }}
{{- else if $global.imageTag }}{{ $ref = printf ":%s" $global.imageTag }}
{{- end -}}
{{- $registry := .Values.image.registry | default $global.imageRegistry -}}
{{- if $registry }}{{ printf "%s/%s%s" $registry .Values.image.repository $ref }}{{ else }}{{ printf "%s%s" .Values.image.repository $ref }}{{ end -}}
{{- end -}}

{{/* The collector's config file: what the chart owns, with `config` merged over it; ports always from `ports`. Its own spans are not exported (no loop through itself). */}}
{{- define "telemetry-collector.config" -}}
{{- $global := .Values.global | default dict -}}
{{- $drainMs := ternary 0 (mul .Values.shutdown.drainDelaySeconds 1000) .Values.shutdown.nativeSleep -}}
{{- $chart := dict
  "shutdown" (dict "drain_delay_ms" $drainMs "grace_period_ms" (mul .Values.shutdown.gracePeriodSeconds 1000))
  "telemetry" (dict "environment" ($global.environment | default "production") "log_format" "json") -}}
{{- $config := mustMergeOverwrite $chart (deepCopy .Values.config) -}}
{{- $_ := set $config "server" (mustMergeOverwrite (get $config "server" | default dict) (dict "grpc_port" .Values.ports.otlpGrpc "http_port" .Values.ports.otlpHttp "admin_port" .Values.ports.admin)) -}}
{{- toYaml $config -}}
{{- end -}}

{{- define "telemetry-collector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ .Values.serviceAccount.name | default (include "telemetry-collector.fullname" .) }}{{ else }}{{ .Values.serviceAccount.name | default "default" }}{{ end -}}
{{- end -}}

{{/* Whether the Prometheus Operator objects are rendered. */}}
{{- define "telemetry-collector.monitoringCrds" -}}
{{- if or (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") ((.Values.global).monitoring).assumeCrds }}true{{ end -}}
{{- end -}}

{{/* checkov skips, each with its reason (checkov reads `checkov.io/skipN` annotations). */}}
{{- define "telemetry-collector.checkovSkips" -}}
{{- $skips := list "CKV_K8S_15=IfNotPresent is deliberate: tags are immutable releases and digests pin content; Always would make every start depend on the registry" -}}
{{- if not (contains "@" (include "telemetry-collector.image" .)) -}}
{{- $skips = append $skips "CKV_K8S_43=pinned by tag unless a digest is set (image.digest or global.imageDigests); release pipelines set digests" -}}
{{- end -}}
{{- range $i, $skip := $skips }}
{{- if $i }}{{ "\n" }}{{ end }}checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* Whether a separate ClusterIP `<fullname>-admin` Service is rendered: only when the ServiceMonitor needs the admin port and the main Service may not carry it (type NodePort or LoadBalancer). */}}
{{- define "telemetry-collector.adminService" -}}
{{- if and .Values.serviceMonitor.enabled (include "telemetry-collector.monitoringCrds" .) (ne .Values.service.type "ClusterIP") }}true{{ end -}}
{{- end -}}
