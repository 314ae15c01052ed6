// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream-style manifests for the local runtime: YAML files (multi-document), directories, and
 * kustomizations (local `resources`/`bases`, `namespace`, `commonLabels`, strategic-merge
 * `patches`/`patchesStrategicMerge`; JSON 6902 patches, `labels` and `namePrefix`/`nameSuffix`
 * in ./kustomize.ts; `configMapGenerator`/`secretGenerator` in ./kustomize-generators.ts), turned
 * into checked objects: the kinds the runtime runs (Namespace, NetworkService
 * `networkservicemesh.io/v1`, Deployment, DaemonSet, Pod; pod volumes and data-fed env in
 * ./podspec.ts) and the kinds it stores and shows (ConfigMap, Secret, Service, RBAC, CRDs and
 * their resources…, ./kinds.ts). An unknown kind, a field of the wrong type or a bad selector is
 * an error naming the file, the object and the field.
 *
 * Everything is checked here, before the runtime changes anything; problems are
 * {@link LocalError}s that name the file and the object.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { type Document, parseAllDocuments } from "yaml";
import { type NetworkService, NetworkServiceSchema } from "../api/gen/registry_pb.js";
import { DEFAULT_NS_PAYLOAD } from "../sdk/registry/common/setpayload/index.js";
import { LocalError } from "./errors.js";
import { crdKind, type StoredKind, storedKindOf } from "./kinds.js";
import {
  applyJson6902,
  applyLabels,
  applyNameAffixes,
  type Json6902Patch,
  json6902Ops,
  patchesJson6902,
} from "./kustomize.js";
import { appendNameHashes, configNames, followRenames, runGenerators } from "./kustomize-generators.js";
import {
  type EnvFrom,
  type KeyRef,
  parseEnvFrom,
  parseValueFrom,
  parseVolumeMounts,
  parseVolumes,
  type Volume,
  type VolumeMount,
  wrongType,
} from "./podspec.js";

/** The annotation that asks for an injected client (upstream admission webhook). */
export const NSM_ANNOTATION = "networkservicemesh.io";

type Json = Record<string, unknown>;

/** One object as read, before checking. */
export interface RawObject {
  obj: Json;
  /** Where it came from, for messages: `file.yaml` or `file.yaml (document 2)`. */
  source: string;
  /** Made by a kustomize generator, its name hash suffix still to come (./kustomize-generators.ts). */
  generated?: boolean;
}

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  /** `valueFrom.fieldRef.fieldPath`. */
  readonly fieldPath?: string;
  /** `valueFrom.configMapKeyRef` or `valueFrom.secretKeyRef`. */
  readonly keyRef?: KeyRef;
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env: readonly EnvVar[];
  readonly envFrom: readonly EnvFrom[];
  readonly volumeMounts: readonly VolumeMount[];
  readonly workingDir?: string;
}

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly LabelSelectorRequirement[];
}

export interface PodAffinityTerm {
  readonly topologyKey: string;
  readonly labelSelector: LabelSelector;
  /** Namespaces to look in; empty → the pod's own; `["*"]` → all (namespaceSelector: {}). */
  readonly namespaces: readonly string[];
}

export interface Affinity {
  readonly podAffinity: readonly PodAffinityTerm[];
  readonly podAntiAffinity: readonly PodAffinityTerm[];
  /** Required node affinity, as alternatives (nodeSelectorTerms) of requirements on node labels. */
  readonly nodeAffinity: readonly (readonly LabelSelectorRequirement[])[];
}

export interface PodSpec {
  readonly volumes: readonly Volume[];
  readonly containers: readonly ContainerSpec[];
  readonly initContainers: readonly ContainerSpec[];
  readonly nodeName?: string;
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly affinity: Affinity;
}

export interface NamespaceManifest {
  readonly kind: "Namespace";
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly source: string;
}

export interface NetworkServiceManifest {
  readonly kind: "NetworkService";
  readonly name: string;
  readonly namespace: string;
  readonly record: NetworkService;
  readonly source: string;
}

export interface WorkloadManifest {
  readonly kind: "Deployment" | "Pod" | "DaemonSet";
  readonly name: string;
  readonly namespace: string;
  readonly replicas: number;
  /** Pod labels and annotations (the template's for a Deployment). */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: PodSpec;
  /** The pod spec as written, for change detection. */
  readonly rawSpec: unknown;
  readonly source: string;
}

/**
 * An object the runtime stores and shows without running anything for it (see ./kinds.ts):
 * ConfigMap, Secret, Service, RBAC, CRDs, custom resources…
 */
