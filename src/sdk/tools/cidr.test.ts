// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, type NsmError } from "../core/errors.js";
import { formatIp, hostPrefix, IpPool, PrefixSet, parseCidr, parseCidrGroups, parseIp, tryParseCidr } from "./cidr.js";

const ips = (pool: IpPool, n: number, exclude?: PrefixSet) =>
  Array.from({ length: n }, () => formatIp(pool.allocate(exclude)));

describe("parseCidr", () => {
  it("masks host bits like Go's net.ParseCIDR", () => {
    assert.equal(parseCidr("10.0.0.5/24").text, "10.0.0.0/24");
    assert.equal(parseCidr("172.16.1.100/31").text, "172.16.1.100/31");
    assert.equal(parseCidr("fd00::1:2/64").text, "fd00::/64");
  });
  it("rejects bad prefixes with InvalidArgument naming them", () => {
    for (const bad of [
      "10.0.0.0",
      "10.0.0.0/33",
      "10.1/8",
      "fd00::/129",
      "fe80::1%eth0/64",
      "x/24",
      "10.0.0.0/24/1",
      "",
    ]) {
      assert.equal(tryParseCidr(bad), undefined, bad);
      assert.throws(
        () => parseCidr(bad),
        (e: NsmError) => e.code === Code.InvalidArgument && e.message.includes(`"${bad}"`),
        bad,
      );
    }
  });
  it("formats addresses as Go does", () => {
    assert.equal(hostPrefix(parseIp("fe80::")), "fe80::/128");
    assert.equal(hostPrefix(parseIp("192.168.0.1")), "192.168.0.1/32");
    assert.equal(formatIp(parseIp("fe80:0:0::0:1")), "fe80::1");
  });
});

describe("parseCidrGroups", () => {
  it("parses NSM_CIDR_PREFIX groups", () => {
    assert.deepEqual(parseCidrGroups("[10.0.0.0/24, fd00::/64], 172.16.0.0/16,192.168.0.0/16"), [
      ["10.0.0.0/24", "fd00::/64"],
      ["172.16.0.0/16"],
      ["192.168.0.0/16"],
    ]);
    assert.deepEqual(parseCidrGroups("[10.0.0.0/24]"), [["10.0.0.0/24"]]);
    assert.deepEqual(parseCidrGroups(""), []);
  });
  it("rejects unbalanced brackets and bad prefixes", () => {
    for (const bad of [
      "[10.0.0.0/24",
      "10.0.0.0/24]",
      "[[10.0.0.0/24]]",
      "10.0.0.0/24,,",
      "[10.0.0.0/24,[fd00::/64]]",
      "foo",
    ]) {
      assert.throws(
        () => parseCidrGroups(bad),
        (e: NsmError) => e.code === Code.InvalidArgument,
        bad,
      );
    }
  });
});

describe("IpPool", () => {
  it("allocates the lowest free addresses, network address included", () => {
    const pool = new IpPool(["172.16.1.100/31"]);
    assert.deepEqual(ips(pool, 2), ["172.16.1.100", "172.16.1.101"]);
    assert.throws(
      () => pool.allocate(),
      (e: NsmError) => e.code === Code.ResourceExhausted && e.message.includes("172.16.1.100/31"),
    );
  });
  it("skips excluded prefixes", () => {
    const pool = new IpPool(["192.168.1.0/24"]);
    const exclude = new PrefixSet(["192.168.1.1/32", "192.168.1.3/32", "192.168.1.6/32", "192.168.1.8/30"]);
    assert.deepEqual(ips(pool, 6, exclude), [
      "192.168.1.0",
      "192.168.1.2",
      "192.168.1.4",
      "192.168.1.5",
      "192.168.1.7",
      "192.168.1.12",
    ]);
  });
  it("pulls a specific address once, and takes it back on release", () => {
    const pool = new IpPool(["10.0.0.0/30"]);
    const ip = parseIp("10.0.0.2");
    assert.equal(pool.tryPull(ip), true);
    assert.equal(pool.tryPull(ip), false);
    assert.throws(
      () => pool.pull(ip),
      (e: NsmError) => e.code === Code.ResourceExhausted,
    );
    assert.deepEqual(ips(pool, 3), ["10.0.0.0", "10.0.0.1", "10.0.0.3"]);
    pool.release(ip);
    assert.equal(pool.freeCount, 1n);
    assert.equal(formatIp(pool.allocate()), "10.0.0.2");
  });
  it("does not pull excluded or foreign addresses, and ignores foreign releases", () => {
    const pool = new IpPool(["10.0.0.0/30"]);
    assert.equal(pool.tryPull(parseIp("10.0.0.1"), new PrefixSet(["10.0.0.0/31"])), false);
    assert.equal(pool.tryPull(parseIp("10.0.1.1")), false);
    pool.release(parseIp("10.9.9.9"));
    assert.equal(pool.freeCount, 4n);
  });
  it("handles IPv6 and several prefixes (IPv4 first)", () => {
    const pool = new IpPool(["fd00::/64", "10.0.0.0/31"]);
    assert.deepEqual(ips(pool, 4), ["10.0.0.0", "10.0.0.1", "fd00::", "fd00::1"]);
    assert.equal(pool.freeCount, (1n << 64n) - 2n);
  });
  it("rejects a bad CIDR at construction", () => {
    assert.throws(
      () => new IpPool(["10.0.0.0/24", "nope"]),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });
});
