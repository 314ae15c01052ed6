// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DestinationSchema,
  MatchSchema,
  MetadataSchema,
  type NetworkService,
  type NetworkServiceEndpoint,
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { checkRequest } from "../../../testing/elements.js";
import { fakeNseRegistry, fakeNsRegistry } from "../../../testing/fake-registry.js";
import { clientUrlOf, withClientUrl } from "../clienturl/index.js";
import {
  type Candidates,
  candidatesOf,
  discoverServer,
  isSubset,
  matchEndpoint,
  processLabelTemplate,
} from "./index.js";

type Labels = Record<string, string>;

const match = (source: Labels, destinations: Labels[], extra: { fallthrough?: boolean; metadata?: Labels } = {}) =>
  create(MatchSchema, {
    sourceSelector: source,
    routes: destinations.map((d) => create(DestinationSchema, { destinationSelector: d })),
    fallthrough: extra.fallthrough ?? false,
    metadata: extra.metadata ? create(MetadataSchema, { labels: extra.metadata }) : undefined,
  });

const service = (name: string, matches = [] as ReturnType<typeof match>[], payload = "ETHERNET") =>
  create(NetworkServiceSchema, { name, payload, matches });

const nse = (name: string, ns: string, labels: Labels, more: { expirationTime?: Timestamp } = {}) =>
  create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: [ns],
    networkServiceLabels: { [ns]: create(NetworkServiceLabelsSchema, { labels }) },
    url: `tcp://${name}:5001`,
    ...more,
  });

const names = (list: readonly NetworkServiceEndpoint[]) => list.map((e) => e.name);

// The upstream example NetworkService (deployments-k8s): traffic from the firewall goes to the
// VPN gateway, everything else to the firewall.
const SIC = "secure-intranet-connectivity";
const secureIntranet: NetworkService = service(SIC, [
  match({ app: "firewall" }, [{ app: "vpn-gateway" }]),
  match({}, [{ app: "firewall" }]),
]);
const sicEndpoints = [
  nse("vpn-gateway-nse", SIC, { app: "vpn-gateway" }),
  nse("firewall-nse", SIC, { app: "firewall" }),
];

describe("matchEndpoint", () => {
  it("routes app=firewall to the vpn-gateway and everyone else to the firewall", () => {
    assert.deepEqual(names(matchEndpoint({ app: "firewall" }, secureIntranet, sicEndpoints)), ["vpn-gateway-nse"]);
    assert.deepEqual(names(matchEndpoint({ app: "nsc" }, secureIntranet, sicEndpoints)), ["firewall-nse"]);
    assert.deepEqual(names(matchEndpoint({}, secureIntranet, sicEndpoints)), ["firewall-nse"]);
  });

  it("returns every endpoint when the service has no matches", () => {
    assert.deepEqual(names(matchEndpoint({ a: "b" }, service(SIC), sicEndpoints)), ["vpn-gateway-nse", "firewall-nse"]);
  });

  it("returns none when no match applies, and an empty result without fallthrough", () => {
    const ns = service(SIC, [match({ app: "x" }, [{ app: "firewall" }])]);
    assert.deepEqual(matchEndpoint({ app: "y" }, ns, sicEndpoints), []);
    const strict = service(SIC, [match({}, [{ app: "nothing" }]), match({}, [{ app: "firewall" }])]);
    assert.deepEqual(matchEndpoint({}, strict, sicEndpoints), []);
  });

  it("falls through to the next match when a fallthrough match selects nothing", () => {
    const ns = service(SIC, [match({}, [{ app: "nothing" }], { fallthrough: true }), match({}, [{ app: "firewall" }])]);
    assert.deepEqual(names(matchEndpoint({}, ns, sicEndpoints)), ["firewall-nse"]);
  });

  it("returns every endpoint for a metadata-only match", () => {
    const ns = service(SIC, [match({}, [], { metadata: { p2p: "true" } })]);
    assert.deepEqual(names(matchEndpoint({}, ns, sicEndpoints)), ["vpn-gateway-nse", "firewall-nse"]);
  });

  it("evaluates {{.key}} templates with the request labels (scale from zero)", () => {
    const ns = service("ns-1", [
      match({}, [{ app: "nse-vl3", nodeName: "{{.nodeName}}" }], { fallthrough: true }),
      match({ capability: "vl3" }, [{ capability: "vl3" }], { fallthrough: true }),
      match({}, [{ app: "autoscaler" }], { fallthrough: true }),
    ]);
    const a = nse("nse-A", "ns-1", { capability: "vl3", nodeName: "node-1", app: "nse-vl3" });
    const b = nse("nse-B", "ns-1", { capability: "vl3", nodeName: "node-2", app: "nse-vl3" });
    const c = nse("nse-C", "ns-1", { app: "autoscaler" });
    assert.deepEqual(names(matchEndpoint({ nodeName: "node-1" }, ns, [a, b, c])), ["nse-A"]);
    assert.deepEqual(names(matchEndpoint({ nodeName: "node-2" }, ns, [a, b, c])), ["nse-B"]);
    assert.deepEqual(names(matchEndpoint({ nodeName: "node-3" }, ns, [a, b, c])), ["nse-C"]);
    assert.deepEqual(names(matchEndpoint({ nodeName: "node-3", capability: "vl3" }, ns, [a, b, c])), [
      "nse-A",
      "nse-B",
    ]);
    assert.deepEqual(names(matchEndpoint({ nodeName: "node-3" }, ns, [a, b])), []);
  });

  it("lists an endpoint once per route it matches", () => {
    const ns = service(SIC, [match({}, [{ app: "firewall" }, {}])]);
    assert.deepEqual(names(matchEndpoint({}, ns, sicEndpoints)), ["firewall-nse", "vpn-gateway-nse", "firewall-nse"]);
  });
});

