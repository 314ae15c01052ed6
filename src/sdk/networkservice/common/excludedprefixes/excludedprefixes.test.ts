// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { checkResponse, count } from "../../../testing/elements.js";
import { parseAwarenessGroups } from "../awarenessgroups/index.js";
import { metadataServer } from "../metadata/index.js";
import { point2pointIpamServer } from "../point2pointipam/index.js";
import { excludedPrefixesClient, excludedPrefixesServer, parseExcludedPrefixes } from "./index.js";

const ctx = () => CallContext.create();
const request = (id: string, excluded: string[] = []) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      context: create(ConnectionContextSchema, {
        ipContext: create(IPContextSchema, { excludedPrefixes: excluded }),
      }),
    }),
  });
const addrs = (c: Connection) => [...c.context!.ipContext!.dstIpAddrs, ...c.context!.ipContext!.srcIpAddrs];

describe("parseExcludedPrefixes", () => {
  it("reads upstream's file (prefixes: [...]); empty is none", () => {
    assert.deepEqual(parseExcludedPrefixes("prefixes:\n- 10.96.0.0/12\n- 172.16.1.101/32\n"), [
      "10.96.0.0/12",
      "172.16.1.101/32",
    ]);
    assert.deepEqual(parseExcludedPrefixes(""), []);
    assert.deepEqual(parseExcludedPrefixes("prefixes: []"), []);
  });
  it("refuses what is not a list of prefixes, naming the problem", () => {
    assert.throws(() => parseExcludedPrefixes("- 10.0.0.0/8"), /mapping with `prefixes`/);
    assert.throws(() => parseExcludedPrefixes("prefixes: 10.0.0.0/8"), /list of CIDR strings/);
    assert.throws(() => parseExcludedPrefixes("prefixes: [not-a-cidr]"), /not-a-cidr/);
  });
});

describe("excludedPrefixesServer", () => {
  const dir = mkdtempSync(join(tmpdir(), "excluded-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("adds the file's prefixes, follows changes, keeps the last good ones on a bad file", async () => {
    const file = join(dir, "excluded_prefixes.yaml");
    const seen = count();
    const h = bind(chain(excludedPrefixesServer({ file }), seen));
    const excludedSent = () => seen.lastRequest!.connection!.context!.ipContext!.excludedPrefixes;

    await h.request(request("c1", ["192.168.0.0/16"]), ctx());
    assert.deepEqual(excludedSent(), ["192.168.0.0/16"], "no file: nothing added");

    writeFileSync(file, "prefixes:\n- 172.16.1.101/32\n- 192.168.0.0/16\n");
    await h.request(request("c1", ["192.168.0.0/16"]), ctx());
    assert.deepEqual(excludedSent(), ["192.168.0.0/16", "172.16.1.101/32"], "added once, no duplicate");

    writeFileSync(file, "prefixes: [10.0.0.0/8, 172.16.1.102/32]\n");
    await h.request(request("c2"), ctx());
    assert.deepEqual(excludedSent(), ["10.0.0.0/8", "172.16.1.102/32"]);

    writeFileSync(file, "prefixes: [oops/99]\n");
    await h.request(request("c3"), ctx());
    assert.deepEqual(excludedSent(), ["10.0.0.0/8", "172.16.1.102/32"], "a bad file keeps the last good prefixes");
  });

  it("makes the endpoint's IPAM skip the excluded addresses (upstream exclude-prefixes example)", async () => {
    const file = join(dir, "example.yaml");
    writeFileSync(file, "prefixes:\n- 172.16.1.201/32\n- 172.16.1.202/32\n");
    const h = bind(
      chain(
        excludedPrefixesServer({ file }),
        metadataServer(),
        point2pointIpamServer({ prefixes: ["172.16.1.200/30"] }),
      ),
    );
    const conn = await h.request(request("c1"), ctx());
    assert.deepEqual(addrs(conn), ["172.16.1.200/32", "172.16.1.203/32"]);
  });
});

