// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import type { Socket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import dnsPacket from "dns-packet";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { silentLogger } from "../../../core/logger.js";
import { count } from "../../../testing/elements.js";
import {
  DnsConfigStore,
  DnsProxy,
  dnsConfig,
  dnsContextClient,
  dnsContextServer,
  parseDnsConfigs,
  parseDnsRecords,
  parseResolvConf,
  parseServer,
  ResolvConfFile,
  serveDnsRecords,
} from "./index.js";

const ctx = () => CallContext.create();
const request = (id: string) => create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id }) });

describe("parseDnsConfigs (NSM_DNS_CONFIGS)", () => {
  it("reads upstream's JSON (proto field names) and lowerCamel", () => {
    const [a] = parseDnsConfigs('[{"dns_server_ips": ["172.16.1.100"], "search_domains": ["my.coredns.service"]}]');
    assert.deepEqual([a!.dnsServerIps, a!.searchDomains], [["172.16.1.100"], ["my.coredns.service"]]);
    const [b] = parseDnsConfigs('[{"dnsServerIps": ["fd00::1", "10.0.0.1:5353"]}]');
    assert.deepEqual(b!.dnsServerIps, ["fd00::1", "10.0.0.1:5353"]);
    assert.deepEqual(parseDnsConfigs(""), []);
    assert.deepEqual(parseDnsConfigs("[]"), []);
  });
  it("refuses bad input with a one-line reason", () => {
    assert.throws(() => parseDnsConfigs("[{"), /not JSON/);
    assert.throws(() => parseDnsConfigs('{"dns_server_ips": []}'), /JSON array/);
    assert.throws(() => parseDnsConfigs('[{"dns_servers": ["1.1.1.1"]}]'), /config 0: .*dns_servers/);
    assert.throws(() => parseDnsConfigs('[{"dns_server_ips": ["dns.example"]}]'), /"dns.example" is not an IP/);
  });
  it("parses servers with and without ports", () => {
    assert.deepEqual(parseServer("10.0.0.1"), { address: "10.0.0.1", port: 53, family: 4 });
    assert.deepEqual(parseServer("10.0.0.1:5353"), { address: "10.0.0.1", port: 5353, family: 4 });
    assert.deepEqual(parseServer("[fd00::1]:54"), { address: "fd00::1", port: 54, family: 6 });
    assert.throws(() => parseServer("10.0.0.1:0"));
  });
});

describe("dnsContextServer and dnsContextClient", () => {
  it("the endpoint's configs travel back to the client, which stores them per connection", async () => {
    const store = new DnsConfigStore();
    let changes = 0;
    store.onChange(() => changes++);
    const config = dnsConfig(["172.16.1.100"], ["my.coredns.service"]);
    const h = bind(chain(dnsContextClient({ store }), dnsContextServer({ configs: [config] })));
    const conn = await h.request(request("nsc-0"), ctx());
    assert.deepEqual(
      conn.context?.dnsContext?.configs.map((c) => c.dnsServerIps),
      [["172.16.1.100"]],
    );
    assert.deepEqual(store.servers(), [{ address: "172.16.1.100", port: 53, family: 4 }]);
    assert.deepEqual(store.searchDomains(), ["my.coredns.service"]);

    // A refresh returns the same config once (not twice) and changes nothing in the store.
    const again = await h.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
    assert.equal(again.context?.dnsContext?.configs.length, 1);
    assert.equal(changes, 1);

    await h.close(again, ctx());
    assert.deepEqual(store.servers(), []);
    assert.equal(changes, 2);
  });
  it("a failed request stores nothing", async () => {
    const store = new DnsConfigStore();
    const failing = bind(
      chain(dnsContextClient({ store }), {
        name: "fail",
        request: () => Promise.reject(new Error("no")),
        close: (c, x, n) => n.close(c, x),
      }),
    );
    await assert.rejects(failing.request(request("x"), ctx()));
    assert.deepEqual(store.all(), []);
  });
  it("the server adds no config twice when one hop already did", async () => {
    const seen = count();
    const config = dnsConfig(["10.0.0.1"]);
    const h = bind(chain(dnsContextServer({ configs: [config] }), dnsContextServer({ configs: [config] }), seen));
    await h.request(request("c"), ctx());
    assert.equal(seen.lastRequest!.connection!.context!.dnsContext!.configs.length, 1);
  });
});

