// SPDX-License-Identifier: Apache-2.0
/**
 * Where the dashboard's data comes from. A {@link MeshSource} reads the whole mesh on demand,
 * tells when something changed (so the page updates without waiting for the next poll), and
 * describes one connection. {@link runtimeSource} reads the local runtime with what the CLI's
 * views use: the state file (nodes, pods, component processes), the registry (services and
 * endpoints), each nsmgr's MonitorConnections (connections, as `nsm get connections`), the
 * kernel counters of each client interface (rates, as `nsm top connections`) and
 * `describeConnection` (as `nsm describe connection`). A long-lived MonitorConnections stream
 * per nsmgr signals changes as they happen.
 */
import { create } from "@bufbuild/protobuf";
import { ConnectionEventType, MonitorConnection, MonitorScopeSelectorSchema, State } from "../../api/index.js";
import type { LinkStats } from "../../kernel/api.js";
import { CallContext } from "../../sdk/core/context.js";
import { closeChannel, dialChannel } from "../../sdk/grpc/dial.js";
import { grpcClient } from "../../sdk/grpc/service.js";
import { findEndpoints, findNetworkServices } from "../cluster.js";
import { describeConnection, hopConnections } from "../describe.js";
import { LocalError } from "../errors.js";
import { cliDialOptions } from "../identity.js";
import { isAlive } from "../proc.js";
import { loadState, type RuntimePaths, type State as RuntimeState, runtimePaths } from "../state.js";
import { clientId, interfaceCounters, type NodeConnection, pickConnection, runtimeConnections } from "../views.js";
import type { Mesh, MeshConnection } from "./model.js";

export interface MeshSource {
  /** The mesh now. Never throws: what cannot be read is listed in `problems`. */
  read(): Promise<Mesh>;
  /** Calls `changed` whenever the source learns of a change, until `signal` aborts. */
  watch(changed: () => void, signal: AbortSignal): void;
  /** The `nsm describe connection` text of a connection; throws a LocalError for an unknown id. */
  describe(id: string): Promise<string>;
}

const EMPTY: Mesh = { nodes: [], pods: [], services: [], endpoints: [], connections: [], problems: [] };

/** At most this many client interfaces have their counters read per reading (rates). */
const MAX_RATE_READS = 200;

interface Counters {
  readonly at: number;
  readonly stats: LinkStats;
}

async function registryPart(state: RuntimeState, problems: string[]) {
  const dial = await cliDialOptions(runtimePaths(state.dir), state);
  const socket = `${state.dir}/registry.sock`;
  const forwarders = new Set(state.nodes.map((n) => `forwarder-${n.name}`));
  try {
    const [services, endpoints] = await Promise.all([findNetworkServices(socket, dial), findEndpoints(socket, dial)]);
    return {
      services: services.map((s) => ({ name: s.name, payload: s.payload })),
      endpoints: endpoints
        .filter((e) => !forwarders.has(e.name))
        .map((e) => ({ name: e.name, services: [...e.networkServiceNames] })),
    };
  } catch (err) {
    problems.push(`cannot reach the registry: ${(err as Error).message}`);
    return { services: [], endpoints: [] };
  }
}

function meshConnection(x: NodeConnection, rate?: { rx: number; tx: number }): MeshConnection {
  const c = x.conn;
  return {
    id: clientId(c),
    node: x.node,
    service: c.networkService,
    endpoint: c.networkServiceEndpointName,
    state: State[c.state] ?? String(c.state),
    path: (c.path?.pathSegments ?? []).map((s) => s.name),
    ...(rate ? { rxRate: rate.rx, txRate: rate.tx } : {}),
  };
}

/** Rates are read again at most this often, apart from the readings (which never wait for them). */
const RATE_EVERY_MS = 2000;

/**
 * Reads client interface counters and turns two readings into rates (bytes per second). A
 * reading of the mesh takes the latest rates and at most starts the next counter reading in the
 * background, so that an event reaches the page without waiting for a few hundred netlink reads.
 */
class RateMeter {
  private last = new Map<string, Counters>();
  private latest = new Map<string, { rx: number; tx: number }>();
  private running = false;
  private at = 0;

  /** The latest rates; starts a new reading of `list`'s counters when they are old. */
  rates(list: readonly NodeConnection[]): Map<string, { rx: number; tx: number }> {
    if (!this.running && Date.now() - this.at >= RATE_EVERY_MS) {
      this.running = true;
      this.at = Date.now();
      void this.read(list).finally(() => {
        this.running = false;
      });
    }
    return this.latest;
  }

