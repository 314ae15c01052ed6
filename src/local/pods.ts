// SPDX-License-Identifier: Apache-2.0
/**
 * From a pod manifest to the processes of a pod: which program each container runs, with which
 * environment, as Kubernetes and the NSM admission webhook would set it up.
 *
 * - No images are pulled. Upstream NSM images map to our roles: `cmd-nse-icmp-responder` →
 *   `nsm nse icmp-responder`, `cmd-nse-firewall-vpp` → `nsm nse firewall`,
 *   `cmd-nse-bridge` (ours) → `nsm nse bridge`, `cmd-dns-server` (ours) → `nsm dns-server`,
 *   `cmd-nse-vl3-vpp` → `nsm nse vl3`, `cmd-ipam-vl3` → `nsm ipam`, `cmd-lb-vl3-vpp` → `nsm vl3-lb`,
 *   `cmd-nse-supplier-k8s` → `nsm nse supplier`, `cmd-nse-l7-proxy` → `nsm nse proxy`,
 *   `cmd-nse-remote-vlan` and `cmd-nse-external` (ours) → `nsm nse external`,
 *   `cmd-nsc` → `nsm nsc`, `cmd-nsc-init` → `nsm nsc --init`,
 *   `cmd-forwarder-vpp` / `-kernel` / `-ovs` → `nsm forwarder` (./forwarder-pods.ts). Any other
 *   container runs its `command` + `args` from the host filesystem; without a command it runs
 *   `sleep infinity` (a pod such as `alpine` that only waits for `kubectl exec`).
 * - A pod with the `networkservicemesh.io` annotation (its own, or its namespace's) gets the client
 *   injected: init container `cmd-nsc-init` and sidecar `cmd-nsc`, with `NSM_NETWORK_SERVICES` set
 *   to the annotation and `NSM_NAME` to the pod name.
 * - `unix:///var/lib/networkservicemesh/…` (the hostPath socket directory of the upstream
 *   manifests) is the node's directory in the state dir, in the env of every container, so
 *   `NSM_CONNECT_TO` reaches the pod's node's nsmgr.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PBR_CONFIG_PATH } from "../sdk/networkservice/common/policyroute/config.js";
import { LocalError } from "./errors.js";
import { FORWARDER_IMAGES, podForwarderEnv } from "./forwarder-pods.js";
import type { Host } from "./host.js";
import { missingCommandHint } from "./images.js";
import { type ContainerSpec, imageName, NSM_ANNOTATION, ownerKey, type WorkloadManifest } from "./manifest.js";
import { netnsName } from "./netns.js";
import {
  type ConfigLookup,
  envFromValues,
  keyRefValue,
  mountReadOnly,
  NO_CONFIG,
  podVolumes,
  specField,
} from "./pod-data.js";
import { podResolvConf } from "./pod-files.js";
import { type ContainerState, type NodeState, type PodState, RUNTIME_MARKER_ENV, type RuntimePaths } from "./state.js";
import {
  containerFiles,
  fieldValue,
  type MountState,
  mountedArgv,
  podDir,
  type VolumeState,
  volumeSourcePath,
} from "./volumes.js";

/** The `nsm` program (bin/nsm.js next to this source tree). */
export const NSM_BIN = fileURLToPath(new URL("../../bin/nsm.js", import.meta.url));

/**
 * Node flags of every long-running `nsm` process. V8's young generation grows to 3 × 16 MiB
 * under the steady allocation of gRPC calls and stays committed; a 2 MiB semi-space keeps
 * RSS about 40 MiB lower per process at a few more (short) scavenges. bin/nsm.js's shebang and
 * the container image's NODE_OPTIONS carry the same flag. `--optimize-for-size` (V8 trades
 * some code speed for a smaller heap and code) took nsmgr and the forwarder from 93/103 to
 * 89/97 MiB at 1000 live connections in bench:scale, with setup and close p50 no slower.
 */
export const NSM_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--optimize-for-size"];

/**
 * Environment of every long-running `nsm` process:
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own malloc arena (64 MiB
 *   reserved, touched pages kept): Node's libuv and V8 worker threads made nsmgr and the
 *   forwarder ~5-9 MiB larger than two arenas do (bench:scale, 100 connections).
 * - `UV_THREADPOOL_SIZE=16`: every netlink exchange runs on libuv's pool, and a link deletion
 *   holds its thread inside the kernel for the RCU grace periods (~20 ms; the Close has answered
 *   by then, see `PendingDeletions`). With the default 4 threads, a few Closes in a row filled the
 *   pool and the next Request or Close queued behind them: close p50 23 ms at 100 live
 *   connections in bench:scale, 5.9 ms with 16 threads. libuv reads the variable when it starts
 *   the pool, before any of our code runs, so it has to come from the environment.
 */
