// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Code, type NsmError } from "../sdk/core/errors.js";
import {
  createTokenGenerator,
  decodeTokenClaims,
  formatRfc3339Nano,
  parseRfc3339Nano,
  staticX509Source,
  TOKEN_EXPIRES_METADATA_KEY,
  TOKEN_METADATA_KEY,
  tokenFromMetadata,
  tokenMetadata,
  verifyTokenSignature,
  type X509Source,
} from "./index.js";
import { createTestPki, type TestPki } from "./testing.js";

describe("path tokens", () => {
  let pki: TestPki;
  let nsc: X509Source;
  let nsmgr: X509Source;
  before(async () => {
    pki = await createTestPki();
    nsc = await pki.source("nsc");
    nsmgr = await pki.source("nsmgr");
  });
  after(() => pki.close());

  it("are ES256 JWTs with sub = own ID, aud = [peer ID], exp = now + max lifetime", async () => {
    const peer = nsmgr.current().svid.certificates[0]!;
    const before = Date.now();
    const t = await createTokenGenerator(nsc, { maxTokenLifetimeMs: 60_000 })(peer);
    const [header] = t.token.split(".");
    assert.deepEqual(JSON.parse(Buffer.from(header!, "base64url").toString()), {
      alg: "ES256",
      typ: "JWT",
      x5c: [nsc.current().svid.certificates[0]!.raw.toString("base64")],
    });
    const claims = decodeTokenClaims(t.token);
    assert.equal(claims.sub, pki.id("nsc"));
    assert.deepEqual(claims.aud, [pki.id("nsmgr")]);
    assert.equal(claims.exp, Math.floor(t.expires.getTime() / 1000));
    assert.ok(t.expires.getTime() >= before + 60_000 && t.expires.getTime() <= Date.now() + 60_000);
    assert.equal(await verifyTokenSignature(t.token, nsc.current().svid.certificates[0]), true);
    assert.equal(await verifyTokenSignature(t.token, peer), false, "not signed by the peer");
  });

  it("never outlive the own or the peer certificate", async () => {
    const shortLived = await pki.source("short", { ttlMs: 30_000 });
    const own = await createTokenGenerator(shortLived, { maxTokenLifetimeMs: 3600_000 })(undefined);
    assert.equal(own.expires.getTime(), shortLived.current().svid.notAfter.getTime());
    assert.equal(decodeTokenClaims(own.token).aud, undefined, "no peer, no audience");
    const forPeer = await createTokenGenerator(nsc, { maxTokenLifetimeMs: 3600_000 })(
      shortLived.current().svid.certificates[0],
    );
    assert.equal(forPeer.expires.getTime(), shortLived.current().svid.notAfter.getTime());
  });

  it("can be minted already expired (NSM_MAX_TOKEN_LIFETIME=-1m)", async () => {
    const t = await createTokenGenerator(nsc, { maxTokenLifetimeMs: -60_000 })(undefined);
    assert.ok((decodeTokenClaims(t.token).exp as number) * 1000 < Date.now() - 50_000);
  });

  it("travel as nsm-client-token / nsm-client-token-expires metadata", async () => {
    const t = await createTokenGenerator(nsc)(undefined);
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(tokenMetadata(t))) md.set(k, v);
    const back = tokenFromMetadata(md);
    assert.equal(back.token, t.token);
    assert.equal(Number(back.expires.seconds) * 1000 + back.expires.nanos / 1e6, t.expires.getTime());
    md.add(TOKEN_METADATA_KEY, "second");
    assert.throws(
      () => tokenFromMetadata(md),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
    const missing = new grpc.Metadata();
    missing.set(TOKEN_METADATA_KEY, t.token);
    assert.throws(() => tokenFromMetadata(missing), new RegExp(TOKEN_EXPIRES_METADATA_KEY));
  });

  it("format and parse RFC 3339 with nanoseconds as Go does", () => {
    assert.equal(formatRfc3339Nano(new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 120))), "2025-01-02T03:04:05.12Z");
    assert.equal(formatRfc3339Nano(new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 0))), "2025-01-02T03:04:05Z");
    const base = BigInt(Date.UTC(2025, 0, 2, 3, 4, 5) / 1000);
    assert.deepEqual(parseRfc3339Nano("2025-01-02T03:04:05.123456789Z"), { seconds: base, nanos: 123456789 });
    assert.deepEqual(parseRfc3339Nano("2025-01-02T05:04:05.5+02:00"), { seconds: base, nanos: 500000000 });
    assert.deepEqual(parseRfc3339Nano("2025-01-02T03:04:05Z"), { seconds: base, nanos: 0 });
    assert.throws(
      () => parseRfc3339Nano("2025-01-02 03:04:05"),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });

  it("verify against the peer certificate, or a rotated SVID of the same identity from the bundle", async () => {
    const cert = nsc.current().svid.certificates[0]!;
    const bundle = pki.ca.bundle;
    // The same identity after a rotation: another key and certificate, same SPIFFE ID and CA.
    const rotated = staticX509Source(await pki.ca.issue(pki.id("nsc")), bundle);
    const t = (await createTokenGenerator(rotated)(undefined)).token;
    assert.equal(await verifyTokenSignature(t, cert), false, "upstream semantics: the peer certificate only");
    assert.equal(await verifyTokenSignature(t, cert, bundle), true, "x5c names a valid SVID of the same identity");
    // Another identity's SVID is not enough.
    const other = (await createTokenGenerator(nsmgr)(undefined)).token;
    assert.equal(await verifyTokenSignature(other, cert, bundle), false);
    // Same SPIFFE ID from another CA.
    const foreign = await createTestPki("test.nsm");
    try {
      const f = (await createTokenGenerator(await foreign.source("nsc"))(undefined)).token;
      assert.equal(await verifyTokenSignature(f, cert, bundle), false);
    } finally {
      foreign.close();
    }
    // The real certificate in x5c, signed with another key.
    const [h, p] = t.split(".");
    const header = JSON.parse(Buffer.from(h!, "base64url").toString()) as { x5c: string[] };
    header.x5c = [cert.raw.toString("base64")];
    const stolen = `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${p}.${t.split(".")[2]}`;
    assert.equal(await verifyTokenSignature(stolen, cert, bundle), false);
  });
});