export interface StoredManifest {
  readonly kind: "Object";
  /** The object's own kind (`ConfigMap`). */
  readonly objectKind: string;
  readonly name: string;
  /** "" for a cluster-scoped kind. */
  readonly namespace: string;
  /** The object as applied (a Secret's `stringData` folded into `data`). */
  readonly body: Record<string, unknown>;
  readonly source: string;
}

export type Manifest = NamespaceManifest | NetworkServiceManifest | WorkloadManifest | StoredManifest;

/** The kinds the runtime runs something for; the stored ones are in ./kinds.ts. */
export const SUPPORTED_KINDS = ["Namespace", "NetworkService", "Deployment", "DaemonSet", "Pod"] as const;

/** The owner a workload's pods carry: the Deployment's name, or `daemonset/<name>`. */
export function ownerKey(m: { readonly kind?: string; readonly name: string }): string {
  return m.kind === "DaemonSet" ? `daemonset/${m.name}` : m.name;
}

// ---------------------------------------------------------------------------------------------
// Reading files

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The objects of one YAML document: none, one, or the items of a `List`. */
function documentObjects(doc: Document.Parsed, file: string, source: string): RawObject[] {
  const err = doc.errors[0];
  if (err) {
    const where = err.linePos?.[0] ? `line ${err.linePos[0].line}, column ${err.linePos[0].col}` : "";
    const reason = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new LocalError(`${file}: malformed YAML${where ? ` at ${where}` : ""}: ${reason}`);
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (value === null || value === undefined) return [];
  if (!isObject(value))
    throw new LocalError(`${source}: expected a Kubernetes object (a mapping), got ${typeof value}`);
  if (value.kind !== "List" || !Array.isArray(value.items)) return [{ obj: value, source }];
  return value.items.map((item: unknown) => {
    if (!isObject(item)) throw new LocalError(`${source}: a List item is not an object`);
    return { obj: item, source };
  });
}

function parseYamlText(text: string, file: string): RawObject[] {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  if (!Array.isArray(docs)) return []; // an empty stream
  return docs.flatMap((doc, i) => documentObjects(doc, file, docs.length > 1 ? `${file} (document ${i + 1})` : file));
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LocalError(
      code === "ENOENT" ? `${file}: no such file or directory` : `${file}: ${(err as Error).message}`,
    );
  }
}

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => join(dir, f)).find((f) => existsSync(f));
}

/** Loads every object of a file or directory (a kustomization if the directory has one). */
export function loadObjects(path: string, warn: (msg: string) => void = () => {}): RawObject[] {
  const abs = resolve(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch {
    throw new LocalError(`${path}: no such file or directory`);
  }
  if (st.isDirectory()) {
    const k = kustomizationFile(abs);
    if (k) {
      const objects = loadKustomization(k, warn, new Set());
      appendNameHashes(objects);
      return objects;
    }
    const files = readdirSync(abs)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort();
    if (files.length === 0) throw new LocalError(`${path}: no .yaml files in this directory`);
    return files.flatMap((f) => parseYamlText(readText(join(abs, f)), join(path, f)));
  }
  return parseYamlText(readText(abs), path);
}

// ---------------------------------------------------------------------------------------------
// Kustomize (the subset the examples use)

/** Keys that identify list items for strategic merge (Kubernetes patchMergeKey). */
const MERGE_KEYS = ["name", "containerPort", "mountPath", "devicePath", "ip", "topologyKey"];

function mergeKeyOf(items: unknown[]): string | undefined {
  if (items.length === 0 || !items.every(isObject)) return undefined;
  return MERGE_KEYS.find((k) => items.every((i) => (i as Json)[k] !== undefined));
}

function mergeMaps(base: Json, patch: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch") continue;
    if (v === null) delete out[k];
    else out[k] = strategicMerge(base[k], v);
  }
  return out;
}