export const NSM_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2", UV_THREADPOOL_SIZE: "16" };

/** argv that runs `nsm <args>` with this Node. */
export function nsmArgv(...args: string[]): string[] {
  return [process.execPath, ...NSM_NODE_FLAGS, NSM_BIN, ...args];
}

/** argv of the `nsm nsc` sidecar. */
export function sidecarArgv(): string[] {
  return nsmArgv("nsc");
}

/** Where a container's resolver configuration is. */
const RESOLV_CONF_PATH = "/etc/resolv.conf";

/** The directory upstream manifests mount for the nsmgr socket. */
const NSM_SOCKET_DIR = "unix:///var/lib/networkservicemesh/";

export const ROLE_IMAGES: Readonly<Record<string, readonly string[]>> = {
  "cmd-nse-icmp-responder": ["nse", "icmp-responder"],
  "cmd-nse-firewall-vpp": ["nse", "firewall"],
  // Ours (no upstream kernel image serves a bridge).
  "cmd-nse-bridge": ["nse", "bridge"],
  // Ours: stands in for the CoreDNS sidecar of upstream's dns example.
  "cmd-dns-server": ["dns-server"],
  "cmd-nse-vl3-vpp": ["nse", "vl3"],
  "cmd-ipam-vl3": ["ipam"],
  "cmd-lb-vl3-vpp": ["vl3-lb"],
  "cmd-nse-supplier-k8s": ["nse", "supplier"],
  // Upstream's L7 proxy NSE stands for our HTTP gateway (`nsm nse proxy`, its own env).
  "cmd-nse-l7-proxy": ["nse", "proxy"],
  // Upstream's VLAN breakout endpoint: here the outside is a netns behind a veth (no VLAN).
  "cmd-nse-remote-vlan": ["nse", "external"],
  "cmd-nse-external": ["nse", "external"],
  "cmd-nsc": ["nsc"],
  "cmd-nsc-init": ["nsc", "--init"],
  // Extra forwarders (./forwarder-pods.ts).
  ...Object.fromEntries(FORWARDER_IMAGES.map((i) => [i, ["forwarder"]])),
};

export const INIT_CLIENT_NAME = "cmd-nsc-init";
export const SIDECAR_CLIENT_NAME = "cmd-nsc";

/** The role args for an NSM image, undefined for other images; throws for an NSM image we cannot run. */
export function roleOf(image: string): readonly string[] | undefined {
  const name = imageName(image);
  const role = ROLE_IMAGES[name];
  if (role) return role;
  if (name.startsWith("cmd-") && /networkservicemesh/.test(image)) {
    throw new LocalError(
      `image ${image} is an NSM component this runtime cannot run (supported: ${Object.keys(ROLE_IMAGES).join(", ")})`,
    );
  }
  return undefined;
}

/** Kubernetes `$(VAR)` expansion (`$$(VAR)` stays literal `$(VAR)`; unknown names are kept). */
export function expandVars(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : m;
  });
}

const SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789";

/** `<prefix>-<5 characters>`, a name no pod has yet (`taken`), like the pods of a ReplicaSet or DaemonSet. */
export function suffixedPodName(prefix: string, taken: (n: string) => boolean, random: Host["randomBytes"]): string {
  for (;;) {
    const bytes = random(5);
    const suffix = [...bytes].map((b) => SUFFIX_CHARS[b % SUFFIX_CHARS.length]).join("");
    const name = `${prefix}-${suffix}`;
    if (!taken(name)) return name;
  }
}

/** `<deployment>-<10 hex of the template>-<5 characters>`, like a ReplicaSet's pods. */
export function deploymentPodName(
  deployment: string,
  templateHash: string,
  taken: (n: string) => boolean,
  random: Host["randomBytes"],
): string {
  return suffixedPodName(`${deployment}-${templateHash}`, taken, random);
}

export function hashOf(value: unknown, length = 10): string {
  return createHash("sha256")
    .update(JSON.stringify(value) ?? "")
    .digest("hex")
    .slice(0, length);
}

/** The NSURLs a pod asks for: its own annotation, else its namespace's. */
export function podNsurls(
  annotations: Readonly<Record<string, string>>,
  namespaceAnnotations: Readonly<Record<string, string>> | undefined,
): string | undefined {
  const own = annotations[NSM_ANNOTATION]?.trim();
  if (own) return own;
  const ns = namespaceAnnotations?.[NSM_ANNOTATION]?.trim();
  return ns || undefined;
}

