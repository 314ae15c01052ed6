// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, type NsmError } from "../../sdk/core/errors.js";
import { createTokenGenerator, type TokenGenerator, type X509Source } from "../index.js";
import { createTestPki, recordingLogger, type TestPki, tempDir } from "../testing.js";
import {
  BUILTIN_POLICIES,
  builtinPolicies,
  checkPolicies,
  DEFAULT_POLICY_MASKS,
  loadPolicies,
  monitorServiceConnection,
  nextTokenSigned,
  PERMISSION_DENIED_MESSAGE,
  type Policy,
  type PolicyInput,
  parsePolicyList,
  prevTokenSigned,
  registryClientAllowed,
  tokensChained,
  tokensExpired,
  tokensValid,
  toOpaInput,
} from "./index.js";

const input = (over: Partial<PolicyInput>): PolicyInput => ({ index: 0, pathSegments: [], now: new Date(), ...over });
const cert = (s: X509Source) => s.current().svid.certificates[0]!;

describe("built-in policies", () => {
  let pki: TestPki;
  let nsc: X509Source;
  let nsmgr: X509Source;
  let fwd: X509Source;
  let gen: (s: X509Source, maxMs?: number) => TokenGenerator;
  before(async () => {
    pki = await createTestPki();
    [nsc, nsmgr, fwd] = await Promise.all([pki.source("nsc"), pki.source("nsmgr"), pki.source("fwd")]);
    gen = (s, maxTokenLifetimeMs) => createTokenGenerator(s, { maxTokenLifetimeMs });
  });
  after(() => pki.close());

  /** nsc → nsmgr → fwd with each segment holding the token its owner minted for the next hop. */
  const chain = async () => [
    { token: (await gen(nsc)(cert(nsmgr))).token },
    { token: (await gen(nsmgr)(cert(fwd))).token },
    { token: (await gen(fwd)(cert(nsmgr))).token },
  ];

  it("tokens_valid: every token decodes; an empty path is valid", async () => {
    assert.equal(await tokensValid.check(input({})), true);
    assert.equal(await tokensValid.check(input({ pathSegments: await chain() })), true);
    assert.equal(await tokensValid.check(input({ pathSegments: [{ token: "not-a-jwt" }] })), false);
    assert.equal(await tokensValid.check(input({ pathSegments: [{ token: "" }] })), false);
  });

  it("tokens_chained: each token's aud holds the next token's sub", async () => {
    const good = await chain();
    assert.equal(await tokensChained.check(input({ pathSegments: good })), true);
    assert.equal(await tokensChained.check(input({ pathSegments: good.slice(0, 1) })), true, "fewer than 2: valid");
    // nsmgr's token names the nsc as audience (the token it minted for its caller): broken chain.
    const broken = [good[0]!, { token: (await gen(nsmgr)(cert(nsc))).token }, good[2]!];
    assert.equal(await tokensChained.check(input({ pathSegments: broken })), false);
    // A token with no audience (minted without a peer) cannot start a pair.
    const noAud = [{ token: (await gen(nsc)(undefined)).token }, good[1]!];
    assert.equal(await tokensChained.check(input({ pathSegments: noAud })), false);
  });

  it("tokens_expired: rejects a token minted with NSM_MAX_TOKEN_LIFETIME=-1m", async () => {
    const fresh = await chain();
    assert.equal(await tokensExpired.check(input({ pathSegments: fresh })), true);
    const expired = [{ token: (await gen(nsc, -60_000)(cert(nsmgr))).token }, ...fresh.slice(1)];
    assert.equal(await tokensExpired.check(input({ pathSegments: expired })), false);
    assert.equal(
      await tokensExpired.check(input({ pathSegments: fresh, now: new Date(Date.now() + 3600_000) })),
      false,
      "everything expires eventually",
    );
  });

  it("prev_token_signed: the previous token must be signed by the calling peer", async () => {
    const segs = await chain();
    assert.equal(
      await prevTokenSigned.check(input({ index: 1, pathSegments: segs, peerCertificate: cert(nsc) })),
      true,
    );
    // A token claiming to be the nsc but minted with another key (the forwarder's).
    const forged = await gen(fwd)(cert(nsmgr));
    const claims = JSON.parse(Buffer.from(forged.token.split(".")[1]!, "base64url").toString());
    assert.equal(claims.sub, pki.id("fwd"));
    const wrongKey = [{ token: forged.token }, segs[1]!];
    assert.equal(
      await prevTokenSigned.check(input({ index: 1, pathSegments: wrongKey, peerCertificate: cert(nsc) })),
      false,
    );
    assert.equal(await prevTokenSigned.check(input({ index: 1, pathSegments: segs })), false, "no peer certificate");
    assert.equal(
      await prevTokenSigned.check(input({ index: 0, pathSegments: segs, peerCertificate: cert(nsc) })),
      false,
      "index 0 has no previous segment",
    );
  });

  it("next_token_signed: the next token must be signed by the server we called", async () => {
    const segs = await chain();
    assert.equal(
      await nextTokenSigned.check(input({ index: 0, pathSegments: segs, peerCertificate: cert(nsmgr) })),
      true,
    );
    assert.equal(
      await nextTokenSigned.check(input({ index: 0, pathSegments: segs, peerCertificate: cert(fwd) })),
      false,
    );
    assert.equal(
      await nextTokenSigned.check(input({ index: 2, pathSegments: segs, peerCertificate: cert(fwd) })),
      false,
    );
  });

  it("registry client_allowed: only the first registrant of a name may change it", async () => {
    const map = { "nse-1": ["spiffe://test.nsm/nse-a", "spiffe://test.nsm/nsmgr"] };
    const p = (resourceId: string, resourceName: string) =>
      registryClientAllowed.check(input({ resourceId, resourceName, resourcePathIdsMap: map }));
    assert.equal(await p("spiffe://test.nsm/nse-b", "nse-2"), true, "a new name");
    assert.equal(await p("spiffe://test.nsm/nse-a", "nse-1"), true, "the owner");
    assert.equal(await p("spiffe://test.nsm/nse-b", "nse-1"), false, "someone else");
  });

  it("monitor service_connection: a peer may watch only connections it requested", async () => {
    const base = {
      spiffeIdConnectionMap: { "spiffe://test.nsm/nsc": ["conn-a"] },
      serviceSpiffeId: "spiffe://test.nsm/nsc",
    };
    assert.equal(await monitorServiceConnection.check(input({ ...base, selectorConnectionIds: ["conn-a"] })), true);
    assert.equal(await monitorServiceConnection.check(input({ ...base, selectorConnectionIds: ["conn-b"] })), false);
    assert.equal(await monitorServiceConnection.check(input({ ...base, selectorConnectionIds: [] })), false);
    assert.equal(
      await monitorServiceConnection.check(
        input({ ...base, serviceSpiffeId: "spiffe://test.nsm/other", selectorConnectionIds: ["conn-a"] }),
      ),
      false,
    );
  });
});

