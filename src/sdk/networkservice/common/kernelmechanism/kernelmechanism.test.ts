// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  ConnectionSchema,
  create,
  type Mechanism,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { count } from "../../../testing/elements.js";
import { mechanismsServer } from "../mechanisms/index.js";
import { metadataClient, metadataServer } from "../metadata/index.js";
import { kernelMechanismClient, kernelMechanismServer } from "./index.js";

const ctx = () => CallContext.create();

const request = (opts: { id?: string; mechanism?: Mechanism; preferences?: Mechanism[]; ns?: string } = {}) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: opts.id ?? "c1",
      networkService: opts.ns ?? "icmp-responder",
      mechanism: opts.mechanism,
    }),
    mechanismPreferences: opts.preferences ?? [],
  });

describe("kernelMechanismClient", () => {
  it("adds a KERNEL/LOCAL preference with the default netns URL and a generated name", async () => {
    const after = count();
    const h = bind(chain(metadataClient(), kernelMechanismClient(), after));
    await h.request(request({ preferences: [newMechanism(Cls.REMOTE, "VXLAN")] }), ctx());
    const prefs = after.lastRequest!.mechanismPreferences;
    assert.deepEqual(
      prefs.map((m) => [m.cls, m.type]),
      [
        ["REMOTE", "VXLAN"],
        ["LOCAL", "KERNEL"],
      ],
    );
    assert.equal(prefs[1]!.parameters.inodeURL, "file:///proc/thread-self/ns/net");
    assert.match(prefs[1]!.parameters.name!, /^icmp-respo-[0-9A-Za-z]{4}$/);
  });

  it("completes an existing KERNEL preference, keeping its name (NSURL)", async () => {
    const after = count();
    const h = bind(chain(metadataClient(), kernelMechanismClient({ inodeUrl: "file:///proc/42/ns/net" }), after));
    const req = request({ preferences: [newMechanism(Cls.LOCAL, "KERNEL", { name: "nsm-1" })] });
    await h.request(req, ctx());
    const prefs = after.lastRequest!.mechanismPreferences;
    assert.equal(prefs.length, 1);
    assert.deepEqual(prefs[0]!.parameters, { name: "nsm-1", inodeURL: "file:///proc/42/ns/net" });
    assert.deepEqual(req.mechanismPreferences[0]!.parameters, { name: "nsm-1" }, "the caller's request is not mutated");
  });

  it("uses the interfaceName option", async () => {
    const after = count();
    const h = bind(chain(metadataClient(), kernelMechanismClient({ interfaceName: "nsm-7" }), after));
    await h.request(request(), ctx());
    assert.equal(after.lastRequest!.mechanismPreferences[0]!.parameters.name, "nsm-7");
  });

  it("keeps a generated name across refreshes and forgets it on Close", async () => {
    const after = count();
    let n = 0;
    const h = bind(
      chain(
        metadataClient(),
        kernelMechanismClient({ interfaceNameGenerator: (ns) => `${ns.slice(0, 4)}-${++n}` }),
        after,
      ),
    );
    const conn = await h.request(request(), ctx());
    await h.request(request(), ctx());
    assert.equal(after.lastRequest!.mechanismPreferences[0]!.parameters.name, "icmp-1");
    await h.close(conn, ctx());
    await h.request(request(), ctx());
    assert.equal(after.lastRequest!.mechanismPreferences[0]!.parameters.name, "icmp-2");
  });

  it("rejects a bad interfaceName option at construction", () => {
    assert.throws(
      () => kernelMechanismClient({ interfaceName: "far-too-long-name" }),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
    assert.throws(
      () => kernelMechanismClient({ inodeUrl: "/proc/1/ns/net" }),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });
});

describe("kernelMechanismServer", () => {
  const endpoint = (opts = {}) => {
    const after = count();
    const h = bind(chain(metadataServer(), mechanismsServer({ KERNEL: kernelMechanismServer(opts) }), after));
    return { h, after };
  };

  it("sets inodeURL and a generated name on the selected KERNEL mechanism", async () => {
    const { h } = endpoint();
    const conn = await h.request(
      request({ preferences: [newMechanism(Cls.LOCAL, "KERNEL", { inodeURL: "inode://4/4026531992" })] }),
      ctx(),
    );
    assert.equal(conn.mechanism?.type, "KERNEL");
    assert.equal(conn.mechanism?.parameters.inodeURL, "file:///proc/thread-self/ns/net");
    assert.match(conn.mechanism!.parameters.name!, /^icmp-respo-[0-9A-Za-z]{4}$/);
  });

  it("keeps a name the request gives, else uses the option", async () => {
    const given = await endpoint({ interfaceName: "nse-if" }).h.request(
      request({ mechanism: newMechanism(Cls.LOCAL, "KERNEL", { name: "from-fwd" }) }),
      ctx(),
    );
    assert.equal(given.mechanism?.parameters.name, "from-fwd");
    const option = await endpoint({ interfaceName: "nse-if" }).h.request(
      request({ mechanism: newMechanism(Cls.LOCAL, "KERNEL") }),
      ctx(),
    );
    assert.equal(option.mechanism?.parameters.name, "nse-if");
  });

  it("keeps the generated name stable across refreshes", async () => {
    const { h } = endpoint();
    const first = await h.request(request({ mechanism: newMechanism(Cls.LOCAL, "KERNEL") }), ctx());
    const again = await h.request(request({ mechanism: newMechanism(Cls.LOCAL, "KERNEL") }), ctx());
    assert.equal(again.mechanism?.parameters.name, first.mechanism?.parameters.name);
  });

  it("leaves other mechanisms alone", async () => {
    const h = bind(chain(metadataServer(), kernelMechanismServer()));
    const conn = await h.request(request({ mechanism: newMechanism(Cls.LOCAL, "NOOP") }), ctx());
    assert.deepEqual(conn.mechanism?.parameters, {});
  });

  it("needs metadata earlier in the chain", () => {
    assert.throws(
      () => bind(kernelMechanismServer()),
      (e: NsmError) => e.code === Code.FailedPrecondition,
    );
  });
});