export interface BuildPodInput {
  readonly paths: RuntimePaths;
  readonly manifest: WorkloadManifest;
  readonly name: string;
  readonly node: NodeState;
  readonly nsurls?: string;
  /** PATH of every container that does not set its own. */
  readonly hostPath: string;
  /** Environment values taken from the CLI's environment (NSM_LOG_LEVEL). */
  readonly inherited?: Readonly<Record<string, string>>;
  /**
   * Identity env of every container: `SPIFFE_ENDPOINT_SOCKET` of the runtime's identity provider,
   * or `NSM_INSECURE=true` for an insecure runtime. @default none
   */
  readonly security?: Readonly<Record<string, string>>;
  /** Command lookup, randomness and clock. */
  readonly host: Host;
  /** ConfigMaps and Secrets for env and volumes. @default none */
  readonly config?: ConfigLookup;
  /** The pod's IP (see ./pod-network.ts). @default none */
  readonly podIP?: string;
}

function logFile(paths: RuntimePaths, namespace: string, pod: string, container: string): string {
  return join(paths.logsDir, `${namespace}_${pod}_${container}.log`);
}

/** What every container of one pod starts from. */
interface PodEnvironment {
  readonly input: BuildPodInput;
  readonly who: string;
  /** Values of `valueFrom.fieldRef`. */
  readonly fields: Readonly<Record<string, string>>;
  /** Environment of any container. */
  readonly base: Readonly<Record<string, string>>;
  /** Environment of a container running an NSM role. */
  readonly roleBase: Readonly<Record<string, string>>;
  /** The pod's directory (volumes, mount scripts, container roots). */
  readonly dir: string;
  readonly volumes: readonly VolumeState[];
  /** The pod's resolv.conf (./pod-files.ts), which the client sidecar rewrites. */
  readonly resolvConf: string;
}

function podEnvironment(input: BuildPodInput, uid: string): PodEnvironment {
  const { paths, manifest: m, name, node } = input;
  const fields: Record<string, string> = {
    "metadata.name": name,
    "metadata.namespace": m.namespace,
    "metadata.uid": uid,
    "spec.nodeName": node.name,
    "spec.serviceAccountName": "default",
    "status.podIP": input.podIP ?? "",
    "status.podIPs": input.podIP ?? "",
    "status.hostIP": node.address ?? "",
    "status.hostIPs": node.address ?? "",
  };
  const dir = podDir(paths.dir, m.namespace, name);
  const config = input.config ?? NO_CONFIG;
  const volumes = podVolumes({ manifest: m, config, nodeDir: node.dir, fields });
  const base = { PATH: input.hostPath, HOME: "/root", HOSTNAME: name, [RUNTIME_MARKER_ENV]: paths.prefix };
  const resolvConf = podResolvConf(paths, m.namespace, name);
  const roleBase = {
    ...base,
    TMPDIR: paths.tmpDir,
    NODE_NAME: node.name,
    POD_NAME: name,
    POD_NAMESPACE: m.namespace,
    // The pod's resolv.conf, which the nsc sidecar points at its DNS proxy.
    NSM_RESOLV_CONF: resolvConf,
    // Where the runtime is, for a role that makes pods itself (`nsm nse supplier`).
    NSM_LOCAL_STATE_DIR: paths.dir,
    ...NSM_PROCESS_ENV,
    ...input.inherited,
  };
  return { input, who: `pod ${m.namespace}/${name}`, fields, base, roleBase, dir, volumes, resolvConf };
}

/** One `env` entry's value: a field, a ConfigMap/Secret key, or the text with `$(VAR)` expanded. */
function envValue(pod: PodEnvironment, e: ContainerSpec["env"][number], field: string, env: Record<string, string>) {
  const { manifest: m, config } = pod.input;
  if (e.fieldPath !== undefined) return fieldValue(e.fieldPath, pod.fields, m.labels, m.annotations);
  if (e.keyRef) return keyRefValue(m, e.keyRef, field, config ?? NO_CONFIG);
  return expandVars(e.value ?? "", env);
}

