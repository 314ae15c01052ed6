// SPDX-License-Identifier: Apache-2.0
/**
 * `up` and `down`: the runtime's fabric, system processes and nodes.
 *
 * - `up` makes the fabric (netns `<prefix>-fabric` with the underlay bridge), starts the identity
 *   provider (unless insecure) and the registry (unix sockets in the state dir) and, per node, a
 *   netns `<prefix>-node-<i>` with `eth0` 198.18.0.<i>/24 on the fabric, running nsmgr (node
 *   socket + `tcp://198.18.0.<i>:5001`) and forwarder (tunnel IP 198.18.0.<i>); it waits for each
 *   (socket accepting, forwarder registered) and fails naming the component and the tail of its log.
 * - `down` deletes every pod, unregisters NetworkServices, stops forwarders, nsmgrs, the registry
 *   and the identity provider, deletes the node namespaces (their underlay veths go with them),
 *   the fabric and the state dir, and checks that nothing with the runtime's prefix remains.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { NsmError } from "../sdk/core/errors.js";
import { checkTrustDomain } from "../security/spiffeid.js";
import { findEndpoints, socketAccepts } from "./cluster.js";
import { PROMETHEUS_PORTS, REGISTRY_PROMETHEUS_LISTEN_ON } from "./config.js";
import { type RuntimeContext, save, withLock } from "./context.js";
import { LocalError } from "./errors.js";
import { cliDialOptions, createRuntimeCa, DEFAULT_TRUST_DOMAIN } from "./identity.js";
import { addFabric, addNetns, attachToFabric, deleteNetns, listOwnNetns, netnsName, underlayAddress } from "./netns.js";
import { nodeExcludedPrefixesFile } from "./pod-files.js";
import { deletePods } from "./pod-supervisor.js";
import { nsmArgv } from "./pods.js";
import { findByEnv, isAlive } from "./proc.js";
import { unregisterService } from "./services.js";
import {
  emptyState,
  loadState,
  type ManagedProc,
  type NodeState,
  RUNTIME_MARKER_ENV,
  type RuntimePaths,
  type State,
} from "./state.js";
import { killNetnsProcesses, securityEnv, startProcess, stopProcess, systemEnv, waitReady } from "./supervisor.js";
import { removePodDir } from "./volumes.js";

/** Longest unix socket path (sun_path is 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107;
/** The nsmgr's TCP port on its node's underlay address (upstream hostPort). */
const NSMGR_PORT = 5001;

export interface UpOptions {
  /** Run without identities, mTLS and policies (every process gets NSM_INSECURE=true). @default false */
  readonly insecure?: boolean;
  /** @default {@link DEFAULT_TRUST_DOMAIN} */
  readonly trustDomain?: string;
}

interface UpSettings {
  readonly nodeCount: number;
  readonly insecure: boolean;
  readonly trustDomain: string;
}

function checkUpOptions(paths: RuntimePaths, nodeCount: number, options: UpOptions): UpSettings {
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 16)
    throw new LocalError(`--nodes must be an integer from 1 to 16, not ${nodeCount}`);
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  try {
    checkTrustDomain(trustDomain);
  } catch (err) {
    throw new LocalError(`--trust-domain: ${NsmError.from(err).rawMessage}`);
  }
  const socketProbe = join(paths.nodesDir, `node-${nodeCount}`, "forwarder.sock");
  if (socketProbe.length > MAX_SOCKET_PATH)
    throw new LocalError(`the state directory path ${paths.dir} is too long for unix sockets; choose a shorter one`);
  return { nodeCount, insecure: options.insecure === true, trustDomain };
}

/** What is wrong with a runtime that should be up, or undefined. */
export function health(state: State): string | undefined {
  if (!state.insecure && (!state.identityProvider || !isAlive(state.identityProvider)))
    return "the identity provider is not running";
  if (!state.registry || !isAlive(state.registry)) return "the registry is not running";
  for (const n of state.nodes) {
    if (!n.nsmgr || !isAlive(n.nsmgr)) return `the nsmgr of ${n.name} is not running`;
    if (!n.forwarder || !isAlive(n.forwarder)) return `the forwarder of ${n.name} is not running`;
  }
  return undefined;
}

