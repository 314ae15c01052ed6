// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  NetworkServiceRequestSchema,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { silentLogger } from "../../../core/logger.js";
import { checkResponse } from "../../../testing/elements.js";
import { ClientAddresses, clientAddressesServer, httpReverseProxy } from "./index.js";

const withAddress = (id: string, src: string) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      context: create(ConnectionContextSchema, { ipContext: create(IPContextSchema, { srcIpAddrs: [src] }) }),
    }),
  });

async function get(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, headers }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      })
      .on("error", reject);
  });
}

describe("clientAddressesServer", () => {
  it("remembers each connection's client address until Close, and hands them out in turn", async () => {
    const addresses = new ClientAddresses();
    const h = bind(
      chain(
        clientAddressesServer(addresses),
        checkResponse(() => {}),
      ),
    );
    const a = await h.request(withAddress("a", "172.16.1.101/32"), CallContext.create());
    await h.request(withAddress("b", "172.16.1.103/32"), CallContext.create());
    assert.deepEqual(addresses.list(), ["172.16.1.101", "172.16.1.103"]);
    assert.deepEqual(
      [addresses.next(), addresses.next(), addresses.next()],
      ["172.16.1.101", "172.16.1.103", "172.16.1.101"],
    );
    await h.close(a, CallContext.create());
    assert.deepEqual(addresses.list(), ["172.16.1.103"]);
    await h.request(withAddress("a", "172.16.1.101/32"), CallContext.create());
    assert.equal(addresses.list().length, 2);
  });
});

describe("httpReverseProxy", () => {
  let backend: http.Server;
  let backendPort: number;
  let seen: http.IncomingHttpHeaders = {};
  before(async () => {
    backend = http.createServer((req, res) => {
      seen = req.headers;
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        res.writeHead(req.url === "/missing" ? 404 : 200, { "x-backend": "yes" });
        res.end(`${req.method} ${req.url} ${body}`);
      });
    });
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
    backendPort = (backend.address() as AddressInfo).port;
  });
  after(() => backend.close());

  it("forwards method, path, body and status, with X-Forwarded-* headers", async () => {
    const proxy = httpReverseProxy({ backend: () => "127.0.0.1", targetPort: backendPort, log: silentLogger });
    const { port } = await proxy.listen(0, "127.0.0.1");
    try {
      const r = await get(port, "/hello?x=1", { connection: "keep-alive" });
      assert.equal(r.status, 200);
      assert.equal(r.body, "GET /hello?x=1 ");
      assert.equal(r.headers["x-backend"], "yes");
      assert.equal(seen["x-forwarded-for"], "127.0.0.1");
      assert.equal(seen["x-forwarded-host"], `127.0.0.1:${port}`);
      assert.equal((await get(port, "/missing")).status, 404);
    } finally {
      await proxy.close();
    }
  });

  it("no backend is 503, an unreachable one 502", async () => {
    let target: string | undefined;
    const proxy = httpReverseProxy({ backend: () => target, targetPort: 1, log: silentLogger });
    const { port } = await proxy.listen(0, "127.0.0.1");
    try {
      const none = await get(port, "/");
      assert.equal(none.status, 503);
      assert.match(none.body, /no HTTP server is connected/);
      target = "127.0.0.1";
      const refused = await get(port, "/");
      assert.equal(refused.status, 502);
      assert.match(refused.body, /cannot reach 127\.0\.0\.1:1/);
    } finally {
      await proxy.close();
    }
  });
});
