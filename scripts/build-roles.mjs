// SPDX-License-Identifier: Apache-2.0
// Bundles the `nsm` command's roles and the local runtime's CLI (dist/cmd/main.js and what it
// imports) into dist/roles/ with
// esbuild: one chunk per role plus shared chunks, so that a role's start reads a few files instead
// of ~330 modules through Node's ESM loader (module loading is most of a role's start: ~180 ms of
// CPU for nsmgr from dist/cmd, ~70 ms from the bundle). bin/nsm.js runs dist/roles/main.js when it
// is there. Part of `npm run build` (after tsc).
// Not bundled: the dashboard and the sandbox (the dashboard finds its page relative to its own
// module: they stay in dist/cmd and are imported from there), the native
// addon (loaded by path at run time), and the dependencies loaded only on demand (Kubernetes,
// etcd, OpenTelemetry, Prometheus, yaml, X.509 generation), which stay in node_modules.
// Usage: node scripts/build-roles.mjs [DIST] (default: the repository's dist/).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");
const dist = process.argv[2] ?? join(root, "dist");
const out = join(dist, "roles");
const UNBUNDLED_COMMANDS = ["./dashboard.js", "./sandbox-demo.js"];
const ON_DEMAND_PACKAGES = [
  "@kubernetes/client-node",
  "etcd3",
  "@opentelemetry/*",
  "prom-client",
  "yaml",
  "@peculiar/x509",
  "reflect-metadata",
  "esbuild",
  "tsx",
];

/** main.js's commands that stay in dist/cmd: imported from there. */
const unbundledCommands = {
  name: "unbundled-commands",
  setup(b) {
    b.onResolve({ filter: /^\.\/(dashboard|sandbox-demo)\.js$/ }, (args) =>
      args.importer === join(dist, "cmd", "main.js") && UNBUNDLED_COMMANDS.includes(args.path)
        ? { path: `../cmd/${args.path.slice(2)}`, external: true }
        : undefined,
    );
  },
};

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [join(dist, "cmd", "main.js")],
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ON_DEMAND_PACKAGES,
  plugins: [unbundledCommands],
  // The CommonJS dependencies (grpc-js, pino) call require() for Node's modules.
  banner: {
    js: 'import { createRequire as __nsmRequire } from "node:module"; const require = __nsmRequire(import.meta.url);',
  },
  legalComments: "inline",
  logLevel: "warning",
});