/** True if the same runtime is already up; throws if another one (or a broken one) is there. */
async function alreadyUp(ctx: RuntimeContext, settings: UpSettings): Promise<boolean> {
  const { paths, out } = ctx;
  const existing = loadState(paths);
  if (!existing) {
    const leftovers = await listOwnNetns(paths.prefix);
    if (leftovers.length > 0)
      throw new LocalError(
        `network namespaces of an earlier runtime remain (${leftovers.join(", ")}): run \`nsm down\``,
      );
    return false;
  }
  const problem = health(existing);
  if (existing.phase !== "up" || problem)
    throw new LocalError(
      `a previous runtime in ${paths.dir} is not healthy (${problem ?? "it did not finish starting"}): run \`nsm down\` first`,
    );
  if (existing.nodes.length !== settings.nodeCount)
    throw new LocalError(
      `the runtime in ${paths.dir} is already up with ${existing.nodes.length} node(s); run \`nsm down\` first to change that`,
    );
  if ((existing.insecure === true) !== settings.insecure)
    throw new LocalError(
      `the runtime in ${paths.dir} is already up ${existing.insecure ? "in insecure mode" : "with mTLS"}; run \`nsm down\` first to change that`,
    );
  out.say(`already up: ${existing.nodes.length} node(s), state in ${paths.dir}`);
  return true;
}

async function startFabric(ctx: RuntimeContext, state: State): Promise<void> {
  const t = Date.now();
  state.fabric = netnsName(ctx.paths.prefix, "fabric");
  save(ctx, state);
  await addFabric(state.fabric);
  ctx.out.say(`  fabric: netns ${state.fabric}, bridge for the 198.18.0.0/24 underlay ${ctx.out.took(t)}`);
}

async function startIdentityProvider(ctx: RuntimeContext, state: State, trustDomain: string): Promise<void> {
  const { paths, out } = ctx;
  const t = Date.now();
  await createRuntimeCa(paths, trustDomain);
  const idp = startProcess(ctx, {
    netns: undefined,
    argv: nsmArgv("identity-provider"),
    env: systemEnv(ctx, {
      NSM_LISTEN_ON: `unix://${paths.agentSocket}`,
      NSM_CA_FILE: paths.caFile,
      NSM_PROCESS_IDENTITIES: paths.identitiesFile,
      NSM_SVID_TTL: ctx.config.svidTtl,
    }),
    log: join(paths.logsDir, "identity-provider.log"),
  });
  state.identityProvider = idp.proc;
  save(ctx, state);
  await waitReady("the identity provider", idp, () => socketAccepts(paths.agentSocket));
  out.say(
    `  identity provider ready: trust domain ${trustDomain}, SPIFFE Workload API on unix://${paths.agentSocket} ${out.took(t)}`,
  );
}

async function startRegistry(ctx: RuntimeContext, state: State): Promise<void> {
  const { paths, out } = ctx;
  const t = Date.now();
  const reg = startProcess(ctx, {
    netns: undefined,
    argv: nsmArgv("registry"),
    env: systemEnv(ctx, {
      ...securityEnv(ctx, state),
      NSM_LISTEN_ON: `unix://${paths.registrySocket}`,
      NSM_PROMETHEUS_LISTEN_ON: REGISTRY_PROMETHEUS_LISTEN_ON,
    }),
    log: join(paths.logsDir, "registry.log"),
  });
  state.registry = reg.proc;
  save(ctx, state);
  await waitReady("the registry", reg, () => socketAccepts(paths.registrySocket));
  out.say(`  registry ready on unix://${paths.registrySocket} ${out.took(t)}`);
}

/** Node `index` (1-based) in the state, and its netns joined to the fabric with 198.18.0.<index>. */
async function addNode(ctx: RuntimeContext, state: State, index: number): Promise<NodeState> {
  const name = `node-${index}`;
  const dir = join(ctx.paths.nodesDir, name);
  mkdirSync(dir, { recursive: true });
  const address = underlayAddress(index);
  const node: NodeState = {
    name,
    netns: netnsName(ctx.paths.prefix, name),
    dir,
    nsmgrSocket: join(dir, "nsm.io.sock"),
    forwarderSocket: join(dir, "forwarder.sock"),
    address,
    nsmgrUrl: `tcp://${address}:${NSMGR_PORT}`,
    createdAt: new Date().toISOString(),
  };
  state.nodes.push(node);
  save(ctx, state);
  await addNetns(node.netns);
  await attachToFabric(state.fabric!, node.netns, name, address);
  return node;
}

