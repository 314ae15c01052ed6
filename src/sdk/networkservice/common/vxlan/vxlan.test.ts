// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  type Mechanism,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  Payload,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { checkRequest, count, injectError } from "../../../testing/elements.js";
import {
  createVniRegistry,
  MAX_VNI,
  VXLAN_OVERHEAD_IPV4,
  VXLAN_OVERHEAD_IPV6,
  vniFromRandom,
  vniMustBeOdd,
  vxlanClient,
  vxlanServer,
} from "./index.js";

const ctx = () => CallContext.create();

const vxlan = (params: Record<string, string>) => newMechanism(Cls.REMOTE, MechanismType.VXLAN, params);

/** A request as the server sees it: the VXLAN mechanism selected, from `src`. */
function serverRequest(id: string, src: string, extra: Record<string, string> = {}, mtu = 0) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      networkService: "svc",
      payload: Payload.ETHERNET,
      mechanism: vxlan({ src_ip: src, src_port: "4789", ...extra }),
      context: create(ConnectionContextSchema, { MTU: mtu }),
    }),
  });
}

/** A sequence of "random" numbers (the last one repeats). */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
};

const vniOf = (c: Connection) => Number(c.mechanism!.parameters.vni);

describe("VNI parity rule", () => {
  it("is even when src ≤ dst bytewise and odd otherwise; orig_* addresses win", () => {
    assert.equal(vniMustBeOdd(vxlan({ src_ip: "198.18.0.1", dst_ip: "198.18.0.2" })), false);
    assert.equal(vniMustBeOdd(vxlan({ src_ip: "198.18.0.2", dst_ip: "198.18.0.1" })), true);
    assert.equal(vniMustBeOdd(vxlan({ src_ip: "198.18.0.1", dst_ip: "198.18.0.1" })), false);
    assert.equal(
      vniMustBeOdd(
        vxlan({ src_ip: "198.18.0.1", dst_ip: "198.18.0.2", orig_src_ip: "10.0.0.9", orig_dst_ip: "10.0.0.1" }),
      ),
      true,
    );
    // Bytewise over the 16-byte form, not as text: "10.0.0.2" < "9.255.255.255" as strings, but 10 > 9.
    assert.equal(vniMustBeOdd(vxlan({ src_ip: "10.0.0.2", dst_ip: "9.255.255.255" })), true);
    // An IPv4 address (::ffff:…) sorts after a low IPv6 address (fd00:: is higher, ::1 lower).
    assert.equal(vniMustBeOdd(vxlan({ src_ip: "10.0.0.1", dst_ip: "fd00::1" })), false);
    assert.equal(vniMustBeOdd(vxlan({ src_ip: "10.0.0.1", dst_ip: "::1" })), true);
  });

  it("derives (2·r) & 0xFFFFFF or (2·r + 1) & 0xFFFFFF", () => {
    assert.equal(vniFromRandom(5, false), 10);
    assert.equal(vniFromRandom(5, true), 11);
    assert.equal(vniFromRandom(0x800000, false), 0);
    assert.equal(vniFromRandom(0x7fffff, true), MAX_VNI);
  });
});

