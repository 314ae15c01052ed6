// SPDX-License-Identifier: Apache-2.0
/**
 * Netns passing as upstream NSM does it (grpcfd), between our own components: sendfd on the
 * client, a unix socket relayed by the addon (SCM_RIGHTS), recvfd on the server, with and
 * without mTLS; bad input; no descriptor leaks. Root (a second netns from `unshare --net`).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  ConnectionSchema,
  create,
  MechanismType,
  NetworkService,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  Param,
} from "../../src/api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { bindFdUnix, type FdServerBinding, fdChannelCredentials, queueFdsFor } from "../../src/sdk/grpc/fdtransport.js";
import { addService, grpcClient } from "../../src/sdk/grpc/service.js";
import { clientUrlClient } from "../../src/sdk/networkservice/common/clienturl/index.js";
import { recvFdServer } from "../../src/sdk/networkservice/common/recvfd/index.js";
import { inodeUrlOfPath, sendFdClient } from "../../src/sdk/networkservice/common/sendfd/index.js";
import { channelCredentials, serverCredentials } from "../../src/security/index.js";
import { createTestPki, type TestPki, tempDir } from "../../src/security/testing.js";

const O_PATH = 0o10000000;
const ownNetns = `/proc/${process.pid}/ns/net`;
const openFds = () => readdirSync("/proc/self/fd").length;
const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));

interface Seen {
  url: string;
  key: string;
}

/** The end of the server chain: records the inodeURL it got and what that path is. */
function recordingTail(seen: Seen[]): NetworkServiceElement {
  return {
    name: "recordingTail",
    async request(req) {
      const url = req.connection?.mechanism?.parameters[Param.INODE_URL];
      if (url === undefined) return req.connection as Connection;
      seen.push({ url, key: url.startsWith("file://") ? inodeUrlOfPath(url.slice("file://".length)) : "" });
      return req.connection as Connection;
    },
    close: async () => ({}) as never,
  };
}

function serve(seen: Seen[], creds: grpc.ServerCredentials, path: string): { server: grpc.Server; b: FdServerBinding } {
  const server = new grpc.Server();
  const h = bind(chain(recvFdServer({ requireSenderNetns: true, waitMs: 500 }), recordingTail(seen)));
  addService(server, NetworkService, {
    request: (req, ctx) => h.request(req, ctx),
    close: async (conn, ctx) => {
      await h.close(conn, ctx);
      return {} as never;
    },
  });
  return { server, b: bindFdUnix(server, path, creds) };
}

function kernelRequest(id: string, inodeUrl: string): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      networkService: "ns",
      mechanism: { cls: "LOCAL", type: MechanismType.KERNEL, parameters: { [Param.INODE_URL]: inodeUrl } },
    }),
  });
}

function plainRequest(id: string): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id, networkService: "ns" }) });
}

/** A client chain: clienturl → sendfd → the gRPC call. */
function client(url: string, channel: grpc.Client) {
  const rpc = grpcClient(NetworkService, channel);
  const tail: NetworkServiceElement = {
    name: "grpc",
    request: (req, ctx) => rpc.request(req, ctx),
    close: async (conn, ctx) => {
      await rpc.close(conn, ctx);
      return {} as never;
    },
  };
  return bind(chain(clientUrlClient(url), sendFdClient(), tail));
}

const ctx = () => CallContext.create({ deadline: Date.now() + 5000 });

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return NsmError.from(err).code;
  }
  return Code.OK;
}

