// SPDX-License-Identifier: Apache-2.0
/**
 * The admission review of `nsm admission-webhook` (upstream cmd-admission-webhook-k8s, reference
 * §3.7): for a Pod, or the pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet or
 * Job, whose `networkservicemesh.io` annotation (or, for a Pod without one, its namespace's)
 * names network services as NSURLs, a JSON patch that appends
 * - the nsc-init containers (`NSM_INIT_CONTAINER_IMAGES`) and the nsc sidecars
 *   (`NSM_CONTAINER_IMAGES`), each named after its image, with `NSM_ENVS`,
 *   `SPIFFE_ENDPOINT_SOCKET`, `POD_NAME` (downward API), `NSM_NAME=$(POD_NAME)` and
 *   `NSM_NETWORK_SERVICES=<annotation>` (the name is `NSM_NSURL_ENV_NAME`), the two socket
 *   mounts and, on the sidecars, the configured requests and limits (SR-IOV tokens of the
 *   NSURLs become init-container limits, as upstream);
 * - the hostPath volumes `spire-agent-socket` (/run/spire/sockets) and `nsm-socket`
 *   (/var/lib/networkservicemesh);
 * - the `NSM_LABELS` merged into the pod labels (so SPIRE issues the pod an SVID).
 * Only CREATE is mutated. A pod that already has one of these containers or volumes is left
 * alone (idempotent). An annotation with an NSURL that is not `mechanism://service[/ifname][?labels]`
 * denies the admission with a message naming it. A ReplicaSet owned by a Deployment is left to
 * the Deployment.
 */

/** The parts of the webhook's configuration the review uses. */
export interface InjectionConfig {
  /** @default "networkservicemesh.io" */
  readonly annotation: string;
  readonly initContainerImages: readonly string[];
  readonly containerImages: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Extra `K=V` env of the injected containers. */
  readonly envs: readonly { name: string; value: string }[];
  /** @default "NSM_NETWORK_SERVICES" */
  readonly nsurlEnvName: string;
  readonly sidecarResources: { limits: Record<string, string>; requests: Record<string, string> };
  /** Command of the injected init containers; empty: the image's entrypoint (see {@link SINGLE_IMAGE}). */
  readonly initContainerCommand?: readonly string[];
  /** Command of the injected sidecars; empty: the image's entrypoint (see {@link SINGLE_IMAGE}). */
  readonly containerCommand?: readonly string[];
}

/**
 * Our single image (`nsm-ts/nsm`, every role is `nsm <role>`): when an injected image is it and
 * no command is configured, the init container runs `nsm nsc --init` and is named `nsc-init`,
 * the sidecar runs `nsm nsc` and is named `nsc` (upstream's images each have their own
 * entrypoint and name).
 */
export const SINGLE_IMAGE = "nsm";

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { group?: string; version?: string; kind: string };
  readonly namespace?: string;
  readonly operation: string;
  readonly object?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: "JSONPatch";
  patch?: string;
}

interface Container {
  name?: string;
  env?: unknown[];
  [k: string]: unknown;
}
interface PodSpec {
  initContainers?: Container[];
  containers?: Container[];
  volumes?: { name?: string }[];
}
interface ObjectMeta {
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  ownerReferences?: { kind?: string }[];
}
interface PodLike {
  metadata?: ObjectMeta;
  spec?: PodSpec & { template?: { metadata?: ObjectMeta; spec?: PodSpec } };
}

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);
export const SPIRE_VOLUME = "spire-agent-socket";
export const NSM_VOLUME = "nsm-socket";
const IFNAME = /^[^/\s]{1,15}$/;

