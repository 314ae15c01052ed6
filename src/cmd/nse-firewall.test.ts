// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, Env } from "./env.js";
import { aclRulesOf } from "./nse-firewall.js";

describe("nsm nse firewall: the ACL configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "fw-acl-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads NSM_ACL_CONFIG_PATH, or NSM_ACL_CONFIG inline", () => {
    const file = join(dir, "ok.yaml");
    writeFileSync(file, "allow icmp:\n  ispermit: 1\n  proto: 1\n");
    assert.deepEqual(
      aclRulesOf(new Env({ NSM_ACL_CONFIG_PATH: file })).map((r) => r.name),
      ["allow icmp"],
    );
    assert.deepEqual(
      aclRulesOf(new Env({ NSM_ACL_CONFIG: "deny all:\n  proto: 0\n" })).map((r) => [r.name, r.permit]),
      [["deny all", false]],
    );
  });

  it("no file at the default path is no ACL (as upstream); a missing file named explicitly is an error", () => {
    assert.deepEqual(aclRulesOf(new Env({})), []);
    assert.throws(
      () => aclRulesOf(new Env({ NSM_ACL_CONFIG_PATH: join(dir, "absent.yaml") })),
      (e: unknown) => e instanceof ConfigError && /absent\.yaml.*cannot read: ENOENT/.test(e.message),
    );
  });

  it("a malformed file is one line naming the variable, the file and the field", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "r:\n  ispermit: 3\n");
    assert.throws(
      () => aclRulesOf(new Env({ NSM_ACL_CONFIG_PATH: file })),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `NSM_ACL_CONFIG_PATH="${file}": "r".ispermit: 3 is not an integer in 0-2` &&
        !e.message.includes("\n"),
    );
  });
});
