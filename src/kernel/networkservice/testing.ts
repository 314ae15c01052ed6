// SPDX-License-Identifier: Apache-2.0
/**
 * Test support shared by the kernel forwarder tests (fake kernel beside the code, real kernel in
 * test/kernel): a forwarder chain built from `kernelForwarderElements` the way `createForwarder`
 * plugs them in, a hop to another node's forwarder, a point-to-point fake endpoint, the fake
 * kernel instrumented or with link deletions held open, a fake wireguard-go runner, `route()`,
 * and upstream's policy-based-routing example config (`UPSTREAM_PBR_CONFIG`). Not exported from the package
 * index. (The real-kernel helpers, netns, `ip -j`, skip reasons, are in test/helpers/netns.ts.)
 */

import {
  Cls,
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  IPContextSchema,
  MechanismType,
  newMechanism,
  type Route,
  RouteSchema,
} from "../../api/index.js";
import { bind, chain, type NetworkServiceElement, type NetworkServiceHandler } from "../../sdk/core/chain.js";
import { CallContext } from "../../sdk/core/context.js";
import { clientUrlClient } from "../../sdk/networkservice/common/clienturl/index.js";
import { connectServer } from "../../sdk/networkservice/common/connect/index.js";
import { filterMechanismsClient } from "../../sdk/networkservice/common/filtermechanisms/index.js";
import { mechanismsClient, mechanismsServer } from "../../sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../../sdk/networkservice/common/metadata/index.js";
import type { KernelApi, LinkRef, NetnsPath } from "../api.js";
import type { FakeKernel } from "../fake.js";
import type { KernelForwarderElements } from "./forwarder/elements.js";
import type { WireguardDevice, WireguardRunner, WireguardTunnelConfig } from "./wireguard/wireguard-go.js";
import { insecureNetnsOwnership } from "./xconnect/ownership.js";

/**
 * The fake-kernel tests name namespaces by arbitrary paths, which no ownership check accepts:
 * they turn it off explicitly (the ownership tests are in test/kernel/ownership.test.ts).
 */
export const uncheckedNetns = insecureNetnsOwnership();

/**
 * The other node's forwarder, reached through its nsmgr: it gives the connection its own id
 * (`<prefix><id>`, its path segment), and answers with ours.
 */
export function hop(target: () => NetworkServiceHandler, prefix = "f2-"): NetworkServiceElement {
  const remoteId = (id: string) => `${prefix}${id}`;
  const ctx = () => CallContext.create();
  return {
    name: "hop",
    async request(req) {
      const connection = clone(ConnectionSchema, req.connection!);
      connection.id = remoteId(connection.id);
      const back = clone(ConnectionSchema, await target().request({ ...req, connection }, ctx()));
      back.id = req.connection!.id;
      return back;
    },
    async close(conn) {
      const c = clone(ConnectionSchema, conn);
      c.id = remoteId(c.id);
      await target().close(c, ctx());
    },
  };
}

/** A forwarder's server chain with its client towards `clientUrl`, ending in `downstream`. */
export function forwarderChain(
  els: KernelForwarderElements,
  clientUrl: string,
  downstream: NetworkServiceElement,
): NetworkServiceHandler {
  return bind(
    chain(
      metadataServer(),
      mechanismsServer(els.serverMechanisms),
      ...els.additional,
      connectServer(
        chain(
          metadataClient(),
          clientUrlClient(clientUrl),
          mechanismTranslationClient(),
          mechanismsClient(els.clientMechanisms),
          ...els.additionalClient,
          filterMechanismsClient(),
          downstream,
        ),
      ),
    ),
  );
}

/** A route of an IP context. */
export const route = (prefix: string, nextHop = ""): Route => create(RouteSchema, { prefix, nextHop });

