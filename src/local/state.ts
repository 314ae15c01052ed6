// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime's state: one directory holding `state.json` (nodes, pods, processes), a lock
 * file that serializes the commands that change things, the sockets and the logs.
 *
 * Layout of the state directory:
 * - `state.json`        what exists (written atomically: temp file + rename)
 * - `lock`              "<pid> <start time>" of the command holding it
 * - `registry.sock`     the registry
 * - `ca.json`           the embedded CA (certificate and key; root only)
 * - `agent.sock`        the SPIFFE Workload API of the identity provider
 * - `identities.json`   which process is which SPIFFE ID (root only; derived from the state)
 * - `nodes/<node>/`     `nsm.io.sock` (nsmgr), `forwarder.sock`
 * - `logs/`             one file per process: `registry.log`, `<node>-nsmgr.log`, `<ns>_<pod>_<container>.log`
 * - `tmp/`              TMPDIR of the processes (endpoint sockets)
 *
 * Nodes are joined by an underlay: each node netns has `eth0` with 198.18.0.<i>/24, the other
 * end of that veth being a port of the bridge `br0` in the netns `<prefix>-fabric`.
 *
 * Network namespaces are named `<prefix>-…` where the prefix is derived from the directory's
 * absolute path, so two runtimes (two state directories) never share a name.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { LocalError } from "./errors.js";
import type { Affinity, WorkloadManifest } from "./manifest.js";
import { isAlive, type ProcRef, procStartTime } from "./proc.js";
import type { MountState, VolumeState } from "./volumes.js";

/** The default state directory. */
export const DEFAULT_STATE_DIR = "/run/nsm-local";

/** Environment variable every process of a runtime carries (value: the netns prefix), to find strays. */
export const RUNTIME_MARKER_ENV = "NSM_LOCAL_RUNTIME";

export interface RuntimePaths {
  readonly dir: string;
  readonly stateFile: string;
  readonly lockFile: string;
  readonly logsDir: string;
  readonly nodesDir: string;
  readonly tmpDir: string;
  readonly registrySocket: string;
  /** The embedded CA (`CertificateAuthority.export()` as JSON, mode 0600). */
  readonly caFile: string;
  /** The identity provider's SPIFFE Workload API socket. */
  readonly agentSocket: string;
  /** The process identity file the identity provider and forwarders resolve pids with (mode 0600). */
  readonly identitiesFile: string;
  /** Netns name prefix, `nsm-<6 hex>`. */
  readonly prefix: string;
}

export function runtimePaths(dir: string): RuntimePaths {
  const abs = resolve(dir);
  return {
    dir: abs,
    stateFile: join(abs, "state.json"),
    lockFile: join(abs, "lock"),
    logsDir: join(abs, "logs"),
    nodesDir: join(abs, "nodes"),
    tmpDir: join(abs, "tmp"),
    registrySocket: join(abs, "registry.sock"),
    caFile: join(abs, "ca.json"),
    agentSocket: join(abs, "agent.sock"),
    identitiesFile: join(abs, "identities.json"),
    prefix: `nsm-${createHash("sha256").update(abs).digest("hex").slice(0, 6)}`,
  };
}

