// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, NsmError } from "../sdk/core/errors.js";
import {
  AF,
  addrRequest,
  attr,
  attrNest,
  attrStrz,
  attrU32,
  decodeAddress,
  decodeDone,
  decodeError,
  decodeLink,
  decodeNeighbor,
  decodeRoute,
  encodeRequest,
  getI32,
  getU16,
  getU32,
  IFA,
  IFA_F,
  IFLA,
  IFLA_INFO,
  IFLA_VXLAN,
  ifaddrmsg,
  ifinfomsg,
  maskBytes,
  NDA,
  NLM_F,
  NLMSG,
  ndmsg,
  neighRequest,
  newLinkRequest,
  parseAttrs,
  parseCidr,
  parseIp,
  parseMac,
  parseMessages,
  RTA,
  RTM,
  routeRequest,
  rtmsg,
  setLinkRequest,
  VETH_INFO_PEER,
  vethData,
  vxlanData,
} from "./codec.js";
import { sysctlPath } from "./validate.js";

/** Builds a received message: nlmsghdr + payload. */
function message(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  return encodeRequest({ type, flags, body: payload }, seq);
}

describe("rtattr encoding", () => {
  it("pads to 4 bytes and keeps the unpadded length", () => {
    const a = attrStrz(IFLA.IFNAME, "ab");
    assert.equal(a.length, 8);
    assert.equal(getU16(a, 0), 7);
    assert.equal(getU16(a, 2), IFLA.IFNAME);
    assert.deepEqual([...a.subarray(4)], [0x61, 0x62, 0, 0]);
  });

  it("nests and parses back", () => {
    const n = attrNest(IFLA.LINKINFO, attr(IFLA_INFO.KIND, Buffer.from("veth")), attrU32(IFLA_INFO.DATA, 7));
    const outer = parseAttrs(n);
    const inner = parseAttrs(outer.get(IFLA.LINKINFO)!);
    assert.equal(inner.get(IFLA_INFO.KIND)!.toString(), "veth");
    assert.equal(getU32(inner.get(IFLA_INFO.DATA)!, 0), 7);
  });

  it("masks NLA_F_NESTED off the type when parsing", () => {
    const b = attr(IFLA.LINKINFO | 0x8000, Buffer.alloc(4));
    assert.ok(parseAttrs(b).has(IFLA.LINKINFO));
  });
});

