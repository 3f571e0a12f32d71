{{/* Names and labels. */}}
{{- define "central.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "central.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "central.labels" -}}
{{ include "central.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: station-central
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "central.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "central.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The station image: repository:tag[@digest]. */}}
{{- define "central.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "central.postgresImage" -}}
{{- printf "%s:%s" .Values.postgresql.image.repository .Values.postgresql.image.tag -}}
{{- end -}}

{{/*
A secret from values: present, long enough, no whitespace. Call with
(list $value "the.values.key" "what it is for" minimumLength).
*/}}
{{- define "central.secret" -}}
{{- $value := index . 0 -}}
{{- $key := index . 1 -}}
{{- $what := index . 2 -}}
{{- $minimum := index . 3 -}}
{{- $value = required (printf "%s is required: %s (set it with --set %s=...)" $key $what $key) $value | toString -}}
{{- if lt (len $value) (int $minimum) -}}
{{- fail (printf "%s is too short: %s needs at least %d characters" $key $what (int $minimum)) -}}
{{- end -}}
{{- if regexMatch "\\s" $value -}}
{{- fail (printf "%s must not contain whitespace" $key) -}}
{{- end -}}
{{- $value -}}
{{- end -}}

{{- define "central.adminToken" -}}
{{- include "central.secret" (list .Values.central.adminToken "central.adminToken" "the admin token, which registers stations and reads every record" 16) -}}
{{- end -}}

{{- define "central.postgresPassword" -}}
{{- include "central.secret" (list .Values.postgresql.auth.postgresPassword "postgresql.auth.postgresPassword" "the password of the PostgreSQL superuser" 12) -}}
{{- end -}}

{{- define "central.databasePassword" -}}
{{- include "central.secret" (list .Values.postgresql.auth.password "postgresql.auth.password" "the password of central's database role" 12) -}}
{{- end -}}

{{- define "central.replicationPassword" -}}
{{- include "central.secret" (list .Values.postgresql.auth.replicationPassword "postgresql.auth.replicationPassword" "the password of the standby's replication role" 12) -}}
{{- end -}}

{{/* The Service central's database is reached at: the primary's, or the standby's once promoted. */}}
{{- define "central.databaseHost" -}}
{{- if and .Values.postgresql.standby.enabled .Values.postgresql.standby.promoted -}}
{{- printf "%s-postgresql-standby" (include "central.fullname" .) -}}
{{- else -}}
{{- printf "%s-postgresql" (include "central.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The pod component central's database runs in (for the NetworkPolicy). */}}
{{- define "central.databaseComponent" -}}
{{- if and .Values.postgresql.standby.enabled .Values.postgresql.standby.promoted -}}
postgresql-standby
{{- else -}}
postgresql-primary
{{- end -}}
{{- end -}}

{{- define "central.databaseUrl" -}}
{{- if .Values.postgresql.enabled -}}
{{- $p := .Values.postgresql -}}
{{- printf "postgresql://%s:%s@%s:%d/%s" $p.username (urlquery (include "central.databasePassword" .)) (include "central.databaseHost" .) (int $p.port) $p.database -}}
{{- else -}}
{{- $url := required "externalDatabase.url is required when postgresql.enabled is false" .Values.externalDatabase.url -}}
{{- if not (hasPrefix "postgresql://" $url) -}}
{{- fail "externalDatabase.url must be a postgresql:// URL" -}}
{{- end -}}
{{- $url -}}
{{- end -}}
{{- end -}}

{{/* `postgres -c name=value` arguments, the same for the primary and the standby. */}}
{{- define "central.postgresArgs" -}}
- postgres
{{- range $name, $value := .Values.postgresql.config }}
- -c
- {{ printf "%s=%v" $name $value | quote }}
{{- end }}
- -c
- hba_file=/etc/station/postgresql/pg_hba.conf
{{- end -}}

{{/* Probes of a PostgreSQL container (no password needed: pg_isready only asks). */}}
{{- define "central.postgresProbes" -}}
startupProbe:
  exec:
    command: ["pg_isready", "--host=127.0.0.1", "--username=postgres"]
  periodSeconds: 2
  failureThreshold: 300
livenessProbe:
  exec:
    command: ["pg_isready", "--host=127.0.0.1", "--username=postgres"]
  periodSeconds: 10
  timeoutSeconds: 5
readinessProbe:
  exec:
    command: ["pg_isready", "--host=127.0.0.1", "--username=postgres"]
  periodSeconds: 5
  timeoutSeconds: 5
{{- end -}}
