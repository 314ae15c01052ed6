// SPDX-License-Identifier: Apache-2.0
/**
 * The policies of a config file, kept current while the file changes (upstream watches it too):
 * a missing file is no policies; a file that becomes unreadable or invalid keeps the last good
 * policies and logs why. The file is polled by `stat` on a timer of our own, which also sees a
 * ConfigMap's symlink swap. (Not `fs.watchFile`: its first `stat` runs on the thread pool after
 * it returns, so a change made between our first read and that `stat` was never seen.)
 */
import { readFileSync, statSync } from "node:fs";
import type { PolicyRoute } from "../../../../api/index.js";
import { invalidArgument, NsmError } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { parsePolicyRoutes } from "./config.js";

/** The current policies of a watched file. */
export interface PolicyRoutesSource {
  /** The policies as last read. */
  get(): PolicyRoute[];
  /** Stops watching. */
  close(): void;
}

function readPolicies(path: string): PolicyRoute[] {
  let source: string;
  try {
    if (!statSync(path).isFile()) throw invalidArgument(`${path} is not a file`);
    source = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  try {
    return parsePolicyRoutes(source);
  } catch (err) {
    throw invalidArgument(`${path}: ${NsmError.from(err).rawMessage}`);
  }
}

/**
 * Reads `path` now (an invalid file is InvalidArgument; a missing one is no policies) and again
 * whenever it changes, every `intervalMs` at most.
 */
export function watchPolicyRoutes(path: string, log: Logger, intervalMs = 1000): PolicyRoutesSource {
  let seen = signature(path);
  let policies = readPolicies(path);
  const timer = setInterval(() => {
    const now = signature(path);
    if (now === seen) return;
    seen = now;
    try {
      policies = readPolicies(path);
      log.info({ path, policies: policies.length }, "policy routes reloaded");
    } catch (err) {
      log.error({ path, err: NsmError.from(err).rawMessage }, "policy routes not reloaded: keeping the previous ones");
    }
  }, intervalMs);
  timer.unref();
  return {
    get: () => policies,
    close: () => clearInterval(timer),
  };
}

/** What changes when the file (or the file a symlink points to) changes; "" when it is missing. */
function signature(path: string): string {
  try {
    const st = statSync(path, { throwIfNoEntry: false, bigint: true });
    return st ? `${st.dev}/${st.ino}/${st.size}/${st.mtimeNs}/${st.ctimeNs}` : "";
  } catch (err) {
    return `error ${(err as NodeJS.ErrnoException).code}`;
  }
}