/** Lists of objects with a merge key merge item by item (`$patch: delete` removes one); others are replaced. */
function mergeLists(base: unknown[], patch: unknown[]): unknown[] {
  const key = mergeKeyOf(patch);
  if (!key || !(base.length === 0 || mergeKeyOf(base) === key)) return patch;
  const out = [...base];
  for (const item of patch as Json[]) {
    const i = out.findIndex((b) => (b as Json)[key] === item[key]);
    if (item.$patch === "delete") {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = strategicMerge(out[i], item);
    else out.push(item);
  }
  return out;
}

/** Strategic merge: maps merge by key, lists of named objects merge by name, everything else is replaced. */
export function strategicMerge(base: unknown, patch: unknown): unknown {
  if (isObject(base) && isObject(patch)) return mergeMaps(base, patch);
  if (Array.isArray(base) && Array.isArray(patch)) return mergeLists(base, patch);
  return patch;
}

function stringList(v: unknown, what: string, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string" || isObject(s)))
    throw new LocalError(`${where}: \`${what}\` must be a list`);
  return v as string[];
}

function isRemote(ref: string): boolean {
  return /^[a-z]+:\/\//i.test(ref) || /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(ref) || ref.includes("?ref=");
}

const KUSTOMIZATION_FIELDS = new Set([
  "apiVersion",
  "kind",
  "resources",
  "bases",
  "namespace",
  "patchesStrategicMerge",
  "patches",
  "commonLabels",
  "patchesJson6902",
  "labels",
  "namePrefix",
  "nameSuffix",
  "configMapGenerator",
  "secretGenerator",
  "generatorOptions",
]);

/** A strategic-merge patch, and which objects it targets (a `patches` entry's `target`). */
interface Patch {
  readonly patch: Json;
  readonly source: string;
  readonly target?: Json;
}

/** The objects of the kustomization's `bases` and `resources` (local paths only). */
function loadResources(k: Json, file: string, warn: (msg: string) => void, seen: Set<string>): RawObject[] {
  const dir = dirname(file);
  const objects: RawObject[] = [];
  for (const ref of [...stringList(k.bases, "bases", file), ...stringList(k.resources, "resources", file)]) {
    if (typeof ref !== "string") throw new LocalError(`${file}: a resource must be a path`);
    if (isRemote(ref))
      throw new LocalError(`${file}: remote resource "${ref}" is not supported: download it and refer to a local path`);
    const p = resolve(dir, ref);
    if (!existsSync(p)) throw new LocalError(`${file}: resource "${ref}": no such file or directory`);
    if (statSync(p).isDirectory()) {
      const sub = kustomizationFile(p);
      objects.push(...(sub ? loadKustomization(sub, warn, seen) : loadObjects(p, warn)));
    } else objects.push(...parseYamlText(readText(p), join(dirname(file), ref)));
  }
  return objects;
}

/** The kustomization's `patchesStrategicMerge`: file paths or inline YAML. */
function strategicMergePatches(k: Json, file: string): Patch[] {
  const patches: Patch[] = [];
  for (const p of stringList(k.patchesStrategicMerge, "patchesStrategicMerge", file)) {
    if (typeof p !== "string") throw new LocalError(`${file}: patchesStrategicMerge entries must be paths or YAML`);
    const inline = p.includes("\n") || p.includes(":");
    const docs = inline
      ? parseYamlText(p, `${file} (inline patch)`)
      : parseYamlText(readText(resolve(dirname(file), p)), p);
    for (const d of docs) patches.push({ patch: d.obj, source: d.source });
  }
  return patches;
}

/**
 * The kustomization's `patches`: `path` or inline `patch`, with an optional `target`; a patch
 * whose content is a list of operations is a JSON 6902 patch (its `target` is required).
 */
function targetedPatches(k: Json, file: string): { merge: Patch[]; json6902: Json6902Patch[] } {
  const merge: Patch[] = [];
  const json6902: Json6902Patch[] = [];
  for (const p of stringList(k.patches, "patches", file) as unknown[]) {
    const { text, source } = patchText(p, file);
    const target = isObject(p) && isObject(p.target) ? p.target : undefined;
    const ops = json6902Ops(text, source);
    if (ops && !target) throw new LocalError(`${source}: a JSON 6902 patch needs a \`target\``);
    if (ops && target) json6902.push({ ops, target, source });
    else for (const d of parseYamlText(text, source)) merge.push({ patch: d.obj, source: d.source, target });
  }
  return { merge, json6902 };
}

/** The YAML of a `patches` entry (its file's, or inline) and where it came from. */
function patchText(p: unknown, file: string): { text: string; source: string } {
  const bad = () => new LocalError(`${file}: a patches entry must have \`path\` or \`patch\``);
  if (!isObject(p)) throw bad();
  if (typeof p.path === "string") return { text: readText(resolve(dirname(file), p.path)), source: p.path };
  if (typeof p.patch !== "string") throw bad();
  return { text: p.patch, source: `${file} (inline patch)` };
}

function applyPatch(objects: readonly RawObject[], { patch, source, target }: Patch): void {
  const kind = (target?.kind as string | undefined) ?? (patch.kind as string | undefined);
  const name = (target?.name as string | undefined) ?? (patch.metadata as Json | undefined)?.name;
  const hits = objects.filter(
    (o) => (kind === undefined || o.obj.kind === kind) && (name === undefined || metaOf(o.obj).name === name),
  );
  if (hits.length === 0)
    throw new LocalError(
      `${source}: the patch targets ${kind ?? "?"}/${String(name ?? "?")}, which is not among the resources`,
    );
  for (const h of hits) {
    const { kind: _k, apiVersion: _a, metadata: pm, ...rest } = patch;
    const merged = strategicMerge(h.obj, rest) as Json;
    if (isObject(pm)) {
      const { name: _n, ...metaRest } = pm;
      merged.metadata = strategicMerge(metaOf(h.obj), metaRest);
    }
    h.obj = merged;
  }
}

/** Kinds with a selector and a pod template, which `commonLabels` and `labels.includeSelectors` reach. */
export const TEMPLATED_KINDS = ["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"];

function applyCommonLabels(objects: readonly RawObject[], labels: Record<string, string>): void {
  for (const o of objects) {
    o.obj = strategicMerge(o.obj, { metadata: { labels } }) as Json;
    if (TEMPLATED_KINDS.includes(String(o.obj.kind)))
      o.obj = strategicMerge(o.obj, {
        spec: { selector: { matchLabels: labels }, template: { metadata: { labels } } },
      }) as Json;
  }
}

function loadKustomization(file: string, warn: (msg: string) => void, seen: Set<string>): RawObject[] {
  const dir = dirname(file);
  if (seen.has(dir)) throw new LocalError(`${file}: kustomizations include each other in a cycle`);
  seen.add(dir);
  const k = parseYamlText(readText(file), file)[0]?.obj ?? {};
  for (const key of Object.keys(k))
    if (!KUSTOMIZATION_FIELDS.has(key)) warn(`${file}: ignoring unsupported field \`${key}\``);
  const objects = loadResources(k, file, warn, seen);
  runGenerators(k, file, objects);
  const targeted = targetedPatches(k, file);
  for (const patch of [...strategicMergePatches(k, file), ...targeted.merge]) applyPatch(objects, patch);
  for (const patch of [...patchesJson6902(k, file, readText), ...targeted.json6902]) applyJson6902(objects, patch);
  if (isObject(k.commonLabels)) applyCommonLabels(objects, k.commonLabels as Record<string, string>);
  applyLabels(objects, k.labels, file);
  const names = configNames(objects);
  applyNameAffixes(objects, k.namePrefix, k.nameSuffix, file);
  followRenames(objects, names);
  if (typeof k.namespace === "string" && k.namespace) {
    for (const o of objects) {
      if (o.obj.kind === "Namespace") continue;
      o.obj = { ...o.obj, metadata: { ...metaOf(o.obj), namespace: k.namespace } };
    }
  }
  seen.delete(dir);
  return objects;
}

// ---------------------------------------------------------------------------------------------
// Checking objects

function metaOf(obj: Json): Json {
  return isObject(obj.metadata) ? obj.metadata : {};
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * A name as Kubernetes checks it: a DNS-1123 label (namespaces, services, containers: at most 63
 * characters, no dots) or, for most objects, a DNS-1123 subdomain (dots allowed, at most 253).
 */
function checkName(name: unknown, where: string, what = "metadata.name", dots = false): string {
  if (name === undefined || name === null || name === "") throw new LocalError(`${where}: \`${what}\` is required`);
  if (typeof name !== "string") throw wrongType(where, what, "a string", name);
  const ok = dots ? name.length <= 253 && DNS1123_SUBDOMAIN.test(name) : name.length <= 63 && DNS1123.test(name);
  if (!ok)
    throw new LocalError(
      dots
        ? `${where}: ${what} "${name}" is not a valid name (lower case letters, digits, '-' and '.', at most 253 characters)`
        : `${where}: ${what} "${name}" is not a valid name (lower case letters, digits and '-', at most 63 characters)`,
    );
  return name;
}

function stringMap(v: unknown, where: string, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw wrongType(where, what, "a map", v);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (val !== null && typeof val === "object") throw wrongType(where, `${what}.${k}`, "a string", val);
    out[k] = String(val ?? "");
  }
  return out;
}

function scalarList(v: unknown, where: string, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => s !== null && typeof s === "object"))
    throw wrongType(where, what, "a list of strings", v);
  return v.map((s) => String(s ?? ""));
}

