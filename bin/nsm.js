#!/usr/bin/env -S node --max-semi-space-size=2 --optimize-for-size
// SPDX-License-Identifier: Apache-2.0
// The `nsm` command. Runs the compiled JavaScript in dist/ when it is newer than every source
// file (`npm run build`; ~35 MB less memory per process than compiling on the fly), and the
// TypeScript sources through tsx's loader otherwise.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const t = e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

function mtime(path) {
  try {
    return statSync(join(root, path)).mtimeMs;
  } catch {
    return -1;
  }
}

function compiledIsFresh() {
  try {
    const compiled = statSync(join(root, "dist/cmd/main.js")).mtimeMs;
    // An installed tree (the container image) ships dist/ without src/: it is all there is.
    return !existsSync(join(root, "src")) || compiled >= newestMtime(join(root, "src"));
  } catch {
    return false;
  }
}

// NSM_FROM_SOURCE: "1" runs the sources, "0" the compiled tree without looking; unset, the
// freshness check decides. The choice is passed on (the local runtime hands it to every process
// it starts), so the roles it spawns skip the walk of src/, a good part of a role's start time.
const fromSource = process.env.NSM_FROM_SOURCE === "1" || (process.env.NSM_FROM_SOURCE !== "0" && !compiledIsFresh());
process.env.NSM_FROM_SOURCE = fromSource ? "1" : "0";
if (!fromSource) {
  // The roles bundled by scripts/build-roles.mjs (a few files instead of ~330 modules: a faster
  // start); the compiled tree when the bundle was not built.
  const bundled = mtime("dist/roles/main.js") > 0 && mtime("dist/roles/main.js") >= mtime("dist/cmd/main.js");
  await import(bundled ? "../dist/roles/main.js" : "../dist/cmd/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cmd/main.ts");
}
