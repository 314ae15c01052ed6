// SPDX-License-Identifier: Apache-2.0
/**
 * Metrics and traces of every role.
 *
 * Prometheus. Env (upstream names): NSM_PROMETHEUS (false; `PROMETHEUS`, which upstream's sdk
 * reads, is accepted too), NSM_PROMETHEUS_LISTEN_ON (`:9090`, `[host]:port`). A bad address, or
 * one that cannot be bound, stops the role at start with one line naming NSM_PROMETHEUS_LISTEN_ON.
 * Besides the call series, the role's token and SVID expiry (`src/observe/expiry.ts`).
 *
 * OpenTelemetry traces. Env (upstream names): TELEMETRY (`true` or `opentelemetry` turns them on),
 * NSM_OPEN_TELEMETRY_ENDPOINT (upstream's default `otel-collector.observability.svc.cluster.local:4317`;
 * also `http(s)://host:port` or `unix:///path`). Setting NSM_OPEN_TELEMETRY_ENDPOINT without
 * TELEMETRY turns traces on as well (ours: naming a collector says one wants it). A bad endpoint
 * stops the role at start with one line naming NSM_OPEN_TELEMETRY_ENDPOINT; a collector that is
 * down only loses spans.
 *
 * prom-client and the OpenTelemetry SDK are loaded only when on: together they are about 300
 * modules, a sixth of a role's start time and ~15 MiB of its memory.
 */

import { parseListenOn, parseOtlpEndpoint } from "../observe/addresses.js";
import type { RoleMetrics } from "../observe/prometheus.js";
import type { Tracing } from "../observe/trace.js";
import { chain, type NetworkServiceElement } from "../sdk/core/chain.js";
import type { Logger } from "../sdk/core/logger.js";
import { setChainTracer } from "../sdk/core/tracing.js";
import { metricsServer } from "../sdk/networkservice/common/metrics/index.js";
import type { X509Source } from "../security/source.js";
import { ConfigError, type Env } from "./env.js";

export const DEFAULT_OTEL_ENDPOINT = "otel-collector.observability.svc.cluster.local:4317";

export interface RoleObservability {
  /** The metrics element for the top of the role's chain; undefined when metrics are off. */
  readonly element: NetworkServiceElement | undefined;
  /** The role's Prometheus registry, for more series; undefined when metrics are off. */
  readonly metrics: RoleMetrics | undefined;
  /** The role's tracing; undefined when traces are off. */
  readonly tracing: Tracing | undefined;
  close(): Promise<void>;
}

/** The metrics of this process's role, for {@link observeSvid} (one role per process). */
let processMetrics: RoleMetrics | undefined;

/** Reads the metrics and telemetry env and starts what is on (see the module doc). */
export async function roleObservability(env: Env, role: string, name: string, log: Logger): Promise<RoleObservability> {
  const tracing = await roleTracing(env, name, log);
  const metrics = await roleMetrics(env, role, name, log);
  processMetrics = metrics?.metrics;
  return {
    element: metrics?.element,
    metrics: metrics?.metrics,
    tracing,
    close: async () => {
      await metrics?.close();
      if (tracing) {
        setChainTracer(undefined);
        await tracing.shutdown();
      }
    },
  };
}

/** Reports the SVID expiry of `source` in the role's metrics, when they are on. */
export async function observeSvid(source: X509Source | undefined): Promise<void> {
  if (!processMetrics || !source) return;
  const { observeSvidExpiry } = await import("../observe/expiry.js");
  observeSvidExpiry(processMetrics.registry, () => source.current().svid);
}

async function roleMetrics(env: Env, role: string, name: string, log: Logger) {
  const on =
    env.raw("NSM_PROMETHEUS") !== undefined ? env.bool("NSM_PROMETHEUS", false) : env.bool("PROMETHEUS", false);
  const value = env.string("NSM_PROMETHEUS_LISTEN_ON", ":9090");
  const at = env.parsed("NSM_PROMETHEUS_LISTEN_ON", ":9090", parseListenOn);
  if (!on) return undefined;
  const [{ createRoleMetrics, servePrometheus }, { tokenExpiry }] = await Promise.all([
    import("../observe/prometheus.js"),
    import("../observe/expiry.js"),
  ]);
  const metrics = createRoleMetrics(role, name);
  let server: Awaited<ReturnType<typeof servePrometheus>>;
  try {
    server = await servePrometheus(metrics.registry, at, log);
  } catch (err) {
    throw new ConfigError("NSM_PROMETHEUS_LISTEN_ON", value, `cannot listen: ${(err as Error).message}`);
  }
  log.info({ url: server.url }, "serving Prometheus metrics");
  const element = chain(metricsServer(metrics.observer), tokenExpiry(metrics.registry, name));
  return { metrics, element, close: () => server.close() };
}

/** Whether TELEMETRY turns traces on (`true`/`opentelemetry`), off, or is unset. */
function telemetrySetting(env: Env): boolean | undefined {
  const v = env.raw("TELEMETRY");
  if (v === undefined || v.trim() === "") return undefined;
  if (/^opentelemetry$/i.test(v.trim())) return true;
  return env.bool("TELEMETRY", false);
}

async function roleTracing(env: Env, name: string, log: Logger): Promise<Tracing | undefined> {
  const setting = telemetrySetting(env);
  const endpoint = env.raw("NSM_OPEN_TELEMETRY_ENDPOINT");
  const on = setting ?? endpoint !== undefined;
  if (!on) return undefined;
  const target = env.parsed("NSM_OPEN_TELEMETRY_ENDPOINT", DEFAULT_OTEL_ENDPOINT, parseOtlpEndpoint);
  const { createTracing } = await import("../observe/trace.js");
  const tracing = createTracing({ serviceName: name, target, log });
  setChainTracer(tracing.tracer);
  log.info({ collector: target.url }, "exporting OpenTelemetry traces");
  return tracing;
}