/** A fake endpoint and what it saw. */
export interface FakeEndpoint {
  element: NetworkServiceElement;
  requests: number;
  closes: number;
  /** Extra `src_routes` prefixes handed to the client. */
  extraSrcRoutes: string[];
  /** Makes Requests fail. */
  failure: Error | undefined;
}

export interface FakeEndpointOptions {
  /**
   * The endpoint's interface name: `"offered"`, the name of the KERNEL mechanism the forwarder
   * offered (as `kernelMechanismServer` does), or, given `n`, the name for a connection that has
   * none yet. @default "offered"
   */
  interfaceName?: "offered" | ((n: number, conn: Connection) => string);
}

/**
 * The endpoint: a KERNEL mechanism into `netns` and point-to-point IPAM, 172.16.1.(100+2n)/32 ↔
 * .(101+2n)/32 for the connection whose id ends in n+1 (n < 50).
 */
export function p2pEndpoint(netns: string, options: FakeEndpointOptions = {}): FakeEndpoint {
  const naming = options.interfaceName ?? "offered";
  const nameOf = (conn: Connection, offered: string | undefined, n: number): string => {
    if (naming !== "offered") return conn.mechanism?.parameters.name ?? naming(n, conn);
    if (!offered) throw new Error("the forwarder offered no interface name");
    return offered;
  };
  const ep: FakeEndpoint = {
    requests: 0,
    closes: 0,
    extraSrcRoutes: [],
    failure: undefined,
    element: {
      name: "p2pEndpoint",
      async request(req) {
        ep.requests++;
        if (ep.failure) throw ep.failure;
        const conn = clone(ConnectionSchema, req.connection!);
        const isKernel = (m: { type: string } | undefined) => m?.type === MechanismType.KERNEL;
        const kernel = isKernel(conn.mechanism) ? conn.mechanism : req.mechanismPreferences.find(isKernel);
        if (!kernel) throw new Error(`fake NSE got ${conn.mechanism?.type ?? "no KERNEL mechanism"}`);
        const n = (Number(/(\d+)$/.exec(conn.id)?.[1] ?? "1") - 1) % 50;
        const name = nameOf(conn, kernel.parameters.name, n);
        conn.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${netns}`, name });
        conn.context = create(ConnectionContextSchema, {
          MTU: conn.context?.MTU ?? 0,
          ipContext: create(IPContextSchema, {
            srcIpAddrs: [`172.16.1.${101 + 2 * n}/32`],
            dstIpAddrs: [`172.16.1.${100 + 2 * n}/32`],
            srcRoutes: [route(`172.16.1.${100 + 2 * n}/32`), ...ep.extraSrcRoutes.map((p) => route(p))],
            dstRoutes: [route(`172.16.1.${101 + 2 * n}/32`)],
          }),
        });
        return conn;
      },
      async close() {
        ep.closes++;
      },
    },
  };
  return ep;
}

/** The KernelApi calls that change the kernel. */
const MUTATIONS: ReadonlySet<string> = new Set([
  "createVeth",
  "createVxlan",
  "createBridge",
  "createTun",
  "setLink",
  "deleteLink",
  "replaceAddress",
  "deleteAddress",
  "replaceRoute",
  "deleteRoute",
  "replaceNeighbor",
  "deleteNeighbor",
  "writeSysctl",
]);

/** A kernel call to fail: the error to throw, or undefined to let it run. */
export type FailWhen = (method: string, args: unknown[]) => Error | undefined;

/** The fake kernel behind a proxy that records every call by name and can fail chosen ones. */
export function instrumentKernel(fake: FakeKernel) {
  const calls: string[] = [];
  let fail: FailWhen | undefined;
  const kernel = new Proxy(fake, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        const err = fail?.(String(prop), args);
        if (err) return Promise.reject(err);
        return v.apply(target, args);
      };
    },
  }) as KernelApi;
  return {
    kernel,
    calls,
    /** The calls since `from` that change the kernel. */
    mutations: (from = 0) => calls.slice(from).filter((c) => MUTATIONS.has(c)),
    failWhen(f: FailWhen | undefined) {
      fail = f;
    },
  };
}

type FakeDevice = WireguardDevice & { running: boolean; tag: string | undefined };

/**
 * wireguard-go on the fake machine: a TUN named like the device in the node's netns; processes
 * outlive the forwarder that started them, carry their tag, and are found again by `list()`
 * with the port they were configured with.
 */
export function fakeWireguardRunner(kernel: FakeKernel, netns: string) {
  let pid = 1000 + Math.floor(Math.random() * 1000);
  const configs = new Map<string, WireguardTunnelConfig>();
  const live = new Map<string, FakeDevice>();
  const started: string[] = [];
  const stopped: number[] = [];
  const runner: WireguardRunner = {
    async start(name, tag) {
      await kernel.createTun(netns, { name });
      const d: FakeDevice = { name, pid: pid++, running: true, tag };
      live.set(name, d);
      started.push(name);
      return d;
    },
    async list() {
      return [...live.values()]
        .filter((d) => d.tag !== undefined)
        .map((d) => ({ device: d, tag: d.tag!, listenPort: configs.get(d.name)?.listenPort }));
    },
    async configure(d, config) {
      configs.set(d.name, config);
    },
    async waitListening() {},
    async stop(d) {
      // The real TUN vanishes with the process; here the data plane deletes the tagged leftover.
      if (!d.running) return;
      (d as FakeDevice).running = false;
      live.delete(d.name);
      stopped.push(d.pid);
    },
    async dispose() {
      for (const d of [...live.values()]) await runner.stop(d);
    },
  };
  return { runner, configs, live, started, stopped };
}

/** `runner`, adding every device it starts to `started` (for a last-resort cleanup by PID). */
export function recordingRunner(runner: WireguardRunner, started: WireguardDevice[]): WireguardRunner {
  return {
    async start(name, tag) {
      const d = await runner.start(name, tag);
      started.push(d);
      return d;
    },
    list: runner.list && (() => runner.list!()),
    configure: (d, c) => runner.configure(d, c),
    waitListening: (d, port, ms) => runner.waitListening(d, port, ms),
    stop: (d) => runner.stop(d),
    dispose: () => runner.dispose(),
  };
}

/** A promise the test opens (resolves) or fails (rejects) when it wants. */
export interface Gate {
  promise: Promise<void>;
  open(): void;
  fail(err: Error): void;
}

export function gate(): Gate {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  promise.catch(() => undefined);
  return { promise, open, fail };
}

/**
 * `kernel` with a deleteLink in Linux's two steps, each held until the test opens its gate:
 * the link leaves its netns once `unlist` opens, the call resolves once `ack` opens.
 */
export function slowLinkDeletes(kernel: KernelApi) {
  const gates = { unlist: gate(), ack: gate() };
  const slow = new Proxy(kernel, {
    get(target, prop, receiver) {
      if (prop !== "deleteLink") {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      }
      return async (netns: NetnsPath, link: LinkRef) => {
        await gates.unlist.promise;
        await target.deleteLink(netns, link);
        await gates.ack.promise;
      };
    },
  }) as KernelApi;
  return { kernel: slow, gates };
}

/** Upstream's nse-kernel-pbr ConfigMap (examples/features/policy-based-routing), as YAML. */
export const UPSTREAM_PBR_CONFIG = `
- from: 172.16.2.201/24
  proto: 6
  dstport: 6666
  routes:
    - prefix: 172.16.3.0/24
      nexthop: 172.16.2.200
- from: 172.16.2.201/24
  proto: 6
  srcport: 5555
- proto: 17
  dstport: 6666
- proto: 17
  dstport: 6667-6670
- from: 2004::3/120
  proto: 17
  dstport: 5555
  routes:
    - prefix: 2004::5/120
      nexthop: 2004::6
`;