/** The container's environment: `envFrom`, then `env`, over the base, with the runtime's identity. */
function containerEnv(pod: PodEnvironment, c: ContainerSpec, field: string, role: readonly string[] | undefined) {
  const m = pod.input.manifest;
  const env: Record<string, string> = {
    ...(role ? pod.roleBase : pod.base),
    ...envFromValues(m, c.envFrom, field, pod.input.config ?? NO_CONFIG),
  };
  c.env.forEach((e, i) => {
    const value = envValue(pod, e, `${field}.env[${i}]`, env);
    if (value !== undefined) env[e.name] = value;
  });
  // Upstream pods reach the SPIRE agent at /run/spire/sockets; here every process gets the
  // runtime's identity provider instead (a value pointing elsewhere is the user's choice).
  const spiffe = env.SPIFFE_ENDPOINT_SOCKET;
  if (spiffe === undefined || spiffe.startsWith("unix:///run/spire/")) {
    delete env.SPIFFE_ENDPOINT_SOCKET;
    Object.assign(env, pod.input.security);
  }
  return env;
}

/** The hostPath socket directory is the node's, for every container (an SDK program too). */
function useNodeSocketDir(node: NodeState, env: Record<string, string>): void {
  const nodeSocketDir = `unix://${node.dir}/`;
  for (const [k, v] of Object.entries(env)) {
    if (v.startsWith(NSM_SOCKET_DIR)) env[k] = nodeSocketDir + v.slice(NSM_SOCKET_DIR.length);
  }
}

/** argv of an NSM role, which reaches the node's nsmgr unless told otherwise. */
function roleArgv(node: NodeState, role: readonly string[], env: Record<string, string>): string[] {
  env.NSM_CONNECT_TO ??= `unix://${node.nsmgrSocket}`;
  return role.length === 1 && role[0] === "nsc" ? sidecarArgv() : nsmArgv(...role);
}

/** argv of any other container: its command from the host filesystem, or `sleep infinity`. */
function hostCommandArgv(pod: PodEnvironment, c: ContainerSpec, env: Record<string, string>, at: string): string[] {
  let argv: string[];
  if (c.command && c.command.length > 0) argv = [...c.command, ...(c.args ?? [])].map((a) => expandVars(a, env));
  else if (c.args && c.args.length > 0)
    throw new LocalError(
      `${at}: has \`args\` but no \`command\`; the local runtime cannot know the entrypoint of image ${c.image}`,
    );
  else argv = ["sleep", "infinity"];
  if (!pod.input.host.commandExists(argv[0]!, env.PATH ?? ""))
    throw new LocalError(
      `${at}: command "${argv[0]}" is not found on this machine (containers run commands from the host filesystem${missingCommandHint(argv[0]!)})`,
    );
  return argv;
}

/**
 * The mounts of a container that runs a host command (NSM roles reach their sockets through env
 * instead), and the argv that runs it in a mount namespace with them; none: `argv` as is. A pod
 * with the NSM client gets its resolv.conf (./pod-files.ts) at /etc/resolv.conf, as the kubelet
 * mounts a container's, so the sidecar's DNS proxy serves the container's resolver.
 */
function withMounts(pod: PodEnvironment, c: ContainerSpec, argv: string[]): { argv: string[]; mounts?: MountState[] } {
  const m = pod.input.manifest;
  const mounts: MountState[] = c.volumeMounts.map((v) => ({
    volume: v.name,
    mountPath: v.mountPath,
    subPath: v.subPath,
    readOnly: mountReadOnly(m, v.name, v.readOnly),
  }));
  if (pod.input.nsurls && !mounts.some((x) => x.mountPath.replace(/\/+$/, "") === RESOLV_CONF_PATH))
    mounts.push({ volume: "", hostFile: pod.resolvConf, mountPath: RESOLV_CONF_PATH, readOnly: false });
  if (mounts.length === 0) return { argv };
  return { argv: mountedArgv(containerFiles(pod.dir, c.name).script, argv), mounts };
}

/**
 * An NSM role runs in the pod's netns without a mount namespace (its sockets and identity are the
 * runtime's): env values naming a path under one of its volumeMounts (`NSM_ACL_CONFIG_PATH` in a
 * ConfigMap volume) name the volume's files on the host instead. True if any did.
 */
function useVolumePaths(pod: PodEnvironment, c: ContainerSpec, env: Record<string, string>): boolean {
  let used = false;
  for (const vm of c.volumeMounts) {
    const v = pod.volumes.find((x) => x.name === vm.name);
    if (!v) continue;
    const base = volumeSourcePath(pod.dir, v);
    const source = vm.subPath ? join(base, vm.subPath) : base;
    const mountPath = vm.mountPath.replace(/\/+$/, "");
    for (const [k, value] of Object.entries(env)) {
      if (value !== mountPath && !value.startsWith(`${mountPath}/`)) continue;
      env[k] = source + value.slice(mountPath.length);
      used ||= v.type !== "hostPath";
    }
  }
  return used;
}

/**
 * Files an NSM role reads at a default path when its env names none (upstream images' defaults):
 * a volumeMount there gets the env named, so {@link useVolumePaths} maps it to the volume's file.
 */
