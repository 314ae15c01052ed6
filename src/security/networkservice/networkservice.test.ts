// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkService,
  NetworkServiceRequestSchema,
} from "../../api/index.js";
import type { NetworkServiceHandler } from "../../sdk/core/chain.js";
import { CallContext } from "../../sdk/core/context.js";
import { Code, type NsmError } from "../../sdk/core/errors.js";
import { closeChannel, dialChannel } from "../../sdk/grpc/dial.js";
import { addService, grpcClient } from "../../sdk/grpc/service.js";
import { clientChain, createClient } from "../../sdk/networkservice/chains/client/index.js";
import { createEndpoint, type Endpoint } from "../../sdk/networkservice/chains/endpoint/index.js";
import { connectServer } from "../../sdk/networkservice/common/connect/index.js";
import { monitorConnectionService } from "../../sdk/networkservice/common/monitor/index.js";
import {
  authorizeClient,
  authorizeMonitorConnectionService,
  authorizeServer,
  builtinPolicies,
  createTokenGenerator,
  DEFAULT_POLICY_MASKS,
  decodeTokenClaims,
  PERMISSION_DENIED_MESSAGE,
  SpiffeIdConnectionMap,
  secureDialOptions,
  serverCredentials,
  tokensChained,
  updateTokenServer,
  verifyTokenSignature,
  type X509Source,
} from "../index.js";
import { bindUnix, createTestPki, recordingLogger, serveMonitorConnection, type TestPki, tempDir } from "../testing.js";

interface Hop {
  readonly endpoint: Endpoint;
  readonly server: grpc.Server;
  readonly url: string;
  readonly connections: SpiffeIdConnectionMap;
}

