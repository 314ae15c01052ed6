// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { silentLogger } from "../sdk/core/logger.js";
import { chainTracer } from "../sdk/core/tracing.js";
import { ConfigError, Env } from "./env.js";
import { roleObservability } from "./observe.js";

describe("roleObservability (NSM_PROMETHEUS, NSM_PROMETHEUS_LISTEN_ON)", () => {
  it("is off by default and serves nothing", async () => {
    const obs = await roleObservability(new Env({}), "nse", "nse-1", silentLogger);
    assert.equal(obs.element, undefined);
  });

  it("stops at start with an error naming the variable for a bad or busy address", async () => {
    await assert.rejects(
      roleObservability(
        new Env({ NSM_PROMETHEUS: "true", NSM_PROMETHEUS_LISTEN_ON: "nope" }),
        "nse",
        "n",
        silentLogger,
      ),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('NSM_PROMETHEUS_LISTEN_ON="nope"'),
    );
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as { port: number }).port;
    try {
      await assert.rejects(
        roleObservability(
          new Env({ NSM_PROMETHEUS: "true", NSM_PROMETHEUS_LISTEN_ON: `127.0.0.1:${port}` }),
          "nse",
          "n",
          silentLogger,
        ),
        (err: unknown) =>
          err instanceof ConfigError && /NSM_PROMETHEUS_LISTEN_ON=.*cannot listen: .*EADDRINUSE/.test(err.message),
      );
    } finally {
      busy.close();
    }
  });

  it("serves the role's metrics when on", async () => {
    const obs = await roleObservability(
      new Env({ NSM_PROMETHEUS: "true", NSM_PROMETHEUS_LISTEN_ON: "127.0.0.1:0" }),
      "nsc",
      "nsc-1",
      silentLogger,
    );
    try {
      assert.ok(obs.element);
      assert.ok(obs.metrics);
      assert.match(await obs.metrics.registry.metrics(), /nsm_connections\{role="nsc",name="nsc-1"\} 0/);
    } finally {
      await obs.close();
    }
  });
});

describe("roleObservability (TELEMETRY, NSM_OPEN_TELEMETRY_ENDPOINT)", () => {
  it("is off without either variable, and with TELEMETRY=false", async () => {
    for (const vars of [{}, { TELEMETRY: "false", NSM_OPEN_TELEMETRY_ENDPOINT: "c:4317" }]) {
      const obs = await roleObservability(new Env(vars), "nse", "nse-1", silentLogger);
      assert.equal(obs.tracing, undefined);
      assert.equal(chainTracer(), undefined);
    }
  });

  it("installs the process's tracer with upstream's TELEMETRY, or with an endpoint alone; close removes it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-otel-"));
    const endpoint = `unix://${join(dir, "otlp.sock")}`;
    try {
      for (const vars of [
        { TELEMETRY: "opentelemetry", NSM_OPEN_TELEMETRY_ENDPOINT: endpoint },
        { NSM_OPEN_TELEMETRY_ENDPOINT: endpoint },
      ]) {
        const obs = await roleObservability(new Env(vars), "nsmgr", "nsmgr-1", silentLogger);
        assert.ok(obs.tracing);
        assert.equal(chainTracer(), obs.tracing.tracer);
        await obs.close();
        assert.equal(chainTracer(), undefined);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stops at start with an error naming the variable for a bad endpoint", async () => {
    await assert.rejects(
      roleObservability(
        new Env({ TELEMETRY: "true", NSM_OPEN_TELEMETRY_ENDPOINT: "ftp://c" }),
        "nse",
        "n",
        silentLogger,
      ),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('NSM_OPEN_TELEMETRY_ENDPOINT="ftp://c"'),
    );
    assert.equal(chainTracer(), undefined);
  });
});

describe("a role process with a bad observability setting", () => {
  const nsm = join(import.meta.dirname, "../../bin/nsm.js");
  const run = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, [nsm, "registry"], {
      env: { PATH: process.env.PATH, NSM_INSECURE: "true", NSM_LISTEN_ON: "unix:///nonexistent/r.sock", ...env },
      timeout: 60_000,
    }).then(
      () => assert.fail("the role started"),
      (err: { code: number; stderr: string }) => err,
    );

  it("exits at start with code 2 and one line naming the variable", async () => {
    const prom = await run({ NSM_PROMETHEUS: "true", NSM_PROMETHEUS_LISTEN_ON: "localhost" });
    assert.equal(prom.code, 2);
    assert.match(prom.stderr, /^nsm: NSM_PROMETHEUS_LISTEN_ON="localhost": expected \[host\]:port[^\n]*\n$/);
    const otel = await run({ TELEMETRY: "true", NSM_OPEN_TELEMETRY_ENDPOINT: "collector" });
    assert.equal(otel.code, 2);
    assert.match(otel.stderr, /^nsm: NSM_OPEN_TELEMETRY_ENDPOINT="collector": expected host:port[^\n]*\n$/);
  });
});
