// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm describe connection ID` (kubectl describe style) and `nsm top connections` (rx/tx rates
 * of each connection's client interface, from two kernel counter readings). See `views.ts`.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Connection, PathSegment } from "../api/index.js";
import { State } from "../api/index.js";
import type { LinkStats } from "../kernel/api.js";
import { nsmgrConnections } from "./cluster.js";
import { cliDialOptions } from "./identity.js";
import { table } from "./inspect.js";
import { type State as RuntimeState, runtimePaths } from "./state.js";
import { clientId, interfaceCounters, type NodeConnection } from "./views.js";

function expiry(s: PathSegment, now: number): string {
  if (!s.expires || s.expires.seconds === 0n) return "token never expires";
  const at = Number(s.expires.seconds) * 1000;
  const left = Math.round((at - now) / 1000);
  return `token expires ${new Date(at).toISOString()} (${left >= 0 ? `in ${left}s` : `${-left}s ago`})`;
}

function mechanismLines(label: string, c: Connection | undefined): string[] {
  const m = c?.mechanism;
  if (!m) return [`  ${label}: <not known: the hop did not answer>`];
  const lines = [`  ${label}: ${m.type} (${m.cls})`];
  for (const [k, v] of Object.entries(m.parameters).sort()) lines.push(`    ${k}: ${v}`);
  return lines;
}

/**
 * The MonitorConnections socket of the component a path segment names: `nsmgr-NODE` and
 * `forwarder-NODE` are the node's sockets, an endpoint pod listens on `listen.on` in its own
 * directory under the runtime's tmp/ (see src/cmd/nse.ts). Undefined for anything else.
 */
export function componentSocket(state: RuntimeState, name: string): string | undefined {
  for (const n of state.nodes) {
    if (name === `nsmgr-${n.name}`) return n.nsmgrSocket;
    if (name === `forwarder-${n.name}`) return n.forwarderSocket;
  }
  const tmp = runtimePaths(state.dir).tmpDir;
  let dirs: string[];
  try {
    dirs = readdirSync(tmp);
  } catch {
    return undefined;
  }
  const own = dirs.find((d) => d.startsWith(`${name}-`) && /^[A-Za-z0-9]{6}$/.test(d.slice(name.length + 1)));
  return own ? join(tmp, own, "listen.on") : undefined;
}

/**
 * The connection as each hop of its path holds it (index i: the component of path segment i,
 * which the request reached with that hop's mechanism); undefined for the client (index 0) and
 * for a hop that cannot be asked or did not answer.
 */
export async function hopConnections(state: RuntimeState, c: Connection): Promise<(Connection | undefined)[]> {
  const segments = c.path?.pathSegments ?? [];
  const dial = await cliDialOptions(runtimePaths(state.dir), state);
  return Promise.all(
    segments.map(async (s, i) => {
      const socket = i === 0 ? undefined : componentSocket(state, s.name);
      if (!socket) return undefined;
      try {
        const held = await nsmgrConnections(socket, dial);
        return held.find((h) => h.id === s.id || h.path?.pathSegments[i]?.id === s.id);
      } catch {
        return undefined;
      }
    }),
  );
}

/** One block per hop: the mechanism (type, class, parameters) the request reached it with. */
function hopMechanismLines(c: Connection, hops: readonly (Connection | undefined)[] | undefined): string[] {
  const segments = c.path?.pathSegments ?? [];
  if (!hops) return mechanismLines(`${segments[0]?.name ?? "client"} > ${segments[1]?.name ?? "nsmgr"}`, c);
  return segments.slice(1).flatMap((s, i) => {
    const held = i === 0 ? (hops[1] ?? c) : hops[i + 1];
    return mechanismLines(`${segments[i]!.name} > ${s.name}`, held);
  });
}

