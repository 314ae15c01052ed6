// SPDX-License-Identifier: Apache-2.0
/**
 * Prometheus metrics of one role (registry, nsmgr, forwarder, nse, nsc), with prom-client.
 *
 * {@link createRoleMetrics} makes a registry whose series all carry `role` and `name` labels:
 * prom-client's default process metrics (`process_*`, `nodejs_*`), and the series fed by the
 * sdk's `metricsServer` element through {@link RoleMetrics.observer}:
 * - `nsm_calls_total{op="request"|"close",code}`: finished calls by gRPC result code;
 * - `nsm_call_duration_seconds{op,code}`: their latency (histogram);
 * - `nsm_connections`: live connections; `nsm_reselects_total`: Requests answered under a new id;
 * - `nsm_heals_total{how="re-request"|"reselect"}`: a client's successful heals.
 * Other modules add theirs to `registry` (registry records and watchers, interface counters).
 *
 * {@link servePrometheus} serves `GET /metrics` in the text format on NSM_PROMETHEUS_LISTEN_ON
 * (upstream's `:9090` form: `[host]:port`). Recording is synchronous and in memory; a scrape
 * runs on its own HTTP connection, so a slow or absent scraper never touches a Request.
 */
import { createServer, type Server } from "node:http";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "../sdk/core/logger.js";
import type { CallObserver } from "../sdk/networkservice/common/metrics/index.js";
import type { ListenAddress } from "./addresses.js";

export { type ListenAddress, parseListenOn } from "./addresses.js";

export interface RoleMetrics {
  readonly registry: Registry;
  /** For the sdk's `metricsServer` element. */
  readonly observer: CallObserver;
}

/** The registry of one role: default process metrics plus the call series (see the module doc). */
export function createRoleMetrics(role: string, name: string): RoleMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ role, name });
  collectDefaultMetrics({ register: registry });
  const calls = new Counter({
    name: "nsm_calls_total",
    help: "Finished NetworkService Request and Close calls, by result code",
    labelNames: ["op", "code"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "nsm_call_duration_seconds",
    help: "Latency of NetworkService Request and Close calls, by result code",
    labelNames: ["op", "code"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const connections = new Gauge({ name: "nsm_connections", help: "Live connections", registers: [registry] });
  const reselects = new Counter({
    name: "nsm_reselects_total",
    help: "Requests of a live connection answered under another connection id",
    registers: [registry],
  });
  const heals = new Counter({
    name: "nsm_heals_total",
    help: "Successful heals of a client's connections, by kind",
    labelNames: ["how"],
    registers: [registry],
  });
  const observer: CallObserver = {
    observeCall(op, code, seconds) {
      calls.inc({ op, code });
      duration.observe({ op, code }, seconds);
    },
    liveConnections: (count) => connections.set(count),
    reselected: () => reselects.inc(),
    healed: (how) => heals.inc({ how }),
  };
  return { registry, observer };
}

export interface MetricsServer {
  /** `http://host:port/metrics` as bound (port 0 resolved). */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics`; rejects when the address cannot be bound (in use, not local). */
export async function servePrometheus(registry: Registry, at: ListenAddress, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404).end("not found: GET /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) => {
        log.warn({ err: String(err) }, "cannot collect metrics");
        res.writeHead(500).end("cannot collect metrics\n");
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.warn({ err: String(err) }, "metrics server error"));
  server.unref();
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : at.port;
  const host = at.host ?? "0.0.0.0";
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
