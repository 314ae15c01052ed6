// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_HOST_PATH } from "../local/config.js";
import { Env } from "./env.js";
import { localConfigFrom, parseArgs, UsageError } from "./local.js";

describe("nsm local-runtime CLI", () => {
  it("reads the runtime's configuration from the environment", () => {
    const env = new Env({
      PATH: "/opt/bin:/usr/bin",
      NSM_LOG_LEVEL: "DEBUG",
      NSM_REQUEST_TIMEOUT: "5s",
      NSM_MAX_TOKEN_LIFETIME: "",
      NSM_CIDR_PREFIX: "10.0.0.0/24",
      NSM_SVID_TTL: "5m",
    });
    assert.deepEqual(localConfigFrom(env), {
      hostPath: "/opt/bin:/usr/bin",
      inherited: { NSM_LOG_LEVEL: "DEBUG", NSM_REQUEST_TIMEOUT: "5s" },
      svidTtl: "5m",
    });
    assert.deepEqual(localConfigFrom(new Env({})), { hostPath: DEFAULT_HOST_PATH, inherited: {}, svidTtl: "1h" });
  });

  it("parses flags, values, booleans and the command after --", () => {
    const p = parseArgs(
      ["pod-a", "-n", "ns", "--container=c", "-it", "--", "ping", "-c", "1"],
      ["-n", "--container"],
      ["-it"],
    );
    assert.deepEqual(p.positional, ["pod-a"]);
    assert.deepEqual(Object.fromEntries(p.flags), { "-n": ["ns"], "--container": ["c"], "-it": ["true"] });
    assert.deepEqual(p.rest, ["ping", "-c", "1"]);
    assert.throws(
      () => parseArgs(["--nope"], [], []),
      (e) => e instanceof UsageError && /unknown option --nope/.test(e.message),
    );
    assert.throws(() => parseArgs(["-f"], ["-f"], []), /-f needs a value/);
  });
});
