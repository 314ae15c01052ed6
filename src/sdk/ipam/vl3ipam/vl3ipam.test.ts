// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { PrefixRequestSchema, Type } from "../../../api/gen/ipam_pb.js";
import { create } from "../../../api/index.js";
import { Code, NsmError } from "../../core/errors.js";
import { closeChannel, dialChannel } from "../../grpc/dial.js";
import { PrefixLeases, PrefixPool, serveVl3Ipam, watchPrefix } from "./index.js";

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return NsmError.from(err).code;
  }
  return undefined;
};

describe("vl3ipam PrefixPool", () => {
  it("hands out aligned blocks lowest first and takes a released one again", () => {
    const pool = new PrefixPool("172.16.0.0/16", 24);
    assert.equal(pool.allocate(), "172.16.0.0/24");
    assert.equal(pool.allocate(), "172.16.1.0/24");
    assert.ok(pool.release("172.16.0.0/24"));
    assert.equal(pool.allocate(), "172.16.0.0/24");
  });

  it("gives a named block back when free, else the lowest free one", () => {
    const pool = new PrefixPool("172.16.0.0/16", 24);
    assert.equal(pool.allocate("172.16.7.0/24"), "172.16.7.0/24");
    assert.equal(pool.allocate("172.16.7.0/24"), "172.16.0.0/24");
    assert.equal(pool.allocate("10.0.0.0/24"), "172.16.1.0/24");
  });

  it("skips excluded prefixes, even ones that are not aligned to the block", () => {
    const pool = new PrefixPool("172.16.0.0/16", 24);
    assert.equal(pool.allocate("", ["172.16.0.0/23", "172.16.2.5/32"]), "172.16.3.0/24");
  });

  it("is ResourceExhausted when no block is left", () => {
    const pool = new PrefixPool("10.0.0.0/23", 24);
    pool.allocate();
    pool.allocate();
    assert.equal(
      code(() => pool.allocate()),
      Code.ResourceExhausted,
    );
  });

  it("IPv6: /112 blocks of a /64 without walking the space", () => {
    const pool = new PrefixPool("2001:db8::/64", 112);
    assert.equal(pool.allocate("", ["2001:db8::/80"]), "2001:db8:0:0:1::/112");
  });

  it("refuses a block length that does not fit the network", () => {
    assert.equal(
      code(() => new PrefixPool("172.16.0.0/16", 8)),
      Code.InvalidArgument,
    );
    assert.equal(
      code(() => new PrefixPool("172.16.0.0/16", 33)),
      Code.InvalidArgument,
    );
  });
});

describe("vl3ipam PrefixLeases", () => {
  it("DELETE returns a held block; the end of the stream returns the rest", () => {
    const pool = new PrefixPool("172.16.0.0/22", 24);
    const a = new PrefixLeases(pool);
    assert.equal(a.handle(create(PrefixRequestSchema, { type: Type.ALLOCATE }))?.prefix, "172.16.0.0/24");
    assert.equal(a.handle(create(PrefixRequestSchema, { type: Type.ALLOCATE }))?.prefix, "172.16.1.0/24");
    a.handle(create(PrefixRequestSchema, { type: Type.DELETE, prefix: "172.16.0.0/24" }));
    assert.deepEqual(pool.taken, ["172.16.1.0/24"]);
    assert.deepEqual(a.releaseAll(), ["172.16.1.0/24"]);
    assert.deepEqual(pool.taken, []);
  });

  it("UNDEFINED is InvalidArgument; a block held by another stream is not deleted", () => {
    const pool = new PrefixPool("172.16.0.0/22", 24);
    const a = new PrefixLeases(pool);
    const b = new PrefixLeases(pool);
    a.handle(create(PrefixRequestSchema, { type: Type.ALLOCATE }));
    b.handle(create(PrefixRequestSchema, { type: Type.DELETE, prefix: "172.16.0.0/24" }));
    assert.deepEqual(pool.taken, ["172.16.0.0/24"]);
    assert.equal(
      code(() => a.handle(create(PrefixRequestSchema, { type: Type.UNDEFINED }))),
      Code.InvalidArgument,
    );
  });
});

describe("vl3ipam over gRPC", () => {
  async function serve(prefix: string, len: number) {
    const dir = mkdtempSync(join(tmpdir(), "vl3ipam-"));
    const server = new grpc.Server();
    const pool = serveVl3Ipam(server, { prefix, clientPrefixLength: len });
    const url = `unix://${dir}/ipam.sock`;
    await new Promise<void>((res, rej) =>
      server.bindAsync(url, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
    );
    return {
      pool,
      url,
      stop: () => {
        server.forceShutdown();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  it("two endpoints get two blocks; a closed stream gives its block back", async () => {
    const s = await serve("172.16.0.0/16", 24);
    const channel = dialChannel(s.url);
    const a = new AbortController();
    const b = new AbortController();
    try {
      const got: string[] = [];
      const first = new Promise<void>((r) => {
        void watchPrefix({
          channel,
          signal: a.signal,
          onPrefix: (p) => {
            got.push(p);
            r();
          },
        });
      });
      await first;
      const second = new Promise<void>((r) => {
        void watchPrefix({
          channel,
          signal: b.signal,
          onPrefix: (p) => {
            got.push(p);
            r();
          },
        });
      });
      await second;
      assert.deepEqual(got, ["172.16.0.0/24", "172.16.1.0/24"]);
      a.abort();
      for (let i = 0; i < 100 && s.pool.taken.length !== 1; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(s.pool.taken, ["172.16.1.0/24"]);
    } finally {
      a.abort();
      b.abort();
      closeChannel(channel);
      s.stop();
    }
  });

  it("an exhausted pool ends the stream with ResourceExhausted", async () => {
    const s = await serve("10.0.0.0/24", 24);
    const channel = dialChannel(s.url);
    const a = new AbortController();
    const b = new AbortController();
    try {
      await new Promise<void>((r) => {
        void watchPrefix({ channel, signal: a.signal, onPrefix: () => r() });
      });
      const err = await new Promise<NsmError>((r) => {
        void watchPrefix({ channel, signal: b.signal, onPrefix: () => {}, onError: r });
      });
      assert.equal(err.code, Code.ResourceExhausted, err.message);
      assert.match(err.message, /no free \/24 left in 10\.0\.0\.0\/24/);
    } finally {
      a.abort();
      b.abort();
      closeChannel(channel);
      s.stop();
    }
  });
});