function parseEnvVar(e: unknown, field: string, where: string): EnvVar {
  if (!isObject(e)) throw wrongType(where, field, "a map", e);
  if (typeof e.name !== "string" || !e.name) throw new LocalError(`${where}: ${field}.name: required`);
  if (e.valueFrom !== undefined) return { name: e.name, ...parseValueFrom(e.valueFrom, where, `${field}.valueFrom`) };
  if (e.value !== undefined && e.value !== null && typeof e.value === "object")
    throw wrongType(where, `${field}.value`, "a string", e.value);
  return { name: e.name, value: e.value === undefined || e.value === null ? "" : String(e.value) };
}

function parseEnv(v: unknown, where: string, field: string): EnvVar[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw wrongType(where, field, "a list", v);
  return v.map((e, i) => parseEnvVar(e, `${field}[${i}]`, where));
}

function parseContainer(c: unknown, where: string, field: string, volumes: readonly Volume[]): ContainerSpec {
  if (!isObject(c)) throw wrongType(where, field, "a map", c);
  const name = checkName(c.name, where, `${field}.name`);
  if (typeof c.image !== "string" || !c.image)
    throw c.image === undefined
      ? new LocalError(`${where}: container "${name}": \`image\` is required`)
      : wrongType(where, `${field}.image`, "a string", c.image);
  if (c.workingDir !== undefined && typeof c.workingDir !== "string")
    throw wrongType(where, `${field}.workingDir`, "a string", c.workingDir);
  return {
    name,
    image: c.image,
    command: scalarList(c.command, where, `${field}.command`),
    args: scalarList(c.args, where, `${field}.args`),
    env: parseEnv(c.env, where, `${field}.env`),
    envFrom: parseEnvFrom(c.envFrom, where, `${field}.envFrom`),
    volumeMounts: parseVolumeMounts(c.volumeMounts, where, `${field}.volumeMounts`, volumes),
    workingDir: c.workingDir,
  };
}