/** The node's nsmgr, on its unix socket and `tcp://198.18.0.<index>:5001` (the URL remote forwarders dial). */
async function startNsmgr(ctx: RuntimeContext, state: State, node: NodeState): Promise<void> {
  const { paths } = ctx;
  const nsmgr = startProcess(ctx, {
    netns: node.netns,
    argv: nsmArgv("nsmgr"),
    env: systemEnv(ctx, {
      ...securityEnv(ctx, state),
      NSM_NAME: `nsmgr-${node.name}`,
      NSM_LISTEN_ON: `unix://${node.nsmgrSocket},${node.nsmgrUrl}`,
      NSM_REGISTRY_URL: `unix://${paths.registrySocket}`,
      NSM_PROMETHEUS_LISTEN_ON: `${node.address ?? "127.0.0.1"}:${PROMETHEUS_PORTS.nsmgr}`,
      NSM_EXCLUDED_PREFIXES_FILE: nodeExcludedPrefixesFile(node),
      NODE_NAME: node.name,
      POD_NAME: `nsmgr-${node.name}`,
    }),
    log: join(paths.logsDir, `${node.name}-nsmgr.log`),
  });
  node.nsmgr = nsmgr.proc;
  save(ctx, state);
  await waitReady(`nsmgr of ${node.name}`, nsmgr, () => socketAccepts(node.nsmgrSocket));
}

/** The node's forwarder, its tunnels starting at the node's underlay address; ready once registered. */
async function startForwarder(ctx: RuntimeContext, state: State, node: NodeState): Promise<void> {
  const { paths } = ctx;
  const fwdName = `forwarder-${node.name}`;
  const fwd = startProcess(ctx, {
    netns: node.netns,
    argv: nsmArgv("forwarder"),
    env: systemEnv(ctx, {
      ...securityEnv(ctx, state),
      ...(state.insecure ? {} : { NSM_PROCESS_IDENTITIES: paths.identitiesFile }),
      NSM_NAME: fwdName,
      NSM_LISTEN_ON: `unix://${node.forwarderSocket}`,
      NSM_CONNECT_TO: `unix://${node.nsmgrSocket}`,
      NSM_TUNNEL_IP: node.address!,
      NSM_PROMETHEUS_LISTEN_ON: `${node.address}:${PROMETHEUS_PORTS.forwarder}`,
      NODE_NAME: node.name,
      POD_NAME: fwdName,
    }),
    log: join(paths.logsDir, `${node.name}-forwarder.log`),
  });
  node.forwarder = fwd.proc;
  save(ctx, state);
  const registered = async () =>
    (await findEndpoints(paths.registrySocket, await cliDialOptions(paths, state), fwdName)).length > 0;
  await waitReady(`forwarder of ${node.name}`, fwd, registered);
}

async function startNode(ctx: RuntimeContext, state: State, index: number): Promise<void> {
  const t = Date.now();
  const node = await addNode(ctx, state, index);
  await startNsmgr(ctx, state, node);
  await startForwarder(ctx, state, node);
  ctx.out.say(
    `  ${node.name}: netns ${node.netns}, underlay ${node.address}, nsmgr and forwarder ready ${ctx.out.took(t)}`,
  );
}

