// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime's read-only commands: `get` (kubectl-like tables), `exec` (a command inside a
 * pod's netns, stdio and exit code passed through) and `logs` (every container of a pod).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { type Connection, State } from "../api/index.js";
import { NsmError } from "../sdk/core/errors.js";
import { findEndpoints, findNetworkServices, nsmgrConnections } from "./cluster.js";
import { LocalError } from "./errors.js";
import { cliDialOptions } from "./identity.js";
import { isAlive } from "./proc.js";
import { type ContainerState, type PodState, type State as RuntimeState, runtimePaths } from "./state.js";

/** Formats rows as a kubectl-style table (columns padded, three spaces apart). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return `${all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join("   ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}

/** kubectl-like age: 45s, 3m20s, 2h5m, 4d. */
export function age(since: string | number, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - new Date(since).getTime()) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ""}`;
  return `${Math.floor(h / 24)}d`;
}

/** READY and STATUS of a pod, from its processes. */
export function podStatus(pod: PodState): { ready: string; status: string } {
  const apps = pod.containers.filter((c) => c.type === "app");
  const alive = apps.filter((c) => c.proc && isAlive(c.proc)).length;
  const ready = `${alive}/${apps.length}`;
  if (pod.phase === "Failed") return { ready, status: "Failed" };
  if (pod.phase === "Pending") {
    const inits = pod.containers.filter((c) => c.type === "init");
    const done = inits.filter((c) => c.exitCode === 0).length;
    return { ready, status: inits.length && done < inits.length ? `Init:${done}/${inits.length}` : "Pending" };
  }
  if (alive === apps.length) return { ready, status: "Running" };
  return { ready, status: alive === 0 ? "Completed" : "NotReady" };
}

export const GET_KINDS: Record<string, string> = {
  pods: "pods",
  pod: "pods",
  po: "pods",
  networkservices: "networkservices",
  networkservice: "networkservices",
  netsvc: "networkservices",
  networkserviceendpoints: "networkserviceendpoints",
  networkserviceendpoint: "networkserviceendpoints",
  nse: "networkserviceendpoints",
  nses: "networkserviceendpoints",
  connections: "connections",
  connection: "connections",
  conn: "connections",
  nodes: "nodes",
  node: "nodes",
  namespaces: "namespaces",
  namespace: "namespaces",
  ns: "namespaces",
  deployments: "deployments",
  deployment: "deployments",
  deploy: "deployments",
};

function expires(ts: { seconds: bigint } | undefined, now = Date.now()): string {
  if (!ts || ts.seconds === 0n) return "never";
  const left = Math.round((Number(ts.seconds) * 1000 - now) / 1000);
  return left >= 0 ? `in ${left}s` : `${-left}s ago`;
}

function pathOf(c: Connection): string {
  return (c.path?.pathSegments ?? []).map((s) => s.name).join(" > ");
}

/** The `nsm get KIND` output. */
export async function getTable(state: RuntimeState, kind: string, namespace?: string): Promise<string> {
  const text = await buildTable(state, kind, namespace);
  return text.split("\n").filter(Boolean).length > 1
    ? text
    : `No resources found${namespace ? ` in ${namespace} namespace` : ""}.\n`;
}

function podsTable(state: RuntimeState, inNs: <T extends { namespace: string }>(items: T[]) => T[]): string {
  return table(
    ["NAMESPACE", "NAME", "READY", "STATUS", "NODE", "AGE"],
    inNs(state.pods).map((p) => {
      const s = podStatus(p);
      return [p.namespace, p.name, s.ready, s.status, p.node, age(p.createdAt)];
    }),
  );
}

function deploymentsTable(state: RuntimeState, inNs: <T extends { namespace: string }>(items: T[]) => T[]): string {
  return table(
    ["NAMESPACE", "NAME", "READY", "AGE"],
    inNs(state.deployments.filter((d) => !d.kind)).map((d) => {
      const pods = state.pods.filter((p) => p.namespace === d.namespace && p.owner === d.name);
      const ready = pods.filter((p) => podStatus(p).status === "Running").length;
      return [d.namespace, d.name, `${ready}/${d.replicas}`, age(d.createdAt)];
    }),
  );
}

function nodesTable(state: RuntimeState): string {
  return table(
    ["NAME", "STATUS", "NETNS", "INTERNAL-IP", "PODS", "AGE"],
    state.nodes.map((n) => {
      const ok = n.nsmgr && isAlive(n.nsmgr) && n.forwarder && isAlive(n.forwarder);
      const pods = state.pods.filter((p) => p.node === n.name).length;
      return [n.name, ok ? "Ready" : "NotReady", n.netns, n.address ?? "<none>", String(pods), age(n.createdAt)];
    }),
  );
}

async function networkServicesTable(state: RuntimeState): Promise<string> {
  const list = await registryCall(async () => findNetworkServices(`${state.dir}/registry.sock`, await dialOf(state)));
  return table(
    ["NAME", "PAYLOAD", "MATCHES"],
    list.sort((a, b) => a.name.localeCompare(b.name)).map((s) => [s.name, s.payload, String(s.matches.length)]),
  );
}

async function endpointsTable(state: RuntimeState): Promise<string> {
  const list = await registryCall(async () => findEndpoints(`${state.dir}/registry.sock`, await dialOf(state)));
  return table(
    ["NAME", "SERVICES", "URL", "EXPIRES"],
    list
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((e) => [e.name, e.networkServiceNames.join(","), e.url, expires(e.expirationTime)]),
  );
}

function connectionRow(node: string, c: Connection): string[] {
  const segments = c.path?.pathSegments ?? [];
  const ip = c.context?.ipContext;
  return [
    node,
    segments[0]?.id ?? c.id,
    c.networkService,
    c.networkServiceEndpointName,
    (ip?.srcIpAddrs ?? []).join(","),
    (ip?.dstIpAddrs ?? []).join(","),
    State[c.state] ?? String(c.state),
    pathOf(c),
  ];
}

async function connectionsTable(state: RuntimeState): Promise<string> {
  // A remote connection passes two nsmgrs and both report it: one row, on the client's node.
  const seen = new Map<string, { row: string[]; clientNode: boolean }>();
  for (const n of state.nodes) {
    const conns = await registryCall(
      async () => nsmgrConnections(n.nsmgrSocket, await dialOf(state)),
      `the nsmgr of ${n.name}`,
    );
    for (const c of conns) {
      const segments = c.path?.pathSegments ?? [];
      const key = segments.length >= 2 ? `${segments[0]!.id}/${segments[1]!.id}` : `${n.name}/${c.id}`;
      const clientNode = segments[1]?.name === `nsmgr-${n.name}`;
      if (seen.get(key)?.clientNode) continue;
      seen.set(key, { row: connectionRow(n.name, c), clientNode });
    }
  }
  return table(
    ["NODE", "ID", "SERVICE", "ENDPOINT", "SRC", "DST", "STATE", "PATH"],
    [...seen.values()].map((v) => v.row),
  );
}

async function buildTable(state: RuntimeState, kind: string, namespace?: string): Promise<string> {
  const k = GET_KINDS[kind];
  if (!k)
    throw new LocalError(
      `unknown resource type "${kind}" (use pods, deployments, namespaces, nodes, networkservices, networkserviceendpoints or connections)`,
    );
  const inNs = <T extends { namespace: string }>(items: T[]) =>
    namespace ? items.filter((i) => i.namespace === namespace) : items;
  switch (k) {
    case "pods":
      return podsTable(state, inNs);
    case "deployments":
      return deploymentsTable(state, inNs);
    case "namespaces":
      return table(
        ["NAME", "STATUS", "AGE"],
        state.namespaces.map((n) => [n.name, "Active", age(n.createdAt)]),
      );
    case "nodes":
      return nodesTable(state);
    case "networkservices":
      return networkServicesTable(state);
    case "networkserviceendpoints":
      return endpointsTable(state);
    default:
      return connectionsTable(state);
  }
}

/** The CLI's credentials for this runtime. */
function dialOf(state: RuntimeState) {
  return cliDialOptions(runtimePaths(state.dir), state);
}

async function registryCall<T>(fn: () => Promise<T>, what = "the registry"): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof LocalError) throw err;
    throw new LocalError(`cannot reach ${what}: ${NsmError.from(err).toStatusString()}`);
  }
}

/** The namespace under which `nsm logs` shows the runtime's own components. */
export const SYSTEM_NAMESPACE = "nsm-system";

/**
 * The runtime's own components as pods of {@link SYSTEM_NAMESPACE} (for `nsm logs`):
 * `identity-provider`, `registry`, `nsmgr-<node>`, `forwarder-<node>`.
 */
export function systemPods(state: RuntimeState): PodState[] {
  const pod = (name: string, node: string, netns: string, proc: ContainerState["proc"]): PodState => ({
    namespace: SYSTEM_NAMESPACE,
    name,
    uid: name,
    node,
    netns,
    labels: {},
    annotations: {},
    specHash: "",
    containers: proc
      ? [
          {
            name: name.replace(/-node-\d+$/, ""),
            type: "app",
            injected: false,
            image: "nsm",
            argv: proc.argv,
            env: {},
            log: proc.log,
            proc,
          },
        ]
      : [],
    phase: "Running",
    createdAt: state.createdAt,
  });
  return [
    ...(state.identityProvider ? [pod("identity-provider", "", "", state.identityProvider)] : []),
    pod("registry", "", "", state.registry),
    ...state.nodes.flatMap((n) => [
      pod(`nsmgr-${n.name}`, n.name, n.netns, n.nsmgr),
      pod(`forwarder-${n.name}`, n.name, n.netns, n.forwarder),
    ]),
  ];
}

/**
 * Finds the pod a kubectl-style target names: `NAME`, `pods/NAME`, `pod/NAME` or
 * `deployments/NAME` (`deployment/`, `deploy/`: the first running pod of the deployment).
 */
export function findPod(state: RuntimeState, target: string, namespace = "default"): PodState {
  const m = /^(?:(pods?|po|deployments?|deploy|deployments?\.apps|daemonsets?|ds|daemonsets?\.apps)\/)?(.+)$/.exec(
    target,
  );
  const kind = m?.[1] ?? "pod";
  const name = m?.[2] ?? target;
  if (/^(deployments?|deploy|deployments?\.apps|daemonsets?|ds|daemonsets?\.apps)$/.test(kind)) {
    const ds = /^(daemonsets?|ds|daemonsets?\.apps)$/.test(kind);
    const owner = ds ? `daemonset/${name}` : name;
    const pods = state.pods.filter((p) => p.namespace === namespace && p.owner === owner);
    if (pods.length === 0)
      throw new LocalError(`${ds ? "daemonset" : "deployment"} "${name}" not found in namespace "${namespace}"`);
    return pods.find((p) => podStatus(p).status === "Running") ?? pods[0]!;
  }
  const pods = namespace === SYSTEM_NAMESPACE ? systemPods(state) : state.pods;
  const pod = pods.find((p) => p.namespace === namespace && p.name === name);
  if (!pod) {
    const elsewhere = state.pods.filter((p) => p.name === name).map((p) => p.namespace);
    const hint = elsewhere.length ? ` (it exists in namespace ${elsewhere.join(", ")}: add -n ${elsewhere[0]})` : "";
    throw new LocalError(`pod "${name}" not found in namespace "${namespace}"${hint}`);
  }
  return pod;
}

function pickContainer(pod: PodState, name?: string): ContainerState {
  const apps = pod.containers.filter((c) => c.type === "app");
  if (name) {
    const c = pod.containers.find((x) => x.name === name);
    if (!c)
      throw new LocalError(
        `container "${name}" not found in pod ${pod.name} (containers: ${pod.containers.map((x) => x.name).join(", ")})`,
      );
    return c;
  }
  return apps.find((c) => !c.injected) ?? apps[0]!;
}

export interface ExecOptions {
  /** @default the first app container that was not injected */
  readonly container?: string;
  /** PATH to find `argv[0]` in when the container's environment has none. */
  readonly hostPath: string;
  /** Told why the command could not be started (then the exit code is 127). */
  readonly onSpawnError: (message: string) => void;
}

/** Runs `argv` inside the pod's netns with the container's environment; resolves with its exit code. */
export async function execInPod(pod: PodState, argv: readonly string[], options: ExecOptions): Promise<number> {
  if (argv.length === 0) throw new LocalError("nothing to run: give a command after --");
  if (pod.phase !== "Running")
    throw new LocalError(`pod ${pod.namespace}/${pod.name} is ${pod.phase}, not Running: cannot exec into it`);
  if (!pod.netns) throw new LocalError(`${pod.name} has no network namespace of its own: nothing to exec into`);
  const c = pickContainer(pod, options.container);
  // A container with volumes runs in a mount namespace and root of its own (./volumes.ts): enter them too.
  const mounted = c.mounts?.length && c.proc && isAlive(c.proc);
  const enter = mounted
    ? ["nsenter", "--target", String(c.proc!.pid), "--mount", "--net", "--root", "--wd", "--", ...argv]
    : ["ip", "netns", "exec", pod.netns, ...argv];
  const child = spawn(enter[0]!, enter.slice(1), {
    stdio: "inherit",
    env: { PATH: options.hostPath, ...c.env },
  });
  const ignore = () => {};
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  try {
    return await new Promise<number>((resolve) => {
      child.once("error", (err) => {
        options.onSpawnError(err.message);
        resolve(127);
      });
      child.once("exit", (code, signal) =>
        resolve(code ?? (signal === "SIGINT" ? 130 : signal === "SIGKILL" ? 137 : 143)),
      );
    });
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGTERM", ignore);
  }
}

const LEVELS: Record<string, string> = {
  "10": "TRACE",
  "20": "DEBUG",
  "30": "INFO",
  "40": "WARN",
  "50": "ERROR",
  "60": "FATAL",
};

function fieldText(v: unknown): string {
  if (typeof v === "string") return /[\s"]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** A JSON log line as `time LEVEL msg k=v …`; other lines unchanged. */
export function renderLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, name: _name, pid: _pid, hostname: _h, ...rest } = rec;
  const lvl = String(LEVELS[String(level)] ?? level ?? "").toUpperCase();
  const ts = typeof time === "string" ? time.replace(/^\d{4}-\d\d-\d\dT/, "").replace(/Z$/, "") : String(time ?? "");
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${fieldText(v)}`)
    .join(" ");
  return `${ts} ${lvl.padEnd(5)} ${String(msg ?? "")}${fields ? ` ${fields}` : ""}`;
}

export interface LogsOptions {
  container?: string;
  raw?: boolean;
  tail?: number;
}

/** The logs of every container of the pod (or one), each line prefixed by `[container]`. */
export function podLogs(pod: PodState, options: LogsOptions = {}): string {
  const containers = options.container ? [pickContainer(pod, options.container)] : pod.containers;
  const out: string[] = [];
  for (const c of containers) {
    let text = "";
    try {
      text = readFileSync(c.log, "utf8");
    } catch {
      text = "";
    }
    let lines = text.split("\n").filter((l) => l.length > 0);
    if (options.tail !== undefined) lines = lines.slice(-options.tail);
    for (const l of lines) out.push(`[${c.name}] ${options.raw ? l : renderLogLine(l)}`);
  }
  return out.length ? `${out.join("\n")}\n` : "";
}
