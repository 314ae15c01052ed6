// SPDX-License-Identifier: Apache-2.0
/**
 * Kustomize's `configMapGenerator` and `secretGenerator` (`literals`, `files`, `envs`, `type`,
 * `behavior`, `options` and the kustomization's `generatorOptions`), and the renames they and
 * `namePrefix`/`nameSuffix` cause: a renamed ConfigMap or Secret is renamed in every reference of
 * the pod specs (volumes, projected sources, `configMapKeyRef`/`secretKeyRef`, `envFrom`).
 *
 * The name hash suffix is kustomize's (checked against `kubectl kustomize`, kustomize v5.5): the
 * SHA-256 of the JSON (keys sorted, Go's HTML escaping) of `{data, kind, name: ""}` (a Secret:
 * with `type`; a ConfigMap: with `binaryData` when it has some), its first ten hex digits with
 * 0→g, 1→h, 3→k, a→m, e→t. It is appended once, by the outermost kustomization, after the
 * prefixes and suffixes of every level (`pre-cfg-suf-<hash>`).
 *
 * Written by hand: no npm library implements kustomize's generators.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { LocalError } from "./errors.js";

type Json = Record<string, unknown>;

/** An object as the kustomization holds it (RawObject of ./manifest.ts). */
export interface Generated {
  obj: Json;
  source: string;
  /** Made by a generator: gets the name hash suffix at the end (unless disabled). */
  generated?: boolean;
}

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function stringList(v: unknown, file: string, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string"))
    throw new LocalError(`${file}: ${field}: expected a list of strings`);
  return v;
}

