// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ConnectionSchema, create, NetworkService, NetworkServiceRequestSchema } from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { Code, type NsmError } from "../sdk/core/errors.js";
import { closeChannel, dialChannel } from "../sdk/grpc/dial.js";
import { addService, grpcClient } from "../sdk/grpc/service.js";
import {
  channelCredentials,
  observeCalls,
  peerSpiffeIdOf,
  secureDialOptions,
  serverCredentials,
  spiffeIdOfCertificate,
  staticX509Source,
  type X509Source,
} from "./index.js";
import { bindUnix, createTestPki, issueUnchecked, recordingLogger, type TestPki, tempDir } from "./testing.js";

/** A NetworkService whose Request answers with the caller's SPIFFE ID as the connection id. */
function whoAmIServer(seen: string[]): grpc.Server {
  const server = new grpc.Server();
  addService(server, NetworkService, {
    request: async (_req, ctx) => {
      const id = peerSpiffeIdOf(ctx) ?? "anonymous";
      seen.push(id);
      return create(ConnectionSchema, { id });
    },
    close: async () => ({}) as never,
  });
  return server;
}

const req = create(NetworkServiceRequestSchema, { connection: { id: "x" } });
const ctx = () => CallContext.create({ deadline: Date.now() + 5000 });

async function call(url: string, options: Parameters<typeof dialChannel>[1]) {
  const channel = dialChannel(url, options);
  try {
    const { result, observation } = await observeCalls(ctx(), (c) =>
      grpcClient(NetworkService, channel).request(req, c),
    );
    return { id: result.id, server: observation.peerCertificate };
  } finally {
    closeChannel(channel);
  }
}

describe("mTLS over unix sockets", () => {
  let pki: TestPki;
  let foreign: TestPki;
  let dir: ReturnType<typeof tempDir>;
  let server: grpc.Server;
  let url: string;
  let serverSource: X509Source;
  const seen: string[] = [];

  before(async () => {
    pki = await createTestPki("a.test");
    foreign = await createTestPki("b.test");
    dir = tempDir();
    serverSource = await pki.source("server", { ttlMs: 1500 });
    server = whoAmIServer(seen);
    url = await bindUnix(server, serverCredentials(serverSource), dir.path);
  });
  after(() => {
    server.forceShutdown();
    pki.close();
    foreign.close();
    dir.cleanup();
  });

  it("works with a good certificate: both sides see each other's SPIFFE ID", async () => {
    const client = await pki.source("client");
    const { id, server: serverCert } = await call(url, secureDialOptions(client));
    assert.equal(id, "spiffe://a.test/client", "the server saw the client's SVID");
    assert.equal(spiffeIdOfCertificate(serverCert!), "spiffe://a.test/server", "the client saw the server's SVID");
  });

  it("refuses a client without a certificate", async () => {
    const before = seen.length;
    // Trusts the server (and skips the DNS-name check SVIDs cannot pass), presents nothing.
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.bundle.pem), null, null, {
      checkServerIdentity: () => undefined,
    });
    await assert.rejects(
      call(url, { credentials: creds }),
      (e: NsmError) => e.code === Code.Unavailable && /certificate required/.test(e.message),
    );
    assert.equal(seen.length, before, "no call reached the handler");
  });

  it("refuses a client certificate from another trust domain", async () => {
    const before = seen.length;
    const other = await foreign.source("client");
    // Presents a b.test SVID but trusts a.test, so only the server can object.
    const mixed = staticX509Source(other.current().svid, pki.ca.bundle);
    await assert.rejects(
      call(url, { credentials: channelCredentials(mixed) }),
      (e: NsmError) => e.code === Code.Unavailable,
    );
    assert.equal(seen.length, before, "no call reached the handler");
  });

  it("refuses a peer whose chain is good but whose URI SAN is not an SVID of the trust domain", async () => {
    const before = seen.length;
    for (const uris of [["spiffe://b.test/client"], [], ["spiffe://a.test/one", "spiffe://a.test/two"]]) {
      const odd = staticX509Source(await issueUnchecked(pki.ca, uris), pki.ca.bundle);
      await assert.rejects(
        call(url, { credentials: channelCredentials(odd) }),
        (e: NsmError) => e.code === Code.Unauthenticated,
        JSON.stringify(uris),
      );
      // The same certificate on a server is refused by the client.
      const oddServer = whoAmIServer([]);
      const oddUrl = await bindUnix(oddServer, serverCredentials(odd), dir.path, "odd.sock");
      try {
        await assert.rejects(
          call(oddUrl, secureDialOptions(await pki.source("client"))),
          (e: NsmError) => e.code === Code.Unavailable,
        );
      } finally {
        oddServer.forceShutdown();
      }
    }
    assert.equal(seen.length, before, "no call reached the handler");
  });

  it("refuses a server from another trust domain, or not the expected peer", async () => {
    const client = await pki.source("client");
    const other = await foreign.source("server");
    const otherServer = whoAmIServer([]);
    const otherUrl = await bindUnix(otherServer, serverCredentials(other), dir.path, "other.sock");
    try {
      await assert.rejects(call(otherUrl, secureDialOptions(client)), (e: NsmError) => e.code === Code.Unavailable);
      await assert.rejects(
        call(url, secureDialOptions(client, { expectedPeer: "spiffe://a.test/someone-else" })),
        (e: NsmError) => e.code === Code.Unavailable,
      );
      const ok = await call(url, secureDialOptions(client, { expectedPeer: "spiffe://a.test/server" }));
      assert.equal(ok.id, "spiffe://a.test/client");
    } finally {
      otherServer.forceShutdown();
    }
  });

  it("follows rotation: new handshakes present the new server SVID", async () => {
    const client = await pki.source("client");
    const first = await call(url, secureDialOptions(client));
    const rotated = await new Promise<number>((resolve) => serverSource.subscribe((s) => resolve(s.version)));
    assert.ok(rotated > 1);
    const second = await call(url, secureDialOptions(client));
    assert.notEqual(second.server!.serialNumber, first.server!.serialNumber, "a new SVID after rotation");
    assert.equal(second.server!.serialNumber, serverSource.current().svid.certificates[0]!.serialNumber);
    assert.equal(spiffeIdOfCertificate(second.server!), "spiffe://a.test/server");
  });

  it("insecure mode works only when asked for, and says so loudly", async () => {
    const log = recordingLogger();
    const plain = whoAmIServer([]);
    const plainUrl = await bindUnix(
      plain,
      serverCredentials(undefined, { insecure: true, log }),
      dir.path,
      "plain.sock",
    );
    try {
      const res = await call(plainUrl, { credentials: channelCredentials(undefined, { insecure: true, log }) });
      assert.equal(res.id, "anonymous");
      assert.ok(log.records.some((r) => r.level === "warn" && r.msg.includes("INSECURE")));
      assert.throws(
        () => serverCredentials(undefined),
        (e: NsmError) => e.code === Code.InvalidArgument,
      );
    } finally {
      plain.forceShutdown();
    }
  });
});