describe("checkPolicies", () => {
  const deny: Policy = { name: "test/deny", check: () => false };
  const boom: Policy = { name: "test/boom", check: () => Promise.reject(new Error("kaput")) };

  it("denies with PermissionDenied 'no sufficient privileges' and logs the failing policy", async () => {
    const log = recordingLogger();
    await assert.rejects(
      checkPolicies([tokensValid, deny], input({}), log, "networkservice"),
      (e: NsmError) => e.code === Code.PermissionDenied && e.rawMessage === PERMISSION_DENIED_MESSAGE,
    );
    assert.equal(PERMISSION_DENIED_MESSAGE, "no sufficient privileges");
    assert.ok(log.records.some((r) => r.level === "error" && r.fields.policy === "test/deny"));
  });

  it("turns a failing predicate into Internal", async () => {
    await assert.rejects(
      checkPolicies([boom], input({}), recordingLogger(), "registry"),
      (e: NsmError) => e.code === Code.Internal,
    );
  });

  it("allows when every policy allows (and when there are none)", async () => {
    await checkPolicies([], input({}), recordingLogger(), "x");
    await checkPolicies([tokensValid, tokensChained, tokensExpired], input({}), recordingLogger(), "x");
  });

  it("gives user policies the upstream JSON input shape on request", () => {
    const json = toOpaInput(
      input({ index: 1, pathSegments: [{ name: "nsc", id: "a", token: "t", expires: new Date(1500) }] }),
    );
    assert.deepEqual(json, {
      auth_info: { certificate: "" },
      index: 1,
      path_segments: [{ name: "nsc", id: "a", token: "t", expires: { seconds: 1, nanos: 500_000_000 } }],
    });
  });
});