describe("request encoding", () => {
  it("writes the nlmsghdr with length, type, flags and sequence", () => {
    const b = encodeRequest({ type: RTM.GETLINK, flags: NLM_F.REQUEST | NLM_F.DUMP, body: ifinfomsg() }, 42);
    assert.equal(b.length, 32);
    assert.equal(getU32(b, 0), 32);
    assert.equal(getU16(b, 4), RTM.GETLINK);
    assert.equal(getU16(b, 6), 0x301);
    assert.equal(getU32(b, 8), 42);
    assert.equal(getU32(b, 12), 0);
  });

  it("creates a veth with its peer in another netns (nested IFLA_LINKINFO/IFLA_INFO_DATA/VETH_INFO_PEER)", () => {
    const req = newLinkRequest("veth", { name: "a", mtu: 1400 }, vethData({ name: "b", netnsFd: 9 }));
    assert.equal(req.type, RTM.NEWLINK);
    assert.equal(req.flags, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL);
    const attrs = parseAttrs(req.body, 16);
    assert.equal(attrs.get(IFLA.IFNAME)!.toString(), "a\0");
    assert.equal(getU32(attrs.get(IFLA.MTU)!, 0), 1400);
    const info = parseAttrs(attrs.get(IFLA.LINKINFO)!);
    assert.equal(info.get(IFLA_INFO.KIND)!.toString(), "veth");
    const peer = parseAttrs(info.get(IFLA_INFO.DATA)!).get(VETH_INFO_PEER)!;
    const peerAttrs = parseAttrs(peer, 16); // the peer starts with its own ifinfomsg
    assert.equal(peerAttrs.get(IFLA.IFNAME)!.toString(), "b\0");
    assert.equal(getU32(peerAttrs.get(IFLA.NET_NS_FD)!, 0), 9);
  });

  it("encodes vxlan data with the port in network byte order", () => {
    const data = parseAttrs(
      Buffer.concat(
        vxlanData({
          vni: 0x123456,
          port: 4789,
          local: parseIp("10.0.0.1"),
          remote: parseIp("fd00::2"),
          underlayIndex: 3,
        }),
      ),
    );
    assert.equal(getU32(data.get(IFLA_VXLAN.ID)!, 0), 0x123456);
    assert.deepEqual([...data.get(IFLA_VXLAN.PORT)!], [0x12, 0xb5]);
    assert.deepEqual([...data.get(IFLA_VXLAN.LOCAL)!], [10, 0, 0, 1]);
    assert.equal(data.get(IFLA_VXLAN.GROUP6)!.length, 16);
    assert.equal(getU32(data.get(IFLA_VXLAN.LINK)!, 0), 3);
    assert.deepEqual([...data.get(IFLA_VXLAN.LEARNING)!], [0]);
  });

  it("sets links by name (index 0) or by index with a new name, and IFF_UP via flags/change", () => {
    const byName = setLinkRequest(0, "eth9", { up: true, alias: "conn" });
    assert.equal(byName.type, RTM.SETLINK);
    assert.ok(byName.flags & NLM_F.ACK);
    assert.equal(getI32(byName.body, 4), 0);
    assert.equal(getU32(byName.body, 8), 1);
    assert.equal(getU32(byName.body, 12), 1);
    const a = parseAttrs(byName.body, 16);
    assert.equal(a.get(IFLA.IFNAME)!.toString(), "eth9\0");
    assert.equal(a.get(IFLA.IFALIAS)!.toString(), "conn"); // no terminator, like iproute2

    const rename = setLinkRequest(7, "old", { name: "new", up: false });
    assert.equal(getI32(rename.body, 4), 7);
    assert.equal(getU32(rename.body, 8), 0);
    assert.equal(getU32(rename.body, 12), 1);
    assert.equal(parseAttrs(rename.body, 16).get(IFLA.IFNAME)!.toString(), "new\0");
  });

  it("adds IPv6 addresses with IFA_F_NODAD and IPv4 without", () => {
    const v6 = addrRequest("replace", { index: 5, address: parseCidr("fd00::1/64"), nodad: true });
    assert.equal(v6.type, RTM.NEWADDR);
    assert.equal(v6.flags, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE);
    assert.equal(v6.body[0], AF.INET6);
    assert.equal(v6.body[1], 64);
    assert.equal(getU32(v6.body, 4), 5);
    assert.equal(getU32(parseAttrs(v6.body, 8).get(IFA.FLAGS)!, 0), IFA_F.NODAD);
    const v4 = addrRequest("replace", { index: 5, address: parseCidr("10.1.2.3/32"), nodad: true });
    assert.equal(getU32(parseAttrs(v4.body, 8).get(IFA.FLAGS)!, 0), 0);
    const del = addrRequest("delete", { index: 5, address: parseCidr("10.1.2.3/32") });
    assert.equal(del.type, RTM.DELADDR);
    assert.deepEqual([...parseAttrs(del.body, 8).get(IFA.LOCAL)!], [10, 1, 2, 3]);
  });

  it("encodes routes: masked dst, big table in RTA_TABLE, onlink, gateway, scope", () => {
    const r = routeRequest("replace", {
      dst: parseCidr("10.1.2.3/16"),
      gateway: parseIp("10.9.0.1"),
      oif: 4,
      scope: 0,
      onlink: true,
      table: 1000,
    });
    assert.equal(r.type, RTM.NEWROUTE);
    assert.equal(r.body[1], 16);
    assert.equal(r.body[4], 0); // RT_TABLE_UNSPEC: the real table is in RTA_TABLE
    assert.equal(r.body[7], 1); // RTN_UNICAST
    assert.equal(getU32(r.body, 8), 4); // RTNH_F_ONLINK
    const a = parseAttrs(r.body, 12);
    assert.deepEqual([...a.get(RTA.DST)!], [10, 1, 0, 0]);
    assert.equal(getU32(a.get(RTA.TABLE)!, 0), 1000);
    assert.equal(getU32(a.get(RTA.OIF)!, 0), 4);
    const del = routeRequest("delete", { dst: parseCidr("0.0.0.0/0"), scope: 253, table: 254 });
    assert.equal(del.type, RTM.DELROUTE);
    assert.equal(del.body[6], 255); // RT_SCOPE_NOWHERE matches any scope
    assert.equal(parseAttrs(del.body, 12).has(RTA.DST), false);
  });

  it("encodes neighbours", () => {
    const n = neighRequest("replace", {
      index: 3,
      address: parseIp("10.0.0.2"),
      mac: parseMac("02:00:00:aa:bb:cc"),
      state: 0x80,
    });
    assert.equal(n.type, RTM.NEWNEIGH);
    assert.equal(getU32(n.body, 4), 3);
    assert.equal(getU16(n.body, 8), 0x80);
    assert.equal(parseAttrs(n.body, 12).get(NDA.LLADDR)!.toString("hex"), "020000aabbcc");
  });
});

