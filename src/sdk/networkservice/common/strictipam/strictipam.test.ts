// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  NetworkServiceRequestSchema,
  RouteSchema,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { metadataServer } from "../metadata/index.js";
import { point2pointIpamServer } from "../point2pointipam/index.js";
import { strictIpamServer } from "./index.js";

const ctx = () => CallContext.create();
const PREFIXES = ["172.16.2.0/29"];

/** A request bringing the addresses of an earlier connection (`src` client, `dst` endpoint). */
function request(id: string, src: string, dst: string) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      context: create(ConnectionContextSchema, {
        ipContext: create(IPContextSchema, {
          srcIpAddrs: [src],
          dstIpAddrs: [dst],
          srcRoutes: [create(RouteSchema, { prefix: dst })],
          dstRoutes: [create(RouteSchema, { prefix: src })],
        }),
      }),
    }),
  });
}

const ipOf = (c: Connection) => {
  const i = c.context!.ipContext!;
  return {
    src: i.srcIpAddrs,
    dst: i.dstIpAddrs,
    srcRoutes: i.srcRoutes.map((r) => r.prefix),
    dstRoutes: i.dstRoutes.map((r) => r.prefix),
  };
};

const endpoint = (policy: "polite" | "strict") =>
  bind(
    chain(
      metadataServer(),
      ...(policy === "strict" ? [strictIpamServer({ prefixes: PREFIXES })] : []),
      point2pointIpamServer({ prefixes: PREFIXES }),
    ),
  );

describe("IPAM policies: polite vs strict (NSM_IPAM_POLICY)", () => {
  it("polite keeps a client's addresses from another endpoint's pool; strict resets them", async () => {
    const polite = await endpoint("polite").request(request("c1", "172.16.1.101/32", "172.16.1.100/32"), ctx());
    assert.ok(ipOf(polite).src.includes("172.16.1.101/32"), JSON.stringify(ipOf(polite)));
    const strict = await endpoint("strict").request(request("c1", "172.16.1.101/32", "172.16.1.100/32"), ctx());
    assert.deepEqual(ipOf(strict), {
      src: ["172.16.2.1/32"],
      dst: ["172.16.2.0/32"],
      srcRoutes: ["172.16.2.0/32"],
      dstRoutes: ["172.16.2.1/32"],
    });
  });

  it("strict: a client gets back a free address of the pool it had, never one another connection holds", async () => {
    const h = endpoint("strict");
    const again = await h.request(request("c1", "172.16.2.5/32", "172.16.2.4/32"), ctx());
    assert.deepEqual([ipOf(again).src, ipOf(again).dst], [["172.16.2.5/32"], ["172.16.2.4/32"]], "recovered");
    const other = await h.request(request("c2", "172.16.2.5/32", "172.16.2.4/32"), ctx());
    assert.deepEqual([ipOf(other).src, ipOf(other).dst], [["172.16.2.1/32"], ["172.16.2.0/32"]], "held by c1: reset");
    const refresh = await h.request(create(NetworkServiceRequestSchema, { connection: again }), ctx());
    assert.deepEqual(ipOf(refresh).src, ["172.16.2.5/32"], "its own addresses stay on refresh");
    await h.close(again, ctx());
    const third = await h.request(request("c3", "172.16.2.5/32", "172.16.2.4/32"), ctx());
    assert.deepEqual(ipOf(third).src, ["172.16.2.5/32"], "released on Close");
  });
});
