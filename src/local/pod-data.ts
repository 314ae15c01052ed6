// SPDX-License-Identifier: Apache-2.0
/**
 * What a pod takes from ConfigMaps and Secrets: env values (`configMapKeyRef`, `secretKeyRef`,
 * `envFrom`) and volume files. A reference to an object or key that does not exist (and is not
 * `optional`) is a {@link LocalError} naming the workload and the field, found while planning,
 * before anything changes. Pure.
 */
import { LocalError } from "./errors.js";
import type { WorkloadManifest } from "./manifest.js";
import type { EnvFrom, KeyRef, Volume } from "./podspec.js";
import { downwardFiles, fieldValue, hostPathVolume, keyFiles, type VolumeState } from "./volumes.js";

type Json = Record<string, unknown>;

/** The data of a ConfigMap or Secret by namespace and name, undefined if there is none. */
export type ConfigLookup = (
  from: "configMap" | "secret",
  namespace: string,
  name: string,
) => Readonly<Record<string, Buffer>> | undefined;

/** A lookup that knows no object. */
export const NO_CONFIG: ConfigLookup = () => undefined;

/** The data of a stored ConfigMap (`data` and `binaryData`) or Secret (`data`, base64), as bytes. */
export function configData(body: Json): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const strings = (v: unknown) => (typeof v === "object" && v !== null ? (v as Record<string, string>) : {});
  if (body.kind === "ConfigMap") {
    for (const [k, v] of Object.entries(strings(body.data))) out[k] = Buffer.from(v);
    for (const [k, v] of Object.entries(strings(body.binaryData))) out[k] = Buffer.from(v, "base64");
  } else for (const [k, v] of Object.entries(strings(body.data))) out[k] = Buffer.from(v, "base64");
  return out;
}

const KIND_NAMES = { configMap: "ConfigMap", secret: "Secret" } as const;

/** Where a workload's pod spec is: `spec` for a Pod, `spec.template.spec` for a Deployment. */
export function specField(m: WorkloadManifest): string {
  return m.kind === "Pod" ? "spec" : "spec.template.spec";
}

/** `file: deployment/x` for messages. */
function label(m: WorkloadManifest): string {
  return `${m.source}: ${m.kind.toLowerCase()}/${m.name}`;
}

/** The value of a key reference; undefined for an optional one that is missing. */
export function keyRefValue(m: WorkloadManifest, ref: KeyRef, field: string, config: ConfigLookup): string | undefined {
  const refField = `${field}.valueFrom.${ref.from}KeyRef`;
  const data = config(ref.from, m.namespace, ref.name);
  if (!data) {
    if (ref.optional) return undefined;
    throw new LocalError(
      `${label(m)}: ${refField}.name: ${KIND_NAMES[ref.from]} "${ref.name}" not found in namespace "${m.namespace}"`,
    );
  }
  const value = data[ref.key];
  if (value === undefined) {
    if (ref.optional) return undefined;
    throw new LocalError(
      `${label(m)}: ${refField}.key: key "${ref.key}" not found in ${KIND_NAMES[ref.from]} "${ref.name}" (it has: ${Object.keys(data).join(", ") || "no keys"})`,
    );
  }
  return value.toString("utf8");
}

/** The variables of a container's `envFrom` (later sources win, as in Kubernetes). */
export function envFromValues(
  m: WorkloadManifest,
  sources: readonly EnvFrom[],
  field: string,
  config: ConfigLookup,
): Record<string, string> {
  const out: Record<string, string> = {};
  sources.forEach((s, i) => {
    const data = config(s.from, m.namespace, s.name);
    if (!data) {
      if (s.optional) return;
      throw new LocalError(
        `${label(m)}: ${field}.envFrom[${i}].${s.from}Ref.name: ${KIND_NAMES[s.from]} "${s.name}" not found in namespace "${m.namespace}"`,
      );
    }
    for (const [k, v] of Object.entries(data)) out[`${s.prefix}${k}`] = v.toString("utf8");
  });
  return out;
}

/** What a pod's volumes need to know about the pod. */
export interface VolumeContext {
  readonly manifest: WorkloadManifest;
  readonly config: ConfigLookup;
  /** The node's directory (upstream's NSM socket hostPath maps to it). */
  readonly nodeDir: string;
  /** Values of downward-API field paths. */
  readonly fields: Readonly<Record<string, string>>;
}

function configVolume(ctx: VolumeContext, v: Volume, field: string): VolumeState {
  const s = v.source;
  if (s.type !== "configMap" && s.type !== "secret") throw new Error("not a config volume");
  const m = ctx.manifest;
  const nameField = s.type === "configMap" ? "configMap.name" : "secret.secretName";
  const data = ctx.config(s.type, m.namespace, s.name);
  if (!data) {
    if (s.optional) return { name: v.name, type: "files", files: [] };
    throw new LocalError(
      `${label(m)}: ${field}.${nameField}: ${KIND_NAMES[s.type]} "${s.name}" not found in namespace "${m.namespace}"`,
    );
  }
  (s.items ?? []).forEach((item, i) => {
    if (data[item.key] === undefined && !s.optional)
      throw new LocalError(
        `${label(m)}: ${field}.${s.type}.items[${i}].key: key "${item.key}" not found in ${KIND_NAMES[s.type]} "${s.name}"`,
      );
  });
  return { name: v.name, type: "files", files: keyFiles(data, s.items) };
}

/** The pod's volumes as the started pod holds them (files computed now). */
export function podVolumes(ctx: VolumeContext): VolumeState[] {
  const m = ctx.manifest;
  return m.spec.volumes.map((v, i) => {
    const field = `${specField(m)}.volumes[${i}]`;
    switch (v.source.type) {
      case "configMap":
      case "secret":
        return configVolume(ctx, v, field);
      case "hostPath":
        return hostPathVolume(v, ctx.nodeDir);
      case "downwardAPI": {
        const value = (p: string) => fieldValue(p, ctx.fields, m.labels, m.annotations);
        return { name: v.name, type: "files", files: downwardFiles(v.source.items, value) };
      }
      default:
        return { name: v.name, type: "emptyDir" };
    }
  });
}

/** Whether a container's mount of `volume` is read-only (ConfigMap, Secret and downwardAPI always are). */
export function mountReadOnly(m: WorkloadManifest, volume: string, asked: boolean): boolean {
  const v = m.spec.volumes.find((x) => x.name === volume);
  return asked || (v !== undefined && ["configMap", "secret", "downwardAPI"].includes(v.source.type));
}
