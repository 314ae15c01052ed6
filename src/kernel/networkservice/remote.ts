// SPDX-License-Identifier: Apache-2.0
/**
 * kernelRemoteXconnect: the pod's end of a cross-node connection (VXLAN or WireGuard).
 *
 * Purpose: on the NSC-side forwarder the client's KERNEL mechanism meets a tunnel mechanism
 * towards the remote node; on the NSE-side forwarder a tunnel mechanism from the remote node
 * meets the endpoint's KERNEL mechanism. Either way this forwarder gives its pod one interface
 * named as the KERNEL mechanism's `name`, tagged `nsm:client:<id>` / `nsm:endpoint:<id>`
 * (`tag.ts`), with `context.MTU` (or the mechanism's `MTU`, whichever is lower), up, and the
 * pod's side of the IP context (client: src addresses and routes, as the local cross-connect;
 * endpoint: dst). See `remote-dataplane.ts` for how VXLAN devices and wireguard-go TUNs get there.
 *
 * Chain placement: `kernelRemoteXconnectServer` in `createForwarder({ additional })` (after the
 * mechanism selection, with `metadata` earlier); `kernelRemoteXconnectClient` in
 * `additionalClient`, below mechanismtranslation, so that it sees the next hop's mechanism. The
 * server acts after `next` returns. `kernelForwarderElements()` puts them in place.
 *
 * Per-connection state: client side: the next hop's mechanism. Server side: the plan last
 * programmed and the wireguard-go process. A refresh with the same plan makes no kernel call; a
 * changed IP context or MTU is applied as a diff on the same interface, and so is a changed
 * WireGuard peer (key, address, port: re-configured over UAPI, e.g. after the peer forwarder
 * restarted with a new key); a changed VXLAN tunnel (VNI, ends, port), our WireGuard port, pod
 * netns or name, or a wireguard-go that died, rebuilds it. Close deletes it (stops wireguard-go
 * by PID) and forgets. A first Request whose interface is already there, tagged by this
 * forwarder for this connection (an earlier life, killed), re-adopts it (see
 * `remote-dataplane.ts`).
 *
 * Options: {@link KernelRemoteXconnectServerOptions}.
 *
 * Failure behaviour: as the local cross-connect. A bad `inodeURL`/name or tunnel parameter is
 * InvalidArgument; VXLAN ports that differ between the ends are FailedPrecondition; a foreign
 * interface with the requested name is AlreadyExists (left alone). A first Request that fails
 * in the kernel leaves nothing behind and closes downstream; a failed refresh keeps the
 * connection and re-applies everything on the next one. A re-adopted interface whose
 * re-programming fails is removed (with its wireguard-go), as a new one would be. `dispose()`
 * stops the wireguard-go processes (started or adopted); VXLAN devices stay for a restarted
 * forwarder to re-adopt (by tag).
 */
import { type Connection, clone, type Mechanism, MechanismSchema } from "../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../sdk/core/chain.js";
import type { CallContext } from "../../sdk/core/context.js";
import { Code, invalidArgument, NsmError } from "../../sdk/core/errors.js";
import type { KernelApi, NetnsPath } from "../api.js";
import { unionIpPlans } from "./ip-plan.js";
import { followNetns } from "./netns-url.js";
import { DEFAULT_CLEANUP_TIMEOUT_MS, type NetnsCheck, requireNetnsCheck } from "./options.js";
import type { Reconciler } from "./reconcile.js";
import { RemoteDataPlane, type WireguardDataPlane } from "./remote-dataplane.js";
import {
  loadAndDeleteRemoteState,
  loadOutgoingMechanism,
  loadRemoteState,
  type RemotePlan,
  type RemoteState,
  storeOutgoingMechanism,
  storeRemoteState,
} from "./remote-metadata.js";
import { isKernel, locatePod, remotePlan, remoteShape } from "./remote-plan.js";
import { checkTagOwner, DEFAULT_TAG_OWNER } from "./tag.js";
import type { WireguardDevice, WireguardRunner } from "./wireguard-go.js";

/** Keepalive of our WireGuard peers (also what starts the handshake at once). */
export const DEFAULT_PERSISTENT_KEEPALIVE_S = 25;

/** How long a new wireguard-go gets to bind its UDP port. */
export const DEFAULT_WIREGUARD_LISTEN_TIMEOUT_MS = 5000;

export interface RemoteWireguardOptions {
  /** Starts and stops wireguard-go (`createWireguardGoRunner()`), or a fake in tests. */
  runner: WireguardRunner;
  /** This forwarder's raw 32-byte X25519 private key. */
  privateKey: Buffer;
  /** @default 25 */
  persistentKeepaliveS?: number;
  /** @default 5000 */
  listenTimeoutMs?: number;
}

