// SPDX-License-Identifier: Apache-2.0
/** The server half of the remote cross-connect (see `index.ts`). */
import type { Connection, Mechanism } from "../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../sdk/core/chain.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { Code, invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import { requestConnection } from "../../../sdk/core/request.js";
import type { NetnsPath } from "../../api.js";
import { unionIpPlans } from "../ipcontext/plan.js";
import type { WireguardDevice, WireguardRunner } from "../wireguard/wireguard-go.js";
import { followNetns } from "../xconnect/netns.js";
import { type ResolvedXconnectOptions, resolveXconnectOptions, type XconnectOptions } from "../xconnect/options.js";
import { isKernel, locatePod } from "../xconnect/pod.js";
import { RemoteDataPlane, type WireguardDataPlane } from "./dataplane.js";
import {
  loadAndDeleteRemoteState,
  loadOutgoingMechanism,
  loadRemoteState,
  type RemotePlan,
  type RemoteState,
  storeRemoteState,
} from "./metadata.js";
import { remotePlan, remoteShape } from "./plan.js";

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

/** The options every cross-connect takes (`../xconnect/options.ts`), and the tunnels'. */
export interface KernelRemoteXconnectServerOptions extends XconnectOptions {
  /**
   * The netns whose sockets carry the tunnels: the node's. VXLAN devices are created from it,
   * wireguard-go must run in it (see `WireguardGoOptions.launcher`). @default this process's netns
   */
  tunnelNetns?: NetnsPath;
  /** The WireGuard data plane. @default none: a WIREGUARD connection fails with FailedPrecondition */
  wireguard?: RemoteWireguardOptions;
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

/** The WireGuard data plane of the options, checked (InvalidArgument), defaults filled. */
function wireguardDataPlaneOf(w: RemoteWireguardOptions | undefined): WireguardDataPlane | undefined {
  if (!w) return undefined;
  if (!Buffer.isBuffer(w.privateKey) || w.privateKey.length !== 32) {
    throw invalidArgument("kernelRemoteXconnectServer: wireguard.privateKey must be 32 raw bytes");
  }
  return {
    runner: w.runner,
    privateKey: w.privateKey,
    persistentKeepaliveS: w.persistentKeepaliveS ?? DEFAULT_PERSISTENT_KEEPALIVE_S,
    listenTimeoutMs: w.listenTimeoutMs ?? DEFAULT_WIREGUARD_LISTEN_TIMEOUT_MS,
  };
}

/** One element's remote cross-connects: the per-connection steps, and the wireguard-go processes it holds. */
class RemoteXconnect {
  readonly #devices = new Set<WireguardDevice>();
  readonly #dp: RemoteDataPlane;

  constructor(
    readonly o: ResolvedXconnectOptions,
    tunnelNetns: NetnsPath,
    readonly wireguard: WireguardDataPlane | undefined,
  ) {
    this.#dp = new RemoteDataPlane(o.kernel, tunnelNetns, wireguard, o.deletions);
  }

  #store(ctx: CallContext, state: RemoteState): void {
    storeRemoteState(ctx, state);
    if (state.device) this.#devices.add(state.device);
  }

  async destroy(plan: RemotePlan, device: WireguardDevice | undefined, ctx: CallContext): Promise<void> {
    try {
      await this.#dp.destroy(plan, device, ctx.log);
    } finally {
      if (device && !device.running) this.#devices.delete(device);
    }
  }

  /** Brings the kernel from the recorded state to what `conn` asks for; touches nothing when they agree. */
  async reconcile(
    serverMechanism: Mechanism | undefined,
    conn: Connection,
    ctx: CallContext,
    previous: RemoteState | undefined,
  ): Promise<void> {
    const old = previous?.programmed;
    const device = previous?.device;
    const shape = remoteShape(serverMechanism, loadOutgoingMechanism(ctx));
    if (!shape) {
      if (old) await this.destroy(old, device, ctx);
      this.#store(ctx, { programmed: undefined, device: undefined, stale: false });
      return;
    }
    const plan = remotePlan(conn, shape, this.o.owner);
    // A wireguard-go that died takes its TUN with it: rebuild.
    const alive = plan.tunnel.type !== "WIREGUARD" || device?.running === true;
    if (old) followNetns(old.pod, plan.pod);
    if (old && alive && !previous?.stale && samePlan(old, plan)) return;

    // The netns-ownership check: nothing in the kernel has changed yet.
    await this.o.checkNetns(
      { side: shape.pod.side, url: shape.pod.url, netns: shape.pod.netns, connection: conn },
      ctx,
    );

    if (old && alive && sameLinks(old, plan)) {
      await this.#update(old, plan, previous, conn, ctx);
      return;
    }
    if (old) {
      await this.destroy(old, device, ctx);
      this.#store(ctx, { programmed: undefined, device: undefined, stale: false });
    } else if (await this.#adopt(plan, conn, ctx)) {
      return;
    }
    await this.#create(plan, conn, ctx);
  }

