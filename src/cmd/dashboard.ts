// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dashboard [--port PORT] [--address HOST] [--state-dir DIR] [--poll 1s]`: serves the live
 * dashboard of the local runtime (see src/local/dashboard/) until SIGINT or SIGTERM. With
 * `--nsmgr URL` (repeatable) and `--registry URL` it shows a cluster instead, dialled with the
 * identity a role would have (SPIFFE_ENDPOINT_SOCKET; NSM_INSECURE=true for plaintext). Prints
 * its URL on stdout; errors are one line on stderr.
 */
import { loadAssets } from "../local/dashboard/assets.js";
import { clusterSource } from "../local/dashboard/cluster-source.js";
import { serveDashboard } from "../local/dashboard/server.js";
import { type MeshSource, runtimeSource } from "../local/dashboard/source.js";
import { LocalError } from "../local/errors.js";
import { DEFAULT_STATE_DIR, runtimePaths } from "../local/state.js";
import { parseNsmUrl } from "../sdk/grpc/dial.js";
import { createLogger, parseLogLevel } from "../sdk/tools/logger.js";
import { ConfigError, Env, parseDuration } from "./env.js";
import { parseArgs, UsageError } from "./local.js";
import { roleSecurity } from "./security.js";

const USAGE =
  "usage: nsm dashboard [--port PORT] [--address HOST] [--poll 1s] [--state-dir DIR | --nsmgr URL… [--registry URL]]";

function portOf(text: string | undefined): number {
  if (text === undefined) return 8080;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`--port ${text}: expected a port number (0-65535)`);
  return port;
}

function pollOf(text: string | undefined): number {
  if (text === undefined) return 1000;
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--poll ${text}: expected a duration such as 500ms or 2s`);
  if (ms < 100) throw new UsageError(`--poll ${text}: at least 100ms`);
  return ms;
}

function checkUrl(flag: string, url: string): string {
  try {
    parseNsmUrl(url);
  } catch (err) {
    throw new UsageError(`${flag} ${url}: ${(err as Error).message}`);
  }
  return url;
}

/** The cluster given by --nsmgr/--registry, or the local runtime. */
async function sourceOf(p: ReturnType<typeof parseArgs>, env: Env): Promise<{ source: MeshSource; close(): void }> {
  const nsmgrs = (p.flags.get("--nsmgr") ?? []).map((u) => checkUrl("--nsmgr", u));
  const registry = p.flags.get("--registry")?.at(-1);
  if (nsmgrs.length || registry) {
    if (p.flags.has("--state-dir")) throw new UsageError("--state-dir is for the local runtime, not with --nsmgr");
    const log = createLogger({ name: "nsm-dashboard", level: parseLogLevel(env.raw("NSM_LOG_LEVEL") ?? "warn") });
    const security = await roleSecurity(env, log);
    const dial = security.dialOptions();
    const source = clusterSource({ nsmgrs, registry: registry && checkUrl("--registry", registry) }, dial);
    return { source, close: () => security.close() };
  }
  if (process.getuid?.() !== 0) throw new LocalError("the dashboard reads the local runtime: run as root");
  const dir = p.flags.get("--state-dir")?.at(-1) ?? env.raw("NSM_LOCAL_STATE_DIR") ?? DEFAULT_STATE_DIR;
  return { source: runtimeSource(runtimePaths(dir)), close: () => {} };
}

async function serve(args: readonly string[]): Promise<number> {
  const p = parseArgs(args, ["--port", "--address", "--state-dir", "--poll", "--nsmgr", "--registry"], []);
  if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]}\n${USAGE}`);
  const flag = (k: string) => p.flags.get(k)?.at(-1);
  const port = portOf(flag("--port"));
  const pollMs = pollOf(flag("--poll"));
  const { source, close } = await sourceOf(p, new Env(process.env));
  const dashboard = await serveDashboard(source, {
    host: flag("--address") ?? "127.0.0.1",
    port,
    pollMs,
    assets: await loadAssets(),
    onError: (err) => process.stderr.write(`nsm dashboard: ${err.message}\n`),
  });
  process.stdout.write(`nsm dashboard: serving ${dashboard.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await dashboard.close();
  close();
  return 0;
}

/** Runs `nsm dashboard ARGS`; prints errors and returns the exit code. */
export async function runDashboard(args: readonly string[]): Promise<number> {
  try {
    return await serve(args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`nsm dashboard: ${err.message}\n`);
      return 2;
    }
    if (err instanceof LocalError || err instanceof ConfigError) {
      process.stderr.write(`nsm dashboard: error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
