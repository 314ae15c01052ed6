// SPDX-License-Identifier: Apache-2.0
/**
 * The kernel steps of a local cross-connect: create, re-adopt (after a forwarder restart),
 * update (diff) and destroy one veth pair whose ends live in the client's and the endpoint's
 * netns. Used by `kernelXconnectServer`; every call goes through {@link KernelApi}.
 */
import type { Logger } from "../../../sdk/core/logger.js";
import type { KernelApi, LinkInfo, LinkRef, NetnsPath } from "../../api.js";
import { observedIpPlan } from "../ipcontext/apply.js";
import { diffIpPlans, hasIpv6Address, type IpDiff, type IpPlan } from "../ipcontext/plan.js";
import type { LinkName, PendingDeletions } from "../xconnect/deletions.js";
import { isGone, tolerateGone } from "../xconnect/gone.js";
import { relocateNetns } from "../xconnect/netns.js";
import { PING_GROUP_RANGE } from "../xconnect/options.js";
import { foreignLinkError, type PodPlan } from "../xconnect/pod.js";
import type { VethPlan } from "./metadata.js";

const EMPTY: IpPlan = { addresses: [], routes: [], neighbors: [] };

/** Waits for every promise and then throws the first failure, so that nothing runs behind a rollback. */
async function settleAll(ops: readonly Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(ops);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** The names the pair holds: both ends'. */
const namesOf = (plan: VethPlan): LinkName[] => [plan.client, plan.endpoint];

/** The links that held the client's and the endpoint's target names when looked up. */
export type TargetLinks = readonly [LinkInfo | undefined, LinkInfo | undefined];

/** What {@link VethDataPlane.adopt} found: the re-adopted pair, or the links in the way (for `create`). */
export type AdoptResult =
  | { readonly adopted: true; readonly client: number; readonly endpoint: number }
  | { readonly adopted: false; readonly found: TargetLinks };

export class VethDataPlane {
  readonly #kernel: KernelApi;
  readonly #deletions: PendingDeletions;

  constructor(kernel: KernelApi, deletions: PendingDeletions) {
    this.#kernel = kernel;
    this.#deletions = deletions;
  }

  /**
   * Creates the pair and programs both ends. A link already holding a target name is replaced
   * if it carries this connection's tag, and refused (AlreadyExists, nothing changed) otherwise;
   * `found` (what `adopt` just saw at the target names) saves looking them up again.
   * On failure, whatever was created is deleted before the error is thrown.
   */
  async create(plan: VethPlan, log: Logger, found?: TargetLinks): Promise<void> {
    try {
      await this.#create(plan, log, found);
    } finally {
      this.#release(plan);
    }
  }

  /** The pods' namespaces must not be kept alive by our cached netlink sockets between events. */
  #release(plan: VethPlan): void {
    this.#kernel.release(plan.client.netns);
    this.#kernel.release(plan.endpoint.netns);
  }

  async #create(plan: VethPlan, log: Logger, found: TargetLinks | undefined): Promise<void> {
    await this.#deletions.vacated(namesOf(plan));
    await this.#clearTargets(plan, found);
    const k = this.#kernel;
    const mtu = plan.mtu || undefined;
    // Both ends are born in their pods' namespaces under their final names (IFLA_NET_NS_FD for
    // the peer, the client's netns socket for the other end): moving a link between namespaces
    // costs the kernel an RCU grace period per move (~15-20 ms here), creating it there does not.
    await k.createVeth(plan.client.netns, {
      name: plan.client.name,
      mtu,
      peer: { name: plan.endpoint.name, netns: plan.endpoint.netns, mtu },
    });
    try {
      await settleAll([this.#tagAndUp(plan.client), this.#tagAndUp(plan.endpoint)]);
      await settleAll([this.#programNew(plan.client), this.#programNew(plan.endpoint)]);
    } catch (err) {
      await this.#rollback([[plan.client.netns, plan.client.name]], log);
      throw err;
    }
  }

  /**
   * Re-adopts the pair an earlier life of this forwarder made for this connection: when both
   * target links exist, carry this plan's tags and are each other's veth peer, they are kept
   * (same ifindex: traffic goes on) and brought to the plan idempotently: up and MTU, then per
   * side the addresses and routes diffed against what the kernel holds (stale ones out, every
   * planned one re-applied with replace semantics), neighbours, `ping_group_range`. Resolves
   * with the two ifindexes, or, when there is no such pair, with the links found at the target
   * names (`create` then deletes what carries our tags and builds anew). If re-programming
   * fails, the pair is deleted.
   */
  async adopt(plan: VethPlan, log: Logger): Promise<AdoptResult> {
    try {
      return await this.#adopt(plan, log);
    } finally {
      this.#release(plan);
    }
  }

  async #adopt(plan: VethPlan, log: Logger): Promise<AdoptResult> {
    await this.#deletions.vacated(namesOf(plan));
    const found = await this.#targets(plan);
    const [c, e] = found;
    const notAdopted = { adopted: false, found } as const;
    if (!c || !e || c.alias !== plan.client.tag || e.alias !== plan.endpoint.tag) return notAdopted;
    if (c.kind !== "veth" || e.kind !== "veth" || c.linkIndex !== e.index || e.linkIndex !== c.index) return notAdopted;
    try {
      await settleAll([this.#reprogram(plan.client, c, plan.mtu), this.#reprogram(plan.endpoint, e, plan.mtu)]);
    } catch (err) {
      await this.#rollback([[plan.client.netns, c.index]], log);
      throw err;
    }
    return { adopted: true, client: c.index, endpoint: e.index };
  }

  /** The links holding the two target names now. */
  async #targets(plan: VethPlan): Promise<TargetLinks> {
    const [c, e] = await Promise.all([
      this.#kernel.findLink(plan.client.netns, plan.client.name),
      this.#kernel.findLink(plan.endpoint.netns, plan.endpoint.name),
    ]);
    return [c, e];
  }

  async #reprogram(side: PodPlan, link: LinkInfo, mtu: number): Promise<void> {
    const k = this.#kernel;
    if (!link.up || (mtu !== 0 && link.mtu !== mtu)) {
      await k.setLink(side.netns, link.index, { up: true, mtu: mtu || undefined });
    }
    const observed = await observedIpPlan(k, side.netns, link.index);
    await this.#apply(side, link.index, diffIpPlans(observed, side, true));
    await k.writeSysctl(side.netns, "net.ipv4.ping_group_range", PING_GROUP_RANGE);
  }

  /**
   * Applies the difference between two plans with the same links: MTU, then per netns the
   * stale routes, neighbours and addresses out, the new addresses, routes and neighbours in.
   * With `force`, everything in `to` is re-applied (after a half-applied update).
   */
  async update(from: VethPlan, to: VethPlan, force: boolean): Promise<void> {
    try {
      await this.#update(from, to, force);
    } finally {
      this.#release(to);
    }
  }

  async #update(from: VethPlan, to: VethPlan, force: boolean): Promise<void> {
    const k = this.#kernel;
    if (to.mtu !== 0 && (force || to.mtu !== from.mtu)) {
      await settleAll([
        k.setLink(to.client.netns, to.client.name, { mtu: to.mtu }),
        k.setLink(to.endpoint.netns, to.endpoint.name, { mtu: to.mtu }),
      ]);
    }
    await settleAll([
      this.#apply(to.client, to.client.name, diffIpPlans(from.client, to.client, force)),
      this.#apply(to.endpoint, to.endpoint.name, diffIpPlans(from.endpoint, to.endpoint, force)),
    ]);
  }

  /**
   * Deletes the pair: the client's end if it is still there and still ours (its peer goes with
   * it), else the endpoint's. A link or netns already gone counts as deleted; a link with the
   * name but another alias is left alone. Resolves once the pair is gone from both namespaces;
   * the kernel's acknowledgement is left to the {@link PendingDeletions}.
   */
  async destroy(plan: VethPlan, log: Logger): Promise<void> {
    try {
      await this.#destroy(plan, log);
    } finally {
      this.#release(plan);
    }
  }

  async #destroy(plan: VethPlan, log: Logger): Promise<void> {
    for (const side of [plan.client, plan.endpoint]) {
      // The process that named the netns may be gone while the netns (and our link) lives on.
      const netns = await relocateNetns(this.#kernel, side);
      if (netns === undefined) continue;
      try {
        if (await this.#deleteOurs(netns, side, namesOf(plan), log)) return;
      } finally {
        if (netns !== side.netns) this.#kernel.release(netns);
      }
    }
  }

  /** Deletes `side`'s link in `netns` if it is there and ours; true when the pair is gone. */
  async #deleteOurs(netns: NetnsPath, side: PodPlan, frees: LinkName[], log: Logger): Promise<boolean> {
    let link: LinkInfo | undefined;
    try {
      link = await this.#kernel.findLink(netns, side.name);
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
    if (!link) return false;
    if (link.alias !== side.tag) {
      log.warn({ netns, name: side.name, alias: link.alias }, "interface is no longer ours: not deleted");
      return false;
    }
    await this.#deletions.delete(this.#kernel, { netns, index: link.index, frees }, log);
    return true;
  }

  /**
   * Refuses foreign links with the target names, then deletes ours (left over from an earlier
   * life). `seen`: the links just found there, when the caller has looked already.
   */
  async #clearTargets(plan: VethPlan, seen: TargetLinks | undefined): Promise<void> {
    const sides = [plan.client, plan.endpoint];
    const found = seen ?? (await this.#targets(plan));
    sides.forEach((side, i) => {
      const link = found[i];
      if (link && link.alias !== side.tag) throw foreignLinkError(side, link);
    });
    for (const [i, side] of sides.entries()) {
      const stale = found[i];
      // Deleting the first may already have removed the second (its peer).
      if (stale) await tolerateGone(this.#kernel.deleteLink(side.netns, stale.index));
    }
  }

  /** Tags one end with the connection and brings it up, in one RTM_SETLINK. */
  async #tagAndUp(side: PodPlan): Promise<void> {
    await this.#kernel.setLink(side.netns, side.name, { alias: side.tag, up: true });
  }

  async #programNew(side: PodPlan): Promise<void> {
    const { index } = await this.#kernel.getLink(side.netns, side.name);
    // The sysctl does not touch the link: it is written while the addresses and routes go in.
    await settleAll([
      this.#apply(side, index, diffIpPlans(EMPTY, side)),
      this.#kernel.writeSysctl(side.netns, "net.ipv4.ping_group_range", PING_GROUP_RANGE),
    ]);
  }

  /** Removals first (a changed route is replaced, not removed), then addresses, routes, neighbours. */
  async #apply(side: Pick<PodPlan, "netns" | "name">, link: LinkRef, d: IpDiff): Promise<void> {
    const k = this.#kernel;
    const netns = side.netns;
    for (const r of d.removeRoutes) await tolerateGone(k.deleteRoute(netns, { dst: r.dst, gateway: r.gateway, link }));
    for (const n of d.removeNeighbors) await tolerateGone(k.deleteNeighbor(netns, { link, address: n.address }));
    for (const a of d.removeAddresses) await tolerateGone(k.deleteAddress(netns, link, a));
    if (hasIpv6Address({ addresses: d.addAddresses })) {
      // A link moved into a netns may come with IPv6 disabled; the kernel refuses v6 addresses then.
      await k.writeSysctl(netns, `net/ipv6/conf/${side.name}/disable_ipv6`, "0");
    }
    for (const a of d.addAddresses) await k.replaceAddress(netns, link, a);
    for (const r of d.addRoutes) {
      await k.replaceRoute(netns, { dst: r.dst, link, scope: r.scope, gateway: r.gateway, onlink: !!r.gateway });
    }
    for (const n of d.addNeighbors) {
      await k.replaceNeighbor(netns, { link, address: n.address, mac: n.mac, state: "reachable" });
    }
  }

  async #rollback(candidates: readonly [NetnsPath, LinkRef][], log: Logger): Promise<void> {
    for (const [netns, link] of candidates) {
      try {
        await this.#kernel.deleteLink(netns, link);
        return;
      } catch (err) {
        if (isGone(err)) continue;
        log.warn({ netns, link, err: String(err) }, "cannot delete the veth pair after a failure");
        return;
      }
    }
    log.warn({ candidates }, "veth pair to roll back not found");
  }
}