function parseContainers(
  v: unknown,
  where: string,
  what: string,
  required: boolean,
  volumes: readonly Volume[],
): ContainerSpec[] {
  if (v === undefined || v === null) {
    if (required) throw new LocalError(`${where}: \`${what}\` is required`);
    return [];
  }
  if (!Array.isArray(v)) throw wrongType(where, what, "a list", v);
  if (required && v.length === 0) throw new LocalError(`${where}: \`${what}\` must be a non-empty list`);
  return v.map((c, i) => parseContainer(c, where, `${what}[${i}]`, volumes));
}

function parseSelector(v: unknown, where: string, field = "labelSelector"): LabelSelector {
  if (v === undefined || v === null) return { matchLabels: {}, matchExpressions: [] };
  if (!isObject(v)) throw wrongType(where, field, "a map", v);
  return {
    matchLabels: stringMap(v.matchLabels, where, `${field}.matchLabels`),
    matchExpressions: parseRequirements(v.matchExpressions, where, `${field}.matchExpressions`),
  };
}

const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"];

function parseRequirement(r: unknown, where: string, field: string): LabelSelectorRequirement {
  if (!isObject(r)) throw wrongType(where, field, "a map", r);
  if (typeof r.key !== "string" || !r.key) throw new LocalError(`${where}: ${field}.key: required`);
  const op = r.operator;
  if (typeof op !== "string" || !OPERATORS.includes(op))
    throw new LocalError(
      `${where}: ${field}.operator: "${String(op)}" is not a valid selector operator (${OPERATORS.join(", ")})`,
    );
  const values = scalarList(r.values, where, `${field}.values`) ?? [];
  if ((op === "In" || op === "NotIn") && values.length === 0)
    throw new LocalError(`${where}: ${field}.values: must be non-empty for operator ${op}`);
  if ((op === "Exists" || op === "DoesNotExist") && values.length > 0)
    throw new LocalError(`${where}: ${field}.values: must be empty for operator ${op}`);
  return { key: r.key, operator: op as LabelSelectorRequirement["operator"], values };
}

function parseRequirements(v: unknown, where: string, field = "matchExpressions"): LabelSelectorRequirement[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw wrongType(where, field, "a list", v);
  return v.map((r, i) => parseRequirement(r, where, `${field}[${i}]`));
}

