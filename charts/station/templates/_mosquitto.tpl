{{/* The broker's configuration, password list and ACL (rendered into its ConfigMap and Secret). */}}

{{- define "station.mosquittoConf" -}}
# The station broker: no anonymous client, every user confined by the ACL.
listener {{ .Values.mosquitto.port }}
protocol mqtt
allow_anonymous false
password_file /mosquitto/auth/passwd
acl_file /mosquitto/auth/acl
persistence true
persistence_location /mosquitto/data/
autosave_interval 30
max_queued_messages 10000
# Small packets (breaths, bulletins) leave at once: no Nagle delay on the 100 ms budget.
set_tcp_nodelay true
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
{{- end -}}

{{/* Plain "user:password" lines; the broker pod's init container hashes them. */}}
{{- define "station.mosquittoPasswd" -}}
{{- $root := . -}}
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
{{ $name }}:{{ include "station.servicePassword" (list $root $name) }}
{{- end }}
{{- end }}
{{- range $charger := include "station.chargerIds" . | trim | splitList "\n" | compact }}
collector-{{ $charger }}:{{ include "station.chargerPassword" (list $root (printf "collector-%s" $charger)) }}
{{- if $root.Values.zigbee2mqtt.enabled }}
zigbee2mqtt-{{ $charger }}:{{ include "station.chargerPassword" (list $root (printf "zigbee2mqtt-%s" $charger)) }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Deny by default: mosquitto lets a user use only the topics listed under it. The console
alone writes the station's pile set, and it speaks to every charger's Zigbee2MQTT bridge
API (pile registration). A collector
publishes only under its own charger's topics, its own piles' meter readings and statuses
(every pile id its charger may have, c<i>-p01..p99: a pile approved later is one of them)
and the three request topics, and reads only its own replies (its client id is fixed to
collector-c<i>), its own stop requests, kiosk requests and fault reports, its own piles'
statuses (to say again one someone else overwrote) and maintenance, the pile sessions, the
faults service's status (a restart of it is not a lost local server) and the console's pile
set (which piles it serves). It answers the
console's kiosk requests on the console's reply topic only: the console's client id is
meant to be fixed to "console" where it is deployed, as a collector's is to collector-c<i>.
*/}}
{{- define "station.mosquittoAcl" -}}
{{- $root := . -}}
{{- $z2m := .Values.zigbee2mqtt.root -}}
# Deny by default: a user may use only the topics listed under it.
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}

user {{ $name }}
{{- range $svc.mqtt.read }}
topic read {{ . }}
{{- end }}
{{- range $svc.mqtt.write }}
topic write {{ . }}
{{- end }}
{{- if eq $name "console" }}
{{- range $charger := include "station.chargerIds" $root | trim | splitList "\n" | compact }}
topic write {{ $z2m }}/{{ $charger }}/bridge/request/#
topic read {{ $z2m }}/{{ $charger }}/bridge/response/#
topic read {{ $z2m }}/{{ $charger }}/bridge/info
topic read {{ $z2m }}/{{ $charger }}/bridge/event
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $charger := include "station.chargerIds" . | trim | splitList "\n" | compact }}

# Charger {{ $charger }}
user collector-{{ $charger }}
topic write station/v1/collectors/{{ $charger }}/#
topic read station/v1/collectors/{{ $charger }}/stop
topic read station/v1/collectors/{{ $charger }}/faults/#
topic read station/v1/collectors/{{ $charger }}/kiosk
topic readwrite {{ $z2m }}/{{ $charger }}/#
{{- range $pile := until 99 }}
{{- $pileId := printf "%s-p%02d" $charger (add1 $pile) }}
topic write station/v1/piles/{{ $pileId }}/meter
topic readwrite station/v1/piles/{{ $pileId }}/status
topic read station/v1/piles/{{ $pileId }}/maintenance
{{- end }}
topic write station/v1/verification/requests
topic write station/v1/billing/open
topic write station/v1/billing/checkout
topic write station/v1/billing/sessions
topic write station/v1/verification/withdrawals
topic read station/v1/replies/collector-{{ $charger }}
topic write station/v1/replies/console
topic read station/v1/sessions/+
topic read station/v1/services/faults/status
topic read station/v1/console/piles
{{- if $root.Values.zigbee2mqtt.enabled }}

user zigbee2mqtt-{{ $charger }}
topic readwrite {{ $z2m }}/{{ $charger }}/#
{{- end }}
{{- end }}
{{- end -}}
