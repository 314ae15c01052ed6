// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  Cls,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  Payload,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { count, injectError } from "../../../testing/elements.js";
import { createPortPool, isWireguardKey, WIREGUARD_OVERHEAD, wireguardClient, wireguardServer } from "./index.js";

const ctx = () => CallContext.create();
const key = () => randomBytes(32).toString("base64");
const KEY_A = key();
const KEY_B = key();

const wg = (params: Record<string, string>) => newMechanism(Cls.REMOTE, MechanismType.WIREGUARD, params);

function serverRequest(id: string, params: Record<string, string> = {}, mtu = 0) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      networkService: "svc",
      payload: Payload.IP,
      mechanism: wg({ src_ip: "198.18.0.1", src_port: "51820", src_public_key: KEY_A, ...params }),
      context: create(ConnectionContextSchema, { MTU: mtu }),
    }),
  });
}

describe("WireGuard keys and ports", () => {
  it("accepts only the base64 form of 32 bytes", () => {
    assert.ok(isWireguardKey(KEY_A));
    assert.ok(!isWireguardKey(randomBytes(31).toString("base64")));
    assert.ok(!isWireguardKey(`${KEY_A.slice(0, 43)}!`));
    assert.ok(!isWireguardKey(undefined));
  });

  it("hands out the lowest free port per owner, the same one again, and frees it", () => {
    const pool = createPortPool(51820, 3);
    assert.equal(pool.acquire("a"), 51820);
    assert.equal(pool.acquire("b"), 51821);
    assert.equal(pool.acquire("a"), 51820);
    pool.release("a");
    assert.equal(pool.acquire("c"), 51820);
    pool.acquire("d");
    assert.throws(() => pool.acquire("e"), { code: Code.ResourceExhausted });
    assert.throws(() => createPortPool(65535, 2), { code: Code.InvalidArgument });
  });
});

describe("wireguardServer", () => {
  const server = (o: Partial<Parameters<typeof wireguardServer>[0]> = {}) =>
    wireguardServer({ tunnelIp: "198.18.0.2", publicKey: KEY_B, ...o });

  it("sets dst_ip, a per-connection dst_port, dst_public_key, MTU − 80, kept across refreshes, freed on Close", async () => {
    const ports = createPortPool(51820, 10);
    const s = bind(server({ ports }));
    const a = await s.request(serverRequest("a", {}, 9000), ctx());
    const p = a.mechanism!.parameters;
    assert.equal(p.dst_ip, "198.18.0.2");
    assert.equal(p.dst_port, "51820");
    assert.equal(p.dst_public_key, KEY_B);
    assert.equal(p.MTU, String(1500 - WIREGUARD_OVERHEAD));
    assert.equal(a.context!.MTU, 1420);
    const b = await s.request(serverRequest("b"), ctx());
    assert.equal(b.mechanism!.parameters.dst_port, "51821");
    const again = await s.request(serverRequest("a", { dst_port: "51820" }), ctx());
    assert.equal(again.mechanism!.parameters.dst_port, "51820");
    assert.equal(ports.size, 2);
    await s.close(a, ctx());
    await s.close(b, ctx());
    assert.equal(ports.size, 0);
  });

  it("refuses a mechanism without a valid src_ip, src_port or src_public_key, asking nothing downstream", async () => {
    const after = count();
    const s = bind(chain(server(), after));
    for (const bad of [{ src_ip: "x" }, { src_port: "0" }, { src_public_key: "short" }] as Record<string, string>[]) {
      await assert.rejects(s.request(serverRequest("a", bad), ctx()), { code: Code.InvalidArgument });
    }
    assert.equal(after.requests, 0);
  });

  it("frees the port when the first Request fails downstream", async () => {
    const ports = createPortPool(51820, 10);
    const s = bind(
      chain(
        server({ ports }),
        injectError(() => new NsmError("boom", Code.Unavailable)),
      ),
    );
    await assert.rejects(s.request(serverRequest("a"), ctx()), { code: Code.Unavailable });
    assert.equal(ports.size, 0);
  });
});

describe("wireguardClient", () => {
  const clientRequest = (payload: string) =>
    create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: "c1", networkService: "svc", payload }),
    });

  function withPeer(answer: Record<string, string>, o: Partial<Parameters<typeof wireguardClient>[0]> = {}) {
    const seen: string[][] = [];
    const peer: NetworkServiceElement = {
      name: "peer",
      async request(req) {
        seen.push(req.mechanismPreferences.map((m) => m.type));
        const conn = clone(ConnectionSchema, req.connection!);
        const m = conn.mechanism ?? req.mechanismPreferences.find((x) => x.type === MechanismType.WIREGUARD);
        if (m) conn.mechanism = wg({ ...m.parameters, ...answer });
        return conn;
      },
      async close() {},
    };
    const ports = o.ports ?? createPortPool(51820, 10);
    const closes = count();
    const handler = bind(
      chain(wireguardClient({ tunnelIp: "198.18.0.1", publicKey: KEY_A, ports, ...o }), closes, peer),
    );
    return { handler, seen, ports, closes };
  }
  const goodAnswer = { dst_ip: "198.18.0.2", dst_port: "51900", dst_public_key: KEY_B };

  it("offers WIREGUARD with src_ip, src_port, src_public_key and MTU only for IP payload (empty = IP)", async () => {
    for (const payload of [Payload.IP, ""]) {
      const p = withPeer(goodAnswer);
      const c = await p.handler.request(clientRequest(payload), ctx());
      assert.deepEqual(p.seen[0], [MechanismType.WIREGUARD]);
      assert.deepEqual(c.mechanism!.parameters, {
        src_ip: "198.18.0.1",
        src_port: "51820",
        src_public_key: KEY_A,
        MTU: "1420",
        ...goodAnswer,
      });
      assert.equal(c.context!.MTU, 1420);
    }
    const eth = withPeer(goodAnswer);
    await eth.handler.request(clientRequest(Payload.ETHERNET), ctx());
    assert.deepEqual(eth.seen[0], []);
    assert.equal(eth.ports.size, 0);
  });

  it("keeps its port across refreshes and frees it on Close", async () => {
    const p = withPeer(goodAnswer);
    const c = await p.handler.request(clientRequest(Payload.IP), ctx());
    const refresh = clientRequest(Payload.IP);
    refresh.connection!.mechanism = c.mechanism;
    const again = await p.handler.request(refresh, ctx());
    assert.equal(again.mechanism!.parameters.src_port, "51820");
    assert.equal(p.ports.size, 1);
    await p.handler.close(again, ctx());
    assert.equal(p.ports.size, 0);
  });

  it("fails, closes downstream and frees the port when the answer lacks the peer's key", async () => {
    const p = withPeer({ dst_ip: "198.18.0.2", dst_port: "51900" });
    await assert.rejects(p.handler.request(clientRequest(Payload.IP), ctx()), { code: Code.InvalidArgument });
    assert.equal(p.closes.closes, 1);
    assert.equal(p.ports.size, 0);
  });

  it("frees the port when the next hop chose another mechanism", async () => {
    const ports = createPortPool(51820, 10);
    const local: NetworkServiceElement = {
      name: "local",
      async request(req) {
        const conn = clone(ConnectionSchema, req.connection!);
        conn.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL);
        return conn;
      },
      async close() {},
    };
    const h = bind(chain(wireguardClient({ tunnelIp: "198.18.0.1", publicKey: KEY_A, ports }), local));
    await h.request(clientRequest(Payload.IP), ctx());
    assert.equal(ports.size, 0);
  });
});
