{{/* Full name: `<release>-ui-gateway`, or the release name when it already says ui-gateway. */}}
{{- define "ui-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (no version, no chart). */}}
{{- define "ui-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every label of an object. */}}
{{- define "ui-gateway.labels" -}}
{{ include "ui-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: axiom25
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with (.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference: this chart's digest or tag, else global's, else the appVersion; at one level a digest beats a tag. */}}
{{- define "ui-gateway.image" -}}
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

{{/* OTLP endpoint of the release's collector unless global.otlpEndpoint says otherwise. */}}
{{- define "ui-gateway.otlpEndpoint" -}}
{{- $global := .Values.global | default dict -}}
{{- $global.otlpEndpoint | default (printf "http://%s-telemetry-collector:4317" .Release.Name) -}}
{{- end -}}

{{/* The api's headless Service as the api chart names it (`api.headlessName`, without a fullnameOverride). */}}
{{- define "ui-gateway.apiEndpoint" -}}
{{- $api := ternary .Release.Name (printf "%s-api" .Release.Name) (contains "api" .Release.Name) | trunc 57 | trimSuffix "-" -}}
{{- printf "http://%s-headless:50051" ($api | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/* The admin and query port of the release's collector (its main ClusterIP Service), or empty without one. */}}
{{- define "ui-gateway.collectorEndpoint" -}}
{{- if ((.Values.global).releaseComponents).telemetryCollector -}}
{{- $collector := ternary .Release.Name (printf "%s-telemetry-collector" .Release.Name) (contains "telemetry-collector" .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- printf "http://%s:8888" $collector -}}
{{- end -}}
{{- end -}}

{{/* Folder of the mounted API-key Secret. */}}
{{- define "ui-gateway.apiKeysDir" -}}/var/run/secrets/axiom25/api-keys{{- end -}}

{{/* The gateway's config file: what the chart owns, with `config` merged over it; ports always from `ports`. */}}
{{- define "ui-gateway.config" -}}
{{- $global := .Values.global | default dict -}}
{{- $drainMs := ternary 0 (mul .Values.shutdown.drainDelaySeconds 1000) .Values.shutdown.nativeSleep -}}
{{- $chart := dict
  "api" (dict "endpoint" (include "ui-gateway.apiEndpoint" .))
  "ops" (dict "collector_endpoint" (include "ui-gateway.collectorEndpoint" .))
  "shutdown" (dict "drain_delay_ms" $drainMs "grace_period_ms" (mul .Values.shutdown.gracePeriodSeconds 1000))
  "telemetry" (dict "environment" ($global.environment | default "production") "otlp_endpoint" (include "ui-gateway.otlpEndpoint" .) "log_format" "json") -}}
{{- if include "ui-gateway.apiKeysSecret" . }}
{{- $_ := set $chart "auth" (dict "api_keys_file" (printf "%s/api-keys" (include "ui-gateway.apiKeysDir" .))) -}}
{{- end -}}
{{- $config := mustMergeOverwrite $chart (deepCopy .Values.config) -}}
{{- /* A merge never overwrites with an empty value: an explicit empty collector endpoint turns /ops' collector off. */ -}}
{{- $ops := (.Values.config).ops | default dict -}}
{{- if and (hasKey $ops "collector_endpoint") (not $ops.collector_endpoint) }}
{{- $_ := set (get $config "ops") "collector_endpoint" "" -}}
{{- end -}}
{{- $_ := set $config "server" (mustMergeOverwrite (get $config "server" | default dict) (dict "http_port" .Values.ports.http "admin_port" .Values.ports.admin)) -}}
{{- toYaml $config -}}
{{- end -}}

{{- define "ui-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ .Values.serviceAccount.name | default (include "ui-gateway.fullname" .) }}{{ else }}{{ .Values.serviceAccount.name | default "default" }}{{ end -}}
{{- end -}}

{{/* Name of the Secret holding the API keys, if any. */}}
{{- define "ui-gateway.apiKeysSecret" -}}
{{- if .Values.apiKeys.existingSecret }}{{ .Values.apiKeys.existingSecret }}
{{- else if .Values.apiKeys.hashes }}{{ printf "%s-api-keys" (include "ui-gateway.fullname" .) }}
{{- end -}}
{{- end -}}

{{/* Whether the Prometheus Operator objects are rendered. */}}
{{- define "ui-gateway.monitoringCrds" -}}
{{- if or (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") ((.Values.global).monitoring).assumeCrds }}true{{ end -}}
{{- end -}}

{{/* checkov skips, each with its reason (checkov reads `checkov.io/skipN` annotations). */}}
{{- define "ui-gateway.checkovSkips" -}}
{{- $skips := list "CKV_K8S_15=IfNotPresent is deliberate: tags are immutable releases and digests pin content; Always would make every start depend on the registry" -}}
{{- if not (contains "@" (include "ui-gateway.image" .)) -}}
{{- $skips = append $skips "CKV_K8S_43=pinned by tag unless a digest is set (image.digest or global.imageDigests); release pipelines set digests" -}}
{{- end -}}
{{- range $i, $skip := $skips }}
{{- if $i }}{{ "\n" }}{{ end }}checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* Whether a separate ClusterIP `<fullname>-admin` Service is rendered: only when the ServiceMonitor needs the admin port and the main Service may not carry it (type NodePort or LoadBalancer). */}}
{{- define "ui-gateway.adminService" -}}
{{- if and .Values.serviceMonitor.enabled (include "ui-gateway.monitoringCrds" .) (ne .Values.service.type "ClusterIP") }}true{{ end -}}
{{- end -}}

{{/* Fails when global.otlpEndpoint names a host outside this release while no egress rule allows it: the
NetworkPolicy would silently drop every export. The release's collector is `<release>-telemetry-collector`,
`telemetry-collector` (its fullnameOverride in the plain manifests) or the release name when it already says
telemetry-collector, with or without `.<namespace>[.svc[.cluster.local]]`. */}}
{{- define "ui-gateway.checkOtlpEgress" -}}
{{- $global := .Values.global | default dict -}}
{{- $endpoint := $global.otlpEndpoint | default "" -}}
{{- if and $endpoint (not ($global.networkPolicy | default dict).otlpEgress) -}}
{{- $host := regexReplaceAll ":[0-9]*$" (regexReplaceAll "^https?://" $endpoint "") "" -}}
{{- $collectors := list (printf "%s-telemetry-collector" .Release.Name) "telemetry-collector" .Release.Name -}}
{{- if not (contains "telemetry-collector" .Release.Name) }}{{ $collectors = initial $collectors }}{{ end -}}
{{- $names := list -}}
{{- range $collectors }}{{ $names = append $names (regexQuoteMeta .) }}{{ end -}}
{{- $inRelease := printf "^(%s)(\\.%s(\\.svc(\\.cluster\\.local)?)?)?$" (join "|" $names) (regexQuoteMeta .Release.Namespace) -}}
{{- if not (regexMatch $inRelease $host) -}}
{{- fail (printf "global.otlpEndpoint (%s) is outside this release but global.networkPolicy.otlpEgress is empty, so the ui-gateway NetworkPolicy would drop every export: set global.networkPolicy.otlpEgress to an egress rule for that endpoint (or ui-gateway.networkPolicy.enabled=false)" $endpoint) -}}
{{- end -}}
{{- end -}}
{{- end -}}