describe("vxlanServer", () => {
  const server = (o: Partial<Parameters<typeof vxlanServer>[0]> = {}) =>
    vxlanServer({ tunnelIp: "198.18.0.2", port: 4789, ...o });

  it("sets dst_ip/dst_port and an even VNI for a lower src, an odd one for a higher src", async () => {
    const s = bind(server());
    const a = await s.request(serverRequest("a", "198.18.0.1"), ctx());
    assert.equal(a.mechanism!.parameters.dst_ip, "198.18.0.2");
    assert.equal(a.mechanism!.parameters.dst_port, "4789");
    assert.equal(vniOf(a) % 2, 0);
    const b = await s.request(serverRequest("b", "198.18.0.3"), ctx());
    assert.equal(vniOf(b) % 2, 1);
    for (const c of [a, b]) assert.ok(vniOf(c) > 0 && vniOf(c) <= MAX_VNI);
  });

  it("never hands out 0 and never reuses a VNI in use for the same tunnel pair", async () => {
    const vnis = createVniRegistry();
    // Always the same draw: 0 → even VNI 0 is skipped; then every connection collides and must move on.
    const s = bind(server({ vnis, random: sequence(0) }));
    const seen = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const c = await s.request(serverRequest(`c${i}`, "198.18.0.1"), ctx());
      assert.notEqual(vniOf(c), 0);
      assert.equal(vniOf(c) % 2, 0);
      seen.add(vniOf(c));
    }
    assert.equal(seen.size, 5);
    assert.equal(vnis.size, 5);
  });

  it("keeps the VNI across refreshes, with or without the vni parameter, and releases it on Close", async () => {
    const vnis = createVniRegistry();
    const s = bind(server({ vnis, random: sequence(7, 7, 9) }));
    const first = await s.request(serverRequest("a", "198.18.0.1"), ctx());
    assert.equal(vniOf(first), 14);
    const again = await s.request(serverRequest("a", "198.18.0.1", { vni: "14" }), ctx());
    assert.equal(vniOf(again), 14);
    const bare = await s.request(serverRequest("a", "198.18.0.1"), ctx());
    assert.equal(vniOf(bare), 14);
    assert.equal(vnis.size, 1);
    await s.close(first, ctx());
    assert.equal(vnis.size, 0);
    // Free again: the next connection drawing 7 gets 14.
    const other = await bind(server({ vnis, random: sequence(7) })).request(serverRequest("b", "198.18.0.1"), ctx());
    assert.equal(vniOf(other), 14);
  });

  it("adopts a VNI the client sends back when it is free and of the right parity, else allocates", async () => {
    const vnis = createVniRegistry();
    const s = bind(server({ vnis, random: sequence(100) }));
    const adopted = await s.request(serverRequest("a", "198.18.0.1", { vni: "4242" }), ctx());
    assert.equal(vniOf(adopted), 4242);
    const wrongParity = await s.request(serverRequest("b", "198.18.0.1", { vni: "4243" }), ctx());
    assert.equal(vniOf(wrongParity), 200);
    const taken = await s.request(serverRequest("c", "198.18.0.1", { vni: "4242" }), ctx());
    assert.notEqual(vniOf(taken), 4242);
  });

  it("releases the VNI when the first Request fails downstream, but not when a refresh does", async () => {
    const vnis = createVniRegistry();
    let fail = true;
    const s = bind(
      chain(
        server({ vnis }),
        injectError(() => new NsmError("boom", Code.Unavailable), { request: () => fail }),
      ),
    );
    await assert.rejects(s.request(serverRequest("a", "198.18.0.1"), ctx()), { code: Code.Unavailable });
    assert.equal(vnis.size, 0);
    fail = false;
    const c = await s.request(serverRequest("a", "198.18.0.1"), ctx());
    fail = true;
    await assert.rejects(s.request(serverRequest("a", "198.18.0.1", { vni: String(vniOf(c)) }), ctx()));
    assert.equal(vnis.heldBy("vxlanServer:a"), vniOf(c));
  });

  it("sets MTU to underlay − 50 (IPv4) / − 70 (IPv6) and lowers context.MTU when 0 or larger", async () => {
    const seen: number[] = [];
    const s = (tunnelIp: string) =>
      bind(
        chain(
          server({ tunnelIp, underlayMtu: 1500 }),
          checkRequest((r) => seen.push(r.connection!.context!.MTU)),
        ),
      );
    const v4 = await s("198.18.0.2").request(serverRequest("a", "198.18.0.1"), ctx());
    assert.equal(v4.mechanism!.parameters.MTU, String(1500 - VXLAN_OVERHEAD_IPV4));
    assert.equal(v4.context!.MTU, 1450);
    const big = await s("198.18.0.2").request(serverRequest("b", "198.18.0.1", {}, 9000), ctx());
    assert.equal(big.context!.MTU, 1450);
    const small = await s("198.18.0.2").request(serverRequest("c", "198.18.0.1", {}, 1300), ctx());
    assert.equal(small.context!.MTU, 1300);
    const v6 = await s("fd18::2").request(serverRequest("d", "fd18::1"), ctx());
    assert.equal(v6.mechanism!.parameters.MTU, String(1500 - VXLAN_OVERHEAD_IPV6));
    assert.deepEqual(seen, [1450, 1450, 1300, 1430]);
    // A smaller MTU already offered by the client wins.
    const offered = await s("198.18.0.2").request(serverRequest("e", "198.18.0.1", { MTU: "1400" }), ctx());
    assert.equal(offered.mechanism!.parameters.MTU, "1400");
    assert.equal(offered.context!.MTU, 1400);
  });

  it("refuses a VXLAN mechanism without a valid src_ip or with a bad vni, asking nothing downstream", async () => {
    const after = count();
    const s = bind(chain(server(), after));
    await assert.rejects(s.request(serverRequest("a", "not-an-ip"), ctx()), { code: Code.InvalidArgument });
    await assert.rejects(s.request(serverRequest("a", "198.18.0.1", { vni: "99999999" }), ctx()), {
      code: Code.InvalidArgument,
    });
    assert.equal(after.requests, 0);
  });

  it("passes other mechanisms through untouched", async () => {
    const req = serverRequest("a", "198.18.0.1");
    req.connection!.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "nsm-1" });
    const c = await bind(server()).request(req, ctx());
    assert.deepEqual(c.mechanism!.parameters, { name: "nsm-1" });
  });

  it("rejects bad options at construction", () => {
    assert.throws(() => vxlanServer({ tunnelIp: "nope" }), { code: Code.InvalidArgument });
    assert.throws(() => vxlanServer({ tunnelIp: "198.18.0.1", port: 70000 }), { code: Code.InvalidArgument });
    assert.throws(() => vxlanServer({ tunnelIp: "198.18.0.1", underlayMtu: 600 }), { code: Code.InvalidArgument });
  });
});

