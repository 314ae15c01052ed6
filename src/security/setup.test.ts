// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceRequestSchema } from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { Code, type NsmError } from "../sdk/core/errors.js";
import { createClient } from "../sdk/networkservice/chains/client/index.js";
import { createEndpoint } from "../sdk/networkservice/chains/endpoint/index.js";
import { createCa, createSecurity, decodeTokenClaims, serveWorkloadApi, workloadSpiffeId } from "./index.js";
import { bindUnix, recordingLogger, tempDir } from "./testing.js";

const addon = join(fileURLToPath(new URL("../..", import.meta.url)), "native/build/Release/nsnl.node");

describe("createSecurity", () => {
  it("wires Workload API → mTLS → path tokens → policies for an endpoint and a client", {
    skip: existsSync(addon) ? false : "the netlink addon is not built",
  }, async () => {
    const dir = tempDir();
    const ca = await createCa({ trustDomain: "local.nsm" });
    const nse = workloadSpiffeId("local.nsm", "default", "nse-0");
    const nsc = workloadSpiffeId("local.nsm", "default", "nsc-0");
    // Both ends live in this process: the Workload API hands out the identity of the next caller.
    let next = nse;
    const api = await serveWorkloadApi({
      ca,
      socket: join(dir.path, "agent.sock"),
      resolveIdentity: (pid) => (pid === process.pid ? next : undefined),
    });
    const endpointSecurity = await createSecurity({ socket: api.endpoint });
    next = nsc;
    const clientSecurity = await createSecurity({ socket: api.endpoint });
    const endpoint = createEndpoint({ name: "nse", ...endpointSecurity.endpoint() });
    const server = new grpc.Server();
    endpoint.register(server);
    const url = await bindUnix(server, endpointSecurity.serverCredentials(), dir.path, "nse.sock");
    try {
      assert.equal(endpointSecurity.source!.current().svid.spiffeId, nse);
      const client = createClient({
        name: "nsc",
        connectTo: url,
        ...clientSecurity.dialOptions(nse),
        authorize: clientSecurity.clientAuthorize(),
      });
      const ctx = () => CallContext.create({ deadline: Date.now() + 5000 });
      const conn = await client.request(
        create(NetworkServiceRequestSchema, { connection: { id: "nsc-0", networkService: "svc" } }),
        ctx(),
      );
      assert.deepEqual(
        conn.path!.pathSegments.map((s) => decodeTokenClaims(s.token).sub),
        [nsc, nse],
      );
      assert.deepEqual(endpointSecurity.spiffeIdConnectionMap.toRecord(), { [nsc]: ["nsc-0"] });
      await client.close(conn, ctx());
      // A client that expects another server is refused at the handshake.
      const wrong = createClient({
        name: "nsc",
        connectTo: url,
        ...clientSecurity.dialOptions(nsc),
        dialTimeoutMs: 500,
      });
      await assert.rejects(
        wrong.request(create(NetworkServiceRequestSchema, { connection: { id: "x", networkService: "svc" } }), ctx()),
        (e: NsmError) => e.code === Code.Unavailable,
      );
    } finally {
      endpoint.dispose();
      server.forceShutdown();
      endpointSecurity.close();
      clientSecurity.close();
      await api.close();
      dir.cleanup();
    }
  });

  it("insecure mode: no Workload API, pass-through slots, a loud warning", async () => {
    const log = recordingLogger();
    const security = await createSecurity({ insecure: true, log });
    assert.equal(security.source, undefined);
    assert.equal(security.tokenGenerator, undefined);
    const endpoint = createEndpoint({ name: "nse", ...security.endpoint() });
    const conn = await endpoint.request(
      create(NetworkServiceRequestSchema, { connection: { id: "c", networkService: "svc" } }),
      CallContext.create(),
    );
    assert.equal(conn.path!.pathSegments[0]!.token, "", "no tokens in insecure mode");
    endpoint.dispose();
    assert.equal(security.registryServer(), undefined);
    assert.ok(log.records.some((r) => r.level === "warn" && r.msg.includes("INSECURE")));
    await assert.rejects(createSecurity({}), (e: NsmError) => e.code === Code.InvalidArgument);
  });
});
