// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime's commands that change things: `up`, `apply`, `delete`, `down`.
 *
 * - `up` makes the fabric (netns `<prefix>-fabric` with the underlay bridge), starts the
 *   registry (unix socket in the state dir) and, per node, a netns `<prefix>-node-<i>` with
 *   `eth0` 198.18.0.<i>/24 on the fabric, running nsmgr (node socket + `tcp://198.18.0.<i>:5001`)
 *   and forwarder (tunnel IP 198.18.0.<i>); it waits for each (socket accepting, forwarder
 *   registered) and fails naming the component and the tail of its log.
 * - `apply` checks every object and places every pod before it changes anything; then it
 *   registers NetworkServices, starts pods without the client annotation, then annotated pods.
 * - `delete` stops pods (clients first, so their sidecars close connections while the endpoints
 *   still run), deletes their netns and unregisters NetworkServices.
 * - `down` does that for everything, stops forwarders, nsmgrs and the registry, deletes the node
 *   namespaces (their underlay veths go with them), the fabric and the state dir, and checks that
 *   nothing with the runtime's prefix remains.
 *
 * Each command holds the lock of the state dir; the state file is saved after every step, so a
 * command that fails half way leaves a state that `down` can clean.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { NetworkServiceSchema } from "../api/gen/registry_pb.js";
import { NsmError } from "../sdk/core/errors.js";
import { checkTrustDomain } from "../security/spiffeid.js";
import { findEndpoints, registerNetworkService, socketAccepts, unregisterNetworkService } from "./cluster.js";
import { type Readiness, resolveComponents } from "./components.js";
import {
  cliDialOptions,
  createRuntimeCa,
  DEFAULT_TRUST_DOMAIN,
  RUNTIME_SVID_TTL,
  writeIdentities,
} from "./identity.js";
import { renderLogLine } from "./inspect.js";
import {
  describe,
  loadManifests,
  type Manifest,
  type NamespaceManifest,
  type NetworkServiceManifest,
  type WorkloadManifest,
} from "./manifest.js";
import {
  addFabric,
  addNetns,
  attachToFabric,
  deleteLinks,
  deleteNetns,
  listOwnNetns,
  netnsName,
  netnsPids,
  underlayAddress,
} from "./netns.js";
import {
  buildPod,
  deploymentPodName,
  hashOf,
  INIT_CLIENT_NAME,
  nsmArgv,
  podNsurls,
  roleOf,
  SIDECAR_CLIENT_NAME,
} from "./pods.js";
import {
  findByEnv,
  isAlive,
  type ProcRef,
  procStartTime,
  type Spawned,
  spawnDetached,
  stopProc,
  tailFile,
  waitGone,
} from "./proc.js";
import type { Progress } from "./progress.js";
import { type PlacedPod, placePod } from "./schedule.js";
import {
  acquireLock,
  type ContainerState,
  emptyState,
  LocalError,
  loadState,
  type ManagedProc,
  type NodeState,
  type PodState,
  RUNTIME_MARKER_ENV,
  type RuntimePaths,
  requireUp,
  type State,
  saveState,
} from "./state.js";

/** Timeouts (ms). */
const READY_TIMEOUT = 30_000;
const NSC_INIT_DEADLINE = 60_000;
const INIT_CONTAINER_TIMEOUT = 120_000;
const STOP_GRACE = 10_000;
/** Longest unix socket path (sun_path is 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107;
/** The nsmgr's TCP port on its node's underlay address (upstream hostPort). */
const NSMGR_PORT = 5001;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`'s value, or undefined if it takes longer than `ms` (the timer never outlives the race). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Whether a component started with its log at `offset` bytes is ready. */
async function isReady(r: Readiness, proc: ManagedProc, offset: number): Promise<boolean> {
  const log = proc.log;
  switch (r.kind) {
    case "socket":
      return socketAccepts(r.path);
    case "log": {
      const fd = openSync(log, "r");
      try {
        const size = fstatSync(fd).size;
        const buf = Buffer.alloc(Math.max(0, size - offset));
        readSync(fd, buf, 0, buf.length, offset);
        return buf.toString("utf8").includes(r.text);
      } finally {
        closeSync(fd);
      }
    }
    case "running":
      await sleep(300);
      return isAlive(proc);
  }
}

/** SIGKILL now (a crash, for heal tests); "gone" if it was not running. */
async function killProc(p: ManagedProc): Promise<"gone" | "killed"> {
  if (!isAlive(p)) return "gone";
  try {
    process.kill(p.pid, "SIGKILL");
  } catch {
    return "gone";
  }
  await waitGone(p, 5000);
  return "killed";
}

function systemEnv(paths: RuntimePaths, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    TMPDIR: paths.tmpDir,
    [RUNTIME_MARKER_ENV]: paths.prefix,
  };
  return { ...env, ...inheritedEnv(), ...extra };
}

/** What every NSM process of the runtime gets for its identity: the Workload API, or insecure. */
function securityEnv(paths: RuntimePaths, state: Pick<State, "insecure">): Record<string, string> {
  return state.insecure ? { NSM_INSECURE: "true" } : { SPIFFE_ENDPOINT_SOCKET: `unix://${paths.agentSocket}` };
}

