// SPDX-License-Identifier: Apache-2.0
/**
 * The parts of a pod spec that refer to data: `volumes` (configMap, secret, emptyDir, hostPath,
 * downwardAPI), containers' `volumeMounts`, `env[].valueFrom` (fieldRef, configMapKeyRef,
 * secretKeyRef) and `envFrom`. Every problem is a {@link LocalError} naming the object and the
 * field (`pod.yaml: Pod/p: spec.volumes[0].configMap.name: expected a string, got a number`).
 */
import { LocalError } from "./errors.js";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A key of a ConfigMap or Secret written to a relative path of the volume. */
export interface KeyToPath {
  readonly key: string;
  readonly path: string;
}

export interface DownwardItem {
  readonly path: string;
  readonly fieldPath: string;
}

export type VolumeSource =
  | {
      readonly type: "configMap" | "secret";
      readonly name: string;
      readonly items?: readonly KeyToPath[];
      readonly optional: boolean;
    }
  | { readonly type: "emptyDir" }
  | { readonly type: "hostPath"; readonly path: string; readonly hostType: string }
  | { readonly type: "downwardAPI"; readonly items: readonly DownwardItem[] };

export interface Volume {
  readonly name: string;
  readonly source: VolumeSource;
}

export interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
  readonly subPath?: string;
  readonly readOnly: boolean;
}

/** A reference to one key of a ConfigMap or Secret. */
export interface KeyRef {
  readonly from: "configMap" | "secret";
  readonly name: string;
  readonly key: string;
  readonly optional: boolean;
}

/** `envFrom`: every key of a ConfigMap or Secret, with a prefix. */
export interface EnvFrom {
  readonly from: "configMap" | "secret";
  readonly name: string;
  readonly prefix: string;
  readonly optional: boolean;
}

/** The description of a value's type in messages: `a string`, `a number`, `a list`, `a map`. */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (isObject(v)) return "a map";
  return typeof v === "number" ? "a number" : typeof v === "boolean" ? "a boolean" : `a ${typeof v}`;
}

/** A wrong type at `field` of the object `at` (`file: Kind/name`). */
export function wrongType(at: string, field: string, expected: string, v: unknown): LocalError {
  return new LocalError(`${at}: ${field}: expected ${expected}, got ${typeName(v)}`);
}

function str(v: unknown, at: string, field: string, required = true): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw new LocalError(`${at}: ${field}: required`);
    return undefined;
  }
  if (typeof v !== "string") throw wrongType(at, field, "a string", v);
  return v;
}

function bool(v: unknown, at: string, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw wrongType(at, field, "a boolean", v);
  return v;
}

function list(v: unknown, at: string, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw wrongType(at, field, "a list", v);
  return v;
}

function map(v: unknown, at: string, field: string): Json {
  if (!isObject(v)) throw wrongType(at, field, "a map", v);
  return v;
}

/** A relative path without `..` (volume items, subPath). */
function relativePath(v: unknown, at: string, field: string): string {
  const p = str(v, at, field)!;
  if (p === "" || p.startsWith("/") || p.split("/").includes(".."))
    throw new LocalError(`${at}: ${field}: "${p}" must be a relative path without '..'`);
  return p;
}

function keyItems(v: unknown, at: string, field: string): KeyToPath[] | undefined {
  if (v === undefined || v === null) return undefined;
  return list(v, at, field).map((item, i) => {
    const m = map(item, at, `${field}[${i}]`);
    return { key: str(m.key, at, `${field}[${i}].key`)!, path: relativePath(m.path, at, `${field}[${i}].path`) };
  });
}

/** The field paths `fieldRef` may name (besides `metadata.labels['k']` and `metadata.annotations['k']`). */
export const FIELD_PATHS = [
  "metadata.name",
  "metadata.namespace",
  "metadata.uid",
  "metadata.labels",
  "metadata.annotations",
  "spec.nodeName",
  "spec.serviceAccountName",
  "status.podIP",
  "status.podIPs",
  "status.hostIP",
  "status.hostIPs",
];