const ROLE_DEFAULT_PATHS: Readonly<Record<string, string>> = {
  NSM_PBR_CONFIG_PATH: DEFAULT_PBR_CONFIG_PATH,
};

function nameDefaultPaths(c: ContainerSpec, env: Record<string, string>): void {
  for (const [k, path] of Object.entries(ROLE_DEFAULT_PATHS)) {
    if (env[k] !== undefined) continue;
    const covered = c.volumeMounts.some((vm) => {
      const at = vm.mountPath.replace(/\/+$/, "");
      return path === at || path.startsWith(`${at}/`);
    });
    if (covered) env[k] = path;
  }
}

function buildContainer(pod: PodEnvironment, c: ContainerSpec, field: string, type: "init" | "app"): ContainerState {
  const { paths, manifest: m, name, node } = pod.input;
  const at = `${pod.who}: container "${c.name}"`;
  let role: readonly string[] | undefined;
  try {
    role = roleOf(c.image);
  } catch (err) {
    throw new LocalError(`${at}: ${(err as Error).message}`);
  }
  const env = containerEnv(pod, c, field, role);
  useNodeSocketDir(node, env);
  if (role?.[0] === "forwarder")
    podForwarderEnv(paths, node, { namespace: m.namespace, pod: name, container: c.name }, env);
  if (role) nameDefaultPaths(c, env);
  const volumeEnv = role ? useVolumePaths(pod, c, env) : false;
  const mounted = role ? { argv: roleArgv(node, role, env) } : withMounts(pod, c, hostCommandArgv(pod, c, env, at));
  return {
    name: c.name,
    type,
    injected: false,
    image: c.image,
    argv: mounted.argv,
    env,
    log: logFile(paths, m.namespace, name, c.name),
    ...(mounted.mounts ? { mounts: mounted.mounts, workingDir: c.workingDir } : {}),
    ...(volumeEnv ? { volumeEnv } : {}),
  };
}

/** The client the `networkservicemesh.io` annotation asks for: `cmd-nsc-init` and the `cmd-nsc` sidecar. */
function injectedClient(pod: PodEnvironment, nsurls: string): { init: ContainerState; sidecar: ContainerState } {
  const { paths, manifest: m, name, node } = pod.input;
  const env = {
    ...pod.roleBase,
    ...pod.input.security,
    NSM_NAME: name,
    NSM_CONNECT_TO: `unix://${node.nsmgrSocket}`,
    NSM_NETWORK_SERVICES: nsurls,
  };
  const injected = (cname: string, type: "init" | "app", argv: string[]): ContainerState => ({
    name: cname,
    type,
    injected: true,
    image: `${cname} (injected)`,
    argv,
    env,
    log: logFile(paths, m.namespace, name, cname),
  });
  return {
    init: injected(INIT_CLIENT_NAME, "init", nsmArgv("nsc", "--init")),
    sidecar: injected(SIDECAR_CLIENT_NAME, "app", sidecarArgv()),
  };
}

/** Builds a pod's state (phase Pending): its netns name and every container's argv and env. */
export function buildPod(input: BuildPodInput): PodState {
  const { paths, manifest: m, name, node, nsurls, host } = input;
  const random = Buffer.from(host.randomBytes(4)).toString("hex");
  const uid = `${hashOf([m.namespace, name, host.now(), random], 8)}-local`;
  const pod = podEnvironment(input, uid);
  const spec = specField(m);
  const initContainers = m.spec.initContainers.map((c, i) =>
    buildContainer(pod, c, `${spec}.initContainers[${i}]`, "init"),
  );
  const containers = m.spec.containers.map((c, i) => buildContainer(pod, c, `${spec}.containers[${i}]`, "app"));
  if (nsurls) {
    const client = injectedClient(pod, nsurls);
    initContainers.push(client.init);
    containers.push(client.sidecar);
  }
  return {
    namespace: m.namespace,
    name,
    uid,
    node: node.name,
    netns: netnsName(paths.prefix, m.namespace, name),
    labels: m.labels,
    annotations: m.annotations,
    owner: m.kind === "Pod" ? undefined : ownerKey(m),
    nsurls,
    specHash: hashOf([m.labels, m.annotations, m.rawSpec]),
    affinity: m.spec.affinity,
    containers: [...initContainers, ...containers],
    ...(pod.volumes.length > 0 ? { volumes: pod.volumes } : {}),
    ...(input.podIP ? { podIP: input.podIP } : {}),
    phase: "Pending",
    createdAt: new Date(host.now()).toISOString(),
  };
}
