// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { it } from "node:test";
import { type ConfigError, Env, parseDuration } from "./env.js";

it("parses Go durations", () => {
  assert.equal(parseDuration("750ms"), 750);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("-1m"), -60_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("10"), undefined);
  assert.equal(parseDuration("abc"), undefined);
});

it("names the variable in errors", () => {
  const env = new Env({ NSM_MAX_TOKEN_LIFETIME: "ten minutes", NSM_X: "maybe" });
  assert.throws(
    () => env.duration("NSM_MAX_TOKEN_LIFETIME", "10m"),
    (e: ConfigError) => /^NSM_MAX_TOKEN_LIFETIME="ten minutes": not a duration/.test(e.message),
  );
  assert.throws(() => env.bool("NSM_X", false), /NSM_X="maybe": expected true or false/);
  assert.equal(env.duration("NSM_UNSET", "1m"), 60_000);
  assert.deepEqual(new Env({ L: "a, b,,c" }).list("L"), ["a", "b", "c"]);
});
