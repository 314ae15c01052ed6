// SPDX-License-Identifier: Apache-2.0
/**
 * kubectl's output forms for `get`: the default table and `-o wide`, `-o name`, `-o json`,
 * `-o yaml`, `-o jsonpath=…`, `-o go-template=…` / `--template …`. One object (a name given)
 * prints as itself, several as a `List`, as kubectl does. Pure.
 */
import { stringify } from "yaml";
import { LocalError } from "../errors.js";
import { age, table } from "../inspect.js";
import type { StoredKind } from "../kinds.js";
import { goTemplate } from "./gotemplate.js";
import { jsonPath } from "./jsonpath.js";
import { type Kind, type RunKind, resourceNameOf } from "./objects.js";

type Json = Record<string, unknown>;

export interface OutputOptions {
  /** `-o` as given: name, wide, json, yaml, jsonpath=…, go-template=…; undefined: the table. */
  readonly output?: string;
  /** `--template`. */
  readonly template?: string;
  /** A single object was asked for by name. */
  readonly single: boolean;
  /** `-A`: the table gets a NAMESPACE column. */
  readonly allNamespaces: boolean;
  /** Kinds defined by CustomResourceDefinitions (for `-o name`). */
  readonly crds?: readonly StoredKind[];
}

const m = (o: Json) => (o.metadata ?? {}) as Json;
const st = (o: Json) => (o.status ?? {}) as Json;
const sp = (o: Json) => (o.spec ?? {}) as Json;

/** What one container says for the STATUS column, or "running" (ready and running), or undefined. */
function containerReason(c: Json): string | undefined {
  const state = (c.state ?? {}) as Json;
  const terminated = state.terminated as Json | undefined;
  const waiting = state.waiting as Json | undefined;
  if (waiting?.reason) return String(waiting.reason);
  if (terminated) return terminated.reason ? String(terminated.reason) : `ExitCode:${terminated.exitCode}`;
  return c.ready && state.running ? "running" : undefined;
}

/** The STATUS column as kubectl computes it: the phase, or what the last container that is not running says. */
function podStatus(o: Json): string {
  const cs = (st(o).containerStatuses ?? []) as Json[];
  let reason = String(st(o).reason ?? st(o).phase);
  let hasRunning = false;
  for (const c of [...cs].reverse()) {
    const r = containerReason(c);
    if (r === "running") hasRunning = true;
    else if (r !== undefined) reason = r;
  }
  if (reason !== "Completed" || !hasRunning) return reason;
  const ready = ((st(o).conditions ?? []) as Json[]).some((c) => c.type === "Ready" && c.status === "True");
  return ready ? "Running" : "NotReady";
}

function podRow(o: Json, wide: boolean): string[] {
  const cs = (st(o).containerStatuses ?? []) as Json[];
  const ready = `${cs.filter((c) => c.ready).length}/${cs.length}`;
  const row = [String(m(o).name), ready, podStatus(o), "0", age(String(m(o).creationTimestamp))];
  return wide ? [...row, String(st(o).podIP ?? "<none>"), String(sp(o).nodeName || "<none>"), "<none>", "<none>"] : row;
}

function deploymentRow(o: Json, wide: boolean): string[] {
  const s = st(o);
  const row = [
    String(m(o).name),
    `${s.readyReplicas}/${sp(o).replicas}`,
    String(s.updatedReplicas),
    String(s.availableReplicas),
    age(String(m(o).creationTimestamp)),
  ];
  const sel = Object.entries((((sp(o).selector ?? {}) as Json).matchLabels ?? {}) as Json).map(([k, v]) => `${k}=${v}`);
  return wide ? [...row, "", "", sel.join(",") || "<none>"] : row;
}

function daemonSetRow(o: Json, wide: boolean): string[] {
  const s = st(o);
  const counts = [s.desiredNumberScheduled, s.currentNumberScheduled, s.numberReady, s.updatedNumberScheduled];
  const row = [String(m(o).name), ...counts.map(String), String(s.numberAvailable), "<none>"];
  const sel = Object.entries((((sp(o).selector ?? {}) as Json).matchLabels ?? {}) as Json).map(([k, v]) => `${k}=${v}`);
  return [...row, age(String(m(o).creationTimestamp)), ...(wide ? ["", "", sel.join(",") || "<none>"] : [])];
}

function nodeRow(o: Json, wide: boolean): string[] {
  const ready = ((st(o).conditions ?? []) as Json[]).some((c) => c.type === "Ready" && c.status === "True");
  const row = [
    String(m(o).name),
    ready ? "Ready" : "NotReady",
    "<none>",
    age(String(m(o).creationTimestamp)),
    "nsm-local",
  ];
  const ip = ((st(o).addresses ?? []) as Json[]).find((a) => a.type === "InternalIP")?.address;
  return wide ? [...row, String(ip ?? "<none>")] : row;
}