export interface KernelRemoteXconnectServerOptions {
  /** The kernel to program. */
  kernel: KernelApi;
  /**
   * The netns whose sockets carry the tunnels: the node's. VXLAN devices are created from it,
   * wireguard-go must run in it (see `WireguardGoOptions.launcher`). @default this process's netns
   */
  tunnelNetns?: NetnsPath;
  /** The WireGuard data plane. @default none: a WIREGUARD connection fails with FailedPrecondition */
  wireguard?: RemoteWireguardOptions;
  /** See {@link NetnsCheck}. Required: `insecureNetnsOwnership().check` is the explicit way to turn it off. */
  checkNetns: NetnsCheck;
  /** Deadline for closing downstream after a failed first Request, in ms. @default 5000 */
  cleanupTimeoutMs?: number;
  /** The forwarder's name, written into every tag (`tag.ts`). @default "forwarder" */
  owner?: string;
  /** Told about every connection Requested, so that its links of an earlier life are not swept. @default none */
  reconciler?: Reconciler;
}

/** The server element, with `dispose()` to stop the wireguard-go processes it started. */
export interface KernelRemoteXconnectServer extends NetworkServiceElement {
  /** Stops every wireguard-go this element started or adopted (by PID). VXLAN devices stay: a restarted forwarder re-adopts them. */
  dispose(): Promise<void>;
}

const samePlan = (a: RemotePlan, b: RemotePlan) => JSON.stringify(a) === JSON.stringify(b);

/** What a WireGuard interface keeps when only its peer changes (the peer's half is re-configured over UAPI). */
const ourTunnelEnd = (p: RemotePlan) =>
  p.tunnel.type === "WIREGUARD"
    ? JSON.stringify({ type: p.tunnel.type, local: p.tunnel.local, listenPort: p.tunnel.listenPort })
    : JSON.stringify(p.tunnel);

const sameLinks = (a: RemotePlan, b: RemotePlan) =>
  a.pod.netns === b.pod.netns &&
  a.pod.name === b.pod.name &&
  a.pod.tag === b.pod.tag &&
  ourTunnelEnd(a) === ourTunnelEnd(b);

const unionOf = (a: RemotePlan, b: RemotePlan): RemotePlan => ({
  ...b,
  pod: { ...b.pod, ...unionIpPlans(a.pod, b.pod) },
});

/**
 * Builds the pod's end of a remote connection once `next` has returned and both sides'
 * mechanisms are known: on the NSC-side forwarder (server side KERNEL, client side VXLAN or
 * WIREGUARD) in the client's netns with the client's addresses; on the NSE-side forwarder
 * (server side VXLAN or WIREGUARD, client side KERNEL) in the endpoint's netns with the
 * endpoint's. Anything else (local, NOOP…) is left to other elements. See `index.ts`.
 */