function pathLines(c: Connection, now: number): string[] {
  const lines = ["Path:"];
  (c.path?.pathSegments ?? []).forEach((s, i) => {
    lines.push(`  ${i}. ${s.name}  id=${s.id}  ${expiry(s, now)}`);
    const metrics = Object.entries(s.metrics);
    if (metrics.length) lines.push(`     metrics: ${metrics.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  });
  return lines;
}

function ipLines(c: Connection): string[] {
  const ip = c.context?.ipContext;
  const dns = c.context?.dnsContext?.configs ?? [];
  const routes = (rs: { prefix: string; nextHop: string }[] | undefined) =>
    (rs ?? []).map((r) => `${r.prefix}${r.nextHop ? ` via ${r.nextHop}` : ""}`).join(", ") || "<none>";
  const lines = [
    "IP context:",
    `  client addresses:   ${(ip?.srcIpAddrs ?? []).join(", ") || "<none>"}`,
    `  endpoint addresses: ${(ip?.dstIpAddrs ?? []).join(", ") || "<none>"}`,
    `  client routes:      ${routes(ip?.srcRoutes)}`,
    `  endpoint routes:    ${routes(ip?.dstRoutes)}`,
    "DNS:",
  ];
  if (dns.length === 0) lines.push("  <none>");
  for (const d of dns)
    lines.push(`  servers ${d.dnsServerIps.join(", ") || "<none>"}; search ${d.searchDomains.join(" ") || "<none>"}`);
  return lines;
}

function countersLines(c: Connection, stats: LinkStats | undefined): string[] {
  const name = c.mechanism?.parameters.name ?? "?";
  if (!stats) return [`Traffic (${name}): <not readable>`];
  return [
    `Traffic (client interface ${name}):`,
    `  rx: ${stats.rxBytes} bytes, ${stats.rxPackets} packets, ${stats.rxDropped} dropped, ${stats.rxErrors} errors`,
    `  tx: ${stats.txBytes} bytes, ${stats.txPackets} packets, ${stats.txDropped} dropped, ${stats.txErrors} errors`,
  ];
}

/**
 * The `nsm describe connection` text. `hops` (from {@link hopConnections}) gives the mechanism
 * of every hop; without it only the first hop's is known.
 */
export async function describeConnection(
  x: NodeConnection,
  hops?: readonly (Connection | undefined)[],
  now = Date.now(),
): Promise<string> {
  const c = x.conn;
  const lines = [
    `ID:        ${clientId(c)}`,
    `Service:   ${c.networkService}`,
    `Endpoint:  ${c.networkServiceEndpointName}`,
    `State:     ${State[c.state] ?? c.state}`,
    `Node:      ${x.node}`,
    `Labels:    ${
      Object.entries(c.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(",") || "<none>"
    }`,
    ...pathLines(c, now),
    "Mechanisms:",
    ...hopMechanismLines(c, hops),
    ...ipLines(c),
    ...countersLines(c, await interfaceCounters(c)),
  ];
  return `${lines.join("\n")}\n`;
}

const rate = (bytes: number, seconds: number) => {
  const b = bytes / seconds;
  return b >= 1e6 ? `${(b / 1e6).toFixed(1)}MB/s` : b >= 1e3 ? `${(b / 1e3).toFixed(1)}kB/s` : `${b.toFixed(0)}B/s`;
};

/** One `nsm top connections` screen: rates over `intervalMs` between two readings of each interface. */
export async function topTable(list: readonly NodeConnection[], intervalMs: number): Promise<string> {
  const first = await Promise.all(list.map((x) => interfaceCounters(x.conn)));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, intervalMs));
  const second = await Promise.all(list.map((x) => interfaceCounters(x.conn)));
  const seconds = Math.max((Date.now() - t0) / 1000, 0.001);
  return table(
    ["NODE", "ID", "SERVICE", "INTERFACE", "RX", "TX", "RX-PKTS/S", "TX-PKTS/S", "RX-BYTES", "TX-BYTES"],
    list.map((x, i) => {
      const a = first[i];
      const b = second[i];
      const row = [x.node, clientId(x.conn), x.conn.networkService, x.conn.mechanism?.parameters.name ?? ""];
      if (!a || !b) return [...row, "-", "-", "-", "-", "-", "-"];
      return [
        ...row,
        rate(b.rxBytes - a.rxBytes, seconds),
        rate(b.txBytes - a.txBytes, seconds),
        ((b.rxPackets - a.rxPackets) / seconds).toFixed(1),
        ((b.txPackets - a.txPackets) / seconds).toFixed(1),
        String(b.rxBytes),
        String(b.txBytes),
      ];
    }),
  );
}
