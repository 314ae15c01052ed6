// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DescMessage } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ConnectionEventSchema,
  ConnectionEventType,
  ConnectionSchema,
  create,
  equals,
  fromBinary,
  ipam,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
  registry,
  State,
  toBinary,
} from "./index.js";

const connection = () =>
  create(ConnectionSchema, {
    id: "nsc-0",
    networkService: "kernel2kernel",
    mechanism: {
      cls: "LOCAL",
      type: "KERNEL",
      parameters: { name: "nsm-1", inodeURL: "file:///proc/thread-self/ns/net" },
    },
    context: {
      ipContext: {
        srcIpAddrs: ["172.16.1.101/32"],
        dstIpAddrs: ["172.16.1.100/32"],
        srcRoutes: [{ prefix: "172.16.1.100/32", nextHop: "" }],
        ipNeighbors: [{ ip: "172.16.1.100", hardwareAddress: "aa:bb:cc:dd:ee:ff" }],
        policies: [{ from: "172.16.1.101/32", proto: "6", dstPort: "80-81", routes: [{ prefix: "0.0.0.0/0" }] }],
        extraPrefixRequest: [{ addrFamily: { family: 1 }, prefixLen: 24, requiredNumber: 1, requestedNumber: 2 }],
      },
      dnsContext: { configs: [{ dnsServerIps: ["172.16.1.100"], searchDomains: ["my.coredns.service"] }] },
      ethernetContext: { srcMac: "aa:aa:aa:aa:aa:aa", vlanTag: 7 },
      extraContext: { k: "v" },
      MTU: 1450,
    },
    labels: { app: "alpine" },
    path: {
      index: 1,
      pathSegments: [
        { name: "nsc", id: "nsc-0", token: "t0", expires: timestampFromMs(1_700_000_000_123), metrics: { m: "1" } },
        { name: "nsmgr", id: "b" },
      ],
    },
    networkServiceEndpointName: "nse-kernel",
    payload: "ETHERNET",
    state: State.REFRESH_REQUESTED,
  });

function roundTrip<T extends DescMessage>(schema: T, msg: Parameters<typeof toBinary<T>>[1]) {
  const back = fromBinary(schema, toBinary(schema, msg));
  assert.ok(equals(schema, back, msg), `${schema.typeName} survives a binary round trip`);
}

describe("wire API", () => {
  it("round-trips every message with all fields set", () => {
    roundTrip(ConnectionSchema, connection());
    roundTrip(
      NetworkServiceRequestSchema,
      create(NetworkServiceRequestSchema, {
        connection: connection(),
        mechanismPreferences: [{ cls: "REMOTE", type: "VXLAN", parameters: { vni: "2" } }],
      }),
    );
    roundTrip(
      ConnectionEventSchema,
      create(ConnectionEventSchema, { type: ConnectionEventType.DELETE, connections: { "nsc-0": connection() } }),
    );
    roundTrip(
      MonitorScopeSelectorSchema,
      create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "x" }], networkServices: ["a"] }),
    );
    const ns = create(registry.NetworkServiceSchema, {
      name: "secure-intranet-connectivity",
      payload: "ETHERNET",
      matches: [
        {
          sourceSelector: { app: "firewall" },
          routes: [{ destinationSelector: { app: "vpn-gateway" }, weight: 3 }],
          fallthrough: true,
          metadata: { labels: { p2p: "true" } },
        },
      ],
      pathIds: ["spiffe://x/a"],
    });
    roundTrip(registry.NetworkServiceSchema, ns);
    const nse = create(registry.NetworkServiceEndpointSchema, {
      name: "nse-1",
      networkServiceNames: ["a", "b"],
      networkServiceLabels: { a: { labels: { app: "x" } } },
      url: "unix:///tmp/x.sock",
      expirationTime: timestampFromMs(1_700_000_060_000),
      initialRegistrationTime: timestampFromMs(1_700_000_000_000),
      pathIds: ["p"],
    });
    roundTrip(registry.NetworkServiceEndpointSchema, nse);
    roundTrip(
      registry.NetworkServiceQuerySchema,
      create(registry.NetworkServiceQuerySchema, { networkService: ns, watch: true }),
    );
    roundTrip(
      registry.NetworkServiceEndpointQuerySchema,
      create(registry.NetworkServiceEndpointQuerySchema, { networkServiceEndpoint: nse, watch: true }),
    );
    roundTrip(
      registry.NetworkServiceResponseSchema,
      create(registry.NetworkServiceResponseSchema, { networkService: ns, deleted: true }),
    );
    roundTrip(
      registry.NetworkServiceEndpointResponseSchema,
      create(registry.NetworkServiceEndpointResponseSchema, { networkServiceEndpoint: nse, deleted: true }),
    );
    roundTrip(
      ipam.PrefixRequestSchema,
      create(ipam.PrefixRequestSchema, {
        type: ipam.Type.ALLOCATE,
        prefix: "10.0.0.0/24",
        excludePrefixes: ["10.0.0.1/32"],
      }),
    );
    roundTrip(
      ipam.PrefixResponseSchema,
      create(ipam.PrefixResponseSchema, { prefix: "10.0.0.0/24", excludePrefixes: ["x"] }),
    );
  });

  it("decodes a Connection encoded by hand from the field numbers", () => {
    const str = (field: number, s: string) => [(field << 3) | 2, Buffer.byteLength(s), ...Buffer.from(s)];
    const msg = (field: number, body: number[]) => [(field << 3) | 2, body.length, ...body];
    const varint = (field: number, v: number) => [(field << 3) | 0, v];
    const bytes = Uint8Array.from([
      ...str(1, "conn-1"), // id
      ...str(2, "kernel2kernel"), // network_service
      ...msg(3, [...str(1, "LOCAL"), ...str(2, "KERNEL"), ...msg(3, [...str(1, "name"), ...str(2, "nsm-1")])]), // mechanism
      ...msg(4, [...msg(1, [...str(1, "172.16.1.101/32"), ...str(2, "172.16.1.100/32")]), ...varint(5, 100)]), // context {ip_context, MTU}
      ...msg(5, [...str(1, "app"), ...str(2, "alpine")]), // labels
      ...msg(6, [
        ...varint(1, 1),
        ...msg(2, [...str(1, "nsc"), ...str(2, "conn-1")]),
        ...msg(2, [...str(1, "nsmgr"), ...str(2, "m")]),
      ]), // path
      ...str(7, "nse-kernel"),
      ...str(8, "ETHERNET"),
      ...varint(9, 3), // state RESELECT_REQUESTED
    ]);
    const c = fromBinary(ConnectionSchema, bytes);
    assert.equal(c.id, "conn-1");
    assert.equal(c.networkService, "kernel2kernel");
    assert.deepEqual([c.mechanism?.cls, c.mechanism?.type, c.mechanism?.parameters.name], ["LOCAL", "KERNEL", "nsm-1"]);
    assert.deepEqual(c.context?.ipContext?.srcIpAddrs, ["172.16.1.101/32"]);
    assert.deepEqual(c.context?.ipContext?.dstIpAddrs, ["172.16.1.100/32"]);
    assert.equal(c.context?.MTU, 100);
    assert.deepEqual(c.labels, { app: "alpine" });
    assert.equal(c.path?.index, 1);
    assert.deepEqual(
      c.path?.pathSegments.map((s) => s.name),
      ["nsc", "nsmgr"],
    );
    assert.equal(c.networkServiceEndpointName, "nse-kernel");
    assert.equal(c.payload, "ETHERNET");
    assert.equal(c.state, State.RESELECT_REQUESTED);
  });
});
