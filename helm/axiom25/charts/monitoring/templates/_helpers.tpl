{{/* Name prefix: `<release>-monitoring`, or fullnameOverride. */}}
{{- define "monitoring.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component (`prometheus` or `alertmanager`): `{root, component}`. */}}
{{- define "monitoring.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Every label of an object of one component: `{root, component}`. */}}
{{- define "monitoring.labels" -}}
{{ include "monitoring.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: monitoring
app.kubernetes.io/part-of: axiom25
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with (.root.Values.global).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image of one component: its digest or tag, else global's tag, else the appVersion. `{root, component}`. */}}
{{- define "monitoring.image" -}}
{{- $global := .root.Values.global | default dict -}}
{{- $image := index .root.Values .component "image" -}}
{{- $ref := printf ":%s" .root.Chart.AppVersion -}}
{{- if $image.digest }}{{ $ref = printf "@%s" $image.digest }}
{{- else if $image.tag }}{{ $ref = printf ":%s" $image.tag }}
{{- else if $global.imageTag }}{{ $ref = printf ":%s" $global.imageTag }}
{{- end -}}
{{- $registry := $image.registry | default $global.imageRegistry -}}
{{- if $registry }}{{ printf "%s/%s%s" $registry $image.repository $ref }}{{ else }}{{ printf "%s%s" $image.repository $ref }}{{ end -}}
{{- end -}}

{{/* checkov skips of one component's Deployment, each with its reason. `{root, component}`. */}}
{{- define "monitoring.checkovSkips" -}}
{{- $skips := list "CKV_K8S_15=IfNotPresent is deliberate: tags are immutable releases and digests pin content" -}}
{{- if not (contains "@" (include "monitoring.image" .)) -}}
{{- $skips = append $skips "CKV_K8S_43=pinned by tag unless a digest is set; release pipelines set digests" -}}
{{- end -}}
{{- range $i, $skip := $skips }}
{{- if $i }}{{ "\n" }}{{ end }}checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* Prometheus' configuration. */}}
{{- define "monitoring.prometheusConfig" -}}
global:
  scrape_interval: {{ .Values.prometheus.scrapeInterval }}
  evaluation_interval: {{ .Values.prometheus.evaluationInterval }}
  external_labels:
    environment: {{ (.Values.global).environment | default "production" }}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{{ include "monitoring.fullname" . }}-alertmanager:9093"]
rule_files:
  - /etc/axiom25/rules/*.yml
scrape_configs:
  {{- /* One job per service, through its headless scrape Service (every pod, by DNS: Debian's
  Prometheus has no Kubernetes discovery); job = the service's name, as the rules expect. */}}
  {{- range .Values.prometheus.scrapeTargets }}
  - job_name: {{ .job }}
    dns_sd_configs:
      - names: ["{{ include "monitoring.fullname" $ }}-scrape-{{ .job }}.{{ $.Release.Namespace }}.svc"]
        type: A
        port: {{ .port }}
  {{- end }}
  - job_name: alertmanager
    static_configs:
      - targets: ["{{ include "monitoring.fullname" . }}-alertmanager:9093"]
{{- end -}}

{{/* Alertmanager's configuration: files/alertmanager.yml (a copy of the local stack's) with the receivers' URLs from values. */}}
{{- define "monitoring.alertmanagerConfig" -}}
{{- $config := .Files.Get "files/alertmanager.yml" | fromYaml -}}
{{- $receivers := list -}}
{{- range $config.receivers -}}
{{- $url := index $.Values.alertmanager.receivers .name | required (printf "monitoring.alertmanager.receivers.%s: the webhook URL of the %s receiver is required" .name .name) -}}
{{- $hook := first .webhook_configs -}}
{{- $receivers = append $receivers (dict "name" .name "webhook_configs" (list (dict "url" $url "send_resolved" $hook.send_resolved))) -}}
{{- end -}}
{{- $_ := set $config "receivers" $receivers -}}
{{- toYaml $config -}}
{{- end -}}
