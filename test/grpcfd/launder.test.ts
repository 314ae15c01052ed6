// SPDX-License-Identifier: Apache-2.0
/**
 * Regression: a hop in the middle (nsmgr) must not turn a caller's plain netns path into a
 * descriptor. Client → hop (recvfd server, sendfd client with `sends: "received"`, as nsmgr's
 * chain) → "forwarder" (recvfd server). A namespace the client sent as a descriptor reaches the
 * forwarder as a received descriptor; a `file://` path the client named (another pod's netns,
 * or the hop's own) reaches it as that same plain path, not received, so the forwarder's
 * pid-based check applies. Root (a second netns from `unshare --net`).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
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
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { bindFdUnix, type FdServerBinding, fdChannelCredentials } from "../../src/sdk/grpc/fdtransport.js";
import { addService, grpcClient } from "../../src/sdk/grpc/service.js";
import { clientUrlClient } from "../../src/sdk/networkservice/common/clienturl/index.js";
import { isReceivedNetns, recvFdServer } from "../../src/sdk/networkservice/common/recvfd/index.js";
import { inodeUrlOfPath, type SendFdOptions, sendFdClient } from "../../src/sdk/networkservice/common/sendfd/index.js";
import { tempDir } from "../../src/security/testing.js";

const ownNetns = `/proc/${process.pid}/ns/net`;
const ctx = () => CallContext.create({ deadline: Date.now() + 5000 });
const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));

interface Seen {
  readonly url: string;
  readonly received: boolean;
  readonly key: string;
}

/** The forwarder's end: records the inodeURL, whether it is a received descriptor, and what it names. */
function recordingTail(seen: Seen[]): NetworkServiceElement {
  return {
    name: "recordingTail",
    async request(req, c) {
      const url = req.connection?.mechanism?.parameters[Param.INODE_URL] ?? "";
      const path = url.startsWith("file://") ? url.slice("file://".length) : "";
      seen.push({ url, received: isReceivedNetns(c, url), key: path ? inodeUrlOfPath(path) : "" });
      return req.connection as Connection;
    },
    close: async () => ({}) as never,
  };
}

/** The gRPC call as the last client element. */
function grpcTail(channel: grpc.Client): NetworkServiceElement {
  const rpc = grpcClient(NetworkService, channel);
  return {
    name: "grpc",
    request: (req, c) => rpc.request(req, c),
    close: async (conn, c) => {
      await rpc.close(conn, c);
      return {} as never;
    },
  };
}

function serve(path: string, elements: NetworkServiceElement[]): { server: grpc.Server; b: FdServerBinding } {
  const server = new grpc.Server();
  const h = bind(chain(...elements));
  addService(server, NetworkService, {
    request: (req, c) => h.request(req, c),
    close: async (conn, c) => {
      await h.close(conn, c);
      return {} as never;
    },
  });
  return { server, b: bindFdUnix(server, path, grpc.ServerCredentials.createInsecure()) };
}

function sender(url: string, channel: grpc.Client, options?: SendFdOptions) {
  return bind(chain(clientUrlClient(url), sendFdClient(options), grpcTail(channel)));
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

describe("grpcfd: a hop forwards as descriptors only what it received as descriptors", () => {
  const dir = tempDir("nsm-launder-");
  const seen: Seen[] = [];
  const cc = () => fdChannelCredentials(grpc.credentials.createInsecure());
  let forwarder: { server: grpc.Server; b: FdServerBinding };
  let hop: { server: grpc.Server; b: FdServerBinding };
  let toForwarder: grpc.Client;
  let toHop: grpc.Client;
  let other: ChildProcess;

  before(async () => {
    forwarder = serve(join(dir.path, "fwd.sock"), [recvFdServer({ waitMs: 500 }), recordingTail(seen)]);
    toForwarder = dialChannel(forwarder.b.url, { credentials: cc() });
    const onward = sender(forwarder.b.url, toForwarder, { sends: "received" });
    const forward: NetworkServiceElement = {
      name: "forward",
      request: (req, c) => onward.request(req, c),
      close: (conn, c) => onward.close(conn, c),
    };
    hop = serve(join(dir.path, "hop.sock"), [recvFdServer({ requireSenderNetns: true, waitMs: 500 }), forward]);
    toHop = dialChannel(hop.b.url, { credentials: cc() });
    other = spawn("unshare", ["--net", "sleep", "60"], { stdio: "ignore" });
    await settle();
  });
  after(() => {
    closeChannel(toHop);
    closeChannel(toForwarder);
    hop.b.close();
    hop.server.forceShutdown();
    forwarder.b.close();
    forwarder.server.forceShutdown();
    if (other.pid) process.kill(other.pid, "SIGKILL");
    dir.cleanup();
  });

  it("the client's own netns sent as a descriptor reaches the forwarder as a received descriptor", async () => {
    seen.length = 0;
    const conn = await sender(hop.b.url, toHop).request(kernelRequest("own", `file://${ownNetns}`), ctx());
    assert.equal(seen.length, 1);
    assert.match(seen[0]!.url, new RegExp(`^file:///proc/${process.pid}/fd/\\d+$`));
    assert.equal(seen[0]!.received, true, "a descriptor the forwarder received");
    assert.equal(seen[0]!.key, inodeUrlOfPath(ownNetns));
    assert.equal(conn.mechanism?.parameters[Param.INODE_URL], `file://${ownNetns}`);
  });

  it("another pod's netns or the hop's own, named by a plain path, stays a path (no laundering)", async () => {
    const foreign = `/proc/${other.pid}/ns/net`;
    assert.notEqual(inodeUrlOfPath(foreign), inodeUrlOfPath(ownNetns), "unshare made another netns");
    const plain = grpcTail(toHop);
    for (const [id, path] of [
      ["foreign", foreign],
      ["hops-own", ownNetns],
    ] as const) {
      seen.length = 0;
      await bind(chain(plain)).request(kernelRequest(id, `file://${path}`), ctx());
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.url, `file://${path}`, `${id}: the forwarder sees the caller's plain path`);
      assert.equal(seen[0]!.received, false, `${id}: not a received descriptor, so no proof of ownership`);
    }
  });
});
