// SPDX-License-Identifier: Apache-2.0
/**
 * Pieces shared by the setup benchmarks: percentiles, RSS, one timed kernel2kernel Request, and
 * the processes of a mesh (roles, netns holders, the identity provider of a secure run).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Connection, ConnectionSchema, create, NetworkServiceRequestSchema } from "../src/api/index.js";
import { NSM_NODE_FLAGS, NSM_PROCESS_ENV } from "../src/local/pods.js";
import type { NetworkServiceElement } from "../src/sdk/core/chain.js";
import { CallContext } from "../src/sdk/core/context.js";
import { closeChannel, type DialOptions, dialChannel, waitForReady } from "../src/sdk/grpc/dial.js";
import { type ClientOptions, createClient } from "../src/sdk/networkservice/chains/client/index.js";
import { kernelMechanismClient } from "../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient } from "../src/sdk/networkservice/common/mechanisms/index.js";
import {
  componentSpiffeId,
  createCa,
  type ProcessIdentity,
  processIdentity,
  workloadSpiffeId,
  writeProcessIdentities,
} from "../src/security/index.js";

/**
 * Starts `nsm ROLE…` (inside `ns` when given) with `env`, recorded in `procs` for the bench's
 * cleanup; a non-zero exit is reported on stderr.
 */
export function startRole(
  procs: ChildProcess[],
  ns: string | undefined,
  name: string,
  role: string[],
  env: Record<string, string>,
  nodeFlags: string[] = [],
): ChildProcess {
  return startNode(procs, ns, name, [...nodeFlags, "bin/nsm.js", ...role], env);
}

/**
 * Starts `node ARGS…` with the roles' Node flags and process environment (inside `ns` when
 * given), recorded in `procs`; a non-zero exit is reported on stderr.
 */
export function startNode(
  procs: ChildProcess[],
  ns: string | undefined,
  name: string,
  args: string[],
  env: Record<string, string>,
): ChildProcess {
  const cmd = ["node", ...NSM_NODE_FLAGS, ...args];
  const argv = ns ? ["ip", ["netns", "exec", ns, ...cmd]] : [cmd[0]!, cmd.slice(1)];
  const p = spawn(argv[0] as string, argv[1] as string[], {
    env: { ...process.env, ...NSM_PROCESS_ENV, NSM_LOG_LEVEL: "WARN", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  p.on("exit", (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`bench: ${name} exited with ${code}\n`);
  });
  procs.push(p);
  return p;
}

/** A process sitting in `ns` (recorded in `procs`): its pid names the netns, as an NSC's does. */
export function netnsHolder(procs: ChildProcess[], ns: string): ChildProcess {
  const p = spawn("ip", ["netns", "exec", ns, "sleep", "infinity"], { stdio: "ignore" });
  procs.push(p);
  return p;
}

export interface BenchIdentityProvider {
  /** SPIFFE_ENDPOINT_SOCKET and NSM_PROCESS_IDENTITIES for the roles. */
  readonly env: Record<string, string>;
  /** Attests `pid` as `id` (a component name, or a whole SPIFFE ID). */
  list(pid: number, id: string): void;
}

/**
 * The identity provider of a secure run: the embedded CA serving the Workload API, attesting the
 * bench's processes from a process identity file (as the local runtime does). Its files are
 * `DIR/PREFIXca.json`, `PREFIXidentities.json` and `PREFIXagent.sock`; `start` runs the role
 * with the env it is given.
 */
export async function benchIdentityProvider(
  dir: string,
  prefix: string,
  start: (env: Record<string, string>) => ChildProcess,
): Promise<BenchIdentityProvider> {
  const trustDomain = "bench.nsm";
  const ca = await createCa({ trustDomain });
  const caFile = join(dir, `${prefix}ca.json`);
  writeFileSync(caFile, JSON.stringify(ca.export()), { mode: 0o600 });
  const file = join(dir, `${prefix}identities.json`);
  const processes: ProcessIdentity[] = [];
  const list = (pid: number, id: string) => {
    const entry = processIdentity(pid, id);
    if (entry) processes.push(entry);
    writeProcessIdentities(file, { version: 1, trustDomain, processes });
  };
  list(process.pid, workloadSpiffeId(trustDomain, "bench", "client"));
  const socket = join(dir, `${prefix}agent.sock`);
  start({ NSM_LISTEN_ON: `unix://${socket}`, NSM_CA_FILE: caFile, NSM_PROCESS_IDENTITIES: file });
  for (let i = 0; i < 300 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socket}`, NSM_PROCESS_IDENTITIES: file },
    list: (pid, id) => list(pid, id.includes("://") ? id : componentSpiffeId(trustDomain, id)),
  };
}

export const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Resident memory of a process in MiB (`ip netns exec` execs, so a role's PID is node's own). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
}

export interface TimedConnection {
  client: ReturnType<typeof createClient>;
  conn: Connection;
  ms: number;
}

/**
 * One kernel2kernel Request as an NSC makes it, from the netns of process `pid` (named by pid,
 * as the ownership check wants), timed from the call to the configured interfaces.
 */
export async function timedKernelRequest(
  i: number,
  pid: number,
  options: Omit<ClientOptions, "name" | "additional"> & { additional?: NetworkServiceElement[] },
): Promise<TimedConnection> {
  const client = createClient({
    ...options,
    name: `nsc-${i}`,
    additional: [
      ...(options.additional ?? []),
      mechanismsClient({
        KERNEL: kernelMechanismClient({ inodeUrl: `file:///proc/${pid}/ns/net`, interfaceName: "nsm-1" }),
      }),
    ],
  });
  const req = create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: `nsc-${i}-0`, networkService: "kernel2kernel" }),
  });
  const t0 = performance.now();
  const conn = await client.request(req, CallContext.create({ deadline: Date.now() + 15_000 }));
  return { client, conn, ms: performance.now() - t0 };
}

/** Retries `fn` every 100 ms (up to ~10 s): the first Request also waits for registrations. */
export async function warmUp<T>(fn: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await fn();
    } catch (err) {
      if (tries > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Waits until the gRPC server at `url` accepts (up to `timeoutMs`). A process just spawned has not
 * bound its socket yet, and `waitForReady` fails on the first refused attempt: dial again until
 * the deadline.
 */
export async function waitAccepting(url: string, dial: DialOptions = {}, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ch = dialChannel(url, dial);
    try {
      await waitForReady(ch, Math.max(1, Math.min(2000, deadline - Date.now())));
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw new Error(`${url} not accepting within ${timeoutMs} ms: ${err}`);
    } finally {
      closeChannel(ch);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A count option (`--connections`, `--runs`), parsed strictly; `smokeCount` when `--smoke` is on. */
export function countOption(raw: string | undefined, name: string, smoke: boolean, smokeCount: number): number {
  if (smoke) return smokeCount;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}
