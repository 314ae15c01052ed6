// SPDX-License-Identifier: Apache-2.0
/**
 * Process plumbing shared by the roles: logger from NSM_LOG_LEVEL, listening with the process's
 * security (mTLS, drained on SVID rotation) on NSM URLs, signal handling (SIGTERM/SIGINT stop;
 * SIGUSR1 → trace, SIGUSR2 → back, as upstream). Binding and `shutdown` are the sdk's gRPC glue
 * (src/sdk/grpc/listen.ts).
 */
import type { DescService } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { Logger, LogLevel } from "../sdk/core/logger.js";
import { parseNsmUrl } from "../sdk/grpc/dial.js";
import { bindUrls } from "../sdk/grpc/listen.js";
import { grpcDefinition } from "../sdk/grpc/service.js";
import { createLogger } from "../sdk/tools/logger.js";
import type { Security } from "../security/setup.js";
import { drainOnRotation } from "../security/tls.js";
import type { Env } from "./env.js";
import { ConfigError } from "./env.js";

const milestones: Record<string, number> = {};
let milestonesLogged = false;

/** Records a start-up milestone of this process: ms since the process started (node's time origin). */
export function startupMark(name: string): void {
  if (!milestonesLogged) milestones[name] = Math.round(performance.now());
}

/**
 * The start-up milestones so far plus `last` (e.g. "listening"), once: the role's "serving" log
 * line carries them as `startupMs` (modules loaded, SVID ready, listening, registered, and `cpu`:
 * the CPU time the process used until `last`, a figure that other processes' load does not
 * inflate); later calls give undefined (pino leaves the field out).
 */
export function startupMilestones(last: string): Record<string, number> | undefined {
  if (milestonesLogged) return undefined;
  startupMark(last);
  const cpu = process.cpuUsage();
  milestones.cpu = Math.round((cpu.user + cpu.system) / 1000);
  milestonesLogged = true;
  return milestones;
}

export function roleLogger(env: Env, name: string): Logger {
  // Every role makes its logger first, once its modules are loaded.
  startupMark("modules");
  const level = env.logLevel();
  const log = createLogger({ level, name });
  process.on("SIGUSR1", () => {
    log.level = "trace";
  });
  process.on("SIGUSR2", () => {
    log.level = level as LogLevel;
  });
  return log;
}

/** Checks a list of listen URLs, naming the variable on error. */
export function listenUrls(env: Env, name: string, def: string): string[] {
  const urls = env.list(name, def);
  if (urls.length === 0) throw new ConfigError(name, "", "needs at least one URL");
  for (const u of urls) env.parsed(name, u, (v) => parseNsmUrl(v));
  return urls;
}

/**
 * Binds `server` on every URL (see {@link bindUrls}), with mTLS from `sec` (plaintext only in its
 * explicit insecure mode); connections are drained when SVIDs rotate, so new calls always present
 * current certificates. With NSM_PASS_FDS=true unix sockets pass file descriptors (network
 * namespaces, as upstream's grpcfd).
 */
export async function listen(server: grpc.Server, urls: string[], sec: Security, log?: Logger): Promise<string[]> {
  const bound = await bindUrls(server, urls, sec.serverCredentials(), { passFds: sec.passFds });
  startupMark("listening");
  drainOnRotation(server, sec.source, { log });
  return bound;
}

type Handler = (...args: unknown[]) => void;

/**
 * Serves `services` on `server` at once with the handlers that `register` adds once `built`
 * resolves: a role can listen, and accept connections, before it is built (the forwarder's data
 * plane, whose scan of the node's namespaces can take a second); calls that come meanwhile wait
 * for it, where they would have been refused. `register` is given a stand-in server that only
 * takes `addService` (the streams it opens are its own: end them with `endOpenStreams(standIn)`
 * at shutdown). If `built` rejects, the calls never answer: the role fails and exits.
 */
export function serveWhenBuilt(
  server: grpc.Server,
  services: readonly DescService[],
  built: Promise<(standIn: grpc.Server) => void>,
): grpc.Server {
  const standIn = {} as grpc.Server;
  const handlers = built.then((register) => {
    const byPath = new Map<string, Handler>();
    standIn.addService = (definition, impl) => {
      for (const [name, method] of Object.entries(definition)) byPath.set(method.path, impl[name] as Handler);
    };
    register(standIn);
    return byPath;
  });
  handlers.catch(() => {});
  for (const svc of services) {
    const definition = grpcDefinition(svc);
    const impl: Record<string, Handler> = {};
    for (const [name, method] of Object.entries(definition)) {
      impl[name] = (...args) => void handlers.then((h) => h.get(method.path)?.(...args));
    }
    server.addService(definition, impl);
  }
  return standIn;
}

/** Resolves when SIGTERM or SIGINT arrives; keeps the process alive until then. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    // A process whose work is all done (an nsc with live connections and nothing to refresh)
    // would otherwise exit on an empty event loop instead of waiting to close them.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const on = (sig: NodeJS.Signals) => {
      clearInterval(keepAlive);
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(sig);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

export { shutdown } from "../sdk/grpc/listen.js";
