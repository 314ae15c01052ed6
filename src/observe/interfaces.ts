// SPDX-License-Identifier: Apache-2.0
/**
 * The forwarder's per-connection interface counters: rx/tx bytes, packets, errors and drops of
 * the client's interface (the KERNEL mechanism the forwarder serves: `name` in the netns of
 * `inodeURL`), read from the kernel (`IFLA_STATS64`) and reported two ways:
 * - in the forwarder's own path segment `metrics` map on every refresh (as upstream's forwarder
 *   metrics element does; a first Request has no interface yet: the cross-connect creates it after
 *   this element returned, so it is not read then), keys `rx_bytes`, `tx_bytes`, `rx_packets`,
 *   `tx_packets`, `rx_error_packets`, `tx_error_packets`, `rx_drop_packets`, `tx_drop_packets`;
 * - as Prometheus counters `nsm_interface_{rx,tx}_{bytes,packets,drops}_total` labelled
 *   `service`, `endpoint`, `node`, `connection` and `interface`, read at scrape time.
 * rx/tx are from the client interface's point of view (rx: what reached the client).
 *
 * Chain placement: in the forwarder's server chain after the data plane elements (it reads the
 * connection they returned). A refresh reads the counters while the Request is downstream (the
 * interface is the one the last Request saw), so the read adds no time to it. Failure behaviour:
 * a read that fails or takes longer than `readTimeoutMs` leaves the map as it was; a Request
 * never fails or waits long for counters.
 */

import type { Counter, Registry } from "prom-client";
import type { Connection } from "../api/index.js";
import { Param } from "../api/mechanisms.js";
import type { KernelApi, LinkStats } from "../kernel/api.js";
import { netnsIdentity, netnsPathFromUrl, relocateNetns } from "../kernel/networkservice/xconnect/netns.js";
import type { NetworkServiceElement } from "../sdk/core/chain.js";
import type { Logger } from "../sdk/core/logger.js";

export interface InterfaceMetricsOptions {
  /**
   * Reads the counters; with `listNetns`, a namespace whose recorded path no longer names it (a
   * received descriptor, closed once its Request is done) is found again by its identity; with
   * `release`, no netlink socket is kept open in a pod's namespace between reads.
   */
  kernel: Pick<KernelApi, "linkStats"> & Partial<Pick<KernelApi, "listNetns" | "release">>;
  /** The forwarder's name: the path segment whose `metrics` map is filled. */
  name: string;
  /** The node label of the Prometheus series. @default "" */
  node?: string;
  /** @default 200 */
  readTimeoutMs?: number;
  log: Logger;
}

interface Tracked {
  netns: string;
  /** The namespace's identity (dev:ino) when the Request saw it. */
  netnsId?: string;
  ifname: string;
  service: string;
  endpoint: string;
}

/** Path segment metrics keys for link counters. */
export function segmentMetrics(s: LinkStats): Record<string, string> {
  return {
    rx_bytes: String(s.rxBytes),
    tx_bytes: String(s.txBytes),
    rx_packets: String(s.rxPackets),
    tx_packets: String(s.txPackets),
    rx_error_packets: String(s.rxErrors),
    tx_error_packets: String(s.txErrors),
    rx_drop_packets: String(s.rxDropped),
    tx_drop_packets: String(s.txDropped),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
    );
  });
}

/** Where the client's interface is, from the KERNEL mechanism the forwarder serves. */
function clientInterface(conn: Connection): Pick<Tracked, "netns" | "netnsId" | "ifname"> | undefined {
  const m = conn.mechanism;
  if (m?.type !== "KERNEL") return undefined;
  const ifname = m.parameters[Param.NAME];
  try {
    const netns = netnsPathFromUrl(m.parameters[Param.INODE_URL] ?? "");
    return ifname ? { netns, netnsId: netnsIdentity(netns), ifname } : undefined;
  } catch {
    return undefined;
  }
}

/** The counters of `t`'s interface, in its namespace found by identity when its path moved on. */
async function readStats(kernel: InterfaceMetricsOptions["kernel"], t: Tracked): Promise<LinkStats | undefined> {
  if (t.netnsId !== undefined && netnsIdentity(t.netns) !== t.netnsId) {
    const found = kernel.listNetns ? await relocateNetns({ listNetns: kernel.listNetns.bind(kernel) }, t) : undefined;
    if (found === undefined) return undefined;
    t.netns = found;
  }
  const netns = t.netns;
  try {
    return await kernel.linkStats(netns, t.ifname);
  } finally {
    kernel.release?.(netns);
  }
}

