{{/* Full name: `<release>-api`, or the release name when it already says api. */}}
{{- define "api.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 57 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 57 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of the headless Service of the active pods: the full name (at most 54 characters) plus `-headless`. */}}
{{- define "api.headlessName" -}}
{{- printf "%s-headless" (include "api.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/* Name of one track's objects: the full name, plus `-blue`/`-green` for a colour. Takes (dict "root" $ "color" $color). */}}
{{- define "api.trackName" -}}
{{- $name := include "api.fullname" .root -}}
{{- if .color }}{{ printf "%s-%s" $name .color }}{{ else }}{{ $name }}{{ end -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (no version, no chart). Takes (dict "root" $ "color" $color). */}}
{{- define "api.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .color }}
axiom25/color: {{ .color }}
{{- end }}
{{- end -}}

{{/* Every label of an object. Takes (dict "root" $ "color" $color). */}}
{{- define "api.labels" -}}
{{ include "api.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: grpc-api
app.kubernetes.io/part-of: axiom25
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with (.root.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference. The most specific level that sets a digest or tag wins (colour, then this chart, then global); at one level a digest beats a tag; else the appVersion. */}}
{{- define "api.image" -}}
{{- $v := .root.Values -}}
{{- $global := $v.global | default dict -}}
{{- $levels := list -}}
{{- if .color }}{{ $levels = append $levels (dict "digest" (index $v.blueGreen .color).digest "tag" (index $v.blueGreen .color).tag) }}{{ end -}}
{{- $levels = append $levels (dict "digest" $v.image.digest "tag" $v.image.tag) -}}
{{- $levels = append $levels (dict "digest" (index ($global.imageDigests | default dict) .root.Chart.Name | default "") "tag" ($global.imageTag | default "")) -}}
{{- $ref := printf ":%s" .root.Chart.AppVersion -}}
{{- range $level := reverse $levels -}}
{{- if $level.digest }}{{ $ref = printf "@%s" $level.digest }}{{ else if $level.tag }}{{ $ref = printf ":%s" $level.tag }}{{ end -}}
{{- end -}}
{{- $registry := $v.image.registry | default $global.imageRegistry -}}
{{- if $registry }}{{ printf "%s/%s%s" $registry $v.image.repository $ref }}{{ else }}{{ printf "%s%s" $v.image.repository $ref }}{{ end -}}
{{- end -}}

{{/* OTLP endpoint of the release's collector unless global.otlpEndpoint says otherwise. */}}
{{- define "api.otlpEndpoint" -}}
{{- $global := .Values.global | default dict -}}
{{- $global.otlpEndpoint | default (printf "http://%s-telemetry-collector:4317" .Release.Name) -}}
{{- end -}}

{{/* The api's config file: what the chart owns, with `config` (then the colour's `config`) merged over it; ports always from `ports`. Takes (dict "root" $ "color" $color). */}}
{{- define "api.config" -}}
{{- $colorConfig := ternary (index .root.Values.blueGreen (default "blue" .color)).config dict (ne .color "") -}}
{{- with .root -}}
{{- $global := .Values.global | default dict -}}
{{- $drainMs := ternary 0 (mul .Values.shutdown.drainDelaySeconds 1000) .Values.shutdown.nativeSleep -}}
{{- $chart := dict
  "shutdown" (dict "drain_delay_ms" $drainMs "grace_period_ms" (mul .Values.shutdown.gracePeriodSeconds 1000))
  "telemetry" (dict "environment" ($global.environment | default "production") "otlp_endpoint" (include "api.otlpEndpoint" .) "log_format" "json") -}}
{{- $config := mustMergeOverwrite $chart (deepCopy .Values.config) (deepCopy ($colorConfig | default dict)) -}}
{{- $_ := set $config "server" (mustMergeOverwrite (get $config "server" | default dict) (dict "grpc_port" .Values.ports.grpc "admin_port" .Values.ports.admin)) -}}
{{- toYaml $config -}}
{{- end -}}
{{- end -}}

{{/* Seconds the kubelet waits after starting termination: drain, grace, margin. */}}
{{- define "api.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.drainDelaySeconds .Values.shutdown.gracePeriodSeconds .Values.shutdown.terminationMarginSeconds -}}
{{- end -}}

{{- define "api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ .Values.serviceAccount.name | default (include "api.fullname" .) }}{{ else }}{{ .Values.serviceAccount.name | default "default" }}{{ end -}}
{{- end -}}

{{/* Colours rendered: blue and green with blue/green on, else one unnamed track. */}}
{{- define "api.colors" -}}
{{- if .Values.blueGreen.enabled }}["blue", "green"]{{ else }}[""]{{ end -}}
{{- end -}}

{{/* Whether the Prometheus Operator objects are rendered. */}}
{{- define "api.monitoringCrds" -}}
{{- if or (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") ((.Values.global).monitoring).assumeCrds }}true{{ end -}}
{{- end -}}

{{/* checkov skips, each with its reason (checkov reads `checkov.io/skipN` annotations). */}}
{{- define "api.checkovSkips" -}}
{{- $skips := list "CKV_K8S_15=IfNotPresent is deliberate: tags are immutable releases and digests pin content; Always would make every start depend on the registry" -}}
{{- if not (contains "@" (include "api.image" .)) -}}
{{- $skips = append $skips "CKV_K8S_43=pinned by tag unless a digest is set (image.digest or global.imageDigests); release pipelines set digests" -}}
{{- end -}}
{{- range $i, $skip := $skips }}
{{- if $i }}{{ "\n" }}{{ end }}checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* Whether a separate ClusterIP `<fullname>-admin` Service is rendered: only when the ServiceMonitor needs the admin port and the main Service may not carry it (type NodePort or LoadBalancer). With blue/green the preview Services (always ClusterIP) carry it instead. */}}
{{- define "api.adminService" -}}
{{- if and .Values.serviceMonitor.enabled (include "api.monitoringCrds" .) (ne .Values.service.type "ClusterIP") (not .Values.blueGreen.enabled) }}true{{ end -}}
{{- end -}}

{{/* Fails when global.otlpEndpoint names a host outside this release while no egress rule allows it: the
NetworkPolicy would silently drop every export. The release's collector is `<release>-telemetry-collector`,
`telemetry-collector` (its fullnameOverride in the plain manifests) or the release name when it already says
telemetry-collector, with or without `.<namespace>[.svc[.cluster.local]]`. */}}
{{- define "api.checkOtlpEgress" -}}
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
{{- fail (printf "global.otlpEndpoint (%s) is outside this release but global.networkPolicy.otlpEgress is empty, so the api NetworkPolicy would drop every export: set global.networkPolicy.otlpEgress to an egress rule for that endpoint (or api.networkPolicy.enabled=false)" $endpoint) -}}
{{- end -}}
{{- end -}}
{{- end -}}
