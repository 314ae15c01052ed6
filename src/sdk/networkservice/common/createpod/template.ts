// SPDX-License-Identifier: Apache-2.0
/**
 * The part of Go's `text/template` that upstream's supplier pod templates use, rendered over a
 * Connection as upstream renders them (`{{ index .Labels "nodeName" }}`, `{{ .Labels.app }}`,
 * `{{ .NetworkService }}`, `{{ uuid }}`, with `{{-`/`-}}` trimming). Go field names map to the
 * Connection's fields by their first letter in lower case (`.Id` → `id`); a missing map key is
 * the empty string, as for Go's `map[string]string`. Anything else (pipelines, `if`, `range`,
 * variables) is refused with the action named, when the template is parsed.
 * Written by hand: no npm library implements Go templates, and this subset is a few lines.
 */
import { randomUUID } from "node:crypto";

type Value = unknown;

/** One `{{ … }}` action, resolved against the data. */
type Action = (data: Value) => string;

/** A compiled template: render it over a value (a Connection). */
export type Template = (data: Value) => string;

const FIELD_PATH = /^(\.[A-Za-z_][A-Za-z0-9_]*)+$|^\.$/;
const INDEX = /^index\s+(\.[A-Za-z0-9_.]*)\s+"((?:[^"\\]|\\.)*)"$/;

function fieldOf(value: Value, goName: string): Value {
  if (value === null || typeof value !== "object") return undefined;
  const obj = value as Record<string, Value>;
  if (obj instanceof Map) return obj.get(goName);
  if (Object.hasOwn(obj, goName)) return obj[goName];
  const tsName = goName[0]!.toLowerCase() + goName.slice(1);
  return Object.hasOwn(obj, tsName) ? obj[tsName] : undefined;
}

function lookup(data: Value, path: string): Value {
  if (path === ".") return data;
  let v = data;
  for (const part of path.slice(1).split(".")) v = fieldOf(v, part);
  return v;
}

function text(v: Value): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "object") return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
  return String(v);
}

function compileAction(body: string): Action {
  if (body === "uuid") return () => randomUUID();
  if (FIELD_PATH.test(body)) return (data) => text(lookup(data, body));
  const index = INDEX.exec(body);
  if (index) {
    const [, path, key] = index;
    const unquoted = JSON.parse(`"${key}"`) as string;
    return (data) => text(fieldOf(lookup(data, path!), unquoted));
  }
  throw new Error(`unsupported template action "{{${body}}}" (supported: .Field.Path, index .Map "key", uuid)`);
}

/** Compiles `source`; throws naming the first action it cannot render. */
export function compileTemplate(source: string): Template {
  const parts: (string | Action)[] = [];
  let rest = source;
  for (;;) {
    const open = rest.indexOf("{{");
    if (open < 0) break;
    const close = rest.indexOf("}}", open + 2);
    if (close < 0) throw new Error(`unclosed action at "${rest.slice(open, open + 20)}"`);
    let before = rest.slice(0, open);
    let body = rest.slice(open + 2, close);
    let after = rest.slice(close + 2);
    if (body.startsWith("-")) {
      before = before.trimEnd();
      body = body.slice(1);
    }
    if (body.endsWith("-")) {
      after = after.trimStart();
      body = body.slice(0, -1);
    }
    parts.push(before, compileAction(body.trim()));
    rest = after;
  }
  parts.push(rest);
  return (data) => parts.map((p) => (typeof p === "string" ? p : p(data))).join("");
}