describe("processLabelTemplate / isSubset", () => {
  it("substitutes {{.key}} and prints <no value> for missing keys, as Go does", () => {
    assert.equal(processLabelTemplate("{{.app}}", { app: "web" }), "web");
    assert.equal(processLabelTemplate("{{ .app }}-{{.tier}}", { app: "web", tier: "1" }), "web-1");
    assert.equal(processLabelTemplate("{{.app}}", {}), "<no value>");
    assert.equal(processLabelTemplate("plain", {}), "plain");
  });
  it("uses unsupported or broken templates literally", () => {
    assert.equal(processLabelTemplate('{{index . "a"}}', { a: "x" }), '{{index . "a"}}');
    assert.equal(processLabelTemplate("{{.app", { app: "x" }), "{{.app");
  });
  it("checks selectors literally first, then as templates", () => {
    assert.equal(isSubset({ app: "x", b: "1" }, { app: "x" }, {}), true);
    assert.equal(isSubset({ app: "x" }, { app: "{{.app}}" }, { app: "x" }), true);
    assert.equal(isSubset({ app: "{{.app}}" }, { app: "{{.app}}" }, {}), true);
    assert.equal(isSubset({ app: "x" }, { app: "y" }, {}), false);
    assert.equal(isSubset({}, { app: "x" }, {}), false);
    assert.equal(isSubset({ a: "1" }, {}, {}), true);
  });
});

const request = (conn: { networkService?: string; labels?: Labels; networkServiceEndpointName?: string } = {}) =>
  create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "c1", ...conn }) });

function harness(services: NetworkService[], endpoints: NetworkServiceEndpoint[], nowMs?: () => number) {
  const nsRegistry = fakeNsRegistry(services);
  const nseRegistry = fakeNseRegistry(endpoints);
  const seen: { candidates?: Candidates; url?: string; payload?: string; nseName?: string } = {};
  const handler = bind(
    chain(
      discoverServer({ nsRegistry, nseRegistry, nowMs }),
      checkRequest((req, ctx) => {
        seen.candidates = candidatesOf(ctx);
        seen.url = clientUrlOf(ctx);
        seen.payload = req.connection?.payload;
      }),
    ),
  );
  return { handler, seen, nsRegistry, nseRegistry };
}

