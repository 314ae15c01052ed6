// SPDX-License-Identifier: Apache-2.0
/**
 * The subset of Go's text/template that kubectl scripts use with `-o go-template=…` and
 * `--template …`: text, `{{.a.b}}`, `{{"\n"}}`, `{{range PIPE}}…{{else}}…{{end}}`,
 * `{{if PIPE}}…{{else}}…{{end}}`, parentheses with a field chain after them
 * (`{{ (index .items 0).metadata.name }}`), and the functions index, len, printf (%s %d %v),
 * eq, ne, not, and, or; `{{-` and `-}}` trim spaces. A missing field prints `<no value>` as
 * kubectl's does. Written by hand: no maintained npm library implements Go templates.
 */
import { LocalError } from "../errors.js";

type Value = unknown;

type Expr =
  | { readonly t: "field"; readonly base?: Expr; readonly path: readonly string[] }
  | { readonly t: "lit"; readonly v: Value }
  | { readonly t: "call"; readonly fn: string; readonly args: readonly Expr[] };

type TNode =
  | { readonly t: "text"; readonly s: string }
  | { readonly t: "out"; readonly e: Expr }
  | { readonly t: "range" | "if"; readonly e: Expr; readonly body: TNode[]; readonly alt: TNode[] };

const FUNCTIONS = new Set(["index", "len", "printf", "eq", "ne", "not", "and", "or"]);

/** Tokens of one action: strings, numbers, `(`, `)`, field chains, identifiers. */
function lexAction(src: string): string[] {
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\.[A-Za-z0-9_.-]*|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|\S)/y;
  const out: string[] = [];
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  for (;;) {
    const at = re.lastIndex;
    m = re.exec(src);
    if (!m) {
      if (src.slice(at).trim() !== "") throw new LocalError(`template: cannot parse "${src.slice(at).trim()}"`);
      return out;
    }
    out.push(m[1]!);
  }
}

function fieldPath(tok: string): string[] {
  return tok === "." ? [] : tok.slice(1).split(".");
}

class ExprParser {
  #i = 0;
  constructor(
    readonly toks: string[],
    readonly src: string,
  ) {}

