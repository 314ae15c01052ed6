// SPDX-License-Identifier: Apache-2.0
/**
 * passthrough (kernel): joins the two interfaces of a passthrough hop with a Linux bridge in the
 * hop's own netns — an L2 bump in the wire, as upstream's firewall cross-connects its two memifs
 * in VPP (`xconnect`, ETHERNET payload).
 *
 * Why a bridge and not routing: the IP context of a composed connection travels unchanged from
 * the final endpoint to the client, so the forwarders put the endpoint's address on this hop's
 * incoming interface and the client's address on its outgoing one; an IP hop would answer for
 * both itself. Bridged, those addresses are inert (the netns must not answer ARP on the bridge:
 * `arp_ignore=1`, set by {@link prepareBridgeNetns}), and frames pass through nftables' `bridge`
 * family, where the ACL element filters them.
 *
 * Timing: the outgoing interface exists when the next hop answers (its forwarder made it); the
 * incoming one is made by the previous hop's forwarder *after* this Request returns, so it is
 * enslaved in the background as soon as it appears (polled every `pollMs`).
 * Chain placement: in an endpoint, before `passthroughServer` (it acts after `next.request()`).
 * Per-connection state: the background attach (aborted on Close); the bridge is named from the
 * connection id (`ptb-<hash>`), so a refresh finds it again.
 * Failure behaviour: an outgoing interface that never appears fails the Request (the next hop
 * is closed by connect); Close removes the bridge and ignores a bridge already gone.
 */
import { createHash } from "node:crypto";
import type { NetworkServiceElement } from "../../../sdk/core/chain.js";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import { passthroughLinksOf } from "../../../sdk/networkservice/common/passthrough/index.js";
import type { KernelApi, NetnsPath } from "../../api.js";

/** Options of {@link kernelPassthroughServer}. */
export interface KernelPassthroughOptions {
  readonly kernel: KernelApi;
  /** The hop's netns. @default this process's */
  readonly netns?: NetnsPath;
  /** Poll interval while waiting for an interface. @default 10 */
  readonly pollMs?: number;
  /** How long to wait for an interface to appear. @default 15000 */
  readonly attachTimeoutMs?: number;
  readonly log?: Logger;
}

/** The bridge of connection `id`: `ptb-` and 11 hex characters of its hash. */
export function bridgeNameOf(id: string): string {
  return `ptb-${createHash("sha256").update(id).digest("hex").slice(0, 11)}`;
}

/** Sysctls of a netns that bridges: it must not answer ARP for the addresses on bridge ports. */
export async function prepareBridgeNetns(kernel: KernelApi, netns?: NetnsPath): Promise<void> {
  await kernel.writeSysctl(netns, "net.ipv4.conf.all.arp_ignore", "1");
  await bypassBridgeNetfilter(kernel, netns);
}

/**
 * Bridged frames in this netns skip br_netfilter (the iptables/ip6tables/arptables hooks it
 * runs for every bridged IP frame where the kernel has it, on by default): nothing here filters
 * bridged traffic with them (the ACL is an nftables `bridge` table, which runs before), and the
 * per-frame work is pure cost on every hop of a composition. A kernel without br_netfilter has
 * no such sysctls: nothing to do.
 */
export async function bypassBridgeNetfilter(kernel: KernelApi, netns?: NetnsPath): Promise<void> {
  for (const table of ["iptables", "ip6tables", "arptables"])
    await kernel.writeSysctl(netns, `net.bridge.bridge-nf-call-${table}`, "0").catch(() => {});
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where and how long {@link attachWhenPresent} waits. */
export interface Attach {
  readonly kernel: KernelApi;
  readonly netns: NetnsPath;
  readonly pollMs: number;
  readonly deadline: number;
  readonly signal: AbortSignal;
}

/**
 * Waits until `link` exists, then makes it a port of `bridge` (no-op when it already is).
 * Returns whether it did (false: aborted, or the bridge is gone).
 */
export async function attachWhenPresent(a: Attach, link: string, bridge: string): Promise<boolean> {
  for (;;) {
    if (a.signal.aborted) return false;
    const [info, br] = await Promise.all([a.kernel.findLink(a.netns, link), a.kernel.findLink(a.netns, bridge)]);
    if (!br) return false;
    if (info) {
      if (info.masterIndex !== br.index) await a.kernel.setLink(a.netns, link, { master: bridge });
      return true;
    }
    if (Date.now() > a.deadline) throw new NsmError(`interface ${link} did not appear`, Code.DeadlineExceeded);
    await sleep(a.pollMs);
  }
}

/** Creates bridge `name` unless it exists, and sets it up. */
export async function ensureBridge(kernel: KernelApi, netns: NetnsPath, name: string): Promise<void> {
  if (!(await kernel.findLink(netns, name))) {
    try {
      await kernel.createBridge(netns, { name });
    } catch (err) {
      if (NsmError.from(err).code !== Code.AlreadyExists) throw err;
    }
  }
  await kernel.setLink(netns, name, { up: true });
}

/** The element: bridges the incoming and outgoing interfaces of each passthrough connection. */
export function kernelPassthroughServer(options: KernelPassthroughOptions): NetworkServiceElement {
  const { kernel, netns } = options;
  const log = options.log ?? silentLogger;
  const pending = new Map<string, AbortController>();
  const attachOf = (signal: AbortSignal): Attach => ({
    kernel,
    netns,
    pollMs: options.pollMs ?? 10,
    deadline: Date.now() + (options.attachTimeoutMs ?? 15_000),
    signal,
  });
  return {
    name: "kernelPassthrough",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const links = passthroughLinksOf(ctx);
      if (!links?.incoming) return conn;
      const bridge = bridgeNameOf(conn.id);
      await ensureBridge(kernel, netns, bridge);
      pending.get(conn.id)?.abort();
      const stop = new AbortController();
      pending.set(conn.id, stop);
      await attachWhenPresent(attachOf(stop.signal), links.outgoing, bridge);
      attachWhenPresent(attachOf(stop.signal), links.incoming, bridge)
        .then(() => log.debug({ id: conn.id, bridge, links }, "passthrough bridged"))
        .catch((err) => log.warn({ id: conn.id, bridge, err: String(err) }, "incoming interface not bridged"))
        .finally(() => {
          if (pending.get(conn.id) === stop) pending.delete(conn.id);
        });
      return conn;
    },
    async close(conn, ctx, next) {
      pending.get(conn.id)?.abort();
      pending.delete(conn.id);
      try {
        await next.close(conn, ctx);
      } finally {
        await kernel.deleteLink(netns, bridgeNameOf(conn.id)).catch((err) => {
          if (NsmError.from(err).code !== Code.NotFound)
            log.warn({ id: conn.id, err: String(err) }, "bridge not removed");
        });
      }
    },
  };
}