const HEADERS: Readonly<Record<RunKind, { base: string[]; wide: string[] }>> = {
  pods: {
    base: ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
    wide: ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
  },
  deployments: {
    base: ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
    wide: ["CONTAINERS", "IMAGES", "SELECTOR"],
  },
  daemonsets: {
    base: ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
    wide: ["CONTAINERS", "IMAGES", "SELECTOR"],
  },
  namespaces: { base: ["NAME", "STATUS", "AGE"], wide: [] },
  nodes: { base: ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], wide: ["INTERNAL-IP"] },
};

/** Columns of a stored kind: DATA for ConfigMaps, TYPE and DATA for Secrets, else the name and age. */
function storedColumns(kind: Kind): { base: string[]; wide: string[] } {
  if (kind === "configmaps") return { base: ["NAME", "DATA", "AGE"], wide: [] };
  if (kind === "secrets") return { base: ["NAME", "TYPE", "DATA", "AGE"], wide: [] };
  return { base: ["NAME", "AGE"], wide: [] };
}

function storedRow(kind: Kind, o: Json): string[] {
  const count = (v: unknown) => Object.keys((v ?? {}) as Json).length;
  const created = age(String(m(o).creationTimestamp));
  if (kind === "configmaps") return [String(m(o).name), String(count(o.data) + count(o.binaryData)), created];
  if (kind === "secrets") return [String(m(o).name), String(o.type ?? "Opaque"), String(count(o.data)), created];
  return [String(m(o).name), created];
}

function row(kind: Kind, o: Json, wide: boolean): string[] {
  switch (kind) {
    case "pods":
      return podRow(o, wide);
    case "deployments":
      return deploymentRow(o, wide);
    case "daemonsets":
      return daemonSetRow(o, wide);
    case "namespaces":
      return [String(m(o).name), String(st(o).phase), age(String(m(o).creationTimestamp))];
    case "nodes":
      return nodeRow(o, wide);
    default:
      return storedRow(kind, o);
  }
}

/** The kubectl table of `objects` (NAMESPACE first with -A). */
export function objectTable(kind: Kind, objects: readonly Json[], wide: boolean, allNamespaces: boolean): string {
  const h = HEADERS[kind as RunKind] ?? storedColumns(kind);
  const header = [...h.base, ...(wide ? h.wide : [])];
  const withNs = allNamespaces && kind !== "namespaces" && kind !== "nodes" && objects.some((o) => m(o).namespace);
  const rows = objects.map((o) => [...(withNs ? [String(m(o).namespace)] : []), ...row(kind, o, wide)]);
  return table(withNs ? ["NAMESPACE", ...header] : header, rows);
}

function listOf(objects: readonly Json[], single: boolean): unknown {
  if (single && objects.length === 1) return objects[0];
  return { apiVersion: "v1", items: objects, kind: "List", metadata: { resourceVersion: "" } };
}

/** What `-o`/`--template` ask for, checked: the format and its template. */
export function outputFormat(options: Pick<OutputOptions, "output" | "template">): {
  format: string;
  template?: string;
} {
  const o = options.output;
  if (o === undefined)
    return options.template !== undefined ? { format: "go-template", template: options.template } : { format: "table" };
  const eq = o.indexOf("=");
  const format = eq < 0 ? o : o.slice(0, eq);
  const template = eq < 0 ? options.template : o.slice(eq + 1);
  if (["name", "wide", "json", "yaml"].includes(format)) return { format };
  if (format === "jsonpath" || format === "go-template" || format === "template") {
    if (template === undefined || template === "")
      throw new LocalError(`template format specified but no template given (use -o ${format}=TEMPLATE)`);
    return { format: format === "template" ? "go-template" : format, template };
  }
  throw new LocalError(
    `unable to match a printer suitable for the output format "${o}", allowed formats are: go-template, go-template-file, json, jsonpath, name, wide, yaml`,
  );
}

/** Prints `objects` as `options` ask. */
export function render(kind: Kind, objects: readonly Json[], options: OutputOptions): string {
  const { format, template } = outputFormat(options);
  switch (format) {
    case "name":
      return objects.map((o) => `${resourceNameOf(kind, options.crds)}/${m(o).name}\n`).join("");
    case "json":
      return `${JSON.stringify(listOf(objects, options.single), null, 4)}\n`;
    case "yaml":
      return stringify(listOf(objects, options.single));
    case "jsonpath":
      return jsonPath(template!, listOf(objects, options.single));
    case "go-template":
      return goTemplate(template!, listOf(objects, options.single));
    default:
      return objectTable(kind, objects, format === "wide", options.allNamespaces);
  }
}
