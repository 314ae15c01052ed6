// SPDX-License-Identifier: Apache-2.0
/**
 * Connection views of the local runtime: `nsm get connections -o wide|json|yaml`,
 * `nsm describe connection ID` and `nsm top connections`.
 *
 * Connections come from each node's nsmgr (MonitorConnection, initial state); per-hop detail
 * from the forwarders' monitors when they answer (the mechanism each hop negotiated); traffic
 * from the kernel: the counters of the client's interface (the KERNEL mechanism's `name` in
 * the netns of its `inodeURL`), read over netlink, and the `metrics` the forwarder put in its
 * path segment.
 */
import { toJson } from "@bufbuild/protobuf";
import { stringify } from "yaml";
import { type Connection, ConnectionSchema, State } from "../api/index.js";
import type { LinkStats } from "../kernel/api.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { netnsPathFromUrl, netnsPathOfInodeUrl } from "../kernel/networkservice/xconnect/netns.js";
import { nsmgrConnections } from "./cluster.js";
import { LocalError } from "./errors.js";
import { cliDialOptions } from "./identity.js";
import { table } from "./inspect.js";
import { type State as RuntimeState, runtimePaths } from "./state.js";

export interface NodeConnection {
  node: string;
  conn: Connection;
  /** The same connection as the node's forwarder reports it, when it answered. */
  forwarder?: Connection;
}

/** The client-side id of a connection (the first path segment's id). */
export const clientId = (c: Connection) => c.path?.pathSegments[0]?.id || c.id;

async function monitorOrEmpty(socket: string, state: RuntimeState): Promise<Connection[]> {
  try {
    return await nsmgrConnections(socket, await cliDialOptions(runtimePaths(state.dir), state));
  } catch {
    return [];
  }
}

/**
 * Every connection once (a remote one on its client's node), with its forwarder's view. An nsmgr
 * that does not answer is an error, unless `onUnreachable` is given: then it is told and skipped.
 */
export async function runtimeConnections(
  state: RuntimeState,
  onUnreachable?: (message: string) => void,
): Promise<NodeConnection[]> {
  const seen = new Map<string, NodeConnection & { clientNode: boolean }>();
  for (const n of state.nodes) {
    let conns: Connection[];
    try {
      conns = await nsmgrConnections(n.nsmgrSocket, await cliDialOptions(runtimePaths(state.dir), state));
    } catch (err) {
      const message = `cannot reach the nsmgr of ${n.name}: ${(err as Error).message}`;
      if (!onUnreachable) throw new LocalError(message);
      onUnreachable(message);
      continue;
    }
    const fwd = await monitorOrEmpty(n.forwarderSocket, state);
    for (const c of conns) {
      const segments = c.path?.pathSegments ?? [];
      const key = segments.length >= 2 ? `${segments[0]!.id}/${segments[1]!.id}` : `${n.name}/${c.id}`;
      const clientNode = segments[1]?.name === `nsmgr-${n.name}`;
      if (seen.get(key)?.clientNode) continue;
      const forwarder = fwd.find((f) => clientId(f) === clientId(c));
      seen.set(key, { node: n.name, conn: c, forwarder, clientNode });
    }
  }
  return [...seen.values()].map(({ clientNode: _c, ...rest }) => rest);
}

function expiresIn(ts: { seconds: bigint } | undefined, now = Date.now()): string {
  if (!ts || ts.seconds === 0n) return "never";
  const left = Math.round((Number(ts.seconds) * 1000 - now) / 1000);
  return left >= 0 ? `in ${left}s` : `${-left}s ago`;
}

/** `nsm get connections -o wide`. */
export function wideTable(list: readonly NodeConnection[]): string {
  return table(
    ["NODE", "ID", "SERVICE", "ENDPOINT", "SRC", "DST", "STATE", "MECHANISM", "INTERFACE", "HOPS"],
    list.map(({ node, conn: c, forwarder }) => {
      const ip = c.context?.ipContext;
      const hops = (c.path?.pathSegments ?? []).map((s) => `${s.name}(${expiresIn(s.expires)})`).join(" > ");
      const remote = forwarder?.mechanism && forwarder.mechanism.type !== c.mechanism?.type;
      return [
        node,
        clientId(c),
        c.networkService,
        c.networkServiceEndpointName,
        (ip?.srcIpAddrs ?? []).join(","),
        (ip?.dstIpAddrs ?? []).join(","),
        State[c.state] ?? String(c.state),
        `${c.mechanism?.type ?? "<none>"}${remote ? `+${forwarder?.mechanism?.type}` : ""}`,
        c.mechanism?.parameters.name ?? "",
        hops,
      ];
    }),
  );
}

/** `-o json` / `-o yaml`: kubectl's List shape, each item the connection in protobuf JSON plus its node. */
export function connectionsDocument(list: readonly NodeConnection[], format: "json" | "yaml"): string {
  const doc = {
    kind: "List",
    items: list.map(({ node, conn, forwarder }) => ({
      node,
      connection: toJson(ConnectionSchema, conn),
      ...(forwarder ? { forwarder: toJson(ConnectionSchema, forwarder) } : {}),
    })),
  };
  return format === "json" ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc);
}

/** The counters of the client's interface of a connection, or undefined when it cannot be read. */
export async function interfaceCounters(conn: Connection): Promise<LinkStats | undefined> {
  const m = conn.mechanism;
  const name = m?.parameters.name;
  if (m?.type !== "KERNEL" || !name) return undefined;
  const url = m.parameters.inodeURL ?? "";
  const kernel = createNetlinkKernel();
  try {
    // A namespace passed as a descriptor shows as inode://dev/ino: found by that identity.
    const netns = url.startsWith("inode://") ? await netnsPathOfInodeUrl(kernel, url) : netnsPathFromUrl(url);
    if (netns === undefined) return undefined;
    return await kernel.linkStats(netns, name);
  } catch {
    return undefined;
  } finally {
    await kernel.close();
  }
}

/** Finds a connection by its client id, its id at nsmgr, or a unique prefix of either. */
export function pickConnection(list: readonly NodeConnection[], id: string): NodeConnection {
  const exact = list.find((x) => clientId(x.conn) === id || x.conn.id === id);
  if (exact) return exact;
  const prefixed = list.filter((x) => clientId(x.conn).startsWith(id) || x.conn.id.startsWith(id));
  if (prefixed.length === 1) return prefixed[0]!;
  const known = list.map((x) => clientId(x.conn)).join(", ") || "none";
  throw new LocalError(
    prefixed.length ? `connection "${id}" is ambiguous (${known})` : `no connection "${id}" (known: ${known})`,
  );
}
