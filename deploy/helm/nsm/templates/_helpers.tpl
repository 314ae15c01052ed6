{{/* SPDX-License-Identifier: Apache-2.0 */}}

{{- define "nsm.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "nsm.labels" -}}
app.kubernetes.io/part-of: nsm
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The SPIFFE Workload API env and the socket's volume mount, shared by every role. */}}
{{- define "nsm.spiffeEnv" -}}
- name: SPIFFE_ENDPOINT_SOCKET
  value: unix://{{ .Values.spire.socketDir }}/{{ .Values.spire.socketName }}
- name: NSM_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end }}

{{- define "nsm.spireMount" -}}
- name: spire-agent-socket
  mountPath: {{ .Values.spire.socketDir }}
  readOnly: true
{{- end }}

{{- define "nsm.spireVolume" -}}
- name: spire-agent-socket
  hostPath:
    path: {{ .Values.spire.socketDir }}
    type: Directory
{{- end }}

{{- define "nsm.nsmSocketVolume" -}}
- name: nsm-socket
  hostPath:
    path: /var/lib/networkservicemesh
    type: DirectoryOrCreate
{{- end }}