describe("reply decoding", () => {
  it("splits datagrams into messages and stops at a malformed header", () => {
    const a = message(RTM.NEWLINK, NLM_F.MULTI, 1, ifinfomsg({ index: 1 }));
    const b = message(NLMSG.DONE, NLM_F.MULTI, 1, Buffer.alloc(4));
    const junk = Buffer.from([200, 0, 0, 0, 1, 2, 3, 4]);
    const msgs = parseMessages(Buffer.concat([a, b, junk]));
    assert.deepEqual(
      msgs.map((m) => [m.type, m.seq]),
      [
        [RTM.NEWLINK, 1],
        [NLMSG.DONE, 1],
      ],
    );
    assert.equal(decodeDone(msgs[1]!), 0);
  });

  it("decodes an error with extended ack (capped)", () => {
    const errno = Buffer.alloc(4);
    errno.writeInt32LE(-17);
    const echoed = encodeRequest({ type: RTM.NEWLINK, flags: 0x605, body: Buffer.alloc(0) }, 9);
    const tlv = Buffer.concat([attrStrz(1, "File exists"), attrU32(2, 36)]);
    const m = parseMessages(
      message(NLMSG.ERROR, NLM_F.CAPPED | NLM_F.ACK_TLVS, 9, Buffer.concat([errno, echoed, tlv])),
    )[0]!;
    assert.deepEqual(decodeError(m), { errno: 17, extack: "File exists", offset: 36 });
  });

  it("decodes an ACK as errno 0", () => {
    const m = parseMessages(message(NLMSG.ERROR, NLM_F.CAPPED, 9, Buffer.alloc(20)))[0]!;
    assert.equal(decodeError(m).errno, 0);
  });

  it("decodes a vxlan link", () => {
    const payload = Buffer.concat([
      ifinfomsg({ index: 7, flags: 0x1003 }),
      attrStrz(IFLA.IFNAME, "vx0"),
      attrU32(IFLA.MTU, 1450),
      attr(IFLA.ADDRESS, parseMac("02:00:00:00:00:07")),
      attr(IFLA.IFALIAS, Buffer.from("conn-1")),
      attrNest(
        IFLA.LINKINFO,
        attr(IFLA_INFO.KIND, Buffer.from("vxlan\0")),
        attrNest(IFLA_INFO.DATA, ...vxlanData({ vni: 100, port: 4789, remote: parseIp("198.18.0.2") })),
      ),
    ]);
    assert.deepEqual(decodeLink(payload), {
      index: 7,
      name: "vx0",
      kind: "vxlan",
      alias: "conn-1",
      mtu: 1450,
      flags: 0x1003,
      up: true,
      mac: "02:00:00:00:00:07",
      vxlan: { vni: 100, port: 4789, remote: "198.18.0.2", learning: false },
    });
  });

  it("decodes addresses, with a peer when IFA_LOCAL and IFA_ADDRESS differ", () => {
    const p = Buffer.concat([
      ifaddrmsg({ family: AF.INET, prefixLength: 32, scope: 0, index: 2 }),
      attr(IFA.LOCAL, parseIp("10.0.0.1").bytes),
      attr(IFA.ADDRESS, parseIp("10.0.0.2").bytes),
      attrU32(IFA.FLAGS, 0x80),
    ]);
    const a = decodeAddress(p);
    assert.equal(a.cidr, "10.0.0.1/32");
    assert.equal(a.peer, "10.0.0.2");
    assert.equal(a.flags, 0x80);
    const v6 = decodeAddress(
      Buffer.concat([
        ifaddrmsg({ family: AF.INET6, prefixLength: 64, flags: 0x40, index: 2 }),
        attr(IFA.ADDRESS, parseIp("fd00::1").bytes),
      ]),
    );
    assert.equal(v6.cidr, "fd00::1/64");
    assert.equal(v6.tentative, true);
  });

  it("decodes a default route and a neighbour", () => {
    const r = decodeRoute(
      Buffer.concat([
        rtmsg({ family: AF.INET, table: 254, protocol: 3, scope: 0, type: 1, flags: 4 }),
        attr(RTA.GATEWAY, parseIp("10.0.0.1").bytes),
        attrU32(RTA.OIF, 2),
      ]),
    );
    assert.deepEqual(r, {
      family: 4,
      dst: "0.0.0.0/0",
      table: 254,
      protocol: 3,
      scope: 0,
      type: 1,
      onlink: true,
      gateway: "10.0.0.1",
      linkIndex: 2,
    });
    const n = decodeNeighbor(
      Buffer.concat([
        ndmsg({ family: AF.INET6, index: 4, state: 0x80 }),
        attr(NDA.DST, parseIp("fd00::2").bytes),
        attr(NDA.LLADDR, parseMac("aa:bb:cc:dd:ee:ff")),
      ]),
    );
    assert.deepEqual(n, { linkIndex: 4, family: 6, address: "fd00::2", state: 0x80, mac: "aa:bb:cc:dd:ee:ff" });
  });
});

