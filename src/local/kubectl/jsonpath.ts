// SPDX-License-Identifier: Apache-2.0
/**
 * The subset of kubectl's JSONPath (`-o jsonpath=…`) that scripts use: literal text,
 * `{.a.b}`, `{.items[0].status.podIP}`, `{.items[*].metadata.name}` (several results joined by
 * spaces), `{.metadata.labels['app']}`, `{.items[-1]}`, `{range .items[*]}…{end}` and quoted
 * text `{"\n"}`. Written by hand: kubectl's dialect (range/end, joining) is not what the npm
 * JSONPath libraries implement.
 */
import { LocalError } from "../errors.js";

type Step = { readonly key: string } | { readonly at: number } | { readonly all: true };

type JNode =
  | { readonly t: "text"; readonly s: string }
  | { readonly t: "path"; readonly steps: readonly Step[] }
  | { readonly t: "range"; readonly steps: readonly Step[]; readonly body: JNode[] };

const STEP =
  /\.([A-Za-z0-9_\-/]+)|\[\s*(-?\d+)\s*\]|\[\s*\*\s*\]|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\.(?=\[)|\.\*/y;

function stepOf(m: RegExpExecArray): Step | undefined {
  if (m[1] !== undefined) return { key: m[1] };
  if (m[2] !== undefined) return { at: Number(m[2]) };
  if (m[3] !== undefined || m[4] !== undefined) return { key: (m[3] ?? m[4])! };
  return m[0] === "." ? undefined : { all: true };
}

function parseSteps(expr: string): Step[] {
  let rest = expr.trim();
  if (rest === "." || rest === "$" || rest === "@") return [];
  if (rest.startsWith("$") || rest.startsWith("@")) rest = rest.slice(1);
  const steps: Step[] = [];
  const re = new RegExp(STEP.source, "y");
  while (re.lastIndex < rest.length) {
    const at = re.lastIndex;
    const m = re.exec(rest);
    if (!m) throw new LocalError(`jsonpath: cannot parse "${rest.slice(at)}" in {${expr}}`);
    const s = stepOf(m);
    if (s) steps.push(s);
  }
  return steps;
}

function blocks(template: string): { text: string; expr?: string }[] {
  const out: { text: string; expr?: string }[] = [];
  let rest = template;
  for (;;) {
    const open = rest.indexOf("{");
    if (open < 0) return [...out, { text: rest }];
    const close = rest.indexOf("}", open);
    if (close < 0) throw new LocalError(`jsonpath: unclosed "{" in ${template}`);
    out.push({ text: rest.slice(0, open), expr: rest.slice(open + 1, close).trim() });
    rest = rest.slice(close + 1);
  }
}

type Frame = { nodes: JNode[]; steps?: Step[] };

function addExpr(stack: Frame[], expr: string): void {
  const top = stack.at(-1)!;
  if (expr.startsWith('"')) top.nodes.push({ t: "text", s: JSON.parse(expr) });
  else if (expr.startsWith("'")) top.nodes.push({ t: "text", s: expr.slice(1, -1) });
  else if (expr.startsWith("range ")) stack.push({ nodes: [], steps: parseSteps(expr.slice(6)) });
  else if (expr === "end") {
    const done = stack.pop()!;
    if (!done.steps || stack.length === 0) throw new LocalError("jsonpath: {end} without {range}");
    stack.at(-1)!.nodes.push({ t: "range", steps: done.steps, body: done.nodes });
  } else top.nodes.push({ t: "path", steps: parseSteps(expr) });
}

/** Parses a kubectl JSONPath template. */
export function parseJsonPath(template: string): JNode[] {
  const stack: Frame[] = [{ nodes: [] }];
  for (const { text, expr } of blocks(template)) {
    if (text) stack.at(-1)!.nodes.push({ t: "text", s: text });
    if (expr !== undefined) addExpr(stack, expr);
  }
  if (stack.length !== 1) throw new LocalError("jsonpath: {range} without {end}");
  return stack[0]!.nodes;
}

function stepOne(v: unknown, s: Step): unknown[] {
  const isObj = v !== null && typeof v === "object";
  if ("key" in s) return isObj && s.key in v ? [(v as Record<string, unknown>)[s.key]] : [];
  if ("all" in s) return Array.isArray(v) ? v : isObj ? Object.values(v) : [];
  if (!Array.isArray(v)) return [];
  const i = s.at < 0 ? v.length + s.at : s.at;
  if (i < 0 || i >= v.length)
    throw new LocalError(`jsonpath: array index out of bounds: index ${s.at}, length ${v.length}`);
  return [v[i]];
}

function step(values: unknown[], s: Step): unknown[] {
  return values.flatMap((v) => stepOne(v, s));
}

function select(data: unknown, steps: readonly Step[]): unknown[] {
  return steps.reduce<unknown[]>((vals, s) => step(vals, s), [data]);
}

function show(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  return JSON.stringify(v);
}

function run(nodes: readonly JNode[], data: unknown, out: string[]): void {
  for (const n of nodes) {
    if (n.t === "text") out.push(n.s);
    else if (n.t === "path") out.push(select(data, n.steps).map(show).join(" "));
    else for (const item of select(data, n.steps)) run(n.body, item, out);
  }
}

/** Runs a kubectl JSONPath template on `data`. */
export function jsonPath(template: string, data: unknown): string {
  const out: string[] = [];
  run(parseJsonPath(template), data, out);
  return out.join("");
}
