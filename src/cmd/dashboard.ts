// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dashboard [--port PORT] [--address HOST] [--state-dir DIR] [--poll 1s]`: serves the live
 * dashboard of the local runtime (see src/local/dashboard/) until SIGINT or SIGTERM. Prints its
 * URL on stdout; errors are one line on stderr.
 */
import { loadAssets } from "../local/dashboard/assets.js";
import { serveDashboard } from "../local/dashboard/server.js";
import { runtimeSource } from "../local/dashboard/source.js";
import { LocalError } from "../local/errors.js";
import { DEFAULT_STATE_DIR, runtimePaths } from "../local/state.js";
import { Env, parseDuration } from "./env.js";
import { parseArgs, UsageError } from "./local.js";

const USAGE = "usage: nsm dashboard [--port PORT] [--address HOST] [--state-dir DIR] [--poll 1s]";

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

async function serve(args: readonly string[]): Promise<number> {
  const p = parseArgs(args, ["--port", "--address", "--state-dir", "--poll"], []);
  if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]}\n${USAGE}`);
  const flag = (k: string) => p.flags.get(k)?.at(-1);
  const env = new Env(process.env);
  const dir = flag("--state-dir") ?? env.raw("NSM_LOCAL_STATE_DIR") ?? DEFAULT_STATE_DIR;
  if (process.getuid?.() !== 0) throw new LocalError("the dashboard reads the local runtime: run as root");
  const dashboard = await serveDashboard(runtimeSource(runtimePaths(dir)), {
    host: flag("--address") ?? "127.0.0.1",
    port: portOf(flag("--port")),
    pollMs: pollOf(flag("--poll")),
    assets: await loadAssets(),
    onError: (err) => process.stderr.write(`nsm dashboard: ${err.message}\n`),
  });
  process.stdout.write(`nsm dashboard: serving ${dashboard.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await dashboard.close();
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
    if (err instanceof LocalError) {
      process.stderr.write(`nsm dashboard: error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
