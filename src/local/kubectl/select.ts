// SPDX-License-Identifier: Apache-2.0
/**
 * kubectl's selectors: label selectors (`-l app=nsmgr,tier!=x,env in (a,b),!gone,present`) and
 * field selectors (`--field-selector spec.nodeName==node-1,metadata.name!=x`), parsed into
 * predicates. Written by hand: the grammar is small and no maintained npm library parses it
 * without a Kubernetes client. Bad input is a {@link LocalError} naming the requirement.
 */
import { LocalError } from "../errors.js";

export type Labels = Readonly<Record<string, string>>;
export type LabelPredicate = (labels: Labels) => boolean;

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas outside parentheses. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

function bad(requirement: string, why: string): LocalError {
  return new LocalError(`unable to parse requirement "${requirement}": ${why}`);
}

function checkKey(key: string, requirement: string): string {
  if (!KEY.test(key) || key.length > 316) throw bad(requirement, `invalid label key "${key}"`);
  return key;
}

function checkValue(value: string, requirement: string): string {
  if (!VALUE.test(value) || value.length > 63) throw bad(requirement, `invalid label value "${value}"`);
  return value;
}

function setRequirement(r: string): LabelPredicate | undefined {
  const m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(r);
  if (!m) return undefined;
  const key = checkKey(m[1]!, r);
  const values = m[3]!.split(",").map((v) => checkValue(v.trim(), r));
  if (m[2] === "in") return (l) => l[key] !== undefined && values.includes(l[key]!);
  return (l) => l[key] === undefined || !values.includes(l[key]!);
}

function labelRequirement(r: string): LabelPredicate {
  if (r === "") throw bad(r, "empty requirement");
  const set = setRequirement(r);
  if (set) return set;
  const m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(r);
  if (m) {
    const key = checkKey(m[1]!, r);
    const value = checkValue(m[3]!, r);
    return m[2] === "!=" ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  if (r.startsWith("!")) {
    const key = checkKey(r.slice(1).trim(), r);
    return (l) => l[key] === undefined;
  }
  const key = checkKey(r, r);
  return (l) => l[key] !== undefined;
}

/** A label selector as a predicate; undefined or "" selects everything. */
export function parseLabelSelector(text: string | undefined): LabelPredicate {
  if (text === undefined || text.trim() === "") return () => true;
  const reqs = splitTop(text).map(labelRequirement);
  return (labels) => reqs.every((r) => r(labels));
}

export type FieldPredicate = (fields: (path: string) => string | undefined) => boolean;

/**
 * A field selector as a predicate over an object's fields; `supported` lists the field paths
 * the kind knows (kubectl refuses the others: "field label not supported").
 */
export function parseFieldSelector(text: string | undefined, supported: readonly string[]): FieldPredicate {
  if (text === undefined || text.trim() === "") return () => true;
  const reqs = splitTop(text).map((r) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(r);
    if (!m) throw new LocalError(`invalid field selector "${r}": expected FIELD==VALUE or FIELD!=VALUE`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    if (!supported.includes(field))
      throw new LocalError(`field label not supported: ${field} (supported: ${supported.join(", ")})`);
    return op === "!="
      ? (f: (p: string) => string | undefined) => (f(field) ?? "") !== value
      : (f: (p: string) => string | undefined) => (f(field) ?? "") === value;
  });
  return (fields) => reqs.every((r) => r(fields));
}
