// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import * as packet from "dns-packet";
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
import { Code, NsmError } from "../../../core/errors.js";
import { silentLogger } from "../../../core/logger.js";
import { metadataServer } from "../metadata/index.js";
import { Vl3Network, vl3Server } from "../vl3/index.js";
import { parseDnsTemplate, serveVl3Dns, Vl3DnsRecords, vl3DnsServer } from "./index.js";

const ctx = () => CallContext.create();
const DEFAULT = '{{ index .Labels "podName" }}.{{ .NetworkService }}.';

function request(id: string, podName: string) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id, networkService: "vl3-dns", labels: { podName } }),
  });
}

describe("vl3dns templates", () => {
  it("makes upstream's default name, lower case and fully qualified", () => {
    const t = parseDnsTemplate(DEFAULT);
    assert.equal(t({ labels: { podName: "Alpine-1" }, networkService: "vl3-dns" }), "alpine-1.vl3-dns.");
    assert.equal(parseDnsTemplate("{{.Labels.app}}.svc")({ labels: { app: "web" }, networkService: "" }), "web.svc.");
    assert.equal(t({ labels: {}, networkService: "vl3-dns" }), undefined, "a missing label gives no name");
  });

  it("refuses actions it does not know", () => {
    for (const bad of ["{{ .Name }}.x", "{{ index .Labels podName }}", "{{ .NetworkService "]) {
      assert.throws(
        () => parseDnsTemplate(bad),
        (e: unknown) => NsmError.from(e).code === Code.InvalidArgument,
        bad,
      );
    }
  });
});

describe("vl3dns element", () => {
  it("a client gets the endpoint as DNS server and its name; Close removes it; a peer gets nothing", async () => {
    const net = new Vl3Network();
    net.reset("172.16.3.0/24");
    const records = new Vl3DnsRecords();
    const ep = bind(
      chain(metadataServer(), vl3Server(net), vl3DnsServer({ net, records, templates: [parseDnsTemplate(DEFAULT)] })),
    );
    const conn = await ep.request(request("c1", "alpine-a"), ctx());
    assert.deepEqual(
      conn.context!.dnsContext!.configs.map((c) => [c.dnsServerIps, c.searchDomains]),
      [[["172.16.3.0"], ["vl3-dns"]]],
    );
    assert.deepEqual(records.lookup("ALPINE-A.vl3-dns", "ipv4"), ["172.16.3.1"]);
    const again = await ep.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
    assert.equal(again.context!.dnsContext!.configs.length, 1, "a refresh adds no second config");
    await ep.close(conn, ctx());
    assert.deepEqual(records.all, []);
    const peerReq = create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, {
        id: "p",
        networkService: "vl3-dns",
        labels: { podName: "nse-b" },
        context: create(ConnectionContextSchema, {
          ipContext: create(IPContextSchema, {
            srcIpAddrs: ["172.16.4.0/32"],
            dstRoutes: [create(RouteSchema, { prefix: "172.16.4.0/24", nextHop: "172.16.4.0" })],
          }),
        }),
      }),
    });
    const peer: Connection = await ep.request(peerReq, ctx());
    assert.equal(peer.context!.dnsContext, undefined);
    assert.deepEqual(records.all, []);
  });
});

/** Asks `server`:`port` for `name` (A); resolves the addresses and the response code. */
function query(server: string, port: number, name: string): Promise<{ addresses: string[]; rcode: string }> {
  return new Promise((resolve, reject) => {
    const sock = createSocket("udp4");
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error("no answer"));
    }, 3000);
    sock.on("message", (msg) => {
      clearTimeout(timer);
      sock.close();
      const res = packet.decode(msg) as packet.DecodedPacket & { rcode?: string };
      const answers = (res.answers ?? []) as { data?: unknown }[];
      resolve({ addresses: answers.map((a) => String(a.data)), rcode: String(res.rcode) });
    });
    sock.send(packet.encode({ type: "query", id: 7, questions: [{ type: "A", name }] }), port, server);
  });
}

describe("vl3dns server (UDP)", () => {
  it("answers its clients' names, asks its peers for others, and says NXDOMAIN for unknown names", async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const a = new Vl3DnsRecords();
    const b = new Vl3DnsRecords();
    a.set("c1", [{ name: "alpine-a.vl3-dns.", address: "172.16.0.1/32" }]);
    b.set("c2", [{ name: "alpine-b.vl3-dns.", address: "172.16.1.1/32" }]);
    const log = silentLogger;
    const sa = await serveVl3Dns({ records: a, peers: () => ["127.0.0.2"], port, host: "127.0.0.1", log });
    const sb = await serveVl3Dns({ records: b, peers: () => ["127.0.0.1"], port, host: "127.0.0.2", log });
    try {
      assert.deepEqual((await query("127.0.0.1", port, "alpine-a.vl3-dns")).addresses, ["172.16.0.1"]);
      assert.deepEqual((await query("127.0.0.1", port, "alpine-b.vl3-dns")).addresses, ["172.16.1.1"]);
      const none = await query("127.0.0.1", port, "nobody.vl3-dns");
      assert.deepEqual(none, { addresses: [], rcode: "NXDOMAIN" });
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});
