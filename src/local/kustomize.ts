// SPDX-License-Identifier: Apache-2.0
/**
 * The kustomization fields beyond the basics of ./manifest.ts: JSON 6902 patches
 * (`patchesJson6902`, and `patches` entries whose content is a list of operations, applied with
 * the fast-json-patch library), `namePrefix`/`nameSuffix`, and `labels` (pairs, with
 * `includeSelectors`/`includeTemplates`). Objects are changed in place; a patch that does not
 * apply is a {@link LocalError} naming the patch and the object.
 */
import { dirname, resolve } from "node:path";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { parse } from "yaml";
import { LocalError } from "./errors.js";

type Json = Record<string, unknown>;

/** An object as the kustomization holds it (see RawObject in ./manifest.ts). */
interface Held {
  obj: Json;
  source: string;
}

export interface Json6902Patch {
  readonly ops: Operation[];
  readonly target: Json;
  readonly source: string;
}

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The operations of a JSON 6902 patch text (YAML or JSON), or undefined when it is not a list. */
export function json6902Ops(text: string, source: string): Operation[] | undefined {
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new LocalError(`${source}: malformed patch: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!Array.isArray(value)) return undefined;
  for (const [i, op] of value.entries())
    if (!isObject(op) || typeof op.op !== "string" || typeof op.path !== "string")
      throw new LocalError(`${source}: operation ${i} needs \`op\` and \`path\``);
  return value as Operation[];
}

/** The kustomization's `patchesJson6902` (each with `target` and `path` or `patch`). */
export function patchesJson6902(k: Json, file: string, readText: (f: string) => string): Json6902Patch[] {
  const list = k.patchesJson6902;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new LocalError(`${file}: \`patchesJson6902\` must be a list`);
  return list.map((p) => {
    if (!isObject(p) || !isObject(p.target))
      throw new LocalError(`${file}: a patchesJson6902 entry needs a \`target\``);
    const source = typeof p.path === "string" ? p.path : `${file} (inline patch)`;
    const text = typeof p.path === "string" ? readText(resolve(dirname(file), p.path)) : p.patch;
    if (typeof text !== "string") throw new LocalError(`${file}: a patchesJson6902 entry needs \`path\` or \`patch\``);
    const ops = json6902Ops(text, source);
    if (!ops) throw new LocalError(`${source}: a JSON 6902 patch must be a list of operations`);
    return { ops, target: p.target, source };
  });
}

function targets(objects: readonly Held[], target: Json): Held[] {
  const meta = (o: Json) => (isObject(o.metadata) ? o.metadata : {});
  return objects.filter(
    (o) =>
      (target.kind === undefined || o.obj.kind === target.kind) &&
      (target.name === undefined || meta(o.obj).name === target.name) &&
      (target.namespace === undefined || meta(o.obj).namespace === target.namespace),
  );
}

/** Applies a JSON 6902 patch to the objects its target names. */
export function applyJson6902(objects: readonly Held[], p: Json6902Patch): void {
  const hits = targets(objects, p.target);
  if (hits.length === 0)
    throw new LocalError(
      `${p.source}: the patch targets ${String(p.target.kind ?? "?")}/${String(p.target.name ?? "?")}, which is not among the resources`,
    );
  for (const h of hits) {
    try {
      h.obj = fastJsonPatch.applyPatch(structuredClone(h.obj), p.ops, true, false).newDocument as Json;
    } catch (err) {
      const why = (err as Error).message.split("\n")[0];
      throw new LocalError(
        `${p.source}: cannot patch ${String(h.obj.kind)}/${String((h.obj.metadata as Json)?.name)}: ${why}`,
      );
    }
  }
}

/** `namePrefix`/`nameSuffix`: every object but Namespaces is renamed. */
export function applyNameAffixes(objects: readonly Held[], prefix: unknown, suffix: unknown, file: string): void {
  if (prefix === undefined && suffix === undefined) return;
  if ((prefix !== undefined && typeof prefix !== "string") || (suffix !== undefined && typeof suffix !== "string"))
    throw new LocalError(`${file}: namePrefix and nameSuffix must be strings`);
  for (const o of objects) {
    if (o.obj.kind === "Namespace" || !isObject(o.obj.metadata) || typeof o.obj.metadata.name !== "string") continue;
    o.obj = { ...o.obj, metadata: { ...o.obj.metadata, name: `${prefix ?? ""}${o.obj.metadata.name}${suffix ?? ""}` } };
  }
}

function addLabels(at: Json, key: string, labels: Json): Json {
  const cur = isObject(at[key]) ? (at[key] as Json) : {};
  return { ...at, [key]: { ...cur, ...labels } };
}

function labelObject(obj: Json, pairs: Json, selectors: boolean, templates: boolean): Json {
  let out = addLabels(obj, "metadata", {});
  out.metadata = addLabels(out.metadata as Json, "labels", pairs);
  if (!["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"].includes(String(obj.kind)) || !isObject(obj.spec))
    return out;
  let spec = obj.spec;
  if (selectors)
    spec = { ...spec, selector: addLabels(isObject(spec.selector) ? spec.selector : {}, "matchLabels", pairs) };
  if (selectors || templates) {
    const tmpl = isObject(spec.template) ? spec.template : {};
    const tmeta = isObject(tmpl.metadata) ? tmpl.metadata : {};
    spec = { ...spec, template: { ...tmpl, metadata: addLabels(tmeta, "labels", pairs) } };
  }
  out = { ...out, spec };
  return out;
}

/** The new-style `labels` field: `[{pairs, includeSelectors, includeTemplates}]`. */
export function applyLabels(objects: readonly Held[], labels: unknown, file: string): void {
  if (labels === undefined || labels === null) return;
  if (!Array.isArray(labels)) throw new LocalError(`${file}: \`labels\` must be a list of {pairs, includeSelectors}`);
  for (const entry of labels) {
    if (!isObject(entry) || !isObject(entry.pairs)) throw new LocalError(`${file}: a \`labels\` entry needs \`pairs\``);
    const pairs = Object.fromEntries(Object.entries(entry.pairs).map(([k, v]) => [k, String(v)]));
    for (const o of objects)
      o.obj = labelObject(o.obj, pairs, entry.includeSelectors === true, entry.includeTemplates === true);
  }
}