  parsePipeline(): Expr {
    const first = this.toks[this.#i];
    if (first !== undefined && FUNCTIONS.has(first)) {
      this.#i++;
      const args: Expr[] = [];
      while (this.#i < this.toks.length && this.toks[this.#i] !== ")") args.push(this.term());
      return { t: "call", fn: first, args };
    }
    return this.term();
  }

  term(): Expr {
    const tok = this.toks[this.#i++];
    if (tok === undefined) throw new LocalError(`template: missing value in "{{${this.src}}}"`);
    if (tok === "(") {
      const inner = this.parsePipeline();
      if (this.toks[this.#i++] !== ")") throw new LocalError(`template: unclosed "(" in "{{${this.src}}}"`);
      const next = this.toks[this.#i];
      if (next?.startsWith(".") && next.length > 1) {
        this.#i++;
        return { t: "field", base: inner, path: fieldPath(next) };
      }
      return inner;
    }
    return literalOrField(tok, this.src);
  }

  done(): void {
    if (this.#i < this.toks.length)
      throw new LocalError(`template: unexpected "${this.toks[this.#i]}" in "{{${this.src}}}"`);
  }
}

function literalOrField(tok: string, src: string): Expr {
  if (tok.startsWith(".")) return { t: "field", path: fieldPath(tok) };
  if (tok.startsWith('"')) return { t: "lit", v: JSON.parse(tok) };
  if (tok.startsWith("`")) return { t: "lit", v: tok.slice(1, -1) };
  if (/^-?\d/.test(tok)) return { t: "lit", v: Number(tok) };
  if (tok === "true" || tok === "false") return { t: "lit", v: tok === "true" };
  if (tok === "nil") return { t: "lit", v: undefined };
  throw new LocalError(`template: function "${tok}" not defined (in "{{${src}}}")`);
}

function parseExpr(src: string): Expr {
  const p = new ExprParser(lexAction(src), src);
  const e = p.parsePipeline();
  p.done();
  return e;
}

/** Splits the template into text and trimmed actions. */
function segments(template: string): { text: string; action?: string }[] {
  const out: { text: string; action?: string }[] = [];
  let rest = template;
  let trimNext = false;
  for (;;) {
    const open = rest.indexOf("{{");
    let text = open < 0 ? rest : rest.slice(0, open);
    if (trimNext) text = text.replace(/^\s+/, "");
    if (open < 0) return [...out, { text }];
    const close = rest.indexOf("}}", open);
    if (close < 0) throw new LocalError("template: unclosed action (missing }})");
    let action = rest.slice(open + 2, close);
    if (action.startsWith("-")) text = text.replace(/\s+$/, "");
    trimNext = action.endsWith("-");
    action = action.replace(/^-\s?/, "").replace(/\s?-$/, "").trim();
    out.push({ text, action });
    rest = rest.slice(close + 2);
  }
}

interface Block {
  readonly nodes: TNode[];
  readonly open?: { t: "range" | "if"; e: Expr; body: TNode[]; alt: TNode[]; inAlt: boolean };
}

function control(action: string, stack: Block[]): boolean {
  const top = stack.at(-1)!;
  const word = /^(range|if|else|end)\b\s*(.*)$/s.exec(action);
  if (!word) return false;
  const [, kw, rest] = word as unknown as [string, string, string];
  if (kw === "range" || kw === "if") {
    stack.push({ nodes: [], open: { t: kw, e: parseExpr(rest), body: [], alt: [], inAlt: false } });
    return true;
  }
  if (!top.open) throw new LocalError(`template: unexpected {{${kw}}}`);
  if (kw === "else") {
    top.open.body = top.nodes.splice(0);
    top.open.inAlt = true;
    return true;
  }
  const { t, e, inAlt } = top.open;
  const body = inAlt ? top.open.body : top.nodes.splice(0);
  const alt = inAlt ? top.nodes.splice(0) : [];
  stack.pop();
  stack.at(-1)!.nodes.push({ t, e, body, alt });
  return true;
}

/** Parses a Go template (the subset of the module doc). */
export function parseGoTemplate(template: string): TNode[] {
  const stack: Block[] = [{ nodes: [] }];
  for (const { text, action } of segments(template)) {
    if (text) stack.at(-1)!.nodes.push({ t: "text", s: text });
    if (action === undefined || action.startsWith("/*")) continue;
    if (!control(action, stack)) stack.at(-1)!.nodes.push({ t: "out", e: parseExpr(action) });
  }
  if (stack.length !== 1) throw new LocalError("template: unexpected EOF (missing {{end}})");
  return stack[0]!.nodes;
}

const NO_VALUE = Symbol("no value");

function getField(v: Value, path: readonly string[]): Value {
  let cur: Value = v;
  for (const k of path) {
    if (cur === null || typeof cur !== "object" || !(k in (cur as object))) return NO_VALUE;
    cur = (cur as Record<string, Value>)[k];
  }
  return cur;
}

function index(v: Value, keys: readonly Value[]): Value {
  let cur = v;
  for (const k of keys) {
    if (Array.isArray(cur)) {
      if (typeof k !== "number" || k < 0 || k >= cur.length)
        throw new LocalError(`template: index of out of range: ${String(k)}`);
      cur = cur[k];
    } else if (cur !== null && typeof cur === "object") cur = (cur as Record<string, Value>)[String(k)] ?? NO_VALUE;
    else throw new LocalError(`template: can't index item of type ${typeof cur}`);
  }
  return cur;
}

function truthy(v: Value): boolean {
  if (v === NO_VALUE || v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v as object).length > 0;
  return true;
}

function printf(format: Value, args: Value[]): string {
  let i = 0;
  return String(format).replace(/%([sdvq%])/g, (_, c: string) => {
    if (c === "%") return "%";
    const a = args[i++];
    return c === "q" ? JSON.stringify(show(a)) : show(a);
  });
}

function call(fn: string, args: Value[]): Value {
  switch (fn) {
    case "index":
      return index(args[0], args.slice(1));
    case "len":
      return Array.isArray(args[0]) ? args[0].length : Object.keys((args[0] as object) ?? {}).length;
    case "printf":
      return printf(args[0], args.slice(1));
    case "eq":
      return args.slice(1).some((a) => a === args[0]);
    case "ne":
      return args[0] !== args[1];
    case "not":
      return !truthy(args[0]);
    case "and":
      return args.find((a) => !truthy(a)) ?? args.at(-1);
    default:
      return args.find(truthy) ?? args.at(-1);
  }
}

function evaluate(e: Expr, dot: Value): Value {
  if (e.t === "lit") return e.v;
  if (e.t === "call")
    return call(
      e.fn,
      e.args.map((a) => evaluate(a, dot)),
    );
  return getField(e.base ? evaluate(e.base, dot) : dot, e.path);
}

/** A value as Go's fmt prints it (%v). */
function show(v: Value): string {
  if (v === NO_VALUE) return "<no value>";
  if (v === undefined || v === null) return "<nil>";
  if (Array.isArray(v)) return `[${v.map(show).join(" ")}]`;
  if (typeof v === "object")
    return `map[${Object.keys(v as object)
      .sort()
      .map((k) => `${k}:${show((v as Record<string, Value>)[k])}`)
      .join(" ")}]`;
  return String(v);
}

function items(v: Value): Value[] {
  if (Array.isArray(v)) return v;
  if (v !== null && typeof v === "object")
    return Object.keys(v as object)
      .sort()
      .map((k) => (v as Record<string, Value>)[k]);
  return [];
}

function run(nodes: readonly TNode[], dot: Value, out: string[]): void {
  for (const n of nodes) {
    if (n.t === "text") out.push(n.s);
    else if (n.t === "out") out.push(show(evaluate(n.e, dot)));
    else if (n.t === "if") run(truthy(evaluate(n.e, dot)) ? n.body : n.alt, dot, out);
    else runRange(n, dot, out);
  }
}

function runRange(
  n: { readonly e: Expr; readonly body: TNode[]; readonly alt: TNode[] },
  dot: Value,
  out: string[],
): void {
  const list = items(evaluate(n.e, dot));
  if (list.length === 0) run(n.alt, dot, out);
  for (const item of list) run(n.body, item, out);
}

/** Runs a Go template on `data`. */
export function goTemplate(template: string, data: Value): string {
  const out: string[] = [];
  run(parseGoTemplate(template), data, out);
  return out.join("");
}