function parseTerms(v: unknown, where: string): PodAffinityTerm[] {
  if (v === undefined || v === null) return [];
  if (!isObject(v)) throw new LocalError(`${where} must be a map`);
  const req = v.requiredDuringSchedulingIgnoredDuringExecution;
  if (req === undefined || req === null) return [];
  if (!Array.isArray(req))
    throw new LocalError(`${where}.requiredDuringSchedulingIgnoredDuringExecution must be a list`);
  return req.map((t) => {
    if (!isObject(t)) throw new LocalError(`${where}: an affinity term must be a map`);
    if (typeof t.topologyKey !== "string" || !t.topologyKey)
      throw new LocalError(`${where}: an affinity term needs a topologyKey`);
    let namespaces = scalarList(t.namespaces, where, "namespaces") ?? [];
    if (isObject(t.namespaceSelector) && Object.keys(t.namespaceSelector).length === 0) namespaces = ["*"];
    return { topologyKey: t.topologyKey, labelSelector: parseSelector(t.labelSelector, where), namespaces };
  });
}

function parseAffinity(v: unknown, where: string): Affinity {
  if (v === undefined || v === null) return { podAffinity: [], podAntiAffinity: [], nodeAffinity: [] };
  if (!isObject(v)) throw new LocalError(`${where}: \`affinity\` must be a map`);
  let nodeAffinity: LabelSelectorRequirement[][] = [];
  if (isObject(v.nodeAffinity)) {
    const req = v.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    if (isObject(req) && Array.isArray(req.nodeSelectorTerms)) {
      nodeAffinity = req.nodeSelectorTerms.map((t) =>
        parseRequirements(isObject(t) ? t.matchExpressions : undefined, `${where}: nodeAffinity`),
      );
    }
  }
  return {
    podAffinity: parseTerms(v.podAffinity, `${where}: affinity.podAffinity`),
    podAntiAffinity: parseTerms(v.podAntiAffinity, `${where}: affinity.podAntiAffinity`),
    nodeAffinity,
  };
}

function parsePodSpec(v: unknown, where: string, field = "spec"): PodSpec {
  if (v === undefined || v === null) throw new LocalError(`${where}: the pod \`${field}\` is required`);
  if (!isObject(v)) throw wrongType(where, field, "a map", v);
  const volumes = parseVolumes(v.volumes, where, `${field}.volumes`);
  const containers = parseContainers(v.containers, where, `${field}.containers`, true, volumes);
  const initContainers = parseContainers(v.initContainers, where, `${field}.initContainers`, false, volumes);
  const names = new Set<string>();
  for (const c of [...initContainers, ...containers]) {
    if (names.has(c.name)) throw new LocalError(`${where}: two containers are named "${c.name}"`);
    names.add(c.name);
  }
  if (v.nodeName !== undefined && v.nodeName !== null && typeof v.nodeName !== "string")
    throw wrongType(where, `${field}.nodeName`, "a string", v.nodeName);
  return {
    volumes,
    containers,
    initContainers,
    nodeName: typeof v.nodeName === "string" && v.nodeName ? v.nodeName : undefined,
    nodeSelector: stringMap(v.nodeSelector, where, `${field}.nodeSelector`),
    affinity: parseAffinity(v.affinity, where),
  };
}

function matchesLabels(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function checkNetworkService(obj: Json, base: ObjectBase): NetworkServiceManifest {
  const { label, name, namespace, source } = base;
  const apiVersion = String(obj.apiVersion ?? "");
  if (!apiVersion.startsWith("networkservicemesh.io/"))
    throw new LocalError(`${label}: apiVersion must be networkservicemesh.io/v1, not "${apiVersion}"`);
  const spec = isObject(obj.spec) ? obj.spec : {};
  let record: NetworkService;
  try {
    record = fromJson(NetworkServiceSchema, { ...(spec as object), name } as never);
  } catch (err) {
    throw new LocalError(`${label}: bad spec: ${(err as Error).message}`);
  }
  // Upstream's registry gives a NetworkService without payload IP (its setpayload element).
  if (!record.payload) record.payload = DEFAULT_NS_PAYLOAD;
  if (record.payload !== "ETHERNET" && record.payload !== "IP")
    throw new LocalError(`${label}: payload must be ETHERNET or IP, not "${record.payload}"`);
  return { kind: "NetworkService", name, namespace, record, source };
}

function checkPod(obj: Json, base: ObjectBase): WorkloadManifest {
  const { label, name, namespace, source, meta } = base;
  return {
    kind: "Pod",
    name,
    namespace,
    replicas: 1,
    labels: stringMap(meta.labels, label, "metadata.labels"),
    annotations: stringMap(meta.annotations, label, "metadata.annotations"),
    spec: parsePodSpec(obj.spec, label, "spec"),
    rawSpec: obj.spec,
    source,
  };
}

function checkReplicas(spec: Json, label: string): number {
  const replicas = spec.replicas === undefined || spec.replicas === null ? 1 : spec.replicas;
  if (typeof replicas !== "number") throw wrongType(label, "spec.replicas", "an integer", replicas);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 100)
    throw new LocalError(`${label}: spec.replicas: ${replicas} is not an integer from 0 to 100`);
  return replicas;
}