function fieldPath(v: unknown, at: string, field: string): string {
  const p = str(v, at, field)!;
  if (FIELD_PATHS.includes(p) || /^metadata\.(labels|annotations)\['[^']+'\]$/.test(p)) return p;
  throw new LocalError(`${at}: ${field}: "${p}" is not a supported field path (supported: ${FIELD_PATHS.join(", ")})`);
}

function downwardItems(v: unknown, at: string, field: string): DownwardItem[] {
  return list(v, at, field).map((item, i) => {
    const m = map(item, at, `${field}[${i}]`);
    const ref = map(m.fieldRef, at, `${field}[${i}].fieldRef`);
    return {
      path: relativePath(m.path, at, `${field}[${i}].path`),
      fieldPath: fieldPath(ref.fieldPath, at, `${field}[${i}].fieldRef.fieldPath`),
    };
  });
}

const SOURCES = ["configMap", "secret", "emptyDir", "hostPath", "downwardAPI"] as const;

function volumeSource(v: Json, at: string, field: string): VolumeSource {
  const present = Object.keys(v).filter((k) => k !== "name");
  const type = present.find((k) => (SOURCES as readonly string[]).includes(k));
  if (!type)
    throw new LocalError(
      `${at}: ${field}: volume type ${present.length ? `"${present[0]}"` : "missing"} is not supported here (supported: ${SOURCES.join(", ")})`,
    );
  const s = map(v[type], at, `${field}.${type}`);
  const f = `${field}.${type}`;
  switch (type) {
    case "configMap":
      return {
        type,
        name: str(s.name, at, `${f}.name`)!,
        items: keyItems(s.items, at, `${f}.items`),
        optional: bool(s.optional, at, `${f}.optional`),
      };
    case "secret":
      return {
        type,
        name: str(s.secretName, at, `${f}.secretName`)!,
        items: keyItems(s.items, at, `${f}.items`),
        optional: bool(s.optional, at, `${f}.optional`),
      };
    case "hostPath": {
      const path = str(s.path, at, `${f}.path`)!;
      if (!path.startsWith("/")) throw new LocalError(`${at}: ${f}.path: "${path}" must be an absolute path`);
      return { type, path, hostType: str(s.type, at, `${f}.type`, false) ?? "" };
    }
    case "downwardAPI":
      return { type, items: downwardItems(s.items, at, `${f}.items`) };
    default:
      return { type: "emptyDir" };
  }
}

/** `spec.volumes` (names unique). */
export function parseVolumes(v: unknown, at: string, field = "spec.volumes"): Volume[] {
  const names = new Set<string>();
  return list(v, at, field).map((item, i) => {
    const m = map(item, at, `${field}[${i}]`);
    const name = str(m.name, at, `${field}[${i}].name`)!;
    if (names.has(name)) throw new LocalError(`${at}: ${field}[${i}].name: "${name}" is used by two volumes`);
    names.add(name);
    return { name, source: volumeSource(m, at, `${field}[${i}]`) };
  });
}

/** A container's `volumeMounts`; each must name one of `volumes`. */
export function parseVolumeMounts(v: unknown, at: string, field: string, volumes: readonly Volume[]): VolumeMount[] {
  return list(v, at, field).map((item, i) => {
    const f = `${field}[${i}]`;
    const m = map(item, at, f);
    const name = str(m.name, at, `${f}.name`)!;
    if (!volumes.some((x) => x.name === name))
      throw new LocalError(`${at}: ${f}.name: no volume named "${name}" in spec.volumes`);
    const mountPath = str(m.mountPath, at, `${f}.mountPath`)!;
    if (!mountPath.startsWith("/") || mountPath.split("/").includes(".."))
      throw new LocalError(`${at}: ${f}.mountPath: "${mountPath}" must be an absolute path without '..'`);
    const subPath =
      m.subPath === undefined || m.subPath === "" ? undefined : relativePath(m.subPath, at, `${f}.subPath`);
    return { name, mountPath, subPath, readOnly: bool(m.readOnly, at, `${f}.readOnly`) };
  });
}

/** `env[i].valueFrom`: a field path or a key of a ConfigMap/Secret. */
export function parseValueFrom(v: unknown, at: string, field: string): { fieldPath?: string; keyRef?: KeyRef } {
  const m = map(v, at, field);
  if (m.fieldRef !== undefined)
    return {
      fieldPath: fieldPath(map(m.fieldRef, at, `${field}.fieldRef`).fieldPath, at, `${field}.fieldRef.fieldPath`),
    };
  for (const [key, from] of [
    ["configMapKeyRef", "configMap"],
    ["secretKeyRef", "secret"],
  ] as const) {
    if (m[key] === undefined) continue;
    const r = map(m[key], at, `${field}.${key}`);
    return {
      keyRef: {
        from,
        name: str(r.name, at, `${field}.${key}.name`)!,
        key: str(r.key, at, `${field}.${key}.key`)!,
        optional: bool(r.optional, at, `${field}.${key}.optional`),
      },
    };
  }
  throw new LocalError(
    `${at}: ${field}: supported here are fieldRef, configMapKeyRef and secretKeyRef (got ${Object.keys(m).join(", ") || "nothing"})`,
  );
}

/** A container's `envFrom`. */
export function parseEnvFrom(v: unknown, at: string, field: string): EnvFrom[] {
  return list(v, at, field).map((item, i) => {
    const f = `${field}[${i}]`;
    const m = map(item, at, f);
    const prefix = str(m.prefix, at, `${f}.prefix`, false) ?? "";
    const which = m.configMapRef !== undefined ? "configMapRef" : m.secretRef !== undefined ? "secretRef" : undefined;
    if (!which) throw new LocalError(`${at}: ${f}: needs configMapRef or secretRef`);
    const r = map(m[which], at, `${f}.${which}`);
    return {
      from: which === "configMapRef" ? "configMap" : "secret",
      name: str(r.name, at, `${f}.${which}.name`)!,
      prefix,
      optional: bool(r.optional, at, `${f}.${which}.optional`),
    };
  });
}