export function kernelRemoteXconnectServer(
  options: Readonly<KernelRemoteXconnectServerOptions>,
): KernelRemoteXconnectServer {
  if (!options?.kernel) throw invalidArgument("kernelRemoteXconnectServer: the kernel option is required");
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
  if (!Number.isInteger(cleanupTimeoutMs) || cleanupTimeoutMs <= 0) {
    throw invalidArgument(
      `kernelRemoteXconnectServer: cleanupTimeoutMs must be a positive integer, got ${cleanupTimeoutMs}`,
    );
  }
  let wireguard: WireguardDataPlane | undefined;
  if (options.wireguard) {
    const w = options.wireguard;
    if (!Buffer.isBuffer(w.privateKey) || w.privateKey.length !== 32) {
      throw invalidArgument("kernelRemoteXconnectServer: wireguard.privateKey must be 32 raw bytes");
    }
    wireguard = {
      runner: w.runner,
      privateKey: w.privateKey,
      persistentKeepaliveS: w.persistentKeepaliveS ?? DEFAULT_PERSISTENT_KEEPALIVE_S,
      listenTimeoutMs: w.listenTimeoutMs ?? DEFAULT_WIREGUARD_LISTEN_TIMEOUT_MS,
    };
  }
  const checkNetns = requireNetnsCheck(options.checkNetns, "kernelRemoteXconnectServer");
  const owner = options.owner ?? DEFAULT_TAG_OWNER;
  checkTagOwner(owner);
  const dp = new RemoteDataPlane(options.kernel, options.tunnelNetns, wireguard);
  const devices = new Set<WireguardDevice>();

  const store = (ctx: CallContext, state: RemoteState) => {
    storeRemoteState(ctx, state);
    if (state.device) devices.add(state.device);
  };
  const destroy = async (plan: RemotePlan, device: WireguardDevice | undefined, ctx: CallContext) => {
    try {
      await dp.destroy(plan, device, ctx.log);
    } finally {
      if (device && !device.running) devices.delete(device);
    }
  };

  /** Brings the kernel from the recorded state to what `conn` asks for; touches nothing when they agree. */
  async function reconcile(
    serverMechanism: Mechanism | undefined,
    conn: Connection,
    ctx: CallContext,
    previous: RemoteState | undefined,
  ): Promise<void> {
    const old = previous?.programmed;
    const device = previous?.device;
    const shape = remoteShape(serverMechanism, loadOutgoingMechanism(ctx));
    if (!shape) {
      if (old) await destroy(old, device, ctx);
      store(ctx, { programmed: undefined, device: undefined, stale: false });
      return;
    }
    const plan = remotePlan(conn, shape, owner);
    // A wireguard-go that died takes its TUN with it: rebuild.
    const alive = plan.tunnel.type !== "WIREGUARD" || device?.running === true;
    if (old) followNetns(old.pod, plan.pod);
    if (old && alive && !previous?.stale && samePlan(old, plan)) return;

    // HOOK(netns-ownership): nothing in the kernel has changed yet.
    await checkNetns({ side: shape.pod.side, url: shape.pod.url, netns: shape.pod.netns, connection: conn }, ctx);

    if (old && alive && sameLinks(old, plan)) {
      try {
        await dp.update(old, plan, previous?.stale ?? false, device);
      } catch (err) {
        store(ctx, { programmed: unionOf(old, plan), device, stale: true });
        throw err;
      }
      store(ctx, { programmed: plan, device, stale: false });
      ctx.log.debug({ connId: conn.id }, "remote cross-connect updated");
      return;
    }
    if (old) {
      await destroy(old, device, ctx);
      store(ctx, { programmed: undefined, device: undefined, stale: false });
    } else {
      // No record: the first Request of this life. The interface may be there from an earlier one.
      await options.reconciler?.claim(conn.id);
      const adopted = await dp.adopt(plan, ctx.log);
      if (adopted) {
        store(ctx, { programmed: plan, device: adopted.device, stale: false });
        ctx.log.info(
          {
            connId: conn.id,
            tunnel: plan.tunnel.type,
            pod: `${plan.pod.netns}:${plan.pod.name}`,
            ifindex: adopted.index,
            ...(adopted.device ? { wireguardGo: adopted.device.pid, wireguardName: adopted.device.name } : {}),
          },
          "remote cross-connect of an earlier life re-adopted",
        );
        return;
      }
    }
    const created = await dp.create(plan, ctx.log);
    store(ctx, { programmed: plan, device: created, stale: false });
    ctx.log.debug(
      {
        connId: conn.id,
        tunnel: plan.tunnel.type,
        pod: `${plan.pod.netns}:${plan.pod.name}`,
        peer: plan.tunnel.remote,
        ...(plan.tunnel.type === "VXLAN" ? { vni: plan.tunnel.vni } : { wireguardGo: created?.pid }),
      },
      "remote cross-connect created",
    );
  }

  return {
    name: "kernelRemoteXconnectServer",
    requires: ["metadata"],
    async request(req, ctx, next) {
      if (!req.connection) throw invalidArgument("request has no connection");
      const serverMechanism = req.connection.mechanism;
      // Fail before opening anything downstream when the client's netns URL is unusable.
      if (isKernel(serverMechanism)) locatePod("client", serverMechanism);
      const previous = loadRemoteState(ctx);
      const conn = await next.request(req, ctx);
      try {
        await reconcile(conn.mechanism ?? serverMechanism, conn, ctx, previous);
        return conn;
      } catch (err) {
        const e = NsmError.from(err, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: e.message }, "remote cross-connect failed");
        // A first Request must leave nothing open; a failed refresh leaves the connection to heal.
        if (previous === undefined)
          await closeQuietly(next, conn, ctx, "a remote cross-connect failure", cleanupTimeoutMs);
        throw e;
      }
    },
    async close(conn, ctx, next) {
      const state = loadAndDeleteRemoteState(ctx);
      const programmed = state?.programmed;
      // Deleting a VXLAN device waits for an RCU grace period (~35 ms here): do it while the
      // Close travels on, so that the two nodes' deletions overlap instead of adding up.
      const [mine, downstream] = await Promise.allSettled([
        programmed ? destroy(programmed, state.device, ctx) : Promise.resolve(),
        next.close(conn, ctx),
      ]);
      if (downstream.status === "rejected") throw downstream.reason;
      if (mine.status === "rejected") {
        const failure = NsmError.from(mine.reason, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: failure.message }, "cannot delete the remote cross-connect");
        throw failure;
      }
    },
    async dispose() {
      const all = [...devices];
      devices.clear();
      if (wireguard) await Promise.all(all.map((d) => wireguard.runner.stop(d)));
    },
  };
}

/**
 * Records the mechanism the next hop answered with (a tunnel on the NSC-side forwarder, the
 * endpoint's KERNEL on the NSE-side one) for `kernelRemoteXconnectServer`; forgets it on Close.
 * Goes in the forwarder's client chain (`additionalClient`).
 */
export function kernelRemoteXconnectClient(): NetworkServiceElement {
  return {
    name: "kernelRemoteXconnectClient",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      storeOutgoingMechanism(ctx, conn.mechanism ? clone(MechanismSchema, conn.mechanism) : undefined);
      return conn;
    },
    async close(conn, ctx, next) {
      storeOutgoingMechanism(ctx, undefined);
      await next.close(conn, ctx);
    },
  };
}