/** A process the runtime started and must stop. */
export interface ManagedProc extends ProcRef {
  /** Log file (stdout and stderr). */
  readonly log: string;
  readonly argv: readonly string[];
  /** What it was started with, so that `nsm restart` can start it again the same way. */
  readonly netns?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export interface NodeState {
  readonly name: string;
  readonly netns: string;
  readonly dir: string;
  readonly nsmgrSocket: string;
  readonly forwarderSocket: string;
  /** Underlay address (198.18.0.<i>, on `eth0`, /24); nodes made before the fabric existed have none. */
  readonly address?: string;
  /** The nsmgr's public URL, `tcp://<address>:5001`. */
  readonly nsmgrUrl?: string;
  nsmgr?: ManagedProc;
  forwarder?: ManagedProc;
  readonly createdAt: string;
}

export type ContainerType = "init" | "app";

export interface ContainerState {
  readonly name: string;
  readonly type: ContainerType;
  /** True for the client containers added because of the `networkservicemesh.io` annotation. */
  readonly injected: boolean;
  readonly image: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly log: string;
  proc?: ManagedProc;
  /** Exit code of a finished init container. */
  exitCode?: number | null;
  /** Volumes mounted in the container's own mount namespace (see ./volumes.ts). */
  readonly mounts?: readonly MountState[];
  /** Where the command runs (containers with mounts). */
  readonly workingDir?: string;
  /** An NSM role whose env names files of the pod's volumes (written at start: see ./pods.ts). */
  readonly volumeEnv?: boolean;
}

export type PodPhase = "Pending" | "Running" | "Failed";

export interface PodState {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly netns: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** The Deployment that made it, if any. */
  readonly owner?: string;
  /** The client NSURLs injected, if any. */
  readonly nsurls?: string;
  /** Hash of the pod spec as applied (to tell an unchanged re-apply). */
  readonly specHash: string;
  /** Scheduling constraints kept for later pods' anti-affinity checks. */
  readonly affinity?: Affinity;
  containers: ContainerState[];
  /** The pod's volumes, written when it starts. */
  readonly volumes?: readonly VolumeState[];
  /** The pod's IP (on its loopback: see ./pod-network.ts). */
  readonly podIP?: string;
  phase: PodPhase;
  message?: string;
  readonly createdAt: string;
}

export interface DeploymentState {
  /** Absent: a Deployment. A DaemonSet runs one pod per node; its pods' owner is `daemonset/<name>`. */
  readonly kind?: "DaemonSet";
  readonly namespace: string;
  readonly name: string;
  replicas: number;
  readonly templateHash: string;
  /** The Deployment as applied, so that `scale` and a deleted pod can make pods again. */
  readonly template?: WorkloadManifest;
  readonly createdAt: string;
}

export interface NamespaceState {
  readonly name: string;
  annotations: Record<string, string>;
  /** Set by `nsm label ns`. */
  labels?: Record<string, string>;
  readonly createdAt: string;
}

export interface NetworkServiceState {
  readonly namespace: string;
  readonly name: string;
  /** The record registered, as proto JSON. */
  record: unknown;
  readonly createdAt: string;
}

export interface State {
  readonly version: 1;
  readonly dir: string;
  readonly prefix: string;
  /** `starting` until `up` has finished; `up` after. */
  phase: "starting" | "up";
  readonly createdAt: string;
  /** SPIFFE trust domain of every identity (secure runtimes). */
  trustDomain?: string;
  /** Started with `up --insecure`: no identity provider, no mTLS, every process has NSM_INSECURE=true. */
  insecure?: boolean;
  /** The identity provider (embedded CA serving the Workload API), secure runtimes only. */
  identityProvider?: ManagedProc;
  registry?: ManagedProc;
  /** The netns holding the underlay bridge that joins the nodes (`<prefix>-fabric`). */
  fabric?: string;
  nodes: NodeState[];
  namespaces: NamespaceState[];
  networkServices: NetworkServiceState[];
  deployments: DeploymentState[];
  pods: PodState[];
  /** ConfigMaps, Secrets and the kinds stored without meaning here (see ./kinds.ts). */
  objects?: StoredObjectState[];
}

/** An object `apply` stored (see ./kinds.ts). */
export interface StoredObjectState {
  readonly kind: string;
  /** "" for a cluster-scoped kind. */
  readonly namespace: string;
  readonly name: string;
  body: Record<string, unknown>;
  readonly createdAt: string;
}

export function emptyState(paths: RuntimePaths): State {
  return {
    version: 1,
    dir: paths.dir,
    prefix: paths.prefix,
    phase: "starting",
    createdAt: new Date().toISOString(),
    nodes: [],
    namespaces: [],
    networkServices: [],
    deployments: [],
    pods: [],
  };
}

/** The state, or undefined when there is none (never `up`, or `down` already ran). */
export function loadState(paths: RuntimePaths): State | undefined {
  let text: string;
  try {
    text = readFileSync(paths.stateFile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let state: State;
  try {
    state = JSON.parse(text) as State;
  } catch {
    throw new LocalError(`the state file ${paths.stateFile} is damaged; run \`nsm down\` to clean up`);
  }
  if (state.version !== 1) throw new LocalError(`the state file ${paths.stateFile} has an unknown version`);
  return state;
}

/** Writes the state atomically. */
export function saveState(paths: RuntimePaths, state: State): void {
  mkdirSync(paths.dir, { recursive: true });
  const tmp = `${paths.stateFile}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, paths.stateFile);
}

/** The state of a runtime that is up, or a readable error telling the user to run `nsm up`. */
export function requireUp(paths: RuntimePaths): State {
  const state = loadState(paths);
  if (!state) throw new LocalError(`the local runtime is not up (no state in ${paths.dir}): run \`nsm up\` first`);
  if (state.phase !== "up")
    throw new LocalError(
      `the local runtime in ${paths.dir} did not finish starting: run \`nsm down\`, then \`nsm up\``,
    );
  return state;
}

interface LockHolder {
  readonly pid: number;
  readonly start: number;
  readonly what: string;
}

function readLock(file: string): LockHolder | undefined {
  try {
    const [pid, start, ...what] = readFileSync(file, "utf8").trim().split(" ");
    return { pid: Number(pid), start: Number(start), what: what.join(" ") };
  } catch {
    return undefined;
  }
}

/** Creates the lock file for this process, or undefined if someone holds it. */
function tryLock(paths: RuntimePaths, what: string): (() => void) | undefined {
  try {
    const fd = openSync(paths.lockFile, "wx", 0o600);
    writeSync(fd, `${process.pid} ${procStartTime(process.pid) ?? 0} ${what}\n`);
    closeSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return undefined;
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    const holder = readLock(paths.lockFile);
    if (holder?.pid === process.pid) rmSync(paths.lockFile, { force: true });
    process.off("exit", release);
  };
  process.on("exit", release);
  return release;
}

/**
 * Removes the lock of a command that died; true if it did (or the lock is gone). A lock file
 * that cannot be read may be half written: it gets a moment first.
 */
async function clearDeadLock(paths: RuntimePaths, holder: LockHolder | undefined): Promise<boolean> {
  if (holder && isAlive({ pid: holder.pid, start: holder.start })) return false;
  if (!holder) await new Promise((r) => setTimeout(r, 100));
  if (!holder && existsSync(paths.lockFile) && readLock(paths.lockFile)) return true;
  rmSync(paths.lockFile, { force: true });
  return true;
}

/**
 * Takes the runtime's lock (waiting up to `waitMs` for another command to finish, and taking over
 * the lock of a command that died). The state directory must exist. Returns the release function,
 * or, when `lender` says the live holder serves requests meanwhile (./lock-lend.ts), its pid.
 */
export async function acquireLockOrLender(
  paths: RuntimePaths,
  what: string,
  onWait: (msg: string) => void,
  lender: (holderPid: number) => boolean = () => false,
  waitMs = 180_000,
): Promise<(() => void) | { readonly lender: number }> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    const release = tryLock(paths, what);
    if (release) return release;
    const holder = readLock(paths.lockFile);
    if (await clearDeadLock(paths, holder)) continue;
    if (lender(holder!.pid)) return { lender: holder!.pid };
    const other = `pid ${holder!.pid}: nsm ${holder!.what}`;
    if (Date.now() > deadline) throw new LocalError(`another nsm command (${other}) is still running; try again`);
    if (!told) onWait(`waiting for another nsm command to finish (${other})`);
    told = true;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** {@link acquireLockOrLender} without a lender: the release function. */
export async function acquireLock(
  paths: RuntimePaths,
  what: string,
  onWait: (msg: string) => void,
  waitMs = 180_000,
): Promise<() => void> {
  const got = await acquireLockOrLender(paths, what, onWait, () => false, waitMs);
  if (typeof got !== "function") throw new LocalError("the runtime's lock is held");
  return got;
}
