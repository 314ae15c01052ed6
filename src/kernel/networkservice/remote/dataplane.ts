// SPDX-License-Identifier: Apache-2.0
/**
 * The kernel steps of a remote cross-connect: create, update (diff) and destroy the pod's
 * tunnel interface. Used by `kernelRemoteXconnectServer`; every kernel call goes through
 * {@link KernelApi}, every wireguard-go through a {@link WireguardRunner}.
 *
 * - VXLAN: one device per connection, created by a netlink socket in the tunnel (node) netns,
 *   so that its UDP socket lives there, and born in the pod's netns (IFLA_NET_NS_FD) under the
 *   KERNEL mechanism's name: no move, no RCU grace period.
 * - WireGuard: one wireguard-go per connection, running in the tunnel netns under a
 *   machine-unique name; configured over UAPI, its TUN gets the MTU there and is then moved into
 *   the pod's netns, renamed, tagged and brought up in one RTM_SETLINK (a TUN cannot be created
 *   elsewhere than where wireguard-go runs: it looks its ifindex up in its own netns).
 * Then, for both: addresses, routes (and for VXLAN neighbours) from the IP plan and
 * `ping_group_range`, as the local cross-connect does.
 *
 * Re-adoption after a forwarder restart ({@link RemoteDataPlane.adopt}): the pod's interface
 * of an earlier life is kept when it carries this connection's tag and still fits the tunnel:
 * - VXLAN: a `vxlan` device with the same VNI, port and tunnel ends. Kept as is (same ifindex,
 *   its socket in the node's netns never stopped: no traffic interruption), then brought to the
 *   plan idempotently (up, MTU, addresses and routes diffed against what the kernel holds).
 * - WireGuard: a `tun` whose wireguard-go (a child of the dead forwarder, still serving it) is
 *   found by its tag (`WireguardRunner.list`: `/proc` scan for `wireguard-go -f NAME`, tagged
 *   in its environment). We adopt it rather than replace it: it is re-configured over its UAPI
 *   socket with the current private key (a restarted forwarder has a new key pair by default;
 *   the refresh carries the new public key to the peer), port and peer, and stopped later by
 *   PID like our own children. The TUN and its addresses stay (same ifindex); traffic resumes
 *   with the next handshake. Replacing it would cost a new process, a new TUN and the
 *   addresses' re-programming, and would interrupt the pod just the same.
 * Anything else carrying our tag is deleted and built anew by `create`.
 */
import { randomBytes } from "node:crypto";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import type { Logger } from "../../../sdk/core/logger.js";
import { formatIp, tryParseIp } from "../../../sdk/tools/cidr.js";
import type { KernelApi, LinkInfo, NetnsPath, VxlanInfo } from "../../api.js";
import { applyIpDiff, observedIpPlan } from "../ipcontext/apply.js";
import { diffIpPlans, type IpPlan } from "../ipcontext/plan.js";
import type { WireguardDevice, WireguardRunner, WireguardTunnelConfig } from "../wireguard/wireguard-go.js";
import type { PendingDeletions } from "../xconnect/deletions.js";
import { isGone, tolerateGone } from "../xconnect/gone.js";
import { relocateNetns } from "../xconnect/netns.js";
import { PING_GROUP_RANGE } from "../xconnect/options.js";
import { foreignLinkError, type PodPlan } from "../xconnect/pod.js";
import type { RemotePlan, VxlanTunnelPlan, WireguardTunnelPlan } from "./metadata.js";

const EMPTY: IpPlan = { addresses: [], routes: [], neighbors: [] };

/** What the WireGuard half needs. */
export interface WireguardDataPlane {
  runner: WireguardRunner;
  /** This forwarder's raw 32-byte private key. */
  privateKey: Buffer;
  /** Seconds. */
  persistentKeepaliveS: number;
  /** How long to wait for wireguard-go to bind its port. */
  listenTimeoutMs: number;
}

/** Prefix of the machine-unique names of our wireguard-go interfaces. */
export const WIREGUARD_NAME_PREFIX = "nsmwg";