/**
 * Settings every NSM process of the runtime takes from the environment of `nsm up` / `nsm apply`
 * (e.g. `NSM_MAX_TOKEN_LIFETIME=20s NSM_REQUEST_TIMEOUT=5s nsm up` for quick expiry in heal
 * tests, as upstream's extended heal test sets them).
 */
const INHERITED_VARIABLES = ["NSM_LOG_LEVEL", "NSM_MAX_TOKEN_LIFETIME", "NSM_REQUEST_TIMEOUT"] as const;

function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_VARIABLES) if (process.env[k]) env[k] = process.env[k];
  return env;
}

function logTail(file: string): string {
  const tail = tailFile(file, 8)
    .split("\n")
    .map((l) => {
      const r = renderLogLine(l);
      return r.length > 400 ? `${r.slice(0, 400)}…` : r;
    })
    .join("\n");
  return tail ? `\n--- last lines of ${file} ---\n${tail}` : ` (log ${file} is empty)`;
}

function diedError(component: string, proc: ManagedProc, exitCode?: number): LocalError {
  const how = exitCode === undefined ? "exited" : `exited with code ${exitCode}`;
  return new LocalError(`${component} ${how} while starting${logTail(proc.log)}`);
}

/** Starts a process and records it with its log file. */
function start(
  paths: RuntimePaths,
  netns: string | undefined,
  argv: string[],
  env: Record<string, string>,
  log: string,
) {
  mkdirSync(paths.logsDir, { recursive: true });
  const spawned = spawnDetached({ netns, argv, env, log });
  const proc: ManagedProc = { pid: spawned.pid, start: spawned.start, log, argv, netns, env };
  return { proc, spawned };
}

/** Polls `ready` until it is true; fails if the process dies or at the timeout. */
async function waitReady(
  component: string,
  proc: ManagedProc,
  spawned: Spawned | undefined,
  ready: () => Promise<boolean>,
  timeoutMs = READY_TIMEOUT,
): Promise<void> {
  let exitCode: number | undefined;
  void spawned?.exited.then((c) => {
    exitCode = c;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitCode !== undefined || !isAlive(proc)) throw diedError(component, proc, exitCode);
    let ok = false;
    try {
      ok = await ready();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline)
      throw new LocalError(`${component} is not ready after ${timeoutMs / 1000}s${logTail(proc.log)}`);
    await sleep(100);
  }
}

export class LocalRuntime {
  constructor(
    readonly paths: RuntimePaths,
    readonly out: Progress,
  ) {}