/** Why `nsurl` is not an NSURL, or undefined when it is one. */
export function nsurlProblem(nsurl: string): string | undefined {
  let u: URL;
  try {
    u = new URL(nsurl);
  } catch {
    return "not a URL (want mechanism://network-service[/interface][?labels])";
  }
  if (!/^[a-z][a-z0-9+.-]*:$/.test(u.protocol)) return `bad mechanism ${u.protocol}`;
  if (u.hostname === "") return "no network service (want mechanism://network-service[/interface])";
  const ifname = u.pathname.replace(/^\//, "");
  if (ifname !== "" && !IFNAME.test(ifname)) return `bad interface name ${JSON.stringify(ifname)} (1-15 chars, no /)`;
  return undefined;
}

/** The image's base name without tag: `ghcr.io/x/cmd-nsc:v1` → `cmd-nsc`. */
export function containerNameOf(image: string): string {
  const base = image.split("/").pop() ?? image;
  return base.split("@")[0]!.split(":")[0]!;
}

/** The injected container's name: the image's base name, `nsc-init`/`nsc` for {@link SINGLE_IMAGE}. */
export function injectedName(image: string, init: boolean): string {
  const name = containerNameOf(image);
  if (name !== SINGLE_IMAGE) return name;
  return init ? "nsc-init" : "nsc";
}

/** The SR-IOV pools the NSURLs ask for (`?sriovToken=pool`), counted. */
function sriovPools(nsurls: string[]): Record<string, string> {
  const counts = new Map<string, number>();
  for (const s of nsurls) {
    const token = new URL(s).searchParams.get("sriovToken");
    const pool = token?.split(",")[0];
    if (pool) counts.set(pool, (counts.get(pool) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].map(([k, v]) => [k, String(v)]));
}

function injectedContainer(image: string, init: boolean, annotation: string, config: InjectionConfig): Container {
  const single = containerNameOf(image) === SINGLE_IMAGE;
  const configured = (init ? config.initContainerCommand : config.containerCommand) ?? [];
  const command = configured.length ? configured : single ? ["nsm", "nsc", ...(init ? ["--init"] : [])] : [];
  return {
    name: injectedName(image, init),
    image,
    ...(command.length ? { command: [...command] } : {}),
    imagePullPolicy: "IfNotPresent",
    env: [
      ...config.envs,
      { name: "SPIFFE_ENDPOINT_SOCKET", value: "unix:///run/spire/sockets/agent.sock" },
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "NSM_NAME", value: "$(POD_NAME)" },
      { name: config.nsurlEnvName, value: annotation },
    ],
    volumeMounts: [
      { name: SPIRE_VOLUME, mountPath: "/run/spire/sockets", readOnly: true },
      { name: NSM_VOLUME, mountPath: "/var/lib/networkservicemesh", readOnly: true },
    ],
  };
}

function alreadyInjected(spec: PodSpec, config: InjectionConfig): boolean {
  const ours = new Set([
    ...config.initContainerImages.map((img) => injectedName(img, true)),
    ...config.containerImages.map((img) => injectedName(img, false)),
  ]);
  const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  if (containers.some((c) => c.name !== undefined && ours.has(c.name))) return true;
  return (spec.volumes ?? []).some((v) => v.name === SPIRE_VOLUME || v.name === NSM_VOLUME);
}

/** The JSON patch that injects NSM into `spec`/`meta` at `prefix` ("" or "/spec/template"). */
export function injectionPatch(
  prefix: string,
  meta: ObjectMeta,
  spec: PodSpec,
  annotation: string,
  config: InjectionConfig,
): object[] {
  const nsurls = annotation.split(",").map((s) => s.trim());
  const pools = sriovPools(nsurls);
  const init = config.initContainerImages.map((img) => {
    const c = injectedContainer(img, true, annotation, config);
    return Object.keys(pools).length ? { ...c, resources: { limits: pools } } : c;
  });
  const sidecars = config.containerImages.map((img) => ({
    ...injectedContainer(img, false, annotation, config),
    resources: config.sidecarResources,
  }));
  const hostDir = (name: string, path: string) => ({ name, hostPath: { path, type: "Directory" } });
  return [
    { op: "add", path: `${prefix}/spec/initContainers`, value: [...(spec.initContainers ?? []), ...init] },
    { op: "add", path: `${prefix}/spec/containers`, value: [...(spec.containers ?? []), ...sidecars] },
    {
      op: "add",
      path: `${prefix}/spec/volumes`,
      value: [
        ...(spec.volumes ?? []),
        hostDir(SPIRE_VOLUME, "/run/spire/sockets"),
        hostDir(NSM_VOLUME, "/var/lib/networkservicemesh"),
      ],
    },
    { op: "add", path: `${prefix}/metadata/labels`, value: { ...(meta.labels ?? {}), ...config.labels } },
  ];
}

/** Looks up a namespace's annotations (undefined when it cannot be read). */
export type NamespaceAnnotations = (namespace: string) => Promise<Record<string, string> | undefined>;

interface Target {
  readonly prefix: string;
  readonly meta: ObjectMeta;
  readonly spec: PodSpec;
}

function targetOf(kind: string, object: unknown): Target | undefined {
  const o = object as PodLike | undefined;
  if (!o || typeof o !== "object") return undefined;
  if (kind === "Pod") return { prefix: "", meta: o.metadata ?? {}, spec: o.spec ?? {} };
  if (!WORKLOADS.has(kind)) return undefined;
  if (kind === "ReplicaSet" && o.metadata?.ownerReferences?.some((r) => r.kind === "Deployment")) return undefined;
  const t = o.spec?.template;
  if (!t) return undefined;
  // Upstream reads the workload's own annotation when its template has none.
  const annotations = t.metadata?.annotations ?? o.metadata?.annotations;
  return { prefix: "/spec/template", meta: { ...(t.metadata ?? {}), annotations }, spec: t.spec ?? {} };
}

/** Reviews one admission request (see the module doc). */
export async function reviewAdmission(
  req: AdmissionRequest,
  config: InjectionConfig,
  namespaceAnnotations: NamespaceAnnotations,
): Promise<AdmissionResponse> {
  const allow: AdmissionResponse = { uid: req.uid, allowed: true };
  if (req.operation !== "CREATE") return allow;
  const target = targetOf(req.kind.kind, req.object);
  if (!target) return allow;
  let annotation = target.meta.annotations?.[config.annotation] ?? "";
  if (annotation === "" && req.kind.kind === "Pod" && req.namespace) {
    annotation = (await namespaceAnnotations(req.namespace))?.[config.annotation] ?? "";
  }
  if (annotation.trim() === "" || alreadyInjected(target.spec, config)) return allow;
  for (const nsurl of annotation.split(",").map((s) => s.trim())) {
    const problem = nsurlProblem(nsurl);
    if (problem) {
      const message = `annotation ${config.annotation}: NSURL ${JSON.stringify(nsurl)}: ${problem}`;
      return { uid: req.uid, allowed: false, status: { code: 400, reason: "BadRequest", message } };
    }
  }
  const patch = injectionPatch(target.prefix, target.meta, target.spec, annotation, config);
  return { ...allow, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") };
}
