// SPDX-License-Identifier: Apache-2.0
// Builds the dashboard page into dist/dashboard/: web/dashboard/app.ts bundled with cytoscape by
// esbuild (options shared with src/local/dashboard/assets.ts, which bundles in memory when this
// has not run), index.html and style.css copied. Part of `npm run build`.
// Usage: node scripts/build-ui.mjs [DIST] (default: the repository's dist/).
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");
const out = join(process.argv[2] ?? join(root, "dist"), "dashboard");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, "web", "dashboard", "app.ts")],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "inline",
  logLevel: "warning",
  outfile: join(out, "app.js"),
});
for (const f of ["index.html", "style.css"]) copyFileSync(join(root, "web", "dashboard", f), join(out, f));
