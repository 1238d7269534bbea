{{- define "aggregator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aggregator.fullname" -}}
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

{{- define "aggregator.labels" -}}
app.kubernetes.io/name: {{ include "aggregator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "aggregator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aggregator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A flow option value as the annotation carries it: lists as comma lists, null as "". */}}
{{- define "aggregator.annotationValue" -}}
{{- if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if kindIs "invalid" . -}}
{{- else if kindIs "float64" . -}}
{{- . | int64 | toString -}}
{{- else -}}
{{- . | toString -}}
{{- end -}}
{{- end -}}

{{/* Every flow option as a template annotation (DESIGN §7). */}}
{{- define "aggregator.flowAnnotations" -}}
{{- range $flow, $options := .Values.flows }}
{{- $prefix := ternary "aggregator.knative.dev/" (printf "%s.flows.aggregator.knative.dev/" $flow) (eq $flow "default") }}
{{- range $option, $value := $options }}
{{- if eq $option "output" }}
{{- range $field, $sub := $value }}
{{ $prefix }}output-{{ $field }}: {{ include "aggregator.annotationValue" $sub | quote }}
{{- end }}
{{- else }}
{{ $prefix }}{{ $option | replace "_" "-" }}: {{ include "aggregator.annotationValue" $value | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "aggregator.secretName" -}}
{{- default (include "aggregator.fullname" .) .Values.redis.existingSecret.name -}}
{{- end -}}

{{- define "aggregator.redisURL" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "aggregator.fullname" .) -}}
{{- else -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end -}}
