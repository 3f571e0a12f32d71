{{/* Names and labels. */}}
{{- define "station.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "station.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "station.labels" -}}
{{ include "station.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: station
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "station.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "station.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The one image of every Python service: repository:tag[@digest]. */}}
{{- define "station.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "station.brokerUrl" -}}
{{- printf "mqtt://%s-mosquitto:%d" (include "station.fullname" .) (int .Values.mosquitto.port) -}}
{{- end -}}

{{/* Charger ids c1..c<chargers>, one per line. */}}
{{- define "station.chargerIds" -}}
{{- range $i := until (int .Values.chargers) }}
{{ printf "c%d" (add1 $i) }}
{{- end -}}
{{- end -}}

{{/*
A password from values: present, long enough, no whitespace (it goes into a mosquitto
password file and a database URL). Call with (list $value "the.values.key" "what it is for").
*/}}
{{- define "station.password" -}}
{{- $value := index . 0 -}}
{{- $key := index . 1 -}}
{{- $what := index . 2 -}}
{{- $value = required (printf "%s is required: the password of %s (set it with --set %s=...)" $key $what $key) $value | toString -}}
{{- if lt (len $value) 12 -}}
{{- fail (printf "%s is too short: the password of %s needs at least 12 characters" $key $what) -}}
{{- end -}}
{{- if regexMatch "\\s" $value -}}
{{- fail (printf "%s must not contain whitespace" $key) -}}
{{- end -}}
{{- $value -}}
{{- end -}}

{{/* The broker password of a service user. Call with (list $ "verification"). */}}
{{- define "station.servicePassword" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- include "station.password" (list (index $root.Values.mqtt.passwords $name) (printf "mqtt.passwords.%s" $name) (printf "the broker user %s" $name)) -}}
{{- end -}}

{{/*
The broker password of a charger's user (collector-c<i>, zigbee2mqtt-c<i>), derived from the
chargers seed so that each pod holds only its own. Call with (list $ "collector-c1").
*/}}
{{- define "station.chargerPassword" -}}
{{- $root := index . 0 -}}
{{- $user := index . 1 -}}
{{- $seed := include "station.password" (list $root.Values.mqtt.passwords.chargers "mqtt.passwords.chargers" "the chargers' broker users (collector-c<i>, zigbee2mqtt-c<i>)") -}}
{{- printf "%s/%s" $seed $user | sha256sum -}}
{{- end -}}

{{/*
The database a service's role logs into: its own, or with `databaseAccess` another enabled
service's (sync reads billing's outbox). Call with (list $ "sync").
*/}}
{{- define "station.databaseName" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $svc := index $root.Values.services $name -}}
{{- with $svc.databaseAccess -}}
{{- $owner := index $root.Values.services .database -}}
{{- if not (and $owner $owner.enabled $owner.database (not $owner.databaseAccess)) -}}
{{- fail (printf "services.%s.databaseAccess.database: %s is no enabled service with a database of its own" $name .database) -}}
{{- end -}}
{{- .database -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}

{{/* The database URL of a service with `database: true`. Call with (list $ "billing"). */}}
{{- define "station.databaseUrl" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- if $root.Values.postgresql.enabled -}}
{{- $password := include "station.password" (list (index $root.Values.postgresql.auth.passwords $name) (printf "postgresql.auth.passwords.%s" $name) (printf "the database role %s" $name)) -}}
{{- $database := include "station.databaseName" (list $root $name) -}}
{{- printf "postgresql://%s:%s@%s-postgresql:%d/%s" $name (urlquery $password) (include "station.fullname" $root) (int $root.Values.postgresql.port) $database -}}
{{- else -}}
{{- $key := printf "externalDatabase.urls.%s" $name -}}
{{- $url := required (printf "%s is required when postgresql.enabled is false" $key) (index $root.Values.externalDatabase.urls $name) -}}
{{- if not (hasPrefix "postgresql://" $url) -}}
{{- fail (printf "%s must be a postgresql:// URL" $key) -}}
{{- end -}}
{{- $url -}}
{{- end -}}
{{- end -}}

{{/* Central's URL, for a service with `central: true` (sync). */}}
{{- define "station.centralUrl" -}}
{{- $url := required "central.url is required while sync is enabled: the central server's base URL (set it with --set central.url=https://...)" .Values.central.url | toString -}}
{{- if not (regexMatch "^https?://[^\\s/]+" $url) -}}
{{- fail (printf "central.url must be an http:// or https:// URL, not %q" $url) -}}
{{- end -}}
{{- $url | trimSuffix "/" -}}
{{- end -}}

{{/* This station's token at central, for a service with `central: true` (sync). */}}
{{- define "station.centralToken" -}}
{{- $token := required "central.token is required while sync is enabled: this station's token at central (POST /api/v1/stations answers it; set it with --set central.token=...)" .Values.central.token | toString -}}
{{- if or (lt (len $token) 16) (regexMatch "\\s" $token) -}}
{{- fail "central.token must be at least 16 characters without whitespace (central's station tokens are stn_ and 43 more)" -}}
{{- end -}}
{{- $token -}}
{{- end -}}

{{/* Probes of a Python service on its named port "http". */}}
{{- define "station.probes" -}}
startupProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end -}}

{{/* Environment every Python service shares. Call with (dict "root" $ "prefix" "STATION_X_" "port" 8101); "noData" true for a service that keeps no files (the collector). */}}
{{- define "station.commonEnv" -}}
{{- $p := .prefix -}}
- name: {{ $p }}BROKER
  value: {{ include "station.brokerUrl" .root | quote }}
- name: {{ $p }}HOST
  value: "0.0.0.0"
- name: {{ $p }}PORT
  value: {{ .port | quote }}
- name: {{ $p }}SECURE
  value: "true"
- name: {{ $p }}LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
{{- if not .noData }}
- name: {{ $p }}DATA_DIR
  value: /var/lib/station
{{- end }}
- name: {{ $p }}BROKER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: broker-password
{{- end -}}

{{/* Extra env from values (names without prefix, values through tpl). Call with (dict "root" $ "prefix" "..." "env" map). */}}
{{- define "station.extraEnv" -}}
{{- $root := .root -}}
{{- $p := .prefix -}}
{{- range $name, $value := .env }}
- name: {{ $p }}{{ $name }}
  value: {{ tpl (toString $value) $root | quote }}
{{- end -}}
{{- end -}}

{{/* Writable places for a Python service under a read-only root filesystem. */}}
{{- define "station.pythonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/station
{{- end -}}

{{- define "station.pythonVolumes" -}}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
- name: data
  emptyDir: {sizeLimit: 256Mi}
{{- end -}}

{{/* The database URLs the backup job reads, for its pod's checksum. Call with (list $ names). */}}
{{- define "station.backupUrls" -}}
{{- $root := index . 0 -}}
{{- range $name := index . 1 -}}
{{- include "station.databaseUrl" (list $root $name) -}}
{{- end -}}
{{- end -}}
