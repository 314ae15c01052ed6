// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run check:layers`: the layering of src/ (rules and known violations in
 * .dependency-cruiser.cjs). Imports are checked by dependency-cruiser; the two rules on source
 * text (process.env, console output) by a scan of src/**.ts here, because an import graph cannot
 * see them. Exits non-zero on any violation not in the known list, and on a known entry that no
 * longer matches anything (so the list only shrinks).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const config = createRequire(import.meta.url)(join(root, ".dependency-cruiser.cjs"));

function checkImports() {
  const bin = join(root, "node_modules", ".bin", "depcruise");
  const r = spawnSync(bin, ["src", "--config", ".dependency-cruiser.cjs", "--output-type", "err"], {
    cwd: root,
    encoding: "utf8",
  });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.status === 0;
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

function checkSource() {
  const { rules, known } = config.sourceRules;
  const used = new Set();
  let ok = true;
  for (const file of sourceFiles(join(root, "src"))) {
    const lines = readFileSync(join(root, file), "utf8").split("\n");
    for (const rule of rules) {
      if (rule.allowed.test(file)) continue;
      const hits = lines.flatMap((l, i) => (rule.pattern.test(l) && !/^\s*(\*|\/\/)/.test(l) ? [i + 1] : []));
      if (hits.length === 0) continue;
      const k = known.find((v) => v.rule === rule.name && new RegExp(v.from).test(file));
      if (k) {
        used.add(k);
        continue;
      }
      ok = false;
      console.error(`  error ${rule.name}: ${file}:${hits.join(",")} (${rule.comment})`);
    }
  }
  for (const k of known.filter((v) => !used.has(v))) {
    ok = false;
    console.error(`  error known violation fixed, delete its entry: ${k.rule} ${k.from} (${k.owner})`);
  }
  if (ok) console.log(`✔ no source-rule violations (${known.length} known, owned by other branches)`);
  return ok;
}

const importsOk = checkImports();
const sourceOk = checkSource();
process.exit(importsOk && sourceOk ? 0 : 1);
