// SPDX-License-Identifier: Apache-2.0
/**
 * SVID rotation under live connections: tokens are signed with the SVID each connection
 * presented, servers drain their connections when they rotate, and so requests keep passing the
 * policies across rotations while open streams stay up.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  ConnectionEventType,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
} from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { closeChannel, dialChannel } from "../sdk/grpc/dial.js";
import { grpcClient } from "../sdk/grpc/service.js";
import { createClient } from "../sdk/networkservice/chains/client/index.js";
import { createEndpoint, type Endpoint } from "../sdk/networkservice/chains/endpoint/index.js";
import {
  authorizeClient,
  authorizeServer,
  createTokenGenerator,
  decodeTokenClaims,
  drainOnRotation,
  secureDialOptions,
  serverCredentials,
  updateTokenServer,
  verifyTokenSignature,
  type X509Source,
} from "./index.js";
import { bindUnix, createTestPki, recordingLogger, type TestPki, tempDir } from "./testing.js";

describe("SVID rotation during a live connection", () => {
  let pki: TestPki;
  let dir: ReturnType<typeof tempDir>;
  let server: grpc.Server;
  let endpoint: Endpoint;
  let url: string;
  let serverSource: X509Source;
  let clientSource: X509Source;
  let stopDrain: () => void;
  const log = recordingLogger();

  before(async () => {
    pki = await createTestPki("rot.test");
    dir = tempDir();
    // Rotated at half of 4 s (token expiry has whole seconds): rotations of both sides during the test.
    serverSource = await pki.source("server", { ttlMs: 4000 });
    clientSource = await pki.source("client", { ttlMs: 4000 });
    endpoint = createEndpoint({
      name: "server",
      log,
      updateToken: updateTokenServer(createTokenGenerator(serverSource)),
      authorize: authorizeServer({ trustBundle: () => serverSource.current().bundle }),
    });
    server = new grpc.Server();
    endpoint.register(server);
    url = await bindUnix(server, serverCredentials(serverSource), dir.path);
    stopDrain = drainOnRotation(server, serverSource);
  });
  after(() => {
    stopDrain();
    endpoint.dispose();
    server.forceShutdown();
    pki.close();
    dir.cleanup();
  });

  it("refreshes keep passing the policies across rotations, with the new certificates, and streams stay open", async () => {
    const client = createClient({
      name: "client",
      connectTo: url,
      ...secureDialOptions(clientSource, { tokenGenerator: createTokenGenerator(clientSource) }),
      authorize: authorizeClient({ trustBundle: () => clientSource.current().bundle }),
    });
    const ctx = () => CallContext.create({ deadline: Date.now() + 5000, log });
    const req = create(NetworkServiceRequestSchema, { connection: { id: "rot-1", networkService: "svc" } });
    let conn: Connection = await client.request(req, ctx());
    const firstClientCert = clientSource.current().svid.certificates[0]!;
    const firstServerSerial = serverSource.current().svid.certificates[0]!.serialNumber;

    // A monitor stream opened now must survive the server's draining.
    const channel = dialChannel(url, secureDialOptions(clientSource));
    const stop = new AbortController();
    const streamCtx = CallContext.create().withCancel({ signal: stop.signal, timeoutMs: 10_000 });
    const events: ConnectionEventType[] = [];
    const stream = (async () => {
      const selector = create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "rot-1" }] });
      try {
        for await (const e of grpcClient(MonitorConnection, channel).monitorConnections(selector, streamCtx)) {
          events.push(e.type);
        }
      } catch {
        // cancelled at the end of the test
      }
    })();

    let rotations = 0;
    const unsubscribe = serverSource.subscribe(() => rotations++);
    const clientRotations: number[] = [];
    const unsubscribeClient = clientSource.subscribe((s) => clientRotations.push(s.version));
    try {
      const until = Date.now() + 7000;
      while (Date.now() < until) {
        await new Promise((r) => setTimeout(r, 150));
        conn = await client.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
      }
      assert.ok(rotations >= 2, `the server rotated ${rotations} times`);
      assert.ok(clientRotations.length >= 2, `the client rotated ${clientRotations.length} times`);
      // The latest refresh was signed with a later client SVID than the first one.
      const token = conn.path!.pathSegments[0]!.token;
      assert.equal(decodeTokenClaims(token).sub, pki.id("client"));
      assert.equal(await verifyTokenSignature(token, firstClientCert), false, "still signed with the first SVID");
      // And the server answered over a connection that presented a later server SVID.
      const serverToken = conn.path!.pathSegments[1]!.token;
      assert.equal(decodeTokenClaims(serverToken).sub, pki.id("server"));
      assert.notEqual(serverSource.current().svid.certificates[0]!.serialNumber, firstServerSerial);
      // The stream opened before the rotations is still there: it sees this refresh.
      const before = events.length;
      await client.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
      for (let i = 0; i < 50 && events.length === before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(events.length > before, "the monitor stream stopped receiving events");
      assert.equal(events[0], ConnectionEventType.INITIAL_STATE_TRANSFER);
      assert.deepEqual(
        log.records.filter((r) => r.msg.includes("policy failed")),
        [],
        "no policy failed",
      );
    } finally {
      unsubscribe();
      unsubscribeClient();
      stop.abort();
      await stream;
      closeChannel(channel);
      await client.close(conn, ctx());
    }
  });
});