function checkDeployment(obj: Json, base: ObjectBase): WorkloadManifest {
  const { label, name, namespace, source } = base;
  if (obj.spec === undefined || obj.spec === null) throw new LocalError(`${label}: \`spec\` is required`);
  if (!isObject(obj.spec)) throw wrongType(label, "spec", "a map", obj.spec);
  const spec = obj.spec;
  const replicas = obj.kind === "DaemonSet" ? 0 : checkReplicas(spec, label);
  if (spec.template === undefined) throw new LocalError(`${label}: \`spec.template\` is required`);
  if (!isObject(spec.template)) throw wrongType(label, "spec.template", "a map", spec.template);
  const template = spec.template;
  const tmeta = metaOf(template);
  const labels = stringMap(tmeta.labels, label, "spec.template.metadata.labels");
  const selector = parseSelector(spec.selector, label, "spec.selector");
  if (Object.keys(selector.matchLabels).length > 0 && !matchesLabels(selector.matchLabels, labels))
    throw new LocalError(`${label}: spec.selector does not match the template labels`);
  return {
    kind: obj.kind === "DaemonSet" ? "DaemonSet" : "Deployment",
    name,
    namespace,
    replicas,
    labels,
    annotations: stringMap(tmeta.annotations, label, "spec.template.metadata.annotations"),
    spec: parsePodSpec(template.spec, label, "spec.template.spec"),
    rawSpec: template,
    source,
  };
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

function checkConfigKeys(data: Record<string, string>, label: string, field: string): void {
  for (const key of Object.keys(data))
    if (key.length > 253 || !CONFIG_KEY.test(key) || key === "." || key === "..")
      throw new LocalError(`${label}: ${field}: "${key}" is not a valid key (letters, digits, '-', '_' and '.')`);
}

function stringData(v: unknown, label: string, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw wrongType(label, field, "a map", v);
  for (const [k, val] of Object.entries(v))
    if (typeof val !== "string") throw wrongType(label, `${field}.${k}`, "a string", val);
  checkConfigKeys(v as Record<string, string>, label, field);
  return v as Record<string, string>;
}

function base64Data(v: unknown, label: string, field: string): Record<string, string> {
  const data = stringData(v, label, field);
  for (const [k, val] of Object.entries(data))
    if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(val))
      throw new LocalError(`${label}: ${field}.${k}: not valid base64 (use stringData for plain text)`);
  return data;
}

/** A ConfigMap or Secret: its data checked; a Secret's `stringData` folded into `data` (base64). */
function checkConfigData(obj: Json, label: string): Json {
  if (obj.kind === "ConfigMap") {
    const data = stringData(obj.data, label, "data");
    const binaryData = base64Data(obj.binaryData, label, "binaryData");
    const twice = Object.keys(data).find((k) => k in binaryData);
    if (twice) throw new LocalError(`${label}: data.${twice}: also in binaryData`);
    return obj;
  }
  const data = base64Data(obj.data, label, "data");
  const plain = stringData(obj.stringData, label, "stringData");
  if (obj.type !== undefined && typeof obj.type !== "string") throw wrongType(label, "type", "a string", obj.type);
  const folded = { ...data };
  for (const [k, v] of Object.entries(plain)) folded[k] = Buffer.from(v).toString("base64");
  const { stringData: _s, ...rest } = obj;
  return { ...rest, type: obj.type ?? "Opaque", data: folded };
}

function checkStored(obj: Json, base: ObjectBase, stored: StoredKind): StoredManifest {
  const body = obj.kind === "ConfigMap" || obj.kind === "Secret" ? checkConfigData(obj, base.label) : obj;
  const namespace = stored.clusterScoped ? "" : base.namespace;
  const metadata = { ...base.meta, name: base.name, ...(namespace ? { namespace } : {}) };
  return {
    kind: "Object",
    objectKind: stored.kind,
    name: base.name,
    namespace,
    body: { ...body, metadata },
    source: base.source,
  };
}

/** What every kind has: where it came from, its checked name and namespace. */
interface ObjectBase {
  readonly source: string;
  /** `file: Kind/name`, for messages. */
  readonly label: string;
  readonly meta: Json;
  readonly name: string;
  readonly namespace: string;
}

