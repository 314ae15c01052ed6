// SPDX-License-Identifier: Apache-2.0
/**
 * From a pod manifest to the processes of a pod: which program each container runs, with which
 * environment, as Kubernetes and the NSM admission webhook would set it up.
 *
 * - No images are pulled. Upstream NSM images map to our roles: `cmd-nse-icmp-responder` →
 *   `nsm nse icmp-responder`, `cmd-nsc` → `nsm nsc`, `cmd-nsc-init` → `nsm nsc --init`. Any other
 *   container runs its `command` + `args` from the host filesystem; without a command it runs
 *   `sleep infinity` (a pod such as `alpine` that only waits for `kubectl exec`).
 * - A pod with the `networkservicemesh.io` annotation (its own, or its namespace's) gets the client
 *   injected: init container `cmd-nsc-init` and sidecar `cmd-nsc`, with `NSM_NETWORK_SERVICES` set
 *   to the annotation and `NSM_NAME` to the pod name.
 * - `unix:///var/lib/networkservicemesh/…` (the hostPath socket directory of the upstream
 *   manifests) is the node's directory in the state dir, in the env of every container, so
 *   `NSM_CONNECT_TO` reaches the pod's node's nsmgr.
 */
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ContainerSpec, imageName, NSM_ANNOTATION, type WorkloadManifest } from "./manifest.js";
import { netnsName } from "./netns.js";
import {
  type ContainerState,
  LocalError,
  type NodeState,
  type PodState,
  RUNTIME_MARKER_ENV,
  type RuntimePaths,
} from "./state.js";

/** The `nsm` program (bin/nsm.js next to this source tree). */
export const NSM_BIN = fileURLToPath(new URL("../../bin/nsm.js", import.meta.url));

/** argv that runs `nsm <args>` with this Node. */
export function nsmArgv(...args: string[]): string[] {
  return [process.execPath, NSM_BIN, ...args];
}

/** argv of the `nsm nsc` sidecar. */
export function sidecarArgv(): string[] {
  return [process.execPath, NSM_BIN, "nsc"];
}

/** The directory upstream manifests mount for the nsmgr socket. */
const NSM_SOCKET_DIR = "unix:///var/lib/networkservicemesh/";

export const ROLE_IMAGES: Readonly<Record<string, readonly string[]>> = {
  "cmd-nse-icmp-responder": ["nse", "icmp-responder"],
  "cmd-nsc": ["nsc"],
  "cmd-nsc-init": ["nsc", "--init"],
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

/** True if `cmd` is an executable file (absolute/relative path, or found in PATH). */
export function commandExists(cmd: string, path = process.env.PATH ?? ""): boolean {
  const candidates = cmd.includes("/") ? [cmd] : path.split(delimiter).map((d) => join(d || ".", cmd));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Kubernetes `$(VAR)` expansion (`$$(VAR)` stays literal `$(VAR)`; unknown names are kept). */
export function expandVars(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : m;
  });
}

const SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789";

/** `<deployment>-<10 hex of the template>-<5 characters>`, like a ReplicaSet's pods. */
export function deploymentPodName(deployment: string, templateHash: string, taken: (n: string) => boolean): string {
  for (;;) {
    const bytes = randomBytes(5);
    const suffix = [...bytes].map((b) => SUFFIX_CHARS[b % SUFFIX_CHARS.length]).join("");
    const name = `${deployment}-${templateHash}-${suffix}`;
    if (!taken(name)) return name;
  }
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
  /** Environment values taken from the CLI's environment (NSM_LOG_LEVEL). */
  readonly inherited?: Readonly<Record<string, string>>;
  /**
   * Identity env of every container: `SPIFFE_ENDPOINT_SOCKET` of the runtime's identity provider,
   * or `NSM_INSECURE=true` for an insecure runtime. @default none
   */
  readonly security?: Readonly<Record<string, string>>;
}

function logFile(paths: RuntimePaths, namespace: string, pod: string, container: string): string {
  return join(paths.logsDir, `${namespace}_${pod}_${container}.log`);
}

