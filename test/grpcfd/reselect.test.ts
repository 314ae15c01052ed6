// SPDX-License-Identifier: Apache-2.0
/**
 * A descriptor arrives once per call, but the forwarder's roundrobin runs the rest of its chain
 * once per candidate endpoint: the forwarder's recvfd must sit before endpoint selection
 * (`createForwarder({ first })`), or the next candidate after a dead one waits for a descriptor
 * the first attempt already took (a remote endpoint's death with descriptors on then did not
 * heal: every reselect ran into its deadline). Here the first candidate is an endpoint whose
 * socket is gone, the second a live one.
 */
import assert from "node:assert/strict";
import { openSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../src/api/gen/registry_pb.js";
import {
  Cls,
  ConnectionSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  Param,
  PathSchema,
  PathSegmentSchema,
} from "../../src/api/index.js";
import type { NetworkServiceElement } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";
import { FdTable } from "../../src/sdk/grpc/fdsocket.js";
import { grpcPeerKey } from "../../src/sdk/grpc/service.js";
import { createEndpoint, type Endpoint } from "../../src/sdk/networkservice/chains/endpoint/index.js";
import { createForwarder } from "../../src/sdk/networkservice/chains/forwarder/index.js";
import { kernelMechanismServer } from "../../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { isReceivedNetns, recvFdServer } from "../../src/sdk/networkservice/common/recvfd/index.js";
import { inodeUrlOfPath } from "../../src/sdk/networkservice/common/sendfd/index.js";
import { fakeNseRegistry, fakeNsRegistry } from "../../src/sdk/testing/fake-registry.js";
import { type Served, serveOnUnixSocket } from "../../src/sdk/testing/serve.js";

const O_PATH = 0o10000000;
const NETNS = `/proc/${process.pid}/ns/net`;
/** Descriptors of this process that name a network namespace (the dialed sockets do not count). */
const netnsFds = () =>
  readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith("net:[");
    } catch {
      return false;
    }
  }).length;

/** What each attempt below roundrobin saw: the client's netns URL, received, and still open. */
interface Seen {
  endpoint: string;
  received: boolean;
  open: boolean;
}

function recorder(seen: Seen[]): NetworkServiceElement {
  const namesNetns = (url: string) => {
    try {
      return inodeUrlOfPath(url.slice("file://".length)) === inodeUrlOfPath(NETNS) && statSync(NETNS) !== undefined;
    } catch {
      return false;
    }
  };
  return {
    name: "recorder",
    request(req, ctx, next) {
      const url = req.connection?.mechanism?.parameters[Param.INODE_URL] ?? "";
      seen.push({
        endpoint: req.connection?.networkServiceEndpointName ?? "",
        received: isReceivedNetns(ctx, url),
        open: namesNetns(url),
      });
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** A Request as nsmgr forwards it, the client's netns named by descriptor. */
function request() {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "nsmgr-id",
      networkService: "svc",
      mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
        name: "nsm-1",
        [Param.INODE_URL]: inodeUrlOfPath(NETNS),
      }),
      path: create(PathSchema, {
        index: 1,
        pathSegments: [
          create(PathSegmentSchema, { name: "nsc", id: "nsc-id" }),
          create(PathSegmentSchema, { name: "nsmgr", id: "nsmgr-id" }),
        ],
      }),
    }),
    mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "nsm-1" })],
  });
}

/** A call context as the gRPC glue makes it, with the unix connection's descriptor table. */
function callWith(table: FdTable): CallContext {
  return CallContext.create({ deadline: Date.now() + 4000 }).with(grpcPeerKey, {
    address: "unknown",
    metadata: new grpc.Metadata(),
    authContext: undefined,
    responseHeaders: new grpc.Metadata(),
    fds: table,
  });
}

describe("grpcfd: the forwarder tries the next endpoint with the descriptor of the same call", () => {
  let nse: Endpoint;
  let served: Served;
  before(async () => {
    nse = createEndpoint({ name: "live", additional: [mechanismsServer({ KERNEL: kernelMechanismServer() })] });
    served = await serveOnUnixSocket("grpcfd-reselect", (s) => nse.register(s));
  });
  after(async () => {
    await served.stop();
    nse.dispose();
  });

  const forwarder = (placement: "first" | "additional", seen: Seen[]) => {
    const recv = [recvFdServer({ waitMs: 1000 })];
    return createForwarder({
      name: "fwd",
      queryCache: false,
      nsRegistry: fakeNsRegistry([create(NetworkServiceSchema, { name: "svc", payload: "ETHERNET" })]),
      nseRegistry: fakeNseRegistry([
        create(NetworkServiceEndpointSchema, {
          name: "dead",
          networkServiceNames: ["svc"],
          url: `${served.url}.gone`,
        }),
        create(NetworkServiceEndpointSchema, { name: "live", networkServiceNames: ["svc"], url: served.url }),
      ]),
      first: placement === "first" ? recv : [],
      additional: [...(placement === "additional" ? recv : []), recorder(seen)],
    });
  };

  it("recvfd first: the dead endpoint fails, the live one gets the same descriptor, nothing is left open", async () => {
    const seen: Seen[] = [];
    const fwd = forwarder("first", seen);
    const table = new FdTable();
    const before = netnsFds();
    try {
      table.add(openSync(NETNS, O_PATH));
      const conn = await fwd.request(request(), callWith(table));
      assert.equal(conn.networkServiceEndpointName, "live");
      assert.deepEqual(seen, [
        { endpoint: "dead", received: true, open: true },
        { endpoint: "live", received: true, open: true },
      ]);
      assert.equal(conn.mechanism?.parameters[Param.INODE_URL], inodeUrlOfPath(NETNS), "the caller's URL comes back");
      assert.equal(netnsFds(), before, "the descriptor was released with the Request");
      await fwd.close(conn, CallContext.create());
    } finally {
      table.closeAll();
      fwd.dispose();
    }
  });

  it("recvfd after roundrobin (the old placement): the second candidate finds no descriptor", async () => {
    const seen: Seen[] = [];
    const fwd = forwarder("additional", seen);
    const table = new FdTable();
    try {
      table.add(openSync(NETNS, O_PATH));
      const err = await fwd.request(request(), callWith(table)).then(
        () => undefined,
        (e: unknown) => NsmError.from(e),
      );
      assert.equal(err?.code, Code.InvalidArgument, String(err));
      assert.match(err?.message ?? "", /no descriptor for inode:/);
      assert.deepEqual(
        seen.map((s) => s.endpoint),
        ["dead"],
        "only the first candidate got as far as the data plane",
      );
    } finally {
      table.closeAll();
      fwd.dispose();
    }
  });
});