/** `KEY=VALUE` (quotes around a literal's value removed, as kustomize does). */
function splitPair(text: string, file: string, field: string, unquote: boolean): [string, string] {
  const i = text.indexOf("=");
  if (i <= 0) throw new LocalError(`${file}: ${field}: "${text}" is not KEY=VALUE`);
  let value = text.slice(i + 1);
  if (unquote && value.length >= 2 && /^(["']).*\1$/s.test(value)) value = value.slice(1, -1);
  return [text.slice(0, i), value];
}

function readSource(path: string, file: string, field: string): string {
  try {
    return readFileSync(resolve(dirname(file), path), "utf8");
  } catch {
    throw new LocalError(`${file}: ${field}: ${path}: no such file`);
  }
}

/** The data of one generator entry: its env files, then files, then literals. */
function generatorData(g: Json, file: string, field: string): Record<string, string> {
  const data: Record<string, string> = {};
  const add = (k: string, v: string, what: string) => {
    if (k in data) throw new LocalError(`${file}: ${field}: key "${k}" appears twice (${what})`);
    data[k] = v;
  };
  const envs = [...stringList(g.envs, file, `${field}.envs`), ...(typeof g.env === "string" ? [g.env] : [])];
  for (const env of envs) {
    for (const line of readSource(env, file, `${field}.envs`).split("\n")) {
      const t = line.trim();
      if (t === "" || t.startsWith("#")) continue;
      const [k, v] = splitPair(t, file, `${field}.envs`, false);
      add(k, v, env);
    }
  }
  for (const f of stringList(g.files, file, `${field}.files`)) {
    const eq = f.indexOf("=");
    const [key, path] = eq > 0 ? [f.slice(0, eq), f.slice(eq + 1)] : [basename(f), f];
    add(key, readSource(path, file, `${field}.files`), f);
  }
  for (const l of stringList(g.literals, file, `${field}.literals`)) {
    const [k, v] = splitPair(l, file, `${field}.literals`, true);
    add(k, v, "literals");
  }
  return data;
}

/** Go's json.Marshal escaping of <, >, & (and U+2028/9), which the hash is over. */
function goJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function sortedKeys(m: unknown): unknown {
  if (!isObject(m)) return m ?? "";
  return Object.fromEntries(
    Object.keys(m)
      .sort()
      .map((k) => [k, m[k]]),
  );
}

/** Kustomize's name hash of a ConfigMap or Secret (see the module doc). */
export function nameHash(obj: Json): string {
  const encoded: Json =
    obj.kind === "Secret"
      ? { data: sortedKeys(obj.data), kind: "Secret", name: "", type: obj.type ?? "" }
      : {
          ...(isObject(obj.binaryData) ? { binaryData: sortedKeys(obj.binaryData) } : {}),
          data: sortedKeys(obj.data),
          kind: "ConfigMap",
          name: "",
        };
  const hex = createHash("sha256").update(goJson(encoded)).digest("hex");
  const map: Record<string, string> = { "0": "g", "1": "h", "3": "k", a: "m", e: "t" };
  return [...hex.slice(0, 10)].map((c) => map[c] ?? c).join("");
}

interface GeneratorOptions {
  readonly disableNameSuffixHash?: boolean;
  readonly labels?: Json;
  readonly annotations?: Json;
}

function options(v: unknown): GeneratorOptions {
  return isObject(v) ? (v as GeneratorOptions) : {};
}

/** One generated ConfigMap or Secret. */
function generate(kind: "ConfigMap" | "Secret", g: Json, file: string, field: string, global: GeneratorOptions) {
  if (typeof g.name !== "string" || !g.name) throw new LocalError(`${file}: ${field}.name: required`);
  const data = generatorData(g, file, field);
  const own = options(g.options);
  const labels = { ...(global.labels ?? {}), ...(own.labels ?? {}) };
  const annotations = { ...(global.annotations ?? {}), ...(own.annotations ?? {}) };
  const metadata: Json = { name: g.name };
  if (typeof g.namespace === "string") metadata.namespace = g.namespace;
  if (Object.keys(labels).length > 0) metadata.labels = labels;
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  const obj: Json =
    kind === "Secret"
      ? {
          apiVersion: "v1",
          kind,
          metadata,
          type: typeof g.type === "string" ? g.type : "Opaque",
          data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
        }
      : { apiVersion: "v1", kind, metadata, data };
  const hashed = !(own.disableNameSuffixHash ?? global.disableNameSuffixHash ?? false);
  return { obj, behavior: typeof g.behavior === "string" ? g.behavior : "create", hashed };
}

const nameOf = (o: Json) => (isObject(o.metadata) ? o.metadata.name : undefined);

/** Merges or replaces an existing object (`behavior: merge|replace`), or adds a new one (`create`). */
function place(objects: Generated[], made: ReturnType<typeof generate>, file: string, field: string): void {
  const { obj, behavior, hashed } = made;
  const existing = objects.find((o) => o.obj.kind === obj.kind && nameOf(o.obj) === nameOf(obj));
  if (behavior === "create") {
    if (existing)
      throw new LocalError(
        `${file}: ${field}: ${String(obj.kind)} "${String(nameOf(obj))}" already exists (use behavior: merge or replace)`,
      );
    objects.push({ obj, source: file, generated: hashed });
    return;
  }
  if (behavior !== "merge" && behavior !== "replace")
    throw new LocalError(`${file}: ${field}.behavior: "${behavior}" is not create, merge or replace`);
  if (!existing)
    throw new LocalError(`${file}: ${field}: no ${String(obj.kind)} "${String(nameOf(obj))}" to ${behavior}`);
  const data = behavior === "merge" ? { ...((existing.obj.data as Json) ?? {}), ...(obj.data as Json) } : obj.data;
  existing.obj = { ...existing.obj, data };
  existing.generated = existing.generated || hashed;
}

/** Adds the objects of the kustomization's generators to `objects` (or merges them into existing ones). */
export function runGenerators(k: Json, file: string, objects: Generated[]): void {
  const global = options(k.generatorOptions);
  for (const [field, kind] of [
    ["configMapGenerator", "ConfigMap"],
    ["secretGenerator", "Secret"],
  ] as const) {
    const list = k[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new LocalError(`${file}: ${field}: expected a list`);
    list.forEach((g, i) => {
      if (!isObject(g)) throw new LocalError(`${file}: ${field}[${i}]: expected a map`);
      place(objects, generate(kind, g, file, `${field}[${i}]`, global), file, `${field}[${i}]`);
    });
  }
}

/** The pod specs of an object: a Pod's, or a workload's template's. */
function podSpecs(o: Json): Json[] {
  const spec = isObject(o.spec) ? o.spec : undefined;
  if (!spec) return [];
  if (o.kind === "Pod") return [spec];
  const template = isObject(spec.template) ? spec.template : undefined;
  return template && isObject(template.spec) ? [template.spec] : [];
}

function renameIn(holder: unknown, field: string, from: string, to: string): void {
  if (isObject(holder) && holder[field] === from) holder[field] = to;
}

function renameInContainers(spec: Json, kind: "ConfigMap" | "Secret", from: string, to: string): void {
  const containers = [spec.containers, spec.initContainers].flatMap((c) => (Array.isArray(c) ? c : []));
  const [keyRef, ref] = kind === "ConfigMap" ? ["configMapKeyRef", "configMapRef"] : ["secretKeyRef", "secretRef"];
  for (const c of containers.filter(isObject)) {
    for (const e of (Array.isArray(c.env) ? c.env : []).filter(isObject))
      if (isObject(e.valueFrom)) renameIn(e.valueFrom[keyRef], "name", from, to);
    for (const e of (Array.isArray(c.envFrom) ? c.envFrom : []).filter(isObject)) renameIn(e[ref], "name", from, to);
  }
}

function renameInVolumes(spec: Json, kind: "ConfigMap" | "Secret", from: string, to: string): void {
  const [source, field] = kind === "ConfigMap" ? ["configMap", "name"] : ["secret", "secretName"];
  for (const v of (Array.isArray(spec.volumes) ? spec.volumes : []).filter(isObject)) {
    renameIn(v[source], field, from, to);
    const sources = isObject(v.projected) && Array.isArray(v.projected.sources) ? v.projected.sources : [];
    for (const s of sources.filter(isObject)) renameIn(s[source], "name", from, to);
  }
}

/** Renames references to a ConfigMap or Secret in every pod spec of `objects` (changed in place). */
export function renameReferences(
  objects: readonly Generated[],
  kind: "ConfigMap" | "Secret",
  from: string,
  to: string,
) {
  if (from === to) return;
  for (const o of objects) {
    for (const spec of podSpecs(o.obj)) {
      renameInVolumes(spec, kind, from, to);
      renameInContainers(spec, kind, from, to);
    }
  }
}

/** The ConfigMaps and Secrets among `objects` with their current names (to see what a rename changed). */
export function configNames(objects: readonly Generated[]): Map<Generated, string> {
  const names = new Map<Generated, string>();
  for (const o of objects)
    if ((o.obj.kind === "ConfigMap" || o.obj.kind === "Secret") && typeof nameOf(o.obj) === "string")
      names.set(o, nameOf(o.obj) as string);
  return names;
}

/** After a rename step: references follow every ConfigMap or Secret whose name changed. */
export function followRenames(objects: readonly Generated[], before: Map<Generated, string>): void {
  for (const [o, old] of before) {
    const now = nameOf(o.obj);
    if (typeof now === "string" && now !== old)
      renameReferences(objects, o.obj.kind as "ConfigMap" | "Secret", old, now);
  }
}

/** The outermost kustomization's last step: generated objects get their name hash suffix. */
export function appendNameHashes(objects: Generated[]): void {
  const before = configNames(objects);
  for (const o of objects) {
    if (!o.generated || !isObject(o.obj.metadata)) continue;
    o.obj = { ...o.obj, metadata: { ...o.obj.metadata, name: `${String(o.obj.metadata.name)}-${nameHash(o.obj)}` } };
    o.generated = false;
  }
  followRenames(objects, before);
}