describe("discoverServer", () => {
  it("puts the matching candidates in the context and copies the service payload", async () => {
    const { handler, seen } = harness([secureIntranet], sicEndpoints);
    const conn = await handler.request(
      request({ networkService: SIC, labels: { app: "firewall" } }),
      CallContext.create(),
    );
    assert.deepEqual(names(seen.candidates!.endpoints), ["vpn-gateway-nse"]);
    assert.equal(seen.candidates!.networkService.name, SIC);
    assert.equal(seen.payload, "ETHERNET");
    assert.equal(conn.payload, "ETHERNET");
    assert.equal(seen.url, undefined);
  });

  it("is NotFound with a clear message for an unknown network service", async () => {
    const { handler } = harness([secureIntranet], sicEndpoints);
    await assert.rejects(
      handler.request(request({ networkService: "no-such-service" }), CallContext.create()),
      (e: NsmError) => e.code === Code.NotFound && e.rawMessage === 'network service "no-such-service" is not found',
    );
  });

  it("is NotFound when no endpoint matches", async () => {
    const ns = service(SIC, [match({}, [{ app: "nothing" }])]);
    const { handler } = harness([ns], sicEndpoints);
    await assert.rejects(
      handler.request(request({ networkService: SIC }), CallContext.create()),
      (e: NsmError) => e.code === Code.NotFound && e.reason === "no-candidates",
    );
  });

  it("drops expired endpoints", async () => {
    const now = 1_000_000;
    const endpoints = [
      nse("old", SIC, { app: "firewall" }, { expirationTime: timestampFromMs(now - 1) }),
      nse("fresh", SIC, { app: "firewall" }, { expirationTime: timestampFromMs(now + 60_000) }),
      nse("forever", SIC, { app: "firewall" }),
    ];
    const { handler, seen } = harness([service(SIC)], endpoints, () => now);
    await handler.request(request({ networkService: SIC }), CallContext.create());
    assert.deepEqual(names(seen.candidates!.endpoints), ["fresh", "forever"]);
  });

  it("sends a request that names an endpoint to that endpoint's URL", async () => {
    const { handler, seen } = harness([secureIntranet], sicEndpoints);
    await handler.request(
      request({ networkService: SIC, networkServiceEndpointName: "firewall-nse" }),
      CallContext.create(),
    );
    assert.equal(seen.url, "tcp://firewall-nse:5001");
    assert.equal(seen.candidates, undefined);
  });

  it("is NotFound for a named endpoint that is not registered", async () => {
    const { handler } = harness([secureIntranet], sicEndpoints);
    await assert.rejects(
      handler.request(request({ networkService: SIC, networkServiceEndpointName: "gone" }), CallContext.create()),
      (e: NsmError) => e.code === Code.NotFound && e.rawMessage === 'network service endpoint "gone" is not found',
    );
  });

  it("does nothing when a client URL is already chosen", async () => {
    const { handler, seen, nsRegistry } = harness([], []);
    await handler.request(request({ networkService: SIC }), withClientUrl(CallContext.create(), "unix:///x.sock"));
    assert.equal(seen.url, "unix:///x.sock");
    assert.equal(nsRegistry.queries.length, 0);
  });

  it("keeps the registry's error code", async () => {
    const { handler, nsRegistry } = harness([secureIntranet], sicEndpoints);
    nsRegistry.failWith = new NsmError("registry down", Code.Unavailable);
    await assert.rejects(
      handler.request(request({ networkService: SIC }), CallContext.create()),
      (e: NsmError) => e.code === Code.Unavailable && e.message.includes("registry down"),
    );
  });

  it("closes towards the named endpoint's URL, or without one when it is gone", async () => {
    const urls: (string | undefined)[] = [];
    const nseRegistry = fakeNseRegistry(sicEndpoints);
    const handler = bind(
      chain(discoverServer({ nsRegistry: fakeNsRegistry(), nseRegistry }), {
        name: "spy",
        request: (req, ctx, next) => next.request(req, ctx),
        close: (conn, ctx, next) => {
          urls.push(clientUrlOf(ctx));
          return next.close(conn, ctx);
        },
      }),
    );
    await handler.close(
      create(ConnectionSchema, { id: "c1", networkServiceEndpointName: "firewall-nse" }),
      CallContext.create(),
    );
    await handler.close(
      create(ConnectionSchema, { id: "c2", networkServiceEndpointName: "gone" }),
      CallContext.create(),
    );
    assert.deepEqual(urls, ["tcp://firewall-nse:5001", undefined]);
  });

  it("does not mutate the caller's request", async () => {
    const { handler } = harness([secureIntranet], sicEndpoints);
    const req = request({ networkService: SIC });
    await handler.request(req, CallContext.create());
    assert.equal(req.connection!.payload, "");
  });
});
