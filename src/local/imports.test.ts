// SPDX-License-Identifier: Apache-2.0
/**
 * The module graph of src/local has no import cycles (type-only imports count too), and the
 * runtime library leaves the environment and the console to the CLI layer (src/cmd).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

const DIR = import.meta.dirname;
const sources = readdirSync(DIR).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
const text = (f: string) => readFileSync(join(DIR, f), "utf8");

/** The src/local modules `file` imports (`from "./x.js"`, `import("./x.js")`). */
function localImports(file: string): string[] {
  const found = text(file).matchAll(/(?:from\s+|import\s*\(\s*)"\.\/([\w.-]+)\.js"/g);
  return [...new Set([...found].map((m) => `${m[1]}.ts`))];
}

/** One cycle of the graph as a path `a → b → a`, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const done = new Set<string>();
  const visit = (node: string, path: string[]): string[] | undefined => {
    const at = path.indexOf(node);
    if (at >= 0) return [...path.slice(at), node];
    if (done.has(node)) return undefined;
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next, [...path, node]);
      if (cycle) return cycle;
    }
    done.add(node);
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node, []);
    if (cycle) return cycle;
  }
  return undefined;
}

describe("src/local modules", () => {
  const graph = new Map(sources.map((f) => [f, localImports(f)]));

  it("import each other without cycles", () => {
    assert.ok(graph.get("runtime.ts")!.includes("lifecycle.ts"), "the import scan finds imports");
    assert.equal(findCycle(graph)?.join(" → "), undefined);
  });

  it("the cycle check finds a cycle", () => {
    const cyclic = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
    ]);
    assert.deepEqual(findCycle(cyclic), ["a.ts", "b.ts", "c.ts", "a.ts"]);
  });

  it("the planner does no I/O of its own", () => {
    assert.doesNotMatch(text("planner.ts"), /from "node:(fs|child_process|net)"/);
  });

  it("read no environment and write nothing to the console", () => {
    for (const f of sources) {
      assert.doesNotMatch(text(f), /process\.env\b/, f);
      assert.doesNotMatch(text(f), /console\.|process\.(stdout|stderr)/, f);
    }
  });
});