describe("address parsing", () => {
  it("parses CIDRs and masks host bits", () => {
    const c = parseCidr("172.16.5.4/12");
    assert.equal(c.family, 4);
    assert.equal(c.prefixLength, 12);
    assert.deepEqual([...maskBytes(c.bytes, 12)], [172, 16, 0, 0]);
    assert.equal(parseCidr("fd00::1").prefixLength, 128);
    assert.equal(parseCidr("10.0.0.1").prefixLength, 32);
  });

  it("rejects bad input with InvalidArgument", () => {
    for (const bad of ["10.0.0.1/33", "fd00::/129", "10.0.0/8", "nope", "10.0.0.1/x", "10.0.0.1/-1"]) {
      assert.throws(
        () => parseCidr(bad),
        (e: unknown) => e instanceof NsmError && e.code === Code.InvalidArgument,
        bad,
      );
    }
    assert.throws(
      () => parseMac("02:00:00:00:00"),
      (e: unknown) => e instanceof NsmError && e.code === Code.InvalidArgument,
    );
  });

  it("turns sysctl keys into /proc/sys paths and refuses to escape", () => {
    assert.equal(sysctlPath("net.ipv4.ping_group_range"), "/proc/sys/net/ipv4/ping_group_range");
    assert.equal(sysctlPath("net/ipv6/conf/eth0.100/disable_ipv6"), "/proc/sys/net/ipv6/conf/eth0.100/disable_ipv6");
    for (const bad of ["net/../../etc/passwd", "/etc/passwd", "net//x"]) {
      assert.throws(
        () => sysctlPath(bad),
        (e: unknown) => e instanceof NsmError && e.code === Code.InvalidArgument,
      );
    }
  });
});