describe("vxlanClient", () => {
  const clientRequest = (payload: string, prefs: Mechanism[] = []) =>
    create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: "c1", networkService: "svc", payload }),
      mechanismPreferences: prefs,
    });

  /** The client, then a stand-in for the remote side that answers with the first VXLAN preference + `answer`. */
  function withPeer(answer: Record<string, string>, o: Partial<Parameters<typeof vxlanClient>[0]> = {}) {
    const seen: Mechanism[][] = [];
    const peer: NetworkServiceElement = {
      name: "peer",
      async request(req) {
        seen.push(req.mechanismPreferences);
        const conn = clone(ConnectionSchema, req.connection!);
        const m = conn.mechanism ?? req.mechanismPreferences.find((x) => x.type === MechanismType.VXLAN);
        if (m) conn.mechanism = vxlan({ ...m.parameters, dst_ip: "198.18.0.2", dst_port: "4789", ...answer });
        return conn;
      },
      async close() {},
    };
    const closes = count();
    const vnis = o.vnis ?? createVniRegistry();
    const handler = bind(chain(vxlanClient({ tunnelIp: "198.18.0.1", vnis, ...o }), closes, peer));
    return { handler, seen, closes, vnis };
  }

  it("offers VXLAN with src_ip, src_port and MTU only for ETHERNET payload by default", async () => {
    const eth = withPeer({ vni: "10" });
    const c = await eth.handler.request(clientRequest(Payload.ETHERNET), ctx());
    const offered = eth.seen[0]!;
    assert.deepEqual(
      offered.map((m) => [m.cls, m.type]),
      [[Cls.REMOTE, MechanismType.VXLAN]],
    );
    assert.deepEqual(offered[0]!.parameters, { src_ip: "198.18.0.1", src_port: "4789", MTU: "1450" });
    assert.equal(c.context!.MTU, 1450);
    for (const payload of [Payload.IP, ""]) {
      const ip = withPeer({ vni: "10" });
      await ip.handler.request(clientRequest(payload), ctx());
      assert.deepEqual(ip.seen[0], [], `payload ${JSON.stringify(payload)}`);
    }
    const widened = withPeer({ vni: "10" }, { payloads: [Payload.ETHERNET, Payload.IP] });
    await widened.handler.request(clientRequest(Payload.IP), ctx());
    assert.equal(widened.seen[0]!.length, 1);
  });

  it("fills an existing VXLAN preference instead of adding one, and keeps the others", async () => {
    const p = withPeer({ vni: "10" });
    await p.handler.request(
      clientRequest(Payload.ETHERNET, [newMechanism(Cls.LOCAL, MechanismType.KERNEL), vxlan({ MTU: "1400" })]),
      ctx(),
    );
    const [kernel, vx] = p.seen[0]!;
    assert.equal(kernel!.type, MechanismType.KERNEL);
    assert.deepEqual(vx!.parameters, { src_ip: "198.18.0.1", src_port: "4789", MTU: "1400" });
  });

  it("records the answered VNI, refills the mechanism on refresh, and forgets it on Close", async () => {
    const p = withPeer({ vni: "10" });
    const c = await p.handler.request(clientRequest(Payload.ETHERNET), ctx());
    assert.equal(p.vnis.holder(10), "vxlanClient:c1");
    const refresh = clientRequest(Payload.ETHERNET);
    refresh.connection!.mechanism = vxlan({ ...c.mechanism!.parameters, src_ip: "0.0.0.0" });
    const refreshed = await p.handler.request(refresh, ctx());
    assert.equal(refreshed.mechanism!.parameters.src_ip, "198.18.0.1");
    assert.equal(p.vnis.size, 1);
    await p.handler.close(c, ctx());
    assert.equal(p.vnis.size, 0);
  });

  it("fails and closes downstream when the peer's VNI is already used by another tunnel of this node", async () => {
    const vnis = createVniRegistry();
    vnis.claim("vxlanServer:other", 10);
    const p = withPeer({ vni: "10" }, { vnis });
    await assert.rejects(p.handler.request(clientRequest(Payload.ETHERNET), ctx()), (e: NsmError) => {
      assert.equal(e.code, Code.Unavailable);
      assert.equal(e.reason, "vni-in-use");
      return true;
    });
    assert.equal(p.closes.closes, 1);
    assert.equal(vnis.holder(10), "vxlanServer:other");
  });

  it("fails when the answer has no VNI", async () => {
    const p = withPeer({});
    await assert.rejects(p.handler.request(clientRequest(Payload.ETHERNET), ctx()), { code: Code.InvalidArgument });
    assert.equal(p.closes.closes, 1);
  });
});
