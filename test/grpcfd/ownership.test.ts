// SPDX-License-Identifier: Apache-2.0
/**
 * The forwarder's ownership check with received descriptors (acceptReceivedNetns): a side
 * whose netns came as a descriptor on this call passes without the pid-based check; naming one
 * of the forwarder's descriptors by path without sending it meets the pid-based check.
 */
import assert from "node:assert/strict";
import { openSync } from "node:fs";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  ConnectionSchema,
  create,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  Param,
} from "../../src/api/index.js";
import {
  acceptReceivedNetns,
  fdProofCount,
  type NetnsOwnershipCheck,
} from "../../src/kernel/networkservice/xconnect/ownership.js";
import { bind, chain, type NetworkServiceElement } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, invalidArgument, NsmError, permissionDenied } from "../../src/sdk/core/errors.js";
import { FdTable } from "../../src/sdk/grpc/fdsocket.js";
import { grpcPeerKey } from "../../src/sdk/grpc/service.js";
import { recvFdServer } from "../../src/sdk/networkservice/common/recvfd/index.js";
import { inodeUrlOfPath } from "../../src/sdk/networkservice/common/sendfd/index.js";

const O_PATH = 0o10000000;
const NETNS = `/proc/${process.pid}/ns/net`;

/** A stand-in for the pid-based check: only /proc/<pid>/ns/net URLs, and every check refused. */
function pidCheck(calls: string[]): NetnsOwnershipCheck {
  return {
    server: {
      name: "pidCheck",
      request(req, ctx, next) {
        const url = req.connection?.mechanism?.parameters[Param.INODE_URL] ?? "";
        if (!/^file:\/\/\/proc\/\d+\/ns\/net$/.test(url)) throw invalidArgument(`form: ${url}`);
        return next.request(req, ctx);
      },
      close: (conn, ctx, next) => next.close(conn, ctx),
    },
    check: async (req) => {
      calls.push(req.url);
      throw permissionDenied(`not yours: ${req.url}`);
    },
  };
}

/** Plays the cross-connect: checks the client side with the URL it sees. */
function xconnect(ownership: NetnsOwnershipCheck): NetworkServiceElement {
  return {
    name: "xconnect",
    async request(req, ctx) {
      const conn = req.connection as Connection;
      const url = conn.mechanism?.parameters[Param.INODE_URL] ?? "";
      await ownership.check({ side: "client", url, netns: url.slice("file://".length), connection: conn }, ctx);
      return conn;
    },
    close: async () => ({}) as never,
  };
}

function request(url: string): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "x",
      mechanism: { cls: "LOCAL", type: MechanismType.KERNEL, parameters: { [Param.INODE_URL]: url } },
    }),
  });
}

function ctxWith(fds: FdTable): CallContext {
  return CallContext.create({ deadline: Date.now() + 2000 }).with(grpcPeerKey, {
    address: "unknown",
    metadata: new grpc.Metadata(),
    authContext: undefined,
    responseHeaders: new grpc.Metadata(),
    fds,
  });
}

describe("forwarder ownership with received descriptors", () => {
  it("a netns received as a descriptor is proof; the pid-based check is not asked", async () => {
    const calls: string[] = [];
    const ownership = acceptReceivedNetns(pidCheck(calls));
    const h = bind(chain(recvFdServer(), ownership.server, xconnect(ownership)));
    const table = new FdTable();
    table.add(openSync(NETNS, O_PATH));
    const proofs = fdProofCount();
    const conn = await h.request(request(inodeUrlOfPath(NETNS)), ctxWith(table));
    assert.equal(fdProofCount(), proofs + 1);
    assert.deepEqual(calls, []);
    assert.equal(conn.mechanism?.parameters[Param.INODE_URL], inodeUrlOfPath(NETNS));
    await h.close(conn, ctxWith(table));
  });

  it("naming the forwarder's own descriptor by path without sending it is refused", async () => {
    const calls: string[] = [];
    const ownership = acceptReceivedNetns(pidCheck(calls));
    const h = bind(chain(recvFdServer(), ownership.server, xconnect(ownership)));
    const fd = openSync(NETNS, O_PATH);
    const err = await h.request(request(`file:///proc/${process.pid}/fd/${fd}`), ctxWith(new FdTable())).then(
      () => undefined,
      (e: unknown) => NsmError.from(e),
    );
    assert.equal(err?.code, Code.InvalidArgument, "the pid-based form check refused it");
  });

  it("a side named by pid still goes to the pid-based check", async () => {
    const calls: string[] = [];
    const ownership = acceptReceivedNetns(pidCheck(calls));
    const h = bind(chain(recvFdServer(), ownership.server, xconnect(ownership)));
    const err = await h.request(request("file:///proc/1/ns/net"), ctxWith(new FdTable())).then(
      () => undefined,
      (e: unknown) => NsmError.from(e),
    );
    assert.equal(err?.code, Code.PermissionDenied);
    assert.deepEqual(calls, ["file:///proc/1/ns/net"]);
  });
});