const canonicalIp = (text: string | undefined) => {
  const ip = text === undefined ? undefined : tryParseIp(text);
  return ip ? formatIp(ip) : undefined;
};

/** True if a VXLAN device's parameters are those of the tunnel plan. */
function sameVxlan(info: VxlanInfo | undefined, t: VxlanTunnelPlan): boolean {
  return (
    info !== undefined &&
    info.vni === t.vni &&
    info.port === t.port &&
    canonicalIp(info.local) === canonicalIp(t.local) &&
    canonicalIp(info.remote) === canonicalIp(t.remote)
  );
}

/** What an adopted interface is, for the caller's record and log. */
export interface Adopted {
  /** The pod interface's ifindex. */
  index: number;
  /** The wireguard-go serving it (WireGuard). */
  device: WireguardDevice | undefined;
}

export class RemoteDataPlane {
  readonly #kernel: KernelApi;
  readonly #tunnelNetns: NetnsPath;
  readonly #wireguard: WireguardDataPlane | undefined;
  readonly #deletions: PendingDeletions;

  constructor(
    kernel: KernelApi,
    tunnelNetns: NetnsPath,
    wireguard: WireguardDataPlane | undefined,
    deletions: PendingDeletions,
  ) {
    this.#kernel = kernel;
    this.#tunnelNetns = tunnelNetns;
    this.#wireguard = wireguard;
    this.#deletions = deletions;
  }

  /**
   * Creates the pod's interface and programs it. A link already holding the name is replaced if
   * it carries this connection's tag and refused (AlreadyExists) otherwise. On failure, what was
   * created is removed before the error is thrown. Resolves with the wireguard-go process, if any.
   */
  async create(plan: RemotePlan, log: Logger): Promise<WireguardDevice | undefined> {
    try {
      await this.#deletions.vacated([plan.pod]);
      await this.#clearTarget(plan.pod);
      if (plan.tunnel.type === "VXLAN") {
        await this.#createVxlan(plan, log);
        return undefined;
      }
      return await this.#createWireguard(plan, plan.tunnel, log);
    } finally {
      this.#kernel.release(plan.pod.netns);
    }
  }

  /**
   * Re-adopts the pod's interface of an earlier life (see the module doc). Resolves with it, or
   * undefined when there is nothing to adopt (then `create` runs: it deletes what carries our tag
   * and builds anew). If re-programming fails, the interface (and its wireguard-go) is removed.
   */
  async adopt(plan: RemotePlan, log: Logger): Promise<Adopted | undefined> {
    try {
      return await this.#adopt(plan, log);
    } finally {
      this.#kernel.release(plan.pod.netns);
    }
  }

