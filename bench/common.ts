// SPDX-License-Identifier: Apache-2.0
/** Pieces shared by the setup benchmarks: percentiles, RSS, and one timed kernel2kernel Request. */
import { readFileSync } from "node:fs";
import { type Connection, ConnectionSchema, create, NetworkServiceRequestSchema } from "../src/api/index.js";
import type { NetworkServiceElement } from "../src/sdk/core/chain.js";
import { CallContext } from "../src/sdk/core/context.js";
import { closeChannel, type DialOptions, dialChannel, waitForReady } from "../src/sdk/grpc/dial.js";
import { type ClientOptions, createClient } from "../src/sdk/networkservice/chains/client/index.js";
import { kernelMechanismClient } from "../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient } from "../src/sdk/networkservice/common/mechanisms/index.js";

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
