// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard page's files: `index.html`, `style.css` and `app.js` (web/dashboard/app.ts with
 * cytoscape, bundled by esbuild). `npm run build` (scripts/build-ui.mjs) writes them to
 * dist/dashboard/; a checkout whose bundle is missing or older than web/dashboard/ has it bundled
 * here in memory instead (esbuild is a dev dependency: present in a checkout, not needed in an
 * installed tree, which ships dist/). Nothing is fetched at run time.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LocalError } from "../errors.js";

export interface Assets {
  readonly html: string;
  readonly css: string;
  readonly js: string;
}

/** The repository (or installed package) root: this file is in src/local/dashboard or dist/local/dashboard. */
export const PACKAGE_ROOT = join(import.meta.dirname, "..", "..", "..");

/** esbuild's options for the page's bundle (scripts/build-ui.mjs uses the same). */
export function bundleOptions(root: string, outfile?: string) {
  return {
    entryPoints: [join(root, "web", "dashboard", "app.ts")],
    bundle: true,
    minify: true,
    format: "iife" as const,
    target: "es2020",
    legalComments: "inline" as const,
    logLevel: "silent" as const,
    ...(outfile ? { outfile, write: true } : { write: false }),
  };
}

function newest(dir: string): number {
  return Math.max(0, ...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));
}

async function bundleNow(root: string): Promise<string> {
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new LocalError("the dashboard's page is not built and esbuild is missing: run `npm run build`");
  }
  const out = await esbuild.build(bundleOptions(root));
  return out.outputFiles![0]!.text;
}

/** Loads the page's files (see the module doc). */
export async function loadAssets(root = PACKAGE_ROOT): Promise<Assets> {
  const web = join(root, "web", "dashboard");
  const built = join(root, "dist", "dashboard");
  const bundle = join(built, "app.js");
  const hasSources = existsSync(join(web, "app.ts"));
  const fresh = existsSync(bundle) && (!hasSources || statSync(bundle).mtimeMs >= newest(web));
  if (fresh)
    return {
      html: readFileSync(join(built, "index.html"), "utf8"),
      css: readFileSync(join(built, "style.css"), "utf8"),
      js: readFileSync(bundle, "utf8"),
    };
  if (!hasSources) throw new LocalError(`the dashboard's page is missing (${bundle}): run \`npm run build\``);
  return {
    html: readFileSync(join(web, "index.html"), "utf8"),
    css: readFileSync(join(web, "style.css"), "utf8"),
    js: await bundleNow(root),
  };
}
