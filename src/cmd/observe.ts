// SPDX-License-Identifier: Apache-2.0
/**
 * Prometheus for every role. Env (upstream names): NSM_PROMETHEUS (false; `PROMETHEUS`, which
 * upstream's sdk reads, is accepted too), NSM_PROMETHEUS_LISTEN_ON (`:9090`, `[host]:port`).
 * A bad address, or one that cannot be bound, stops the role at start with one line naming
 * NSM_PROMETHEUS_LISTEN_ON.
 */

import { createRoleMetrics, parseListenOn, type RoleMetrics, servePrometheus } from "../observe/prometheus.js";
import type { NetworkServiceElement } from "../sdk/core/chain.js";
import type { Logger } from "../sdk/core/logger.js";
import { metricsServer } from "../sdk/networkservice/common/metrics/index.js";
import { ConfigError, type Env } from "./env.js";

export interface RoleObservability {
  /** The metrics element for the top of the role's chain; undefined when metrics are off. */
  readonly element: NetworkServiceElement | undefined;
  /** The role's Prometheus registry, for more series; undefined when metrics are off. */
  readonly metrics: RoleMetrics | undefined;
  close(): Promise<void>;
}

/** Reads the Prometheus env and, when on, serves the role's metrics (see the module doc). */
export async function roleObservability(env: Env, role: string, name: string, log: Logger): Promise<RoleObservability> {
  const on =
    env.raw("NSM_PROMETHEUS") !== undefined ? env.bool("NSM_PROMETHEUS", false) : env.bool("PROMETHEUS", false);
  const value = env.string("NSM_PROMETHEUS_LISTEN_ON", ":9090");
  const at = env.parsed("NSM_PROMETHEUS_LISTEN_ON", ":9090", parseListenOn);
  if (!on) return { element: undefined, metrics: undefined, close: async () => {} };
  const metrics = createRoleMetrics(role, name);
  let server: Awaited<ReturnType<typeof servePrometheus>>;
  try {
    server = await servePrometheus(metrics.registry, at, log);
  } catch (err) {
    throw new ConfigError("NSM_PROMETHEUS_LISTEN_ON", value, `cannot listen: ${(err as Error).message}`);
  }
  log.info({ url: server.url }, "serving Prometheus metrics");
  return { element: metricsServer(metrics.observer), metrics, close: () => server.close() };
}