/** An endpoint allocating from `cidr` (its own IPAM instance). */
const endpoint = (cidr: string) => chain(metadataServer(), point2pointIpamServer({ prefixes: [cidr] }));

describe("excludedPrefixesClient", () => {
  it("two connections of one client to two endpoints of the same pool get different addresses", async () => {
    const client = excludedPrefixesClient();
    const a = bind(chain(client, endpoint("172.16.1.96/29")));
    const b = bind(chain(client, endpoint("172.16.1.96/29")));
    const first = await a.request(request("nsc-0"), ctx());
    const second = await b.request(request("nsc-1"), ctx());
    assert.deepEqual(addrs(first), ["172.16.1.96/32", "172.16.1.97/32"]);
    assert.deepEqual(addrs(second), ["172.16.1.98/32", "172.16.1.99/32"]);
    assert.deepEqual(second.context!.ipContext!.excludedPrefixes, [], "what the element added is not returned");

    // A refresh of the first keeps its own addresses (they are not excluded from itself).
    const again = await a.request(create(NetworkServiceRequestSchema, { connection: first }), ctx());
    assert.deepEqual(addrs(again), addrs(first));
  });

  it("connections of one awareness group may overlap; a connection outside the group may not", async () => {
    const groups = parseAwarenessGroups("[kernel://svc-a/nsm-1,kernel://svc-b/nsm-2]");
    const client = excludedPrefixesClient({ awarenessGroups: groups });
    const grouped = (id: string, service: string, ifname: string) =>
      create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, { id, networkService: service }),
        mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: ifname })],
      });
    const pool = "172.16.1.100/31";
    const first = await bind(chain(client, endpoint(pool))).request(grouped("c-0", "svc-a", "nsm-1"), ctx());
    const second = await bind(chain(client, endpoint(pool))).request(grouped("c-1", "svc-b", "nsm-2"), ctx());
    assert.deepEqual(addrs(second), addrs(first), "same group: the same pool's pair is handed out again");
    await assert.rejects(
      bind(chain(client, endpoint(pool))).request(grouped("c-2", "svc-c", "nsm-3"), ctx()),
      "outside the group: the group's addresses are excluded and the pool has no other pair",
    );
  });

  it("a closed connection's addresses are free again for the next one", async () => {
    const client = excludedPrefixesClient();
    const a = bind(chain(client, endpoint("10.0.0.0/30")));
    const b = bind(chain(client, endpoint("10.0.0.0/30")));
    const first = await a.request(request("c-0"), ctx());
    await a.close(first, ctx());
    const second = await b.request(request("c-1"), ctx());
    assert.deepEqual(addrs(second), ["10.0.0.0/32", "10.0.0.1/32"]);
  });

  it("an endpoint that ignores the excluded prefixes: FailedPrecondition, closed downstream, nothing kept", async () => {
    const client = excludedPrefixesClient();
    const good = bind(chain(client, endpoint("10.1.0.0/30")));
    const closes = count();
    // Drops the excluded prefixes before its IPAM: hands out the same pair again.
    const deaf = bind(
      chain(
        client,
        closes,
        {
          name: "deaf",
          request(req, c, next) {
            req.connection!.context!.ipContext!.excludedPrefixes = [];
            return next.request(req, c);
          },
          close: (conn, c, next) => next.close(conn, c),
        },
        endpoint("10.1.0.0/30"),
      ),
    );
    const kept = await good.request(request("c-0"), ctx());
    await assert.rejects(
      deaf.request(request("c-1"), ctx()),
      (e: NsmError) => e.code === Code.FailedPrecondition && /10\.1\.0\.[01]\/32/.test(e.message),
    );
    assert.equal(closes.closes, 1);
    await good.close(kept, ctx());
    const seen: string[][] = [];
    const probe = bind(
      chain(
        client,
        checkResponse((c) => seen.push(addrs(c))),
        endpoint("10.1.0.0/29"),
      ),
    );
    await probe.request(request("c-2"), ctx());
    assert.deepEqual(seen, [["10.1.0.0/32", "10.1.0.1/32"]], "c-1's refused addresses were not recorded");
  });
});