async function startRuntime(ctx: RuntimeContext, state: State, settings: UpSettings): Promise<void> {
  const { out } = ctx;
  const { nodeCount, insecure, trustDomain } = settings;
  const t0 = Date.now();
  await startFabric(ctx, state);
  if (insecure) {
    out.warn(
      "INSECURE MODE (--insecure): no identity provider, no mTLS, no path tokens, no policies, no netns ownership checks; every process runs with NSM_INSECURE=true. Debugging only.",
    );
  } else await startIdentityProvider(ctx, state, trustDomain);
  await startRegistry(ctx, state);
  await Promise.all(Array.from({ length: nodeCount }, (_, i) => startNode(ctx, state, i + 1)));
  state.phase = "up";
  save(ctx, state);
  out.say(`ready: ${nodeCount} node(s) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  out.say(
    insecure
      ? "security: OFF (insecure mode): plaintext gRPC, no identities"
      : `security: mTLS on every hop with X.509-SVIDs of trust domain ${trustDomain}, path tokens and policies on`,
  );
}

/** `nsm up --nodes N [--trust-domain TD] [--insecure]`. */
export async function up(ctx: RuntimeContext, nodeCount: number, options: UpOptions = {}): Promise<void> {
  const { paths, out } = ctx;
  const settings = checkUpOptions(paths, nodeCount, options);
  mkdirSync(paths.dir, { recursive: true });
  await withLock(ctx, `up --nodes ${nodeCount}`, async () => {
    if (await alreadyUp(ctx, settings)) return;
    out.say(`starting the local runtime: ${nodeCount} node(s), state in ${paths.dir}, netns prefix ${paths.prefix}`);
    for (const d of [paths.logsDir, paths.nodesDir, paths.tmpDir]) mkdirSync(d, { recursive: true });
    const state = emptyState(paths);
    if (settings.insecure) state.insecure = true;
    else state.trustDomain = settings.trustDomain;
    save(ctx, state);
    try {
      await startRuntime(ctx, state, settings);
    } catch (err) {
      if (err instanceof LocalError) err.message += "\nrun `nsm down` to clean up what was started";
      throw err;
    }
  });
}

async function stopAll(ctx: RuntimeContext, what: string, procs: (ManagedProc | undefined)[]): Promise<void> {
  const live = procs.filter((p): p is ManagedProc => p !== undefined && isAlive(p));
  if (live.length === 0) return;
  const t = Date.now();
  await Promise.all(live.map((p) => stopProcess(ctx, p)));
  ctx.out.say(`  ${what} stopped ${ctx.out.took(t)}`);
}

/** Stops what the state records: pods, NetworkServices, system processes, node namespaces, fabric. */
async function stopRuntime(ctx: RuntimeContext, state: State): Promise<void> {
  ctx.out.say(`stopping the local runtime in ${ctx.paths.dir}`);
  if (state.pods.length > 0) await deletePods(ctx, state, [...state.pods]);
  if (state.registry && isAlive(state.registry)) {
    for (const s of [...state.networkServices]) await unregisterService(ctx, state, s.name);
  }
  await stopAll(
    ctx,
    "forwarders",
    state.nodes.map((n) => n.forwarder),
  );
  await stopAll(
    ctx,
    "nsmgrs",
    state.nodes.map((n) => n.nsmgr),
  );
  await stopAll(ctx, "registry", [state.registry]);
  await stopAll(ctx, "identity provider", [state.identityProvider]);
  // What a forwarder that did not stop cleanly left in its node (wireguard-go) goes too.
  for (const n of state.nodes) {
    await killNetnsProcesses(n.netns);
    await deleteNetns(n.netns);
  }
  // The nodes' underlay veths went with their namespaces; the bridge goes with the fabric.
  if (state.fabric) await deleteNetns(state.fabric);
}

/** Strays: processes carrying our marker, and namespaces with our prefix; fails if any remain after. */
async function removeStrays(ctx: RuntimeContext): Promise<void> {
  const { paths, out } = ctx;
  const strays = findByEnv(RUNTIME_MARKER_ENV, paths.prefix);
  if (strays.length > 0) {
    out.say(`  stopping ${strays.length} stray process(es): ${strays.map((p) => p.pid).join(", ")}`);
    await Promise.all(strays.map((p) => stopProcess(ctx, p, 3000)));
  }
  for (const ns of await listOwnNetns(paths.prefix)) {
    await killNetnsProcesses(ns);
    await deleteNetns(ns);
    out.say(`  deleted network namespace ${ns}`);
  }
  const leftNs = await listOwnNetns(paths.prefix);
  const leftProcs = findByEnv(RUNTIME_MARKER_ENV, paths.prefix);
  if (leftNs.length > 0 || leftProcs.length > 0) {
    throw new LocalError(
      `could not remove everything: namespaces [${leftNs.join(", ")}], processes [${leftProcs.map((p) => p.pid).join(", ")}]`,
    );
  }
}

/** Removes what the runtime put in its state directory, then the directory if it is empty. */
function removeStateDir(paths: RuntimePaths): void {
  for (const p of [paths.logsDir, paths.nodesDir, paths.tmpDir]) rmSync(p, { recursive: true, force: true });
  // Pods' volumes and container roots (never through a mount: see ./volumes.ts).
  removePodDir(join(paths.dir, "pods"));
  const files = [
    paths.stateFile,
    paths.registrySocket,
    paths.agentSocket,
    paths.caFile,
    paths.identitiesFile,
    paths.lockFile,
  ];
  for (const f of files) rmSync(f, { force: true });
  try {
    for (const f of readdirSync(paths.dir))
      if (/^(state|identities)\.json\.\d+\.tmp$/.test(f)) rmSync(join(paths.dir, f));
    rmdirSync(paths.dir);
  } catch {
    // not empty (someone else's files) or already gone
  }
}

/** The state to clean up after, or undefined (none, or damaged: then cleanup goes by prefix). */
function stateToClean(ctx: RuntimeContext): State | undefined {
  try {
    return loadState(ctx.paths);
  } catch (err) {
    ctx.out.warn(`${(err as Error).message}; cleaning up by prefix ${ctx.paths.prefix}`);
    return undefined;
  }
}

/** `nsm down`: removes every namespace, link and process the runtime made, and its state dir. */
export async function down(ctx: RuntimeContext): Promise<void> {
  const { paths, out } = ctx;
  const t0 = Date.now();
  const run = async () => {
    const state = stateToClean(ctx);
    if (state) await stopRuntime(ctx, state);
    else out.say(`no runtime state in ${paths.dir}; removing anything left with prefix ${paths.prefix}`);
    await removeStrays(ctx);
  };
  if (existsSync(paths.dir)) await withLock(ctx, "down", run);
  else await run();
  removeStateDir(paths);
  out.say(`down: nothing left ${out.took(t0)}`);
}