  #save(state: State): void {
    saveState(this.paths, state);
    // Who is who for the identity provider and the forwarders' netns checks.
    writeIdentities(this.paths, state);
  }

  #lock(what: string) {
    return acquireLock(this.paths, what, (m) => this.out.say(m));
  }

  // -------------------------------------------------------------------------------------------
  // up

  async up(nodeCount: number, options: UpOptions = {}): Promise<void> {
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 16)
      throw new LocalError(`--nodes must be an integer from 1 to 16, not ${nodeCount}`);
    const insecure = options.insecure === true;
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    try {
      checkTrustDomain(trustDomain);
    } catch (err) {
      throw new LocalError(`--trust-domain: ${NsmError.from(err).rawMessage}`);
    }
    const { paths, out } = this;
    const socketProbe = join(paths.nodesDir, `node-${nodeCount}`, "forwarder.sock");
    if (socketProbe.length > MAX_SOCKET_PATH)
      throw new LocalError(`the state directory path ${paths.dir} is too long for unix sockets; choose a shorter one`);
    mkdirSync(paths.dir, { recursive: true });
    const release = await this.#lock(`up --nodes ${nodeCount}`);
    try {
      const existing = loadState(paths);
      if (existing) {
        const problem = this.#health(existing);
        if (existing.phase === "up" && !problem) {
          if (existing.nodes.length !== nodeCount)
            throw new LocalError(
              `the runtime in ${paths.dir} is already up with ${existing.nodes.length} node(s); run \`nsm down\` first to change that`,
            );
          if ((existing.insecure === true) !== insecure)
            throw new LocalError(
              `the runtime in ${paths.dir} is already up ${existing.insecure ? "in insecure mode" : "with mTLS"}; run \`nsm down\` first to change that`,
            );
          out.say(`already up: ${existing.nodes.length} node(s), state in ${paths.dir}`);
          return;
        }
        throw new LocalError(
          `a previous runtime in ${paths.dir} is not healthy (${problem ?? "it did not finish starting"}): run \`nsm down\` first`,
        );
      }
      const leftovers = await listOwnNetns(paths.prefix);
      if (leftovers.length > 0)
        throw new LocalError(
          `network namespaces of an earlier runtime remain (${leftovers.join(", ")}): run \`nsm down\``,
        );

      const t0 = Date.now();
      out.say(`starting the local runtime: ${nodeCount} node(s), state in ${paths.dir}, netns prefix ${paths.prefix}`);
      for (const d of [paths.logsDir, paths.nodesDir, paths.tmpDir]) mkdirSync(d, { recursive: true });
      const state = emptyState(paths);
      if (insecure) state.insecure = true;
      else state.trustDomain = trustDomain;
      this.#save(state);
      try {
        const tf = Date.now();
        state.fabric = netnsName(paths.prefix, "fabric");
        this.#save(state);
        await addFabric(state.fabric);
        out.say(`  fabric: netns ${state.fabric}, bridge for the 198.18.0.0/24 underlay ${out.took(tf)}`);
        if (insecure) {
          out.warn(
            "INSECURE MODE (--insecure): no identity provider, no mTLS, no path tokens, no policies, no netns ownership checks; every process runs with NSM_INSECURE=true. Debugging only.",
          );
        } else {
          const t = Date.now();
          await createRuntimeCa(paths, trustDomain);
          const idp = start(
            paths,
            undefined,
            nsmArgv("identity-provider"),
            systemEnv(paths, {
              NSM_LISTEN_ON: `unix://${paths.agentSocket}`,
              NSM_CA_FILE: paths.caFile,
              NSM_PROCESS_IDENTITIES: paths.identitiesFile,
              NSM_SVID_TTL: process.env.NSM_SVID_TTL || RUNTIME_SVID_TTL,
            }),
            join(paths.logsDir, "identity-provider.log"),
          );
          state.identityProvider = idp.proc;
          this.#save(state);
          await waitReady("the identity provider", idp.proc, idp.spawned, () => socketAccepts(paths.agentSocket));
          out.say(
            `  identity provider ready: trust domain ${trustDomain}, SPIFFE Workload API on unix://${paths.agentSocket} ${out.took(t)}`,
          );
        }
        const t = Date.now();
        const reg = start(
          paths,
          undefined,
          nsmArgv("registry"),
          systemEnv(paths, { ...securityEnv(paths, state), NSM_LISTEN_ON: `unix://${paths.registrySocket}` }),
          join(paths.logsDir, "registry.log"),
        );
        state.registry = reg.proc;
        this.#save(state);
        await waitReady("the registry", reg.proc, reg.spawned, () => socketAccepts(paths.registrySocket));
        out.say(`  registry ready on unix://${paths.registrySocket} ${out.took(t)}`);
        await Promise.all(Array.from({ length: nodeCount }, (_, i) => this.#startNode(state, i + 1)));
        state.phase = "up";
        this.#save(state);
        out.say(`ready: ${nodeCount} node(s) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        out.say(
          insecure
            ? "security: OFF (insecure mode): plaintext gRPC, no identities"
            : `security: mTLS on every hop with X.509-SVIDs of trust domain ${trustDomain}, path tokens and policies on`,
        );
      } catch (err) {
        if (err instanceof LocalError) err.message += "\nrun `nsm down` to clean up what was started";
        throw err;
      }
    } finally {
      release();
    }
  }

  /**
   * Node `index` (1-based): its netns joined to the fabric with 198.18.0.<index>, an nsmgr on the
   * node's unix socket and `tcp://198.18.0.<index>:5001` (the public URL, which remote forwarders
   * dial), and a forwarder whose tunnels start at that address.
   */
  async #startNode(state: State, index: number): Promise<void> {
    const { paths, out } = this;
    const t = Date.now();
    const name = `node-${index}`;
    const dir = join(paths.nodesDir, name);
    mkdirSync(dir, { recursive: true });
    const address = underlayAddress(index);
    const node: NodeState = {
      name,
      netns: netnsName(paths.prefix, name),
      dir,
      nsmgrSocket: join(dir, "nsm.io.sock"),
      forwarderSocket: join(dir, "forwarder.sock"),
      address,
      nsmgrUrl: `tcp://${address}:${NSMGR_PORT}`,
      createdAt: new Date().toISOString(),
    };
    state.nodes.push(node);
    this.#save(state);
    await addNetns(node.netns);
    await attachToFabric(state.fabric!, node.netns, name, address);
    const nsmgr = start(
      paths,
      node.netns,
      nsmArgv("nsmgr"),
      systemEnv(paths, {
        ...securityEnv(paths, state),
        NSM_NAME: `nsmgr-${name}`,
        NSM_LISTEN_ON: `unix://${node.nsmgrSocket},${node.nsmgrUrl}`,
        NSM_REGISTRY_URL: `unix://${paths.registrySocket}`,
        NODE_NAME: name,
        POD_NAME: `nsmgr-${name}`,
      }),
      join(paths.logsDir, `${name}-nsmgr.log`),
    );
    node.nsmgr = nsmgr.proc;
    this.#save(state);
    await waitReady(`nsmgr of ${name}`, nsmgr.proc, nsmgr.spawned, () => socketAccepts(node.nsmgrSocket));
    const fwdName = `forwarder-${name}`;
    const fwd = start(
      paths,
      node.netns,
      nsmArgv("forwarder"),
      systemEnv(paths, {
        ...securityEnv(paths, state),
        ...(state.insecure ? {} : { NSM_PROCESS_IDENTITIES: paths.identitiesFile }),
        NSM_NAME: fwdName,
        NSM_LISTEN_ON: `unix://${node.forwarderSocket}`,
        NSM_CONNECT_TO: `unix://${node.nsmgrSocket}`,
        NSM_TUNNEL_IP: address,
        NODE_NAME: name,
        POD_NAME: fwdName,
      }),
      join(paths.logsDir, `${name}-forwarder.log`),
    );
    node.forwarder = fwd.proc;
    this.#save(state);
    await waitReady(
      `forwarder of ${name}`,
      fwd.proc,
      fwd.spawned,
      async () => (await findEndpoints(paths.registrySocket, await cliDialOptions(paths, state), fwdName)).length > 0,
    );
    out.say(`  ${name}: netns ${node.netns}, underlay ${address}, nsmgr and forwarder ready ${out.took(t)}`);
  }

  /** What is wrong with a runtime that should be up, or undefined. */
  #health(state: State): string | undefined {
    if (!state.insecure && (!state.identityProvider || !isAlive(state.identityProvider)))
      return "the identity provider is not running";
    if (!state.registry || !isAlive(state.registry)) return "the registry is not running";
    for (const n of state.nodes) {
      if (!n.nsmgr || !isAlive(n.nsmgr)) return `the nsmgr of ${n.name} is not running`;
      if (!n.forwarder || !isAlive(n.forwarder)) return `the forwarder of ${n.name} is not running`;
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // apply

  async apply(files: readonly string[], namespace?: string): Promise<void> {
    const { paths, out } = this;
    const warnings: string[] = [];
    const manifests = loadManifests(files, (w) => warnings.push(w), namespace);
    requireUp(paths);
    const release = await this.#lock(`apply -f ${files.join(" -f ")}`);
    try {
      const state = requireUp(paths);
      const problem = this.#health(state);
      if (problem)
        throw new LocalError(`the local runtime is not healthy: ${problem}; see \`nsm down\` and \`nsm up\``);
      const plan = this.#plan(state, manifests);
      for (const w of warnings) out.warn(w);
      await this.#execute(state, plan);
    } finally {
      release();
    }
  }

  /** Checks everything and decides what to do, without changing anything. */
  #plan(state: State, manifests: readonly Manifest[]): ApplyPlan {
    const namespaces = manifests.filter((m): m is NamespaceManifest => m.kind === "Namespace");
    const services = manifests.filter((m): m is NetworkServiceManifest => m.kind === "NetworkService");
    const workloads = manifests.filter((m): m is WorkloadManifest => m.kind === "Deployment" || m.kind === "Pod");
    const nsAnnotations = (ns: string) =>
      namespaces.find((n) => n.name === ns)?.annotations ?? state.namespaces.find((n) => n.name === ns)?.annotations;
    const known = (ns: string) =>
      ns === "default" || namespaces.some((n) => n.name === ns) || state.namespaces.some((n) => n.name === ns);
    for (const m of [...services, ...workloads]) {
      if (!known(m.namespace))
        throw new LocalError(
          `${m.source}: ${describe(m)}: namespace "${m.namespace}" not found (add a Namespace object)`,
        );
    }

    const plan: ApplyPlan = { namespaces, services, workloads: [], remove: [], create: [] };
    const removing = new Set<PodState>();
    const taken = new Set(state.pods.map((p) => `${p.namespace}/${p.name}`));
    const netnsTaken = new Set(state.pods.map((p) => p.netns));
    // Decide, per workload, which pods go and how many new ones are needed.
    const wanted: { m: WorkloadManifest; name: string; nsurls?: string }[] = [];
    for (const m of workloads) {
      const nsurls = podNsurls(m.annotations, nsAnnotations(m.namespace));
      if (m.kind === "Pod") {
        const existing = state.pods.find((p) => p.namespace === m.namespace && p.name === m.name && !p.owner);
        if (existing) {
          if (existing.specHash !== hashOf([m.labels, m.annotations, m.rawSpec]))
            throw new LocalError(
              `${m.source}: pod/${m.name} exists with a different spec; pods cannot be changed: delete it first`,
            );
          plan.workloads.push({ m, action: "unchanged" });
          continue;
        }
        if (state.pods.some((p) => p.namespace === m.namespace && p.name === m.name))
          throw new LocalError(`${m.source}: pod/${m.name} already exists (made by a deployment)`);
        wanted.push({ m, name: m.name, nsurls });
        plan.workloads.push({ m, action: "created" });
        continue;
      }
      const templateHash = hashOf([m.labels, m.annotations, m.rawSpec, nsurls ?? ""]);
      const dep = state.deployments.find((d) => d.namespace === m.namespace && d.name === m.name);
      const owned = state.pods.filter((p) => p.namespace === m.namespace && p.owner === m.name);
      let keep = owned;
      if (dep && dep.templateHash !== templateHash) {
        for (const p of owned) removing.add(p);
        keep = [];
        plan.workloads.push({ m, action: "configured", templateHash });
      } else if (dep && dep.replicas === m.replicas && owned.length === m.replicas) {
        plan.workloads.push({ m, action: "unchanged", templateHash });
      } else {
        plan.workloads.push({ m, action: dep ? "configured" : "created", templateHash });
      }
      if (keep.length > m.replicas) {
        const extra = [...keep]
          .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
          .slice(0, keep.length - m.replicas);
        for (const p of extra) removing.add(p);
      }
      for (let i = keep.length; i < m.replicas; i++) {
        const name = deploymentPodName(m.name, templateHash, (n) => taken.has(`${m.namespace}/${n}`));
        taken.add(`${m.namespace}/${name}`);
        wanted.push({ m, name, nsurls });
      }
    }
    plan.remove = [...removing];

    // Place pods: those without the client annotation first (endpoints), then clients.
    const placed: PlacedPod[] = state.pods.filter((p) => !removing.has(p));
    const nodes = state.nodes.map((n) => n.name);
    // A pod whose podAffinity names a pod of this same apply (e.g. a client Deployment listed
    // before its endpoint) is placed once the others are: go round until nothing more fits.
    let pending = [...wanted.filter((w) => !w.nsurls), ...wanted.filter((w) => w.nsurls)];
    while (pending.length > 0) {
      const deferred: typeof pending = [];
      let firstError: unknown;
      for (const w of pending) {
        let nodeName: string;
        try {
          nodeName = placePod(
            { namespace: w.m.namespace, name: w.name, labels: w.m.labels, spec: w.m.spec },
            nodes,
            placed,
          );
        } catch (err) {
          firstError ??= err;
          deferred.push(w);
          continue;
        }
        const node = state.nodes.find((n) => n.name === nodeName)!;
        let pod = buildPod({
          paths: this.paths,
          manifest: w.m,
          name: w.name,
          node,
          nsurls: w.nsurls,
          inherited: inheritedEnv(),
          security: securityEnv(this.paths, state),
        });
        if (netnsTaken.has(pod.netns))
          pod = { ...pod, netns: netnsName(this.paths.prefix, pod.namespace, pod.name, pod.uid) };
        netnsTaken.add(pod.netns);
        placed.push({ ...pod, affinity: w.m.spec.affinity });
        plan.create.push(pod);
      }
      if (deferred.length === pending.length) throw firstError;
      pending = deferred;
    }
    return plan;
  }

  async #execute(state: State, plan: ApplyPlan): Promise<void> {
    const { out, paths } = this;
    for (const n of plan.namespaces) {
      const existing = state.namespaces.find((s) => s.name === n.name);
      if (existing) {
        const changed = JSON.stringify(existing.annotations) !== JSON.stringify(n.annotations);
        existing.annotations = { ...n.annotations };
        out.say(`namespace/${n.name} ${changed ? "configured" : "unchanged"}`);
      } else {
        state.namespaces.push({ name: n.name, annotations: { ...n.annotations }, createdAt: new Date().toISOString() });
        out.say(`namespace/${n.name} created`);
      }
      this.#save(state);
    }
    for (const s of plan.services) {
      try {
        await registerNetworkService(paths.registrySocket, await cliDialOptions(paths, state), s.record);
      } catch (err) {
        throw new LocalError(
          `networkservice/${s.name}: the registry refused it: ${NsmError.from(err).toStatusString()}`,
        );
      }
      const record = toJson(NetworkServiceSchema, s.record);
      const existing = state.networkServices.find((x) => x.name === s.name);
      if (existing) {
        const changed = JSON.stringify(existing.record) !== JSON.stringify(record);
        existing.record = record;
        out.say(`networkservice/${s.name} ${changed ? "configured" : "unchanged"} (payload ${s.record.payload})`);
      } else {
        state.networkServices.push({
          namespace: s.namespace,
          name: s.name,
          record,
          createdAt: new Date().toISOString(),
        });
        out.say(`networkservice/${s.name} registered (payload ${s.record.payload})`);
      }
      this.#save(state);
    }
    if (plan.remove.length > 0) await this.#deletePods(state, plan.remove);
    for (const w of plan.workloads) {
      const { m } = w;
      if (m.kind === "Deployment") {
        const dep = state.deployments.find((d) => d.namespace === m.namespace && d.name === m.name);
        if (dep && dep.templateHash === w.templateHash) dep.replicas = m.replicas;
        else {
          state.deployments = state.deployments.filter((d) => !(d.namespace === m.namespace && d.name === m.name));
          state.deployments.push({
            namespace: m.namespace,
            name: m.name,
            replicas: m.replicas,
            templateHash: w.templateHash!,
            createdAt: dep?.createdAt ?? new Date().toISOString(),
          });
        }
        this.#save(state);
        out.say(`deployment.apps/${m.name} ${w.action} (${m.replicas} replica${m.replicas === 1 ? "" : "s"})`);
      } else {
        out.say(`pod/${m.name} ${w.action}`);
      }
    }
    const failures: string[] = [];
    const run = async (pods: PodState[]) => {
      const results = await Promise.allSettled(pods.map((p) => this.#startPod(state, p)));
      results.forEach((r, i) => {
        if (r.status === "rejected") {
          const p = pods[i]!;
          const msg = r.reason instanceof Error ? r.reason.message : String(r.reason);
          p.phase = "Failed";
          p.message = msg.split("\n")[0];
          failures.push(`pod ${p.namespace}/${p.name}: ${msg}`);
        }
      });
      this.#save(state);
    };
    await run(plan.create.filter((p) => !p.nsurls));
    await run(plan.create.filter((p) => p.nsurls));
    if (failures.length > 0) {
      throw new LocalError(
        `${failures.length} pod(s) failed to start:\n${failures.join("\n")}\n(see \`nsm logs POD -n NAMESPACE\`; \`nsm delete -f …\` removes them)`,
      );
    }
  }

  async #startPod(state: State, pod: PodState): Promise<void> {
    const { paths, out } = this;
    const t = Date.now();
    const who = `pod ${pod.namespace}/${pod.name}`;
    state.pods.push(pod);
    this.#save(state);
    // A pod's logs start empty (a Pod applied again after a delete has the same log files).
    for (const c of pod.containers) writeFileSync(c.log, "");
    await addNetns(pod.netns);
    for (const c of pod.containers.filter((c) => c.type === "init")) {
      if (c.injected) await this.#runClientInit(state, pod, c);
      else {
        const code = await this.#runToCompletion(state, pod, c, INIT_CONTAINER_TIMEOUT);
        if (code !== 0) throw new LocalError(`init container "${c.name}" exited with code ${code}${logTail(c.log)}`);
      }
    }
    const started: { c: ContainerState; spawned: Spawned }[] = [];
    for (const c of pod.containers.filter((c) => c.type === "app")) {
      const s = start(paths, pod.netns, [...c.argv], { ...c.env }, c.log);
      c.proc = s.proc;
      started.push({ c, spawned: s.spawned });
      this.#save(state);
    }
    // Readiness: endpoints registered, the client sidecar connected, other containers not dead at once.
    const notes: string[] = [];
    await Promise.all(
      started.map(async ({ c, spawned }) => {
        const role = c.injected ? undefined : roleOf(c.image);
        if (role?.[0] === "nse") {
          const nseName = c.env.NSM_NAME || "icmp-server";
          await waitReady(`container "${c.name}"`, c.proc!, spawned, async () => {
            return (await findEndpoints(paths.registrySocket, await cliDialOptions(paths, state), nseName)).length > 0;
          });
          notes.push(`endpoint ${nseName} registered`);
        } else if (c.name === SIDECAR_CLIENT_NAME && c.injected) {
          await waitReady(`container "${c.name}"`, c.proc!, spawned, async () =>
            readFileSafe(c.log).includes("connection established"),
          );
        } else {
          const early = await within(spawned.exited, 300);
          if (early !== undefined && early !== 0)
            throw new LocalError(`container "${c.name}" exited with code ${early}${logTail(c.log)}`);
        }
      }),
    );
    pod.phase = "Running";
    this.#save(state);
    const conn = pod.nsurls ? `, connected ${pod.nsurls}` : "";
    out.say(`  ${who} running on ${pod.node}${conn}${notes.length ? `, ${notes.join(", ")}` : ""} ${out.took(t)}`);
  }

  async #runToCompletion(state: State, pod: PodState, c: ContainerState, timeoutMs: number): Promise<number> {
    const s = start(this.paths, pod.netns, [...c.argv], { ...c.env }, c.log);
    c.proc = s.proc;
    this.#save(state);
    const code = await within(s.spawned.exited, timeoutMs);
    if (code === undefined) {
      await stopProc(s.proc, 2000);
      throw new LocalError(`init container "${c.name}" did not finish in ${timeoutMs / 1000}s${logTail(c.log)}`);
    }
    c.exitCode = code;
    c.proc = undefined;
    this.#save(state);
    return code;
  }

  /** `nsm nsc --init`, again until it connects (the endpoint may still be registering), up to a minute. */
  async #runClientInit(state: State, pod: PodState, c: ContainerState): Promise<void> {
    const deadline = Date.now() + NSC_INIT_DEADLINE;
    for (let attempt = 1; ; attempt++) {
      const code = await this.#runToCompletion(state, pod, c, Math.max(5000, deadline - Date.now() + 5000));
      if (code === 0) return;
      if (Date.now() + 1000 > deadline) {
        throw new LocalError(
          `${INIT_CLIENT_NAME} could not connect ${pod.nsurls} in ${NSC_INIT_DEADLINE / 1000}s (${attempt} attempts)${logTail(c.log)}`,
        );
      }
      await sleep(1000);
    }
  }

  // -------------------------------------------------------------------------------------------
  // delete

  async delete(files: readonly string[], namespace?: string): Promise<void> {
    const { paths, out } = this;
    const manifests = loadManifests(files, () => {}, namespace);
    requireUp(paths);
    const release = await this.#lock(`delete -f ${files.join(" -f ")}`);
    try {
      const state = requireUp(paths);
      const pods = new Set<PodState>();
      const nsNames = new Set<string>();
      const depKeys = new Set<string>();
      const said: string[] = [];
      const missing: string[] = [];
      for (const m of manifests) {
        if (m.kind === "Namespace") {
          if (!state.namespaces.some((n) => n.name === m.name)) {
            missing.push(describe(m));
            continue;
          }
          for (const p of state.pods.filter((p) => p.namespace === m.name)) pods.add(p);
          for (const d of state.deployments.filter((d) => d.namespace === m.name))
            depKeys.add(`${d.namespace}/${d.name}`);
          for (const s of state.networkServices.filter((s) => s.namespace === m.name)) nsNames.add(s.name);
          said.push(`namespace "${m.name}" deleted`);
        } else if (m.kind === "NetworkService") {
          if (!state.networkServices.some((s) => s.name === m.name)) missing.push(describe(m));
          else nsNames.add(m.name);
        } else if (m.kind === "Deployment") {
          const key = `${m.namespace}/${m.name}`;
          if (!state.deployments.some((d) => `${d.namespace}/${d.name}` === key))
            missing.push(`deployment.apps/${m.name}`);
          else {
            depKeys.add(key);
            for (const p of state.pods.filter((p) => p.namespace === m.namespace && p.owner === m.name)) pods.add(p);
            said.push(`deployment.apps "${m.name}" deleted`);
          }
        } else {
          const p = state.pods.find((p) => p.namespace === m.namespace && p.name === m.name && !p.owner);
          if (!p) missing.push(describe(m));
          else {
            pods.add(p);
            said.push(`pod "${m.name}" deleted`);
          }
        }
      }
      await this.#deletePods(state, [...pods]);
      state.deployments = state.deployments.filter((d) => !depKeys.has(`${d.namespace}/${d.name}`));
      this.#save(state);
      for (const name of nsNames) {
        await this.#unregisterService(state, name);
        said.push(`networkservice "${name}" unregistered`);
      }
      const deletedNs = manifests.filter((m) => m.kind === "Namespace").map((m) => m.name);
      state.namespaces = state.namespaces.filter((n) => !deletedNs.includes(n.name));
      this.#save(state);
      for (const l of said) out.say(l);
      for (const m of missing) out.say(`${m} not found (nothing to delete)`);
    } finally {
      release();
    }
  }

  async #unregisterService(state: State, name: string): Promise<void> {
    const s = state.networkServices.find((x) => x.name === name);
    if (!s) return;
    try {
      await unregisterNetworkService(
        this.paths.registrySocket,
        await cliDialOptions(this.paths, state),
        fromJson(NetworkServiceSchema, s.record as never),
      );
    } catch (err) {
      this.out.warn(`networkservice/${name}: could not unregister: ${NsmError.from(err).toStatusString()}`);
    }
    state.networkServices = state.networkServices.filter((x) => x !== s);
    this.#save(state);
  }

  /** Stops pods (clients first) and deletes their namespaces. */
  async #deletePods(state: State, pods: readonly PodState[]): Promise<void> {
    const clients = pods.filter((p) => p.nsurls);
    const others = pods.filter((p) => !p.nsurls);
    for (const batch of [clients, others]) {
      await Promise.all(batch.map((p) => this.#deletePod(p)));
      state.pods = state.pods.filter((p) => !batch.includes(p));
      this.#save(state);
    }
  }

  async #deletePod(pod: PodState): Promise<void> {
    const t = Date.now();
    const procs = pod.containers.map((c) => c.proc).filter((p): p is ManagedProc => p !== undefined);
    const results = await Promise.all(procs.map((p) => stopProc(p, STOP_GRACE)));
    // Anything else still inside the pod's netns (children of a container) is the pod's too.
    await killNetnsProcesses(pod.netns);
    // Interfaces still there were not closed by their connection (e.g. a sidecar killed by
    // SIGKILL): delete them, so their veth peers in other pods go too.
    const leftover = await deleteLinks(pod.netns);
    await deleteNetns(pod.netns);
    const killed = results.filter((r) => r === "killed").length;
    const notes = [
      killed ? `${killed} process(es) did not stop on SIGTERM and were killed` : "",
      leftover.length ? `removed interface(s) left open: ${leftover.join(", ")}` : "",
    ].filter(Boolean);
    this.out.say(
      `  pod ${pod.namespace}/${pod.name} stopped${notes.length ? ` (${notes.join("; ")})` : ""} ${this.out.took(t)}`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // stop / start / restart

  /**
   * Stops and/or starts the processes of `target` (see `components.ts`) with the command and
   * environment they were first started with: fault injection for heal tests and a way to pick
   * up a rebuilt `nsm`. `kill` stops with SIGKILL at once (a crash) instead of SIGTERM.
   */
  async control(
    action: "stop" | "start" | "restart",
    target: string,
    options: { kill?: boolean; namespace?: string; container?: string } = {},
  ): Promise<void> {
    const { paths, out } = this;
    requireUp(paths);
    const release = await this.#lock(`${action} ${target}`);
    try {
      const state = requireUp(paths);
      const components = resolveComponents(state, target, {
        paths,
        namespace: options.namespace,
        container: options.container,
        roleOfContainer: (c) =>
          c.injected ? (c.name === SIDECAR_CLIENT_NAME ? "nsc" : undefined) : roleOf(c.image)?.[0],
      });
      if (action !== "start") {
        await Promise.all(
          components.map(async (c) => {
            const p = c.proc;
            if (!p || !isAlive(p)) {
              out.say(`${c.label} was not running`);
              return;
            }
            const t = Date.now();
            const how = options.kill ? await killProc(p) : await stopProc(p, STOP_GRACE);
            out.say(`${c.label} ${how === "killed" ? "killed (SIGKILL)" : "stopped"}, pid ${p.pid} ${out.took(t)}`);
          }),
        );
      }
      if (action === "stop") return;
      for (const c of components) {
        const old = c.proc;
        if (old && isAlive(old)) {
          out.say(`${c.label} is already running (pid ${old.pid})`);
          continue;
        }
        if (!old?.env)
          throw new LocalError(`${c.label}: no record of how it was started; run \`nsm down\` and \`nsm up\``);
        const t = Date.now();
        const offset = fileSize(old.log);
        const s = start(paths, old.netns, [...old.argv], { ...old.env }, old.log);
        c.setProc(s.proc);
        this.#save(state);
        await waitReady(c.label, s.proc, s.spawned, () => isReady(c.readiness, s.proc, offset));
        out.say(`${c.label} started, pid ${s.proc.pid} ${out.took(t)}`);
      }
      // NetworkServices are API objects (CRDs upstream, the state file here): a registry that
      // starts empty gets them again. Endpoints and forwarders register again by themselves.
      if (target === "registry") {
        for (const ns of state.networkServices) {
          await registerNetworkService(
            paths.registrySocket,
            await cliDialOptions(paths, state),
            fromJson(NetworkServiceSchema, ns.record as never),
          );
        }
        if (state.networkServices.length > 0)
          out.say(`  ${state.networkServices.length} network service(s) registered again`);
      }
    } finally {
      release();
    }
  }

  // -------------------------------------------------------------------------------------------
  // down

  async down(): Promise<void> {
    const { paths, out } = this;
    const t0 = Date.now();
    const release = existsSync(paths.dir) ? await this.#lock("down") : () => {};
    try {
      let state: State | undefined;
      try {
        state = loadState(paths);
      } catch (err) {
        out.warn(`${(err as Error).message}; cleaning up by prefix ${paths.prefix}`);
      }
      if (state) {
        out.say(`stopping the local runtime in ${paths.dir}`);
        if (state.pods.length > 0) {
          await this.#deletePods(state, [...state.pods]);
        }
        if (state.registry && isAlive(state.registry)) {
          for (const s of [...state.networkServices]) await this.#unregisterService(state, s.name);
        }
        const stopAll = async (what: string, procs: (ManagedProc | undefined)[]) => {
          const live = procs.filter((p): p is ManagedProc => p !== undefined && isAlive(p));
          if (live.length === 0) return;
          const t = Date.now();
          await Promise.all(live.map((p) => stopProc(p, STOP_GRACE)));
          out.say(`  ${what} stopped ${out.took(t)}`);
        };
        await stopAll(
          "forwarders",
          state.nodes.map((n) => n.forwarder),
        );
        await stopAll(
          "nsmgrs",
          state.nodes.map((n) => n.nsmgr),
        );
        await stopAll("registry", [state.registry]);
        await stopAll("identity provider", [state.identityProvider]);
        // What a forwarder that did not stop cleanly left in its node (wireguard-go) goes too.
        for (const n of state.nodes) {
          await killNetnsProcesses(n.netns);
          await deleteNetns(n.netns);
        }
        // The nodes' underlay veths went with their namespaces; the bridge goes with the fabric.
        if (state.fabric) await deleteNetns(state.fabric);
      } else {
        out.say(`no runtime state in ${paths.dir}; removing anything left with prefix ${paths.prefix}`);
      }
      // Strays: processes carrying our marker, and namespaces with our prefix.
      const strays = findByEnv(RUNTIME_MARKER_ENV, paths.prefix);
      if (strays.length > 0) {
        out.say(`  stopping ${strays.length} stray process(es): ${strays.map((p) => p.pid).join(", ")}`);
        await Promise.all(strays.map((p) => stopProc(p, 3000)));
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
      release();
      removeStateDir(paths);
      out.say(`down: nothing left ${out.took(t0)}`);
    } finally {
      release();
    }
  }
}

export interface UpOptions {
  /** Run without identities, mTLS and policies (every process gets NSM_INSECURE=true). @default false */
  readonly insecure?: boolean;
  /** @default {@link DEFAULT_TRUST_DOMAIN} */
  readonly trustDomain?: string;
}

interface ApplyPlan {
  namespaces: NamespaceManifest[];
  services: NetworkServiceManifest[];
  workloads: { m: WorkloadManifest; action: "created" | "configured" | "unchanged"; templateHash?: string }[];
  remove: PodState[];
  create: PodState[];
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Kills whatever still runs inside one of our namespaces (by pid, after checking it is alive). */
async function killNetnsProcesses(netns: string): Promise<void> {
  const pids = await netnsPids(netns);
  const refs: ProcRef[] = [];
  for (const pid of pids) {
    const start = procStartTime(pid);
    if (start !== undefined) refs.push({ pid, start });
  }
  await Promise.all(refs.map((r) => stopProc(r, 2000)));
}

/** Removes what the runtime put in its state directory, then the directory if it is empty. */
function removeStateDir(paths: RuntimePaths): void {
  for (const p of [paths.logsDir, paths.nodesDir, paths.tmpDir]) rmSync(p, { recursive: true, force: true });
  for (const f of [
    paths.stateFile,
    paths.registrySocket,
    paths.agentSocket,
    paths.caFile,
    paths.identitiesFile,
    paths.lockFile,
  ])
    rmSync(f, { force: true });
  try {
    for (const f of readdirSync(paths.dir))
      if (/^(state|identities)\.json\.\d+\.tmp$/.test(f)) rmSync(join(paths.dir, f));
    rmdirSync(paths.dir);
  } catch {
    // not empty (someone else's files) or already gone
  }
}