describe("NetworkService chains with mTLS, path tokens and policies", () => {
  let pki: TestPki;
  let dir: ReturnType<typeof tempDir>;
  const sources: Record<string, X509Source> = {};
  const hops: Hop[] = [];
  const log = recordingLogger();
  let server1: Hop;
  let server2: Hop;

  /** An endpoint with the security slots filled, serving NetworkService and an authorized monitor. */
  async function startHop(name: string, next?: string): Promise<Hop> {
    const source = sources[name]!;
    const connections = new SpiffeIdConnectionMap();
    const endpoint = createEndpoint({
      name,
      log,
      updateToken: updateTokenServer(createTokenGenerator(source)),
      authorize: authorizeServer({ spiffeIdConnectionMap: connections }),
      additional: next
        ? [
            connectServer(
              clientChain({
                name,
                connectTo: next,
                ...secureDialOptions(source, { tokenGenerator: createTokenGenerator(source) }),
                authorize: authorizeClient(),
              }),
            ),
          ]
        : [],
    });
    const server = new grpc.Server();
    addService(
      server,
      NetworkService,
      {
        request: (req, ctx) => endpoint.request(req, ctx),
        close: async (conn, ctx) => {
          await endpoint.close(conn, ctx);
          return create(EmptySchema);
        },
      },
      { log },
    );
    serveMonitorConnection(
      server,
      authorizeMonitorConnectionService(monitorConnectionService(endpoint.monitor), {
        policies: builtinPolicies(DEFAULT_POLICY_MASKS.monitor),
        spiffeIdConnectionMap: connections,
      }),
    );
    const url = await bindUnix(server, serverCredentials(source), dir.path, `${name}.sock`);
    const hop = { endpoint, server, url, connections };
    hops.push(hop);
    return hop;
  }

  function nsc(name: string, url: string, maxTokenLifetimeMs?: number): NetworkServiceHandler {
    const source = sources[name]!;
    return createClient({
      name,
      connectTo: url,
      ...secureDialOptions(source, { tokenGenerator: createTokenGenerator(source, { maxTokenLifetimeMs }) }),
      authorize: authorizeClient(),
    });
  }

  const request = (id: string) =>
    create(NetworkServiceRequestSchema, { connection: { id, networkService: "secure-svc" } });
  const ctx = () => CallContext.create({ deadline: Date.now() + 10_000, log });
  const cert = (name: string) => sources[name]!.current().svid.certificates[0]!;

  before(async () => {
    pki = await createTestPki("test.nsm");
    dir = tempDir();
    for (const n of ["nsc", "nsc-b", "server1", "server2", "intruder"]) sources[n] = await pki.source(n);
    server2 = await startHop("server2");
    server1 = await startHop("server1", server2.url);
  });
  after(() => {
    for (const h of hops) {
      h.endpoint.dispose();
      h.server.forceShutdown();
    }
    pki.close();
    dir.cleanup();
  });

  it("client → server → server: every path segment carries a valid, chained token", async () => {
    const client = nsc("nsc", server1.url);
    const conn: Connection = await client.request(request("nsc-1"), ctx());
    try {
      const segs = conn.path!.pathSegments;
      assert.deepEqual(
        segs.map((s) => s.name),
        ["nsc", "server1", "server2"],
      );
      const expected = [
        ["nsc", "server1"],
        ["server1", "server2"],
        ["server2", "server1"], // the last hop's own token, minted for its caller
      ];
      for (const [i, [sub, aud]] of expected.entries()) {
        const claims = decodeTokenClaims(segs[i]!.token);
        assert.equal(claims.sub, pki.id(sub!), `segment ${i} sub`);
        assert.deepEqual(claims.aud, [pki.id(aud!)], `segment ${i} aud`);
        assert.equal(await verifyTokenSignature(segs[i]!.token, cert(sub!)), true, `segment ${i} signed by ${sub}`);
        const expires = Number(segs[i]!.expires!.seconds);
        assert.equal(expires, claims.exp, `segment ${i} expires matches exp`);
        assert.ok(expires * 1000 > Date.now() + 9 * 60_000, "10 min default lifetime");
      }
      const tokens = segs.map((s) => ({ token: s.token }));
      assert.equal(await tokensChained.check({ index: 0, pathSegments: tokens, now: new Date() }), true);
      // What server1 recorded for the monitor: the nsc asked for the connection with its own id.
      assert.deepEqual(server1.connections.toRecord(), { [pki.id("nsc")]: [segs[0]!.id] });
      assert.deepEqual(server2.connections.toRecord(), { [pki.id("server1")]: [segs[1]!.id] });
      // A refresh goes through every check again.
      const refreshed = await client.request(request("nsc-1"), ctx());
      assert.equal(refreshed.path!.pathSegments.length, 3);
    } finally {
      await client.close(conn, ctx());
    }
    assert.deepEqual(server1.connections.toRecord(), {}, "Close forgets the connection");
  });

  it("tokens_expired: a client with NSM_MAX_TOKEN_LIFETIME=-1m is denied", async () => {
    const client = nsc("nsc", server1.url, -60_000);
    const before = log.records.length;
    await assert.rejects(
      client.request(request("nsc-expired"), ctx()),
      (e: NsmError) => e.code === Code.PermissionDenied && e.rawMessage === PERMISSION_DENIED_MESSAGE,
    );
    const denied = log.records.slice(before).find((r) => r.msg.includes("policy failed"));
    assert.equal(denied?.fields.policy, "etc/nsm/opa/common/tokens_expired.rego");
  });

  it("prev_token_signed: a token signed with another key is denied", async () => {
    // The intruder holds the nsc's TLS identity but signs path tokens with its own key.
    const wrongKey = createTokenGenerator(sources.intruder!);
    const client = createClient({
      name: "nsc",
      connectTo: server1.url,
      ...secureDialOptions(sources.nsc, { tokenGenerator: wrongKey }),
    });
    const before = log.records.length;
    await assert.rejects(
      client.request(request("nsc-forged"), ctx()),
      (e: NsmError) => e.code === Code.PermissionDenied,
    );
    const denied = log.records.slice(before).find((r) => r.msg.includes("policy failed"));
    assert.ok(
      ["etc/nsm/opa/server/prev_token_signed.rego", "etc/nsm/opa/common/tokens_chained.rego"].includes(
        denied?.fields.policy as string,
      ),
    );
  });

  it("timeout closes an unrefreshed connection through authorize without re-checking the old call", async () => {
    // Tokens live 4 s (their exp claim is in whole seconds, so up to 1 s less) and the request
    // timeout is 2.5 s: server1 closes ~1.5 s after the request, well before any token expires,
    // so server2 accepts the Close server1 sends it.
    const client = nsc("nsc", server1.url, 4000);
    const before = log.records.length;
    const conn = await client.request(request("nsc-dies"), CallContext.create({ deadline: Date.now() + 2500, log }));
    assert.equal(server1.endpoint.monitor.connections().length, 1);
    // The nsc never refreshes: server1 closes at its token's expiry minus the request timeout.
    const open = () => server1.endpoint.monitor.connections().length + server2.endpoint.monitor.connections().length;
    for (let i = 0; i < 50 && open() > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(server1.endpoint.monitor.connections().length, 0, "server1 closed the connection");
    assert.equal(server2.endpoint.monitor.connections().length, 0, "and closed it downstream");
    assert.deepEqual(server1.connections.toRecord(), {});
    const problems = log.records.slice(before).filter((r) => r.level === "error" || r.msg.includes("failed"));
    assert.deepEqual(problems, []);
    assert.equal(conn.path!.pathSegments.length, 3);
  });

  it("monitor service_connection: a caller sees only connections it requested", async () => {
    const a = nsc("nsc", server1.url);
    const b = nsc("nsc-b", server1.url);
    const connA = await a.request(request("conn-a"), ctx());
    const connB = await b.request(request("conn-b"), ctx());
    const monitor = async (who: string, ids: string[]) => {
      const channel = dialChannel(server1.url, secureDialOptions(sources[who]));
      try {
        const selector = create(MonitorScopeSelectorSchema, { pathSegments: ids.map((id) => ({ id })) });
        for await (const event of grpcClient(MonitorConnection, channel).monitorConnections(selector, ctx())) {
          return Object.values(event.connections).map((c) => c.path!.pathSegments[0]!.id);
        }
        return [];
      } finally {
        closeChannel(channel);
      }
    };
    try {
      assert.deepEqual(await monitor("nsc", ["conn-a"]), ["conn-a"]);
      assert.deepEqual(await monitor("nsc-b", ["conn-b"]), ["conn-b"]);
      // A selector naming one own connection passes the policy; the others it names are not shown.
      assert.ok(!(await monitor("nsc", ["conn-a", "conn-b"])).includes("conn-b"));
      const denied = (e: NsmError) => e.code === Code.PermissionDenied && e.rawMessage === PERMISSION_DENIED_MESSAGE;
      await assert.rejects(monitor("nsc-b", ["conn-a"]), denied);
      await assert.rejects(monitor("nsc", []), denied, "an empty selector would show everything");
      await assert.rejects(monitor("server2", ["conn-a"]), denied);
    } finally {
      await a.close(connA, ctx());
      await b.close(connB, ctx());
    }
  });
});