describe("policy selection", () => {
  const names = (ps: Policy[]) => ps.map((p) => p.name.replace("etc/nsm/opa/", ""));

  it("maps the upstream default env values to the built-in predicates", async () => {
    assert.deepEqual(names(builtinPolicies(DEFAULT_POLICY_MASKS.server)), [
      "common/tokens_chained.rego",
      "common/tokens_expired.rego",
      "common/tokens_valid.rego",
      "server/prev_token_signed.rego",
    ]);
    assert.deepEqual(names(builtinPolicies(DEFAULT_POLICY_MASKS.client)).slice(-1), ["client/next_token_signed.rego"]);
    const fromEnv = await loadPolicies(
      "etc/nsm/opa/common/.*.rego,etc/nsm/opa/registry/.*.rego,etc/nsm/opa/server/.*.rego",
    );
    assert.deepEqual(names(fromEnv), [
      "common/tokens_chained.rego",
      "common/tokens_expired.rego",
      "common/tokens_valid.rego",
      "registry/client_allowed.rego",
      "server/prev_token_signed.rego",
    ]);
    assert.deepEqual(names(await loadPolicies("etc/nsm/opa/monitor/service_connection.rego")), [
      "monitor/service_connection.rego",
    ]);
    assert.equal(BUILTIN_POLICIES.size, 7);
    assert.deepEqual(parsePolicyList(" a.rego , ,b.rego"), ["a.rego", "b.rego"]);
    assert.deepEqual(await loadPolicies(""), [], "an empty list means no policy");
  });

  it("loads a user policy module given by path, alone or by mask", async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, "only-nsc.mjs");
      writeFileSync(path, "export default (input) => input.resourceName === 'nsc';\n");
      writeFileSync(join(dir.path, "named.mjs"), "export function valid(input) { return input.index === 7; }\n");
      const [mod] = await loadPolicies([path]);
      assert.equal(mod!.name, path);
      assert.equal(await mod!.check(input({ resourceName: "nsc" })), true);
      assert.equal(await mod!.check(input({ resourceName: "other" })), false);
      const byMask = await loadPolicies([`${dir.path}/.*\\.mjs`, "etc/nsm/opa/common/tokens_valid.rego"]);
      assert.deepEqual(
        byMask.map((p) => p.name),
        [join(dir.path, "named.mjs"), path, "etc/nsm/opa/common/tokens_valid.rego"],
      );
      assert.equal(await byMask[0]!.check(input({ index: 7 })), true);
    } finally {
      dir.cleanup();
    }
  });

  it("refuses Rego it cannot evaluate and modules without a predicate", async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, "custom.rego"), "package nsm\n");
      writeFileSync(join(dir.path, "empty.mjs"), "export const x = 1;\n");
      await assert.rejects(
        loadPolicies([join(dir.path, "custom.rego")]),
        (e: NsmError) => e.code === Code.InvalidArgument,
      );
      await assert.rejects(
        loadPolicies([join(dir.path, "empty.mjs")]),
        (e: NsmError) => e.code === Code.InvalidArgument,
      );
      const log = recordingLogger();
      assert.deepEqual(await loadPolicies(["etc/nsm/opa/nothing/.*.rego"], { log }), []);
      assert.ok(log.records.some((r) => r.level === "warn"));
    } finally {
      dir.cleanup();
    }
  });
});
