// SPDX-License-Identifier: Apache-2.0
/**
 * The addresses the observability env names: NSM_PROMETHEUS_LISTEN_ON and
 * NSM_OPEN_TELEMETRY_ENDPOINT. Kept apart from ./prometheus.ts and ./trace.ts so that a role
 * can check its env without loading prom-client or the OpenTelemetry SDK, which it loads only
 * when metrics or traces are on.
 */

export interface ListenAddress {
  /** Undefined: every address (`:9090`). */
  host: string | undefined;
  port: number;
}

/** Parses `[host]:port` (`:9090`, `127.0.0.1:9090`, `[::1]:9090`, `localhost:0`); throws with the reason. */
export function parseListenOn(value: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new Error('expected [host]:port (examples: ":9090", "127.0.0.1:9090", "[::1]:9090")');
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range (0-65535)`);
  const host = m[1] ?? m[2];
  return { host: host === "" ? undefined : host, port };
}

/** Where spans go: an OTLP/gRPC collector URL. */
export interface OtlpTarget {
  /** `http://host:port`, `https://host:port` or `unix:///path`. */
  readonly url: string;
  readonly tls: boolean;
}

/**
 * Parses NSM_OPEN_TELEMETRY_ENDPOINT: upstream's `host:port` (plaintext gRPC, as upstream dials it),
 * `http://host:port`, `https://host:port` (TLS) or `unix:///path/to/socket`; throws with the reason.
 */
export function parseOtlpEndpoint(value: string): OtlpTarget {
  const v = value.trim();
  if (/^unix:\/\/\/[^\s]+$/.test(v)) return { url: v, tls: false };
  const m = /^(?:(https?):\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(v);
  if (!m || Number(m[3]) > 65535) {
    throw new Error('expected host:port, http(s)://host:port or unix:///path (example: "otel-collector:4317")');
  }
  const tls = m[1] === "https";
  return { url: `${tls ? "https" : "http"}://${m[2]}:${m[3]}`, tls };
}