/** Builds a pod's state (phase Pending): its netns name and every container's argv and env. */
export function buildPod(input: BuildPodInput): PodState {
  const { paths, manifest: m, name, node, nsurls } = input;
  const uid = `${hashOf([m.namespace, name, Date.now(), randomBytes(4).toString("hex")], 8)}-local`;
  const who = `pod ${m.namespace}/${name}`;
  const hostPath = process.env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const fields: Record<string, string> = {
    "metadata.name": name,
    "metadata.namespace": m.namespace,
    "metadata.uid": uid,
    "spec.nodeName": node.name,
    "spec.serviceAccountName": "default",
    "status.podIP": "",
    "status.hostIP": "",
  };
  const base = { PATH: hostPath, HOME: "/root", HOSTNAME: name, [RUNTIME_MARKER_ENV]: paths.prefix };
  const roleBase = {
    ...base,
    TMPDIR: paths.tmpDir,
    NODE_NAME: node.name,
    POD_NAME: name,
    POD_NAMESPACE: m.namespace,
    ...input.inherited,
  };
  const nodeSocketDir = `unix://${node.dir}/`;

  const build = (c: ContainerSpec, type: "init" | "app"): ContainerState => {
    const at = `${who}: container "${c.name}"`;
    let role: readonly string[] | undefined;
    try {
      role = roleOf(c.image);
    } catch (err) {
      throw new LocalError(`${at}: ${(err as Error).message}`);
    }
    const env: Record<string, string> = { ...(role ? roleBase : base) };
    for (const e of c.env) {
      const v = e.fieldPath !== undefined ? fields[e.fieldPath]! : expandVars(e.value ?? "", env);
      env[e.name] = v;
    }
    // Upstream pods reach the SPIRE agent at /run/spire/sockets; here every process gets the
    // runtime's identity provider instead (a value pointing elsewhere is the user's choice).
    const spiffe = env.SPIFFE_ENDPOINT_SOCKET;
    if (spiffe === undefined || spiffe.startsWith("unix:///run/spire/")) {
      delete env.SPIFFE_ENDPOINT_SOCKET;
      Object.assign(env, input.security);
    }
    // The hostPath socket directory is the node's, for every container (an SDK program too).
    for (const [k, v] of Object.entries(env)) {
      if (v.startsWith(NSM_SOCKET_DIR)) env[k] = nodeSocketDir + v.slice(NSM_SOCKET_DIR.length);
    }
    let argv: string[];
    if (role) {
      env.NSM_CONNECT_TO ??= `unix://${node.nsmgrSocket}`;
      argv = role.length === 1 && role[0] === "nsc" ? sidecarArgv() : nsmArgv(...role);
    } else {
      if (c.command && c.command.length > 0) argv = [...c.command, ...(c.args ?? [])].map((a) => expandVars(a, env));
      else if (c.args && c.args.length > 0)
        throw new LocalError(
          `${at}: has \`args\` but no \`command\`; the local runtime cannot know the entrypoint of image ${c.image}`,
        );
      else argv = ["sleep", "infinity"];
      if (!commandExists(argv[0]!, env.PATH))
        throw new LocalError(
          `${at}: command "${argv[0]}" is not found on this machine (containers run commands from the host filesystem)`,
        );
    }
    return {
      name: c.name,
      type,
      injected: false,
      image: c.image,
      argv,
      env,
      log: logFile(paths, m.namespace, name, c.name),
    };
  };

  const initContainers = m.spec.initContainers.map((c) => build(c, "init"));
  const containers = m.spec.containers.map((c) => build(c, "app"));
  if (nsurls) {
    const clientEnv = {
      ...roleBase,
      ...input.security,
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
      env: clientEnv,
      log: logFile(paths, m.namespace, name, cname),
    });
    initContainers.push(injected(INIT_CLIENT_NAME, "init", nsmArgv("nsc", "--init")));
    containers.push(injected(SIDECAR_CLIENT_NAME, "app", sidecarArgv()));
  }
  return {
    namespace: m.namespace,
    name,
    uid,
    node: node.name,
    netns: netnsName(paths.prefix, m.namespace, name),
    labels: m.labels,
    annotations: m.annotations,
    owner: m.kind === "Deployment" ? m.name : undefined,
    nsurls,
    specHash: hashOf([m.labels, m.annotations, m.rawSpec]),
    affinity: m.spec.affinity,
    containers: [...initContainers, ...containers],
    phase: "Pending",
    createdAt: new Date().toISOString(),
  };
}
