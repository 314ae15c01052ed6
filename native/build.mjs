// SPDX-License-Identifier: Apache-2.0
// Builds native/build/Release/nsnl.node with node-gyp, without downloading anything:
//  - node-gyp is the copy bundled with npm (npm passes its path as npm_config_node_gyp to
//    scripts; otherwise it is looked up next to this node binary);
//  - the headers are those installed with node (<prefix>/include/node, e.g. Debian's /usr),
//    passed as --nodedir, unless npm_config_nodedir is already set.
// Usage: node native/build.mjs   (from npm: "install" / "build:native" scripts)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const prefix = resolve(process.execPath, "..", "..");

const nodeGyp = [
  process.env.npm_config_node_gyp,
  join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
].find((p) => p && existsSync(p));
if (!nodeGyp) {
  process.stderr.write("native/build.mjs: node-gyp not found (it ships with npm)\n");
  process.exit(1);
}

const args = [nodeGyp, "rebuild", "--directory", here];
if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include", "node", "node_api.h"))) {
  args.push(`--nodedir=${prefix}`);
}
const r = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(r.status ?? 1);
