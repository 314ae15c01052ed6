// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "../sdk/core/logger.js";
import { ConfigError, Env } from "./env.js";
import { startLocalDns } from "./nsc-dns.js";

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("nsc local DNS (NSM_LOCAL_DNS_SERVER_*, NSM_RESOLV_CONF)", () => {
  const dir = mkdtempSync(join(tmpdir(), "nsc-dns-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is off when disabled, and when the pod has no resolv.conf of its own (a test run on a host)", async () => {
    assert.equal(await startLocalDns(new Env({ NSM_LOCAL_DNS_SERVER_ENABLED: "false" }), silentLogger), undefined);
    // This test runs with its parent in the same mount namespace: /etc/resolv.conf is never the pod's.
    assert.equal(await startLocalDns(new Env({}), silentLogger), undefined);
  });

  it("points NSM_RESOLV_CONF at the proxy while it runs and restores it on close", async () => {
    const path = join(dir, "resolv.conf");
    writeFileSync(path, "nameserver 10.96.0.10\n");
    const port = await freePort();
    const dns = await startLocalDns(
      new Env({ NSM_RESOLV_CONF: path, NSM_LOCAL_DNS_SERVER_ADDRESS: `127.0.0.1:${port}` }),
      silentLogger,
    );
    assert.ok(dns);
    assert.match(readFileSync(path, "utf8"), /^nameserver 127\.0\.0\.1$/m);
    await dns.close();
    assert.equal(readFileSync(path, "utf8"), "nameserver 10.96.0.10\n");
  });

  it("a bad address is a ConfigError naming NSM_LOCAL_DNS_SERVER_ADDRESS", async () => {
    await assert.rejects(
      startLocalDns(new Env({ NSM_LOCAL_DNS_SERVER_ADDRESS: "localhost:53" }), silentLogger),
      (e: Error) => e instanceof ConfigError && /NSM_LOCAL_DNS_SERVER_ADDRESS/.test(e.message),
    );
  });
});
