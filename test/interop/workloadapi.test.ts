// SPDX-License-Identifier: Apache-2.0
/**
 * Our identity provider (`nsm identity-provider`, the SPIFFE Workload API of the local runtime)
 * serving SPIRE's own Workload API client, `spire-agent api fetch x509`: a process listed in the
 * process identity file gets its X.509-SVID and the trust bundle, the SVID verifies against that
 * bundle and names the listed SPIFFE ID; a process nobody listed gets none.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { socketAccepts } from "../../src/local/cluster.js";
import { createCa, type ProcessIdentity, processIdentity, writeProcessIdentities } from "../../src/security/index.js";
import { missingPeers, peerPath } from "../helpers/peers.js";
import { type CommandResult, collectOutput, stopChild } from "../helpers/process.js";

const REPO = join(import.meta.dirname, "..", "..");
const BIN = join(REPO, "bin", "nsm.js");
const skip = process.getuid?.() !== 0 ? "needs root (peer attestation)" : missingPeers("spire-agent");

type Fetch = CommandResult;

describe("interop: spire-agent's Workload API client against our identity provider", { skip }, () => {
  const trustDomain = `idp-${Math.random().toString(16).slice(2, 8)}.test`;
  const dir = skip ? "" : mkdtempSync(join(tmpdir(), "nsm-wlapi-"));
  const socket = join(dir, "agent.sock");
  const identities = join(dir, "identities.json");
  const listed: ProcessIdentity[] = [];
  let provider: ChildProcess | undefined;

  const write = () => writeProcessIdentities(identities, { version: 1, trustDomain, processes: listed });

  /** `spire-agent api fetch x509` after a short pause (so it can be listed first) in a shell that execs it. */
  const fetch = (out: string, spiffeId?: string): Promise<Fetch> => {
    mkdirSync(out, { recursive: true });
    const cmd = `sleep 0.5; exec ${peerPath("spire-agent")} api fetch x509 -socketPath ${socket} -timeout 3s -write ${out}`;
    const child = spawn("sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
    const result = collectOutput(child);
    if (spiffeId) {
      const entry = processIdentity(child.pid!, spiffeId);
      assert.ok(entry, "the fetching process is alive");
      listed.push(entry);
      write();
    }
    return result;
  };

  before(async () => {
    const ca = await createCa({ trustDomain });
    writeFileSync(join(dir, "ca.json"), JSON.stringify(ca.export()), { mode: 0o600 });
    write();
    provider = spawn(process.execPath, [BIN, "identity-provider"], {
      stdio: "ignore",
      env: {
        PATH: process.env.PATH,
        HOME: "/root",
        NSM_LISTEN_ON: `unix://${socket}`,
        NSM_CA_FILE: join(dir, "ca.json"),
        NSM_PROCESS_IDENTITIES: identities,
        NSM_SVID_TTL: "1h",
      },
    });
    const deadline = Date.now() + 30_000;
    while (!(await socketAccepts(socket))) {
      assert.ok(Date.now() < deadline, "the identity provider serves its socket");
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (provider) await stopChild(provider);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a listed process gets its SVID and the bundle; the SVID verifies against the bundle", async () => {
    const id = `spiffe://${trustDomain}/ns/default/pod/spire-cli`;
    const out = join(dir, "listed");
    const r = await fetch(out, id);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`SPIFFE ID:\\s+${id.replace(/[.]/g, "\\.")}`));
    const svid = new X509Certificate(readFileSync(join(out, "svid.0.pem")));
    const root = new X509Certificate(readFileSync(join(out, "bundle.0.pem")));
    assert.ok(svid.verify(root.publicKey), "the SVID is signed by the bundle's CA");
    assert.ok(svid.subjectAltName?.includes(`URI:${id}`), svid.subjectAltName);
    assert.ok(new Date(svid.validTo) > new Date(), "not expired");
  });

  it("a process nobody listed gets no SVID", async () => {
    const out = join(dir, "stranger");
    const r = await fetch(out);
    assert.notEqual(r.code, 0, r.stdout);
    assert.doesNotMatch(r.stdout, /SPIFFE ID/);
    // spire-agent's client retries until its -timeout while our provider issues nothing
    assert.match(r.stderr, /DeadlineExceeded|PermissionDenied/, r.stderr);
  });
});