describe("ResolvConfFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "resolv-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("points at the proxy with the endpoints' search domains first, keeps and restores the original", () => {
    const path = join(dir, "pod", "resolv.conf");
    const seed = "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";
    const file = new ResolvConfFile(path, seed);
    file.point("127.0.0.1", ["my.coredns.service"]);
    const written = parseResolvConf(readFileSync(path, "utf8"));
    assert.deepEqual(written, {
      nameservers: ["127.0.0.1"],
      search: ["my.coredns.service", "default.svc.cluster.local", "svc.cluster.local"],
      options: ["ndots:5"],
    });
    // A restarted client finds the original in the file, not its own proxy.
    const reopened = new ResolvConfFile(path);
    assert.equal(reopened.original, seed);
    assert.deepEqual(reopened.parsed().nameservers, ["10.96.0.10"]);
    reopened.restore();
    assert.equal(readFileSync(path, "utf8"), seed);
  });
});

describe("DnsProxy", () => {
  let endpointDns: Socket;
  let clusterDns: Socket;
  let proxy: DnsProxy;
  let resolver: Resolver;
  let proxyPort = 0;
  const store = new DnsConfigStore();

  before(async () => {
    endpointDns = await serveDnsRecords(parseDnsRecords("my.service=172.16.1.100"), "127.0.0.1", 0);
    clusterDns = await serveDnsRecords(
      parseDnsRecords("kubernetes.default=10.96.0.1,my.service=192.0.2.1"),
      "127.0.0.1",
      0,
    );
    proxy = new DnsProxy({
      store,
      fallback: [parseServer(`127.0.0.1:${clusterDns.address().port}`)],
      port: 0,
      timeoutMs: 500,
      log: silentLogger,
    });
    const { port } = await proxy.start();
    proxyPort = port;
    resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
  });
  after(async () => {
    await proxy.close();
    endpointDns.close();
    clusterDns.close();
  });

  it("without connections every name goes to the original resolver", async () => {
    assert.deepEqual(await resolver.resolve4("my.service"), ["192.0.2.1"]);
  });
  it("asks the endpoints' servers first, then falls back for names they do not know", async () => {
    // One endpoint whose server answers, one whose server is gone (nothing listens there).
    store.set("nsc-0", [dnsConfig([`127.0.0.1:${endpointDns.address().port}`])]);
    store.set("nsc-1", [dnsConfig(["127.0.0.1:9"])]);
    assert.deepEqual(await resolver.resolve4("my.service"), ["172.16.1.100"]);
    assert.deepEqual(await resolver.resolve4("kubernetes.default"), ["10.96.0.1"]);
    await assert.rejects(resolver.resolve4("nowhere.example"), { code: "ENOTFOUND" });
  });
  it("answers over TCP too (RFC 1035 length-prefixed messages)", async () => {
    const query = dnsPacket.encode({
      type: "query",
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name: "my.service" }],
    });
    const socket = connect(proxyPort, "127.0.0.1");
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length);
    socket.write(Buffer.concat([length, query]));
    const reply = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      socket.on("error", reject);
      socket.on("data", (d) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) resolve(got.subarray(2));
      });
    });
    socket.destroy();
    const answer = dnsPacket.decode(reply);
    assert.equal(answer.id, 7);
    assert.deepEqual(
      answer.answers?.map((a) => (a as { data: string }).data),
      ["172.16.1.100"],
    );
  });
  it("forgets a closed connection's servers", async () => {
    store.delete("nsc-0");
    assert.deepEqual(await resolver.resolve4("my.service"), ["192.0.2.1"]);
  });
});
