// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { NetworkServiceEndpoint } from "../../src/api/gen/registry_pb.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";
import type { NseRegistry } from "../../src/sdk/registry/api.js";
import { collectRecords, nseKind } from "../../src/sdk/registry/core/index.js";
import { deadlineContext, nscRequest } from "../../src/sdk/testing/requests.js";
import { createSandbox, type Sandbox } from "../../src/sdk/testing/sandbox.js";

const ctx = (ms = 3000) => deadlineContext(ms);
const request = (service: string, id: string, endpoint = "") => nscRequest(service, id, { endpoint });

/** The records among `names` that `registry` returns now (none while it cannot answer). */
async function records(registry: NseRegistry, names: string[]): Promise<Map<string, NetworkServiceEndpoint>> {
  try {
    const found = await collectRecords(nseKind, registry, nseKind.query(undefined, false), ctx(500));
    return new Map(found.filter((r) => names.includes(r.name)).map((r) => [r.name, r]));
  } catch {
    return new Map();
  }
}

/** Polls `check` every 10 ms; returns how long it took to hold, failing after `timeoutMs`. */
async function within(timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

/** A Request that fails must fail fast and say why: the endpoint is not (yet) known, or a hop is down. */
function assertClear(err: unknown, tookMs: number, what: string): NsmError {
  const e = NsmError.from(err);
  assert.ok(e.code === Code.NotFound || e.code === Code.Unavailable, `${what}: ${e.message} (code ${e.code})`);
  assert.ok(tookMs < 1000, `${what}: failed after ${tookMs} ms`);
  return e;
}

async function failsClearly(attempt: () => Promise<unknown>, what: string): Promise<NsmError> {
  const t0 = Date.now();
  try {
    await attempt();
  } catch (err) {
    return assertClear(err, Date.now() - t0, what);
  }
  return assert.fail(`${what}: the Request succeeded`);
}

describe("sandbox: registry heal", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(async () => {
    await sb.close();
  });

  it("a restarted registry (memory lost) has the endpoint and forwarder back within 1 s, without refresh", async (t) => {
    await sb.registerNetworkService({ name: "rh-registry", payload: "ETHERNET" });
    await sb.addEndpoint({ name: "nse-r", networkServices: ["rh-registry"], cidrPrefixes: ["10.10.0.0/24"] });
    const registry = sb.clusterRegistry().nse;
    const names = ["nse-r", "forwarder-0"];
    assert.equal((await records(registry, names)).size, 2);

    const t0 = Date.now();
    await sb.registry.restart();
    const took = await within(1000, async () => (await records(registry, names)).size === 2);
    const back = await records(registry, names);
    for (const name of names) {
      // A registration the new registry took (refresh would only come at 40 s).
      const initial = timestampMs(back.get(name)!.initialRegistrationTime!);
      assert.ok(initial >= t0, `${name} was registered again after the restart`);
    }
    assert.equal(back.get("nse-r")!.url, sb.nodes[0]!.nsmgr.url, "published through nsmgr");
    t.diagnostic(`registry restart: records back in ${took} ms`);

    // The network service lived only in the old registry; once registered again, requests work.
    await sb.registerNetworkService({ name: "rh-registry", payload: "ETHERNET" });
    const client = sb.client({ name: "rh-a" });
    const conn = await client.request(request("rh-registry", "rh-a-0"), ctx());
    assert.equal(conn.networkServiceEndpointName, "nse-r");
    await client.close(conn, ctx());
  });

  it("after an nsmgr restart the endpoint and forwarder register with the new nsmgr at once; Requests work again", async (t) => {
    await sb.registerNetworkService({ name: "rh-nsmgr", payload: "ETHERNET" });
    const nse = await sb.addEndpoint({ name: "nse-m", networkServices: ["rh-nsmgr"], cidrPrefixes: ["10.11.0.0/24"] });
    const nsmgr = sb.nodes[0]!.nsmgr;
    const forwarder = sb.nodes[0]!.forwarders[0]!;
    const client = sb.client({ name: "rh-b" });
    await client.close(await client.request(request("rh-nsmgr", "rh-b-0"), ctx()), ctx());

    // nsmgr answers for local endpoints only when they registered through it (localbypass):
    // the real socket URLs show the new nsmgr has them.
    const viaNsmgr = sb.registriesAt(nsmgr.url).nse;
    const registeredWithNsmgr = async () => {
      const found = await records(viaNsmgr, ["nse-m", "forwarder-0"]);
      return found.get("nse-m")?.url === nse.url && found.get("forwarder-0")?.url === forwarder.url;
    };
    await nsmgr.restart();
    const t0 = Date.now();
    const registered = within(1000, registeredWithNsmgr);
    // Until then, every Request fails at once with a clear status, and the client may simply retry.
    let attempts = 0;
    for (;;) {
      attempts++;
      const tA = Date.now();
      try {
        const conn = await client.request(request("rh-nsmgr", "rh-b-1"), ctx());
        assert.equal(conn.networkServiceEndpointName, "nse-m");
        await client.close(conn, ctx());
        break;
      } catch (err) {
        assertClear(err, Date.now() - tA, `attempt ${attempts}`);
        assert.ok(Date.now() - t0 < 2000, `no working Request within 2 s: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const requestMs = Date.now() - t0;
    const took = await registered;
    t.diagnostic(
      `nsmgr restart: registered again in ${took} ms, a Request works after ${requestMs} ms (${attempts} attempts)`,
    );
  });
});

describe("sandbox: a restarted nsmgr and an endpoint that has not registered again", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(async () => {
    await sb.close();
  });

  it("fails Requests for it with NotFound at once instead of dialling itself, until it registers", async () => {
    await sb.registerNetworkService({ name: "rh-stale", payload: "ETHERNET" });
    // This endpoint does not heal its registration: after the restart the cluster registry
    // still has its record with the nsmgr's own URL, which the new nsmgr does not know.
    const nse = await sb.addEndpoint({
      name: "nse-s",
      networkServices: ["rh-stale"],
      cidrPrefixes: ["10.12.0.0/24"],
      registryHeal: false,
    });
    const nsmgr = sb.nodes[0]!.nsmgr;
    const client = sb.client({ name: "rh-c" });
    await client.close(await client.request(request("rh-stale", "rh-c-0"), ctx()), ctx());

    await nsmgr.restart();
    const viaNsmgr = sb.registriesAt(nsmgr.url).nse;
    await within(1000, async () => (await records(viaNsmgr, ["forwarder-0"])).size === 1);
    const stale = await records(sb.clusterRegistry().nse, ["nse-s"]);
    assert.equal(stale.get("nse-s")?.url, nsmgr.url, "the registry still points at the nsmgr");

    const bySelection = await failsClearly(() => client.request(request("rh-stale", "rh-c-1"), ctx()), "selection");
    assert.equal(bySelection.code, Code.NotFound);
    const byName = await failsClearly(() => client.request(request("rh-stale", "rh-c-2", "nse-s"), ctx()), "by name");
    assert.equal(byName.code, Code.NotFound);

    // Once it registers again (here: it restarts), Requests work.
    await nse.restart();
    const conn = await client.request(request("rh-stale", "rh-c-3"), ctx());
    assert.equal(conn.networkServiceEndpointName, "nse-s");
    await client.close(conn, ctx());
  });
});