  /** Same interface: applies the difference; a failure leaves a stale record of both plans. */
  async #update(
    old: RemotePlan,
    plan: RemotePlan,
    previous: RemoteState | undefined,
    conn: Connection,
    ctx: CallContext,
  ) {
    const device = previous?.device;
    try {
      await this.#dp.update(old, plan, previous?.stale ?? false, device);
    } catch (err) {
      this.#store(ctx, { programmed: unionOf(old, plan), device, stale: true });
      throw err;
    }
    this.#store(ctx, { programmed: plan, device, stale: false });
    ctx.log.debug({ connId: conn.id }, "remote cross-connect updated");
  }

  /** No record: the first Request of this life. The interface may be there from an earlier one. */
  async #adopt(plan: RemotePlan, conn: Connection, ctx: CallContext): Promise<boolean> {
    await this.o.reconciler?.claim(conn.id);
    const adopted = await this.#dp.adopt(plan, ctx.log);
    if (!adopted) return false;
    this.#store(ctx, { programmed: plan, device: adopted.device, stale: false });
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
    return true;
  }

  async #create(plan: RemotePlan, conn: Connection, ctx: CallContext): Promise<void> {
    const created = await this.#dp.create(plan, ctx.log);
    this.#store(ctx, { programmed: plan, device: created, stale: false });
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

  /** Stops every wireguard-go this element started or adopted (by PID). */
  async dispose(): Promise<void> {
    const all = [...this.#devices];
    this.#devices.clear();
    const wireguard = this.wireguard;
    if (wireguard) await Promise.all(all.map((d) => wireguard.runner.stop(d)));
  }
}

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
  const o = resolveXconnectOptions(options, "kernelRemoteXconnectServer");
  const x = new RemoteXconnect(o, options.tunnelNetns, wireguardDataPlaneOf(options.wireguard));
  return {
    name: "kernelRemoteXconnectServer",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const serverMechanism = requestConnection(req).mechanism;
      // Fail before opening anything downstream when the client's netns URL is unusable.
      if (isKernel(serverMechanism)) locatePod("client", serverMechanism);
      const previous = loadRemoteState(ctx);
      const conn = await next.request(req, ctx);
      try {
        await x.reconcile(conn.mechanism ?? serverMechanism, conn, ctx, previous);
        return conn;
      } catch (err) {
        const e = NsmError.from(err, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: e.message }, "remote cross-connect failed");
        // A first Request must leave nothing open; a failed refresh leaves the connection to heal.
        if (previous === undefined)
          await closeQuietly(next, conn, ctx, "a remote cross-connect failure", o.cleanupTimeoutMs);
        throw e;
      }
    },
    async close(conn, ctx, next) {
      const state = loadAndDeleteRemoteState(ctx);
      const programmed = state?.programmed;
      // Deleting a VXLAN device waits for an RCU grace period (~35 ms here): do it while the
      // Close travels on, so that the two nodes' deletions overlap instead of adding up.
      const [mine, downstream] = await Promise.allSettled([
        programmed ? x.destroy(programmed, state.device, ctx) : Promise.resolve(),
        next.close(conn, ctx),
      ]);
      if (downstream.status === "rejected") throw downstream.reason;
      if (mine.status === "rejected") {
        const failure = NsmError.from(mine.reason, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: failure.message }, "cannot delete the remote cross-connect");
        throw failure;
      }
    },
    dispose: () => x.dispose(),
  };
}
