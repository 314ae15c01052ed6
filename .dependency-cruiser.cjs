// SPDX-License-Identifier: Apache-2.0
/**
 * The layering of src/, checked by `npm run check:layers` (scripts/check-layers.mjs, part of
 * scripts/test.sh). Imports flow one way (DESIGN.md §4):
 *
 *     api  <-  sdk  <-  kernel, security, registry-store, etcd, k8s, observe  <-  local, cmd
 *
 * - src/api is the wire API: it imports nothing of ours but its generated code (src/api/gen).
 * - src/sdk imports only src/api and itself; src/sdk/core (the chain engine) only src/api and itself.
 * - src/kernel, src/security and the registry stores (src/registry-store, src/etcd, src/k8s) and src/observe (metrics) are
 *   libraries on top of the sdk: they never import src/local or src/cmd.
 * - src/local never imports src/cmd.
 * - src/public holds the package's entry points (package.json "exports"): each re-exports an
 *   explicit list from any layer, and nothing in src imports them.
 * - No import cycle anywhere in src.
 *
 * Two rules on source text that an import graph cannot express are checked by the same script
 * (`sourceRules` below): only src/cmd reads `process.env`, and only src/cmd writes to the
 * console (`console.*`, `process.stdout`, `process.stderr`); libraries take configuration as
 * arguments and log through the injected structured logger.
 *
 * KNOWN_VIOLATIONS lists what was already wrong when the check came in and is being fixed on
 * other branches. Each entry names its rule, the file(s) and who fixes it; delete the entry when
 * that fix is merged. The list must shrink, never grow.
 */

/** @type {{rule: string, from: string, to?: string, owner: string, why: string}[]} */
const KNOWN_VIOLATIONS = [];

/** A forbidden-import rule. Known violations are not exceptions here: check-layers.mjs sets them aside. */
function forbid(name, comment, from, to) {
  return [{ name, comment, severity: "error", from, to }];
}

module.exports = {
  forbidden: [
    ...forbid(
      "api-imports-only-api",
      "src/api is the wire API: it imports nothing of ours but src/api (and its generated code)",
      { path: "^src/api/" },
      { path: "^src/(?!api/)" },
    ),
    ...forbid(
      "sdk-imports-only-api-and-sdk",
      "the sdk never imports kernel, security, local, cmd (or any other layer above it)",
      { path: "^src/sdk/" },
      { path: "^src/(?!api/|sdk/)" },
    ),
    ...forbid(
      "sdk-core-is-the-base",
      "sdk/core (the chain engine) imports only src/api and sdk/core (its tests may use the sdk's test helpers)",
      { path: "^src/sdk/core/", pathNot: "\\.test\\.ts$" },
      { path: "^src/(?!api/|sdk/core/)" },
    ),
    ...forbid(
      "libraries-not-local-cmd",
      "kernel, security and the registry stores are libraries below the runtimes: they never import local or cmd",
      { path: "^src/(kernel|security|registry-store|etcd|k8s|observe)/" },
      { path: "^src/(local|cmd)/" },
    ),
    ...forbid(
      "local-not-cmd",
      "the local runtime never imports src/cmd",
      { path: "^src/local/" },
      { path: "^src/cmd/" },
    ),
    ...forbid(
      "nothing-imports-public",
      "src/public is the package's surface: it imports the layers, never the other way",
      { path: "^src/(?!public/)" },
      { path: "^src/public/" },
    ),
    ...forbid("no-circular", "no import cycles in src", { path: "^src/" }, { circular: true }),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    includeOnly: "^src/",
    exclude: { path: "^src/api/gen/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};

/**
 * For scripts/check-layers.mjs: the rules on source text (applied to src/**.ts, tests included)
 * and the known violations. Not dependency-cruiser options: attached without being enumerable,
 * so its schema never sees them.
 */
Object.defineProperty(module.exports, "knownViolations", { enumerable: false, value: KNOWN_VIOLATIONS });
Object.defineProperty(module.exports, "sourceRules", {
  enumerable: false,
  value: {
    rules: [
      {
        name: "no-process-env",
        comment: "only src/cmd reads the environment; pass configuration in",
        pattern: /\bprocess\.env\b/,
        allowed: /^src\/cmd\//,
      },
      {
        name: "console-only-in-cmd",
        comment: "only the CLI layer (src/cmd) writes to the console; libraries use the injected logger",
        pattern: /\bconsole\.[a-z]+\(|\bprocess\.(stdout|stderr)\b/,
        allowed: /^src\/cmd\//,
      },
    ],
  },
});
