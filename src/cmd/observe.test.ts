// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { silentLogger } from "../sdk/core/logger.js";
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
