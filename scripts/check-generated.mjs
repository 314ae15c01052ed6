// SPDX-License-Identifier: Apache-2.0
// Fails when src/api/gen differs from what `buf generate` produces from proto/.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = mkdtempSync(join(tmpdir(), "nsm-gen-"));
try {
  const template = JSON.stringify({
    version: "v2",
    plugins: [{ local: "protoc-gen-es", out, opt: ["target=ts", "import_extension=js"] }],
  });
  const tpl = join(out, "buf.gen.json");
  writeFileSync(tpl, template);
  execFileSync("npx", ["--no-install", "buf", "generate", "--template", tpl], { stdio: "inherit" });
  const stale = [];
  const committed = readdirSync("src/api/gen").sort();
  const fresh = readdirSync(out)
    .filter((f) => f.endsWith(".ts"))
    .sort();
  if (committed.join() !== fresh.join()) stale.push(`file list: ${committed} vs ${fresh}`);
  for (const f of fresh) {
    if (readFileSync(join(out, f), "utf8") !== readFileSync(join("src/api/gen", f), "utf8")) stale.push(f);
  }
  if (stale.length > 0) {
    console.error(`src/api/gen is stale (${stale.join(", ")}): run \`npm run generate\` and commit the result`);
    process.exit(1);
  }
  console.log("src/api/gen matches proto/");
} finally {
  rmSync(out, { recursive: true, force: true });
}