/** The kind of an object: one the runtime runs, one it stores, or a one-line error naming the object. */
function kindOf(obj: Json, source: string, label: string, crds: readonly StoredKind[]): StoredKind | undefined {
  const kind = obj.kind;
  if (kind === undefined || kind === null || kind === "") throw new LocalError(`${source}: the object has no \`kind\``);
  if (typeof kind !== "string") throw wrongType(label, "kind", "a string", kind);
  if ((SUPPORTED_KINDS as readonly string[]).includes(kind)) return undefined;
  const stored = storedKindOf(kind, crds);
  if (stored) return stored;
  throw new LocalError(
    `${label}: kind: no matches for kind "${kind}" in version "${String(obj.apiVersion ?? "")}" (known here: ${SUPPORTED_KINDS.join(", ")}, ConfigMap, Secret, Service, RBAC and the kinds of CustomResourceDefinitions)`,
  );
}

/** Checks one raw object and returns it typed; `crds`: kinds defined by CustomResourceDefinitions. */
export function checkObject(raw: RawObject, defaultNamespace = "default", crds: readonly StoredKind[] = []): Manifest {
  const { obj, source } = raw;
  if (obj.metadata !== undefined && !isObject(obj.metadata))
    throw wrongType(`${source}: ${String(obj.kind ?? "?")}`, "metadata", "a map", obj.metadata);
  const meta = metaOf(obj);
  const label = `${source}: ${String(obj.kind ?? "?")}/${String(meta.name ?? "?")}`;
  const stored = kindOf(obj, source, label, crds);
  const kind = obj.kind as string;
  const plainName = kind === "Namespace" || kind === "Service";
  const name = checkName(meta.name, label, "metadata.name", !plainName);
  const namespace =
    meta.namespace === undefined ? defaultNamespace : checkName(meta.namespace, label, "metadata.namespace");
  const base: ObjectBase = { source, label, meta, name, namespace };
  if (stored) return checkStored(obj, base, stored);
  switch (kind) {
    case "Namespace":
      return { kind, name, annotations: stringMap(meta.annotations, label, "metadata.annotations"), source };
    case "NetworkService":
      return checkNetworkService(obj, base);
    case "Pod":
      return checkPod(obj, base);
    default:
      return checkDeployment(obj, base);
  }
}

/** The kinds CustomResourceDefinitions among `raws` define. */
function definedKinds(raws: readonly RawObject[]): StoredKind[] {
  return raws
    .filter((r) => r.obj.kind === "CustomResourceDefinition")
    .map((r) => crdKind(r.obj))
    .filter((k): k is StoredKind => k !== undefined);
}

/** The identity of a manifest for duplicate checks: `Kind/namespace/name`. */
function identity(m: Manifest): string {
  const kind = m.kind === "Object" ? m.objectKind : m.kind;
  return `${kind}/${m.kind === "Namespace" ? "" : m.namespace}/${m.name}`;
}

/**
 * Loads and checks every object of `paths` (files or directories); objects without a namespace
 * go to `defaultNamespace` (kubectl's `-n`). `crds`: kinds already defined in the runtime.
 */
export function loadManifests(
  paths: readonly string[],
  warn: (msg: string) => void = () => {},
  defaultNamespace = "default",
  crds: readonly StoredKind[] = [],
): Manifest[] {
  if (paths.length === 0) throw new LocalError("no manifests given: use -f FILE|DIR");
  checkName(defaultNamespace, "-n", "namespace");
  const raws = paths.flatMap((p) => loadObjects(p, warn));
  const kinds = [...crds, ...definedKinds(raws)];
  const out = raws.map((raw) => checkObject(raw, defaultNamespace, kinds));
  const seen = new Set<string>();
  for (const m of out) {
    const key = identity(m);
    if (seen.has(key)) throw new LocalError(`${m.source}: ${describe(m)} appears twice`);
    seen.add(key);
  }
  return out;
}

/** Human form of an object: `deployment/nse-kernel`. */
export function describe(m: Manifest): string {
  return `${(m.kind === "Object" ? m.objectKind : m.kind).toLowerCase()}/${m.name}`;
}

/** The base name of an image (`ghcr.io/networkservicemesh/ci/cmd-nsc:v1` → `cmd-nsc`). */
export function imageName(image: string): string {
  const noDigest = image.split("@")[0]!;
  const last = basename(noDigest);
  return last.split(":")[0]!;
}