/**
 * Whether a refresh names the interface the last Request did, by the same netns path (a sidecar
 * taking over from `nsc --init` names the same netns by its own pid: the old path is gone).
 */
function sameInterface(a: Tracked, b: Tracked): boolean {
  return a.ifname === b.ifname && a.netns === b.netns && a.netnsId === b.netnsId;
}

export interface InterfaceMetrics {
  readonly server: NetworkServiceElement;
  /** Adds the Prometheus counters to `registry` (loads prom-client: only when metrics are on). */
  register(registry: Registry): Promise<void>;
}

/** See the module doc. */
export function interfaceMetrics(options: InterfaceMetricsOptions): InterfaceMetrics {
  const tracked = new Map<string, Tracked>();
  const timeoutMs = options.readTimeoutMs ?? 200;
  const read = (t: Tracked) => withTimeout(readStats(options.kernel, t), timeoutMs);
  const server: NetworkServiceElement = {
    name: "interfaceMetrics",
    async request(req, ctx, next) {
      // A refresh reads the interface the last Request tracked while the Request goes on downstream.
      const known = req.connection ? tracked.get(req.connection.id) : undefined;
      const early = known ? read(known) : undefined;
      const conn = await next.request(req, ctx);
      const where = clientInterface(conn);
      if (!where) return conn;
      const t = { ...where, service: conn.networkService, endpoint: conn.networkServiceEndpointName };
      tracked.set(conn.id, t);
      // A first Request has no interface to read yet: the cross-connect, earlier in the chain,
      // creates it once this element has returned (a read here only ever found nothing).
      if (!known) return conn;
      const stats = sameInterface(known, t) ? await early : await read(t);
      const segment = conn.path?.pathSegments.find((s) => s.name === options.name);
      if (stats && segment) Object.assign(segment.metrics, segmentMetrics(stats));
      return conn;
    },
    async close(conn, ctx, next) {
      tracked.delete(conn.id);
      return next.close(conn, ctx);
    },
  };
  return { server, register: (registry) => registerCounters(registry, tracked, read, options.node ?? "") };
}

const SERIES = [
  ["rx_bytes", "rxBytes", "Bytes received by the client's interface"],
  ["tx_bytes", "txBytes", "Bytes sent by the client's interface"],
  ["rx_packets", "rxPackets", "Packets received by the client's interface"],
  ["tx_packets", "txPackets", "Packets sent by the client's interface"],
  ["rx_drops", "rxDropped", "Received packets dropped on the client's interface"],
  ["tx_drops", "txDropped", "Sent packets dropped on the client's interface"],
] as const;

async function registerCounters(
  registry: Registry,
  tracked: Map<string, Tracked>,
  read: (t: Tracked) => Promise<LinkStats | undefined>,
  node: string,
): Promise<void> {
  const { Counter } = await import("prom-client");
  const labelNames = ["service", "endpoint", "node", "connection", "interface"] as const;
  const counters: Counter<(typeof labelNames)[number]>[] = [];
  // One kernel read per connection per scrape, shared by the counters (prom-client collects them in parallel).
  let snapshot: Promise<[string, Tracked, LinkStats | undefined][]> | undefined;
  const readAll = () => {
    snapshot ??= (async () => {
      const entries = [...tracked.entries()];
      const stats = await Promise.all(entries.map(([, t]) => read(t)));
      setTimeout(() => {
        snapshot = undefined;
      }, 500).unref();
      return entries.map(([id, t], i): [string, Tracked, LinkStats | undefined] => [id, t, stats[i]]);
    })();
    return snapshot;
  };
  SERIES.forEach(([suffix, field, help]) => {
    counters.push(
      new Counter({
        name: `nsm_interface_${suffix}_total`,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          const rows = await readAll();
          this.reset();
          for (const [id, t, s] of rows) {
            if (!s) continue;
            this.inc({ service: t.service, endpoint: t.endpoint, node, connection: id, interface: t.ifname }, s[field]);
          }
        },
      }),
    );
  });
}
