// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run check:layers`: the layering of src/ (rules and known violations in
 * .dependency-cruiser.cjs). Imports are checked by dependency-cruiser; the two rules on source
 * text (process.env, console output) by a scan of src/**.ts here, because an import graph cannot
 * see them. Exits non-zero on any violation that is not in the known list, and on a known entry
 * that matches nothing any more (fixed: delete it, so the list only shrinks).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const config = createRequire(import.meta.url)(join(root, ".dependency-cruiser.cjs"));
/** @type {{rule: string, from: string, to?: string, owner: string, why: string}[]} */
const known = config.knownViolations;
const used = new Set();

/** The known entry that covers a violation of `rule` in `from` (towards `to`), marked as used. */
function isKnown(rule, from, to) {
  const k = known.find(
    (v) => v.rule === rule && new RegExp(v.from).test(from) && (!v.to || (to && new RegExp(v.to).test(to))),
  );
  if (k) used.add(k);
  return k !== undefined;
}

/** Import violations from dependency-cruiser, as "rule: from → to" lines. */
function importViolations() {
  const bin = join(root, "node_modules", ".bin", "depcruise");
  const r = spawnSync(bin, ["src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error || r.stdout.trim() === "") throw new Error(`depcruise failed: ${r.error ?? r.stderr}`);
  const { summary } = JSON.parse(r.stdout);
  const out = [];
  for (const v of summary.violations) {
    if (isKnown(v.rule.name, v.from, v.to)) continue;
    const cycle = v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name ?? c).join(" → ")})` : "";
    out.push(`${v.rule.name}: ${v.from} → ${v.to}${cycle}`);
  }
  return { out, modules: summary.totalCruised };
}

function sourceFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (relative(root, p) !== join("src", "api", "gen")) out.push(...sourceFiles(p));
    } else if (e.name.endsWith(".ts")) out.push(relative(root, p));
  }
  return out;
}

/** Source-text violations, as "rule: file:lines (why)" lines. */
function sourceViolations() {
  const out = [];
  for (const file of sourceFiles(join(root, "src"))) {
    const lines = readFileSync(join(root, file), "utf8").split("\n");
    for (const rule of config.sourceRules.rules) {
      if (rule.allowed.test(file)) continue;
      const hits = lines.flatMap((l, i) => (rule.pattern.test(l) && !/^\s*(\*|\/\/)/.test(l) ? [i + 1] : []));
      if (hits.length > 0 && !isKnown(rule.name, file))
        out.push(`${rule.name}: ${file}:${hits.join(",")} (${rule.comment})`);
    }
  }
  return out;
}

const imports = importViolations();
const errors = [...imports.out, ...sourceViolations()];
for (const k of known.filter((v) => !used.has(v)))
  errors.push(
    `known violation no longer found, delete its entry: ${k.rule} ${k.from}${k.to ? ` → ${k.to}` : ""} (${k.owner})`,
  );
for (const e of errors) console.error(`  error ${e}`);
if (errors.length > 0) process.exit(1);
console.log(
  `✔ layers: ${imports.modules} modules, no violations but ${known.length} known ones (see .dependency-cruiser.cjs)`,
);
