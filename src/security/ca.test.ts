// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, type NsmError } from "../sdk/core/errors.js";
import {
  chainsToBundle,
  componentSpiffeId,
  createCa,
  createCaX509Source,
  loadCa,
  parseDerCertificates,
  parseSpiffeId,
  spiffeIdOfCertificate,
  spiffeIdProblem,
  splitDerCertificates,
  workloadSpiffeId,
} from "./index.js";

const isInvalid = (e: NsmError) => e.code === Code.InvalidArgument;

describe("SPIFFE IDs", () => {
  it("builds workload and component IDs", () => {
    assert.equal(workloadSpiffeId("k8s.nsm", "default", "web-0"), "spiffe://k8s.nsm/ns/default/pod/web-0");
    assert.equal(componentSpiffeId("k8s.nsm", "nsmgr-node1"), "spiffe://k8s.nsm/ns/nsm-system/component/nsmgr-node1");
    assert.throws(() => workloadSpiffeId("k8s.nsm", "a/b", "x"), isInvalid);
  });
  it("rejects what the SPIFFE ID spec rejects", () => {
    for (const bad of [
      "http://td/x",
      "spiffe://",
      "spiffe://TD/x",
      "spiffe://td/",
      "spiffe://td//x",
      "spiffe://td/./x",
      "spiffe://td/x?y=1",
      "spiffe://td:8080/x",
    ]) {
      assert.ok(spiffeIdProblem(bad), bad);
    }
    assert.deepEqual(parseSpiffeId("spiffe://td.example/ns/a"), { trustDomain: "td.example", path: "/ns/a" });
    assert.deepEqual(parseSpiffeId("spiffe://td.example"), { trustDomain: "td.example", path: "" });
  });
});

describe("embedded CA", () => {
  it("has a self-signed CA certificate naming the trust domain", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    assert.equal(ca.certificate.ca, true);
    assert.equal(ca.certificate.checkIssued(ca.certificate), true);
    assert.equal(ca.certificate.verify(ca.certificate.publicKey), true);
    assert.equal(spiffeIdOfCertificate(ca.certificate), "spiffe://test.nsm");
    assert.equal(ca.bundle.trustDomain, "test.nsm");
    assert.deepEqual(
      ca.bundle.certificates.map((c) => c.fingerprint256),
      [ca.certificate.fingerprint256],
    );
  });

  it("issues an X.509-SVID with exactly the URI SAN, chained to the bundle", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    const id = workloadSpiffeId("test.nsm", "default", "nsc-1");
    const before = Date.now();
    const svid = await ca.issue(id, { ttlMs: 120_000 });
    const leaf = svid.certificates[0]!;
    assert.equal(svid.spiffeId, id);
    assert.equal(leaf.subjectAltName, `URI:${id}`);
    assert.equal(spiffeIdOfCertificate(leaf), id);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.checkIssued(ca.certificate), true);
    assert.equal(leaf.verify(ca.certificate.publicKey), true);
    assert.equal(chainsToBundle(leaf, ca.bundle), true);
    assert.equal(leaf.checkPrivateKey(svid.privateKey), true);
    assert.equal(svid.privateKey.asymmetricKeyType, "ec");
    assert.equal(svid.privateKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    const lifetime = svid.notAfter.getTime() - before;
    assert.ok(lifetime > 118_000 && lifetime <= 120_000, `lifetime ${lifetime}`);
    assert.ok(new Date(leaf.validFrom).getTime() < before, "notBefore is backdated for clock skew");
  });

  it("issues SVIDs with fresh keys and serials", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    const [a, b] = await Promise.all([ca.issue("spiffe://test.nsm/a"), ca.issue("spiffe://test.nsm/a")]);
    assert.notEqual(a.certificates[0]!.serialNumber, b.certificates[0]!.serialNumber);
    assert.notEqual(a.privateKeyPem, b.privateKeyPem);
  });

  it("refuses IDs outside its trust domain and malformed IDs", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    await assert.rejects(ca.issue("spiffe://other.nsm/a"), isInvalid);
    await assert.rejects(ca.issue("spiffe://test.nsm/a/../b"), isInvalid);
    await assert.rejects(createCa({ trustDomain: "Bad_TD!" }), isInvalid);
  });

  it("does not issue SVIDs that outlive it", async () => {
    const ca = await createCa({ trustDomain: "test.nsm", ttlMs: 60_000 });
    const svid = await ca.issue("spiffe://test.nsm/a", { ttlMs: 3600_000 });
    assert.ok(svid.notAfter.getTime() <= new Date(ca.certificate.validTo).getTime());
  });

  it("a saved and loaded CA issues SVIDs the original bundle trusts", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    const loaded = await loadCa(ca.export());
    assert.equal(loaded.trustDomain, "test.nsm");
    const svid = await loaded.issue("spiffe://test.nsm/restarted");
    assert.equal(chainsToBundle(svid.certificates[0]!, ca.bundle), true);
    const other = await createCa({ trustDomain: "test.nsm" });
    assert.equal(
      chainsToBundle(svid.certificates[0]!, other.bundle),
      false,
      "another CA of the same name is not trusted",
    );
  });

  it("splits and parses back-to-back DER certificates", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    const svid = await ca.issue("spiffe://test.nsm/a");
    const der = Buffer.concat([svid.certificates[0]!.raw, ca.certificate.raw]);
    assert.equal(splitDerCertificates(der).length, 2);
    assert.deepEqual(
      parseDerCertificates(der).map((c) => c.fingerprint256),
      [svid.certificates[0]!.fingerprint256, ca.certificate.fingerprint256],
    );
    assert.throws(() => splitDerCertificates(der.subarray(0, der.length - 1)), isInvalid);
  });

  it("an in-process source rotates its SVID before it expires", async () => {
    const ca = await createCa({ trustDomain: "test.nsm" });
    const source = await createCaX509Source(ca, "spiffe://test.nsm/rotating", { ttlMs: 1200, rotateFraction: 0.5 });
    try {
      const first = source.current();
      const next = await new Promise<typeof first>((resolve) => source.subscribe(resolve));
      assert.ok(next.version > first.version);
      assert.notEqual(next.svid.certificates[0]!.serialNumber, first.svid.certificates[0]!.serialNumber);
      assert.equal(next.svid.spiffeId, "spiffe://test.nsm/rotating");
      assert.ok(Date.now() < first.svid.notAfter.getTime(), "rotated before the old SVID expired");
    } finally {
      source.close();
    }
  });
});
