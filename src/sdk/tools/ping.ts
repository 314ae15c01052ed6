// SPDX-License-Identifier: Apache-2.0
/**
 * The NSC's data-plane liveness check (upstream cmd-nsc's kernel liveness check): the connection
 * is alive when every destination address of its IP context answers one ICMP echo sent from the
 * matching source address, within the check's timeout.
 *
 * The echo is iputils' `ping` run in the caller's network namespace (the NSC runs in its pod's):
 * Node has no ICMP sockets, and `ping` uses the unprivileged ICMP datagram socket the forwarder
 * allows in pod namespaces (`net.ipv4.ping_group_range`). One short-lived process per address
 * and check (every 200 ms by default) costs a few ms of CPU.
 */
import { spawn } from "node:child_process";
import type { Connection } from "../../api/index.js";

/** The address part of "10.0.0.1/32" (or an address without prefix). */
const addressOf = (cidr: string) => cidr.split("/")[0]!;
const isV6 = (ip: string) => ip.includes(":");

/** Options of {@link pingOnce}. */
export interface PingOptions {
  /** Source address (`ping -I`). @default the kernel's choice */
  src?: string;
  /** Wait for the answer at most this long. @default 1000 */
  timeoutMs?: number;
  /** Kills the ping when aborted (resolves false). */
  signal?: AbortSignal;
  /** @default "ping" from PATH */
  binary?: string;
}

/** Sends one echo request to `dst`; resolves true if it was answered in time. Never rejects. */
export function pingOnce(dst: string, options: PingOptions = {}): Promise<boolean> {
  const timeoutS = Math.max(0.001, (options.timeoutMs ?? 1000) / 1000);
  const argv = ["-n", "-q", "-c", "1", "-W", timeoutS.toFixed(3), ...(options.src ? ["-I", options.src] : []), dst];
  return new Promise((resolve) => {
    if (options.signal?.aborted) return resolve(false);
    const child = spawn(options.binary ?? "ping", argv, { stdio: "ignore" });
    const onAbort = () => child.kill("SIGKILL");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const done = (ok: boolean) => {
      options.signal?.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    child.once("error", () => done(false));
    child.once("exit", (code) => done(code === 0 && !options.signal?.aborted));
  });
}

/**
 * The pairs {src, dst} a liveness check pings for `conn`: every destination address, each from
 * the first source address of its family (none if the connection has no such source).
 */
export function livenessTargets(conn: Connection): { src: string; dst: string }[] {
  const ipc = conn.context?.ipContext;
  if (!ipc) return [];
  const srcs = ipc.srcIpAddrs.map(addressOf);
  const out: { src: string; dst: string }[] = [];
  for (const dst of ipc.dstIpAddrs.map(addressOf)) {
    const src = srcs.find((s) => isV6(s) === isV6(dst));
    if (src) out.push({ src, dst });
  }
  return out;
}

/**
 * A heal liveness check pinging every target of the connection in parallel: alive iff all
 * answer before `signal` aborts. A connection without addresses cannot be checked and counts
 * as alive.
 */
export function pingLivenessCheck(options: Pick<PingOptions, "binary"> & { timeoutMs?: number } = {}) {
  return async (conn: Connection, signal: AbortSignal): Promise<boolean> => {
    const targets = livenessTargets(conn);
    if (targets.length === 0) return true;
    const results = await Promise.all(
      targets.map((t) => pingOnce(t.dst, { src: t.src, timeoutMs: options.timeoutMs, signal, binary: options.binary })),
    );
    return results.every(Boolean);
  };
}