  private async read(list: readonly NodeConnection[]): Promise<void> {
    const next = new Map<string, Counters>();
    const out = new Map<string, { rx: number; tx: number }>();
    await Promise.all(
      list.slice(0, MAX_RATE_READS).map(async (x) => {
        const stats = await interfaceCounters(x.conn);
        if (!stats) return;
        const id = clientId(x.conn);
        const now = { at: Date.now(), stats };
        next.set(id, now);
        const prev = this.last.get(id);
        const seconds = prev ? (now.at - prev.at) / 1000 : 0;
        if (prev && seconds > 0.05)
          out.set(id, {
            rx: Math.max(0, Math.round((stats.rxBytes - prev.stats.rxBytes) / seconds)),
            tx: Math.max(0, Math.round((stats.txBytes - prev.stats.txBytes) / seconds)),
          });
      }),
    );
    this.last = next;
    this.latest = out;
  }
}

async function readRuntime(paths: RuntimePaths, meter: RateMeter): Promise<Mesh> {
  let state: RuntimeState | undefined;
  try {
    state = loadState(paths);
  } catch (err) {
    return { ...EMPTY, problems: [(err as Error).message] };
  }
  if (state?.phase !== "up")
    return { ...EMPTY, problems: [`the local runtime in ${paths.dir} is not up (run \`nsm up\`)`] };
  const problems: string[] = [];
  const [registry, list] = await Promise.all([
    registryPart(state, problems),
    runtimeConnections(state, (m) => problems.push(m)),
  ]);
  const rates = meter.rates(list);
  return {
    nodes: state.nodes.map((n) => ({
      name: n.name,
      nsmgrUp: n.nsmgr !== undefined && isAlive(n.nsmgr),
      forwarderUp: n.forwarder !== undefined && isAlive(n.forwarder),
    })),
    pods: state.pods.map((p) => ({ name: p.name, namespace: p.namespace, node: p.node, client: Boolean(p.nsurls) })),
    ...registry,
    connections: list.map((x) => meshConnection(x, rates.get(clientId(x.conn)))),
    problems,
  };
}

/** Calls `changed` on every event of one nsmgr's MonitorConnections stream after the initial one. */
async function followNsmgr(socket: string, state: RuntimeState, changed: () => void, signal: AbortSignal) {
  const channel = dialChannel(`unix://${socket}`, await cliDialOptions(runtimePaths(state.dir), state));
  try {
    const ctx = CallContext.create({ signal });
    const stream = grpcClient(MonitorConnection, channel).monitorConnections(create(MonitorScopeSelectorSchema), ctx);
    for await (const event of stream) if (event.type !== ConnectionEventType.INITIAL_STATE_TRANSFER) changed();
  } finally {
    closeChannel(channel);
  }
}

/** Keeps a stream to every nsmgr of the runtime open (again after a restart, once a second). */
async function watchRuntime(paths: RuntimePaths, changed: () => void, signal: AbortSignal): Promise<void> {
  const open = new Map<string, Promise<void>>();
  while (!signal.aborted) {
    let state: RuntimeState | undefined;
    try {
      state = loadState(paths);
    } catch {
      state = undefined;
    }
    for (const n of state?.nodes ?? []) {
      if (open.has(n.nsmgrSocket) || !state) continue;
      const done = followNsmgr(n.nsmgrSocket, state, changed, signal)
        .catch(() => {})
        .finally(() => {
          open.delete(n.nsmgrSocket);
          if (!signal.aborted) changed();
        });
      open.set(n.nsmgrSocket, done);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  await Promise.all(open.values());
}

/** The local runtime whose state is in `paths.dir`, as a {@link MeshSource}. */
export function runtimeSource(paths: RuntimePaths): MeshSource {
  const meter = new RateMeter();
  return {
    read: () => readRuntime(paths, meter).catch((err) => ({ ...EMPTY, problems: [(err as Error).message] })),
    watch: (changed, signal) => void watchRuntime(paths, changed, signal),
    async describe(id) {
      const state = loadState(paths);
      if (!state) throw new LocalError("the local runtime is not up");
      const x = pickConnection(await runtimeConnections(state), id);
      return describeConnection(x, await hopConnections(state, x.conn));
    },
  };
}