for (const secure of [false, true]) {
  describe(`grpcfd transport (${secure ? "mTLS" : "insecure"})`, () => {
    const dir = tempDir("nsm-grpcfd-");
    const seen: Seen[] = [];
    let pki: TestPki | undefined;
    let served: { server: grpc.Server; b: FdServerBinding };
    let channel: grpc.Client;
    let url: string;
    let other: ChildProcess;
    let cc: grpc.ChannelCredentials;

    before(async () => {
      let sc = grpc.ServerCredentials.createInsecure();
      cc = grpc.credentials.createInsecure();
      if (secure) {
        pki = await createTestPki("fd.test");
        sc = serverCredentials(await pki.source("server"));
        cc = channelCredentials(await pki.source("client"));
      }
      served = serve(seen, sc, join(dir.path, "s.sock"));
      url = served.b.url;
      channel = dialChannel(url, { credentials: fdChannelCredentials(cc) });
      other = spawn("unshare", ["--net", "sleep", "60"], { stdio: "ignore" });
      await settle(200);
    });
    after(() => {
      closeChannel(channel);
      served.b.close();
      served.server.forceShutdown();
      if (other.pid) process.kill(other.pid, "SIGKILL");
      pki?.close();
      dir.cleanup();
    });

    it("the server gets the client's netns as a descriptor, and the URL back is the client's", async () => {
      seen.length = 0;
      const conn = await client(url, channel).request(kernelRequest("c1", `file://${ownNetns}`), ctx());
      assert.equal(seen.length, 1);
      assert.match(seen[0]!.url, new RegExp(`^file:///proc/${process.pid}/fd/\\d+$`), "a received descriptor");
      assert.equal(seen[0]!.key, inodeUrlOfPath(ownNetns), "the descriptor is the client's namespace");
      assert.equal(conn.mechanism?.parameters[Param.INODE_URL], `file://${ownNetns}`, "the client sees its own URL");
      await client(url, channel).close(conn, ctx());
    });

    it("nothing is held once the Request is done; a connection that ends closes unclaimed ones", async () => {
      await client(url, channel).request(kernelRequest("warm", `file://${ownNetns}`), ctx());
      await client(url, channel).close(kernelRequest("warm", `inode://x/y`).connection!, ctx());
      await settle();
      const before = openFds();
      const conn = await client(url, channel).request(kernelRequest("c2", `file://${ownNetns}`), ctx());
      await settle();
      assert.equal(openFds(), before, "the server released c2's descriptor when its Request was done");
      await client(url, channel).close(conn, ctx());
      await settle();
      assert.equal(openFds(), before, "Close has nothing to release");

      const ch2 = dialChannel(url, {
        credentials: fdChannelCredentials(cc),
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      });
      const base = openFds();
      queueFdsFor(url.slice("unix://".length), [openSync(ownNetns, O_PATH)]);
      const code = await codeOf(grpcClient(NetworkService, ch2).request(plainRequest("c3"), ctx()));
      assert.equal(code, Code.OK, "the call went through (tail accepts anything)");
      closeChannel(ch2);
      await settle(500);
      assert.ok(openFds() <= base, `no descriptor left after the connection ended (${openFds()} > ${base})`);
    });

    it("an inode:// URL with no descriptor behind it is InvalidArgument, nothing created", async () => {
      seen.length = 0;
      const rpc = grpcClient(NetworkService, channel);
      const code = await codeOf(rpc.request(kernelRequest("c4", inodeUrlOfPath(ownNetns)), ctx()));
      assert.equal(code, Code.InvalidArgument);
      assert.equal(seen.length, 0, "nothing went down the chain");
      assert.equal(await codeOf(rpc.request(kernelRequest("c5", "inode://abc"), ctx())), Code.InvalidArgument);
    });

    it("a descriptor of a namespace that is not the sender's own is PermissionDenied, nothing created", async () => {
      seen.length = 0;
      const foreign = `/proc/${other.pid}/ns/net`;
      assert.notEqual(inodeUrlOfPath(foreign), inodeUrlOfPath(ownNetns), "unshare made another netns");
      // sendfd sends only the sender's own netns: queue the foreign one by hand, as a hostile sender would.
      const fd = openSync(foreign, O_PATH);
      queueFdsFor(url.slice("unix://".length), [fd]);
      const rpc = grpcClient(NetworkService, channel);
      const code = await codeOf(rpc.request(kernelRequest("c6", inodeUrlOfPath(foreign)), ctx()));
      assert.equal(code, Code.PermissionDenied);
      assert.equal(seen.length, 0, "nothing went down the chain");
    });
  });
}