  async #adopt(plan: RemotePlan, log: Logger): Promise<Adopted | undefined> {
    const pod = plan.pod;
    await this.#deletions.vacated([pod]);
    const link = await this.#kernel.findLink(pod.netns, pod.name);
    if (!link || link.alias !== pod.tag) return undefined;
    const found = await this.#adoptableTunnel(plan, link);
    if (!found) return undefined;
    const { device } = found;
    try {
      await this.#reprogramAdopted(plan, link, device);
    } catch (err) {
      if (device) await this.#stopQuietly(device, log);
      await this.#rollback(pod, log);
      throw err;
    }
    return { index: link.index, device };
  }

  /**
   * Whether the tagged link found carries the planned tunnel: a VXLAN device of the same
   * parameters, or a TUN with its running wireguard-go (returned as `device`).
   */
  async #adoptableTunnel(plan: RemotePlan, link: LinkInfo): Promise<{ device?: WireguardDevice } | undefined> {
    const t = plan.tunnel;
    if (t.type === "VXLAN") return link.kind === "vxlan" && sameVxlan(link.vxlan, t) ? {} : undefined;
    const wg = this.#wireguard;
    if (link.kind !== "tun" || !wg?.runner.list) return undefined;
    // The TUN lives as long as its wireguard-go: the process serving it carries the same tag.
    const device = (await wg.runner.list()).find((f) => f.tag === plan.pod.tag && f.device.running)?.device;
    return device ? { device } : undefined;
  }

  /** Re-programs an adopted interface; a WireGuard one is re-configured and must listen again. */
  async #reprogramAdopted(plan: RemotePlan, link: LinkInfo, device: WireguardDevice | undefined): Promise<void> {
    const t = plan.tunnel;
    const wg = this.#wireguard;
    if (wg && device && t.type === "WIREGUARD") await wg.runner.configure(device, this.#config(t));
    await this.#reprogram(plan, link);
    if (wg && device && t.type === "WIREGUARD") await wg.runner.waitListening(device, t.listenPort, wg.listenTimeoutMs);
  }

  /** Up, MTU, addresses and routes against what the kernel holds, neighbours, `ping_group_range`. */
  async #reprogram(plan: RemotePlan, link: LinkInfo): Promise<void> {
    const k = this.#kernel;
    const pod = plan.pod;
    if (!link.up || (plan.mtu !== 0 && link.mtu !== plan.mtu)) {
      await k.setLink(pod.netns, link.index, { up: true, mtu: plan.mtu || undefined });
    }
    const observed = await observedIpPlan(k, pod.netns, link.index);
    await applyIpDiff(k, pod.netns, pod.name, link.index, diffIpPlans(observed, pod, true));
    await k.writeSysctl(pod.netns, "net.ipv4.ping_group_range", PING_GROUP_RANGE);
  }

  #config(t: WireguardTunnelPlan): WireguardTunnelConfig {
    const wg = this.#wireguard!;
    return {
      privateKey: wg.privateKey,
      listenPort: t.listenPort,
      peerPublicKey: Buffer.from(t.peerPublicKey, "base64"),
      endpoint: { ip: t.remote, port: t.remotePort },
      persistentKeepaliveS: wg.persistentKeepaliveS,
    };
  }

  async #stopQuietly(device: WireguardDevice, log: Logger): Promise<void> {
    try {
      await this.#wireguard?.runner.stop(device);
    } catch (err) {
      log.warn({ name: device.name, pid: device.pid, err: String(err) }, "cannot stop wireguard-go after a failure");
    }
  }

  /**
   * Applies the differences between two plans with the same interface: MTU, addresses, routes;
   * for WireGuard a changed peer (key, address, port) is re-configured over UAPI on the same
   * wireguard-go, with the same TUN.
   */
  async update(
    from: RemotePlan,
    to: RemotePlan,
    force: boolean,
    device: WireguardDevice | undefined = undefined,
  ): Promise<void> {
    const k = this.#kernel;
    try {
      const t = to.tunnel;
      if (
        t.type === "WIREGUARD" &&
        device &&
        this.#wireguard &&
        (force || JSON.stringify(from.tunnel) !== JSON.stringify(t))
      ) {
        await this.#wireguard.runner.configure(device, this.#config(t));
      }
      if (to.mtu !== 0 && (force || to.mtu !== from.mtu)) await k.setLink(to.pod.netns, to.pod.name, { mtu: to.mtu });
      await applyIpDiff(k, to.pod.netns, to.pod.name, to.pod.name, diffIpPlans(from.pod, to.pod, force));
    } finally {
      k.release(to.pod.netns);
    }
  }

  /**
   * Removes the pod's interface: stops wireguard-go (its TUN goes with it), deletes the VXLAN
   * device, or a TUN left behind, if it still carries the connection's tag. Gone counts as done.
   * Resolves once the interface is gone from the pod's netns; the kernel's acknowledgement is
   * left to the {@link PendingDeletions}.
   */
  async destroy(plan: RemotePlan, device: WireguardDevice | undefined, log: Logger): Promise<void> {
    try {
      if (device && this.#wireguard) await this.#wireguard.runner.stop(device);
      await this.#deleteOurs(plan.pod, log);
    } finally {
      this.#kernel.release(plan.pod.netns);
    }
  }

  async #deleteOurs(pod: PodPlan, log: Logger): Promise<void> {
    // The process that named the pod's netns may be gone while the netns (and our link) lives on.
    const netns = await relocateNetns(this.#kernel, pod);
    if (netns === undefined) return;
    try {
      let link: LinkInfo | undefined;
      try {
        link = await this.#kernel.findLink(netns, pod.name);
      } catch (err) {
        if (isGone(err)) return;
        throw err;
      }
      if (!link) return;
      if (link.alias !== pod.tag) {
        log.warn({ netns, name: pod.name, alias: link.alias }, "interface is no longer ours: not deleted");
        return;
      }
      await this.#deletions.delete(this.#kernel, { netns, index: link.index, frees: [pod] }, log);
    } finally {
      if (netns !== pod.netns) this.#kernel.release(netns);
    }
  }

  async #clearTarget(pod: PodPlan): Promise<void> {
    const link = await this.#kernel.findLink(pod.netns, pod.name);
    if (!link) return;
    if (link.alias !== pod.tag) throw foreignLinkError(pod, link);
    await tolerateGone(this.#kernel.deleteLink(pod.netns, link.index));
  }

  async #createVxlan(plan: RemotePlan, log: Logger): Promise<void> {
    const t = plan.tunnel;
    if (t.type !== "VXLAN") return;
    const k = this.#kernel;
    const pod = plan.pod;
    await k.createVxlan(this.#tunnelNetns, {
      name: pod.name,
      vni: t.vni,
      local: t.local,
      remote: t.remote,
      port: t.port,
      mtu: plan.mtu || undefined,
      netns: pod.netns,
    });
    try {
      await k.setLink(pod.netns, pod.name, { alias: pod.tag, up: true });
      await this.#program(pod);
    } catch (err) {
      // Just created under that name (clearTarget made sure it was free): delete it whatever its alias.
      try {
        await tolerateGone(k.deleteLink(pod.netns, pod.name));
      } catch (delErr) {
        log.warn(
          { netns: pod.netns, name: pod.name, err: String(delErr) },
          "cannot delete the VXLAN device after a failure",
        );
      }
      throw err;
    }
  }

  async #createWireguard(plan: RemotePlan, t: WireguardTunnelPlan, log: Logger): Promise<WireguardDevice> {
    const wg = this.#wireguard;
    if (!wg) {
      throw new NsmError(
        "a WIREGUARD connection, but this forwarder has no WireGuard data plane",
        Code.FailedPrecondition,
      );
    }
    const k = this.#kernel;
    const pod = plan.pod;
    const device = await wg.runner.start(await this.#freeWireguardName(), pod.tag);
    try {
      await wg.runner.configure(device, this.#config(t));
      // The MTU is set while wireguard-go can still see the TUN (it follows it over netlink in its own netns).
      if (plan.mtu) await k.setLink(this.#tunnelNetns, device.name, { mtu: plan.mtu });
      await k.setLink(this.#tunnelNetns, device.name, { netns: pod.netns, name: pod.name, alias: pod.tag, up: true });
      await this.#program(pod);
      await wg.runner.waitListening(device, t.listenPort, wg.listenTimeoutMs);
      return device;
    } catch (err) {
      await this.#stopQuietly(device, log);
      await this.#rollback(pod, log);
      throw err;
    }
  }

  /** A name free on the machine: wireguard-go's sockets share one directory across netns. */
  async #freeWireguardName(): Promise<string> {
    for (;;) {
      const name = `${WIREGUARD_NAME_PREFIX}${randomBytes(4).toString("hex")}`;
      if (!(await this.#kernel.findLink(this.#tunnelNetns, name))) return name;
    }
  }

  async #program(pod: PodPlan): Promise<void> {
    await applyIpDiff(this.#kernel, pod.netns, pod.name, pod.name, diffIpPlans(EMPTY, pod));
    await this.#kernel.writeSysctl(pod.netns, "net.ipv4.ping_group_range", PING_GROUP_RANGE);
  }

  /** After wireguard-go is stopped its TUN is gone; a tagged leftover is deleted all the same. */
  async #rollback(pod: PodPlan, log: Logger): Promise<void> {
    try {
      await this.#deleteOurs(pod, log);
    } catch (err) {
      log.warn(
        { netns: pod.netns, name: pod.name, err: String(err) },
        "cannot delete the tunnel interface after a failure",
      );
    }
  }
}
