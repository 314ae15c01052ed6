// SPDX-License-Identifier: Apache-2.0
/**
 * Reconciliation after a restart: what a forwarder killed with SIGKILL left in the kernel.
 *
 * The kernel forwarder keeps its per-connection state in memory; its interfaces (veth ends,
 * VXLAN devices, wireguard-go TUNs, all tagged `nsm:<side>:<owner>:<connection id>`, see
 * `../xconnect/tag.ts`) and its wireguard-go processes outlive it. After a restart:
 * - a connection that is still alive comes back: the NSC's heal sees the control plane break,
 *   its liveness ping still works, so it re-Requests on the same path, and updatepath keeps this
 *   forwarder's segment id, so the Request carries the id of the tags. The cross-connect
 *   elements re-adopt what carries that tag (same ifindex; see `../veth/dataplane.ts`, `../remote/dataplane.ts`)
 *   and call {@link Reconciler.claim};
 * - a connection that is not refreshed within the grace period is gone (every live connection
 *   is refreshed before its tokens expire, so the default grace is the longest token lifetime):
 *   {@link Reconciler.sweep} deletes its interfaces and stops its wireguard-go processes by PID.
 *
 * At start ({@link Reconciler.start}) it lists every namespace the process can see
 * (`KernelApi.listNetns`: its own, `/var/run/netns/*`, `/proc/<pid>/ns/net`, one path per
 * namespace) and finds the links tagged with its owner, and the wireguard-go processes started
 * with such a tag (`WireguardRunner.list`). Those connection ids are the candidates. Their
 * VNIs and WireGuard ports are held at once for them in the forwarder's registries, so that a
 * new connection cannot be given a VNI or port an orphan still uses, and the refreshed
 * connection gets its own back. After the grace period the namespaces are listed again and,
 * for each candidate not claimed meanwhile, its processes are stopped and its links deleted
 * (each link re-read by ifindex first: it is deleted only if it still carries the same tag).
 * Links and processes of other owners are never touched; links made in this life are not
 * candidates.
 *
 * A Request that claims a candidate while the sweep is deleting it waits for the deletion and
 * then builds anew. Everything adopted and deleted is logged with the connection ids.
 */

import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import type { VniRegistry } from "../../../sdk/networkservice/common/vxlan/index.js";
import type { PortPool } from "../../../sdk/networkservice/common/wireguard/index.js";
import type { KernelApi, NetnsPath } from "../../api.js";
import type { FoundWireguard, WireguardDevice, WireguardRunner } from "../wireguard/wireguard-go.js";
import { isGone, tolerateGone } from "../xconnect/gone.js";
import {
  checkTagOwner,
  listTaggedLinks,
  parseXconnectTag,
  type TaggedLink,
  type XconnectSide,
} from "../xconnect/tag.js";

export interface ReconcilerOptions {
  kernel: KernelApi;
  /** The forwarder's name: only links and processes tagged with it are looked at. */
  owner: string;
  /** How long candidates wait for a Request before they are deleted, in ms (0: at once). */
  graceMs: number;
  /** Finds and stops wireguard-go processes of an earlier life. @default none: only links */
  runner?: WireguardRunner;
  /** The forwarder's VNI registry: the VNIs of orphan VXLAN devices are held for their connections. */
  vnis?: VniRegistry;
  /** The forwarder's WireGuard port pool: the ports of orphan wireguard-go processes are held likewise. */
  ports?: PortPool;
  /** Namespaces listed at once during a scan. @default 8 */
  concurrency?: number;
  log?: Logger;
}

/** An interface of an earlier life. */
export interface OrphanLink {
  connectionId: string;
  side: XconnectSide;
  netns: NetnsPath;
  name: string;
  index: number;
  /** `veth`, `vxlan`, `tun`… */
  kind: string | undefined;
  /** A VXLAN device's VNI. */
  vni?: number;
}

/** A wireguard-go of an earlier life. */
export interface OrphanProcess {
  connectionId: string;
  side: XconnectSide;
  /** Its UAPI name. */
  name: string;
  pid: number;
  listenPort: number | undefined;
}

/** What the start scan found. */
export interface ReconcileScan {
  links: OrphanLink[];
  processes: OrphanProcess[];
}

/** What the sweep did. */
export interface ReconcileReport {
  /** Candidates Requested during the grace period: kept. */
  adopted: string[];
  /** Candidates that were not: their links and processes are gone. */
  deleted: string[];
  /** The links deleted (a veth's peer went with it). */
  links: OrphanLink[];
  /** The wireguard-go processes stopped. */
  processes: OrphanProcess[];
  /** Candidates whose cleanup failed (logged; not retried). */
  failed: string[];
  /** True when the forwarder stopped before the grace period ended: nothing was deleted. */
  cancelled: boolean;
}

/** Reconciliation of one forwarder; see the module doc. */
export interface Reconciler {
  readonly owner: string;
  /** Marks a connection as live in this life (its links are not swept); waits while the sweep is deleting them. */
  claim(connectionId: string): Promise<void>;
  /** Scans, holds the candidates' VNIs and ports, and arms the sweep. Once. */
  start(): Promise<ReconcileScan>;
  /** Sweeps now instead of at the end of the grace period (idempotent). */
  sweep(): Promise<ReconcileReport>;
  /** Resolves when the sweep has run (or with `cancelled` after `dispose`). */
  readonly swept: Promise<ReconcileReport>;
  /** Disarms the sweep. */
  dispose(): void;
}

/** The owner keys under which the sdk's VXLAN and WireGuard elements hold a connection's VNI and port. */
const vniOwner = (side: XconnectSide, id: string) => `${side === "client" ? "vxlanClient" : "vxlanServer"}:${id}`;
const portOwner = (side: XconnectSide, id: string) =>
  `${side === "client" ? "wireguardClient" : "wireguardServer"}:${id}`;

const emptyReport = (cancelled: boolean): ReconcileReport => ({
  adopted: [],
  deleted: [],
  links: [],
  processes: [],
  failed: [],
  cancelled,
});

function group<T extends { connectionId: string }>(items: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) out.set(item.connectionId, [...(out.get(item.connectionId) ?? []), item]);
  return out;
}

/** A process as scanned, with the handle to stop it. */
type ScannedProcess = OrphanProcess & { device: WireguardDevice };

const publicProcess = ({ device: _, ...p }: ScannedProcess): OrphanProcess => p;

class Reconcile implements Reconciler {
  readonly owner: string;
  readonly swept: Promise<ReconcileReport>;
  readonly #o: Readonly<ReconcilerOptions>;
  readonly #log: Logger;
  readonly #candidates = new Set<string>();
  readonly #claimed = new Set<string>();
  readonly #deleting = new Map<string, Promise<void>>();
  /** What was held for the candidates: owner key → value. */
  readonly #heldVnis = new Map<string, number>();
  readonly #heldPorts = new Map<string, number>();
  #resolveSwept!: (r: ReconcileReport) => void;
  #timer: NodeJS.Timeout | undefined;
  #started: Promise<ReconcileScan> | undefined;
  #sweep: Promise<ReconcileReport> | undefined;
  #disposed = false;
  /** The start scan is over: the candidates are known. */
  #scanned = false;
  /** The sweep is over (or cancelled). */
  #done = false;

  constructor(o: Readonly<ReconcilerOptions>) {
    checkTagOwner(o.owner);
    this.owner = o.owner;
    this.#o = o;
    this.#log = o.log ?? silentLogger;
    this.swept = new Promise((resolve) => {
      this.#resolveSwept = resolve;
    });
  }

  async claim(connectionId: string): Promise<void> {
    // Remembered while it can matter: before the candidates are known, then only for them, and
    // not after the sweep (a forwarder sees many connections in its life).
    if (!this.#done && (!this.#scanned || this.#candidates.has(connectionId))) this.#claimed.add(connectionId);
    await this.#deleting.get(connectionId);
  }

  start(): Promise<ReconcileScan> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<ReconcileScan> {
    const scanned = await this.#scan();
    const scan = { links: scanned.links, processes: scanned.processes.map(publicProcess) };
    for (const l of scan.links) this.#candidates.add(l.connectionId);
    for (const p of scan.processes) this.#candidates.add(p.connectionId);
    this.#scanned = true;
    for (const id of this.#claimed) if (!this.#candidates.has(id)) this.#claimed.delete(id);
    this.#hold(scan);
    if (this.#candidates.size === 0) {
      this.#log.debug({ owner: this.owner }, "no interfaces of an earlier life");
      this.#finish(emptyReport(false));
      return scan;
    }
    this.#log.info(
      {
        owner: this.owner,
        connIds: [...this.#candidates],
        links: scan.links.map((l) => `${l.netns ?? "(own)"}:${l.name}#${l.index}`),
        wireguardGo: scan.processes.map((p) => p.pid),
        graceMs: this.#o.graceMs,
      },
      "found interfaces of an earlier life: kept for the connections refreshed within the grace period",
    );
    if (!this.#disposed) {
      this.#timer = setTimeout(() => void this.sweep(), Math.max(0, this.#o.graceMs));
      // The forwarder's server keeps the process alive; this timer alone must not.
      this.#timer.unref();
    }
    return scan;
  }

  /** Holds the VNIs and WireGuard ports the candidates' tunnels use. */
  #hold(scan: ReconcileScan): void {
    if (this.#o.vnis) this.#holdVnis(this.#o.vnis, scan.links);
    if (this.#o.ports) this.#holdPorts(this.#o.ports, scan.processes);
  }

  #holdVnis(vnis: VniRegistry, links: OrphanLink[]): void {
    for (const l of links) {
      const vni = l.vni;
      if (vni === undefined) continue;
      const key = vniOwner(l.side, l.connectionId);
      if (vnis.claim(key, vni)) this.#heldVnis.set(key, vni);
      else
        this.#log.warn(
          { connId: l.connectionId, vni },
          "the VNI of an orphan VXLAN device is held by another connection",
        );
    }
  }

  #holdPorts(ports: PortPool, processes: ReconcileScan["processes"]): void {
    for (const p of processes) {
      if (p.listenPort === undefined) continue;
      const key = portOwner(p.side, p.connectionId);
      if (ports.reserve(key, p.listenPort)) this.#heldPorts.set(key, p.listenPort);
      else
        this.#log.warn(
          { connId: p.connectionId, port: p.listenPort },
          "the port of an orphan wireguard-go is outside the range or held by another connection",
        );
    }
  }

  sweep(): Promise<ReconcileReport> {
    this.#sweep ??= this.#run();
    return this.#sweep;
  }

  async #run(): Promise<ReconcileReport> {
    clearTimeout(this.#timer);
    const report = emptyReport(false);
    try {
      await this.start();
      await this.#sweepCandidates(report);
    } catch (err) {
      // A failed scan: nothing more is deleted in this life.
      report.failed.push(
        ...[...this.#candidates].filter((id) => !this.#claimed.has(id) && !report.deleted.includes(id)),
      );
      this.#log.warn({ owner: this.owner, err: String(err) }, "reconciliation failed");
    }
    report.adopted = [...this.#candidates].filter((id) => this.#claimed.has(id));
    if (this.#candidates.size > 0) {
      this.#log.info(
        { owner: this.owner, adopted: report.adopted, deleted: report.deleted, failed: report.failed },
        "reconciliation done",
      );
    }
    this.#finish(report);
    return report;
  }

  async #sweepCandidates(report: ReconcileReport): Promise<void> {
    const todo = [...this.#candidates].filter((id) => !this.#claimed.has(id));
    if (todo.length > 0) {
      const scan = await this.#scan();
      const links = group(scan.links);
      const processes = group(scan.processes);
      for (const id of todo) {
        // Claimed during the scan: a Request has re-adopted it.
        if (this.#claimed.has(id)) continue;
        const deletion = this.#delete(id, links.get(id) ?? [], processes.get(id) ?? [], report);
        this.#deleting.set(id, deletion);
        try {
          await deletion;
          report.deleted.push(id);
        } catch (err) {
          report.failed.push(id);
          this.#log.warn({ connId: id, err: String(err) }, "cannot remove the interfaces of an orphan connection");
        } finally {
          this.#deleting.delete(id);
        }
      }
    }
  }

  async #delete(id: string, links: OrphanLink[], processes: ScannedProcess[], report: ReconcileReport): Promise<void> {
    const { runner } = this.#o;
    for (const p of processes) {
      if (!runner) break;
      // Its TUN goes with it.
      await runner.stop(p.device);
      report.processes.push(publicProcess(p));
      this.#log.info({ connId: id, pid: p.pid, name: p.name, side: p.side }, "stopped an orphan wireguard-go");
    }
    for (const l of links) await this.#deleteLink(id, l, report);
    this.#releaseHeld(id);
  }

  /** Deletes one orphan link if it is still there and still tagged for this connection and owner. */
  async #deleteLink(id: string, l: OrphanLink, report: ReconcileReport): Promise<void> {
    const { kernel } = this.#o;
    try {
      const now = await kernel.findLink(l.netns, l.index);
      const tag = parseXconnectTag(now?.alias);
      // Gone (a veth's peer, a TUN with its process) or no longer this link.
      if (!now || now.name !== l.name || tag?.connectionId !== id || tag.owner !== this.owner) return;
      await tolerateGone(kernel.deleteLink(l.netns, l.index));
      report.links.push(l);
      this.#log.info(
        { connId: id, netns: l.netns, name: l.name, ifindex: l.index, kind: l.kind, side: l.side },
        "deleted an orphan interface",
      );
    } catch (err) {
      if (!isGone(err)) throw err;
    } finally {
      if (l.netns) kernel.release(l.netns);
    }
  }

  /** Releases the VNIs and ports held for a connection, unless another holder has taken them since. */
  #releaseHeld(id: string): void {
    const { vnis, ports } = this.#o;
    for (const side of ["client", "endpoint"] as const) {
      const vk = vniOwner(side, id);
      if (vnis && this.#heldVnis.has(vk) && vnis.heldBy(vk) === this.#heldVnis.get(vk)) vnis.release(vk);
      const pk = portOwner(side, id);
      if (ports && this.#heldPorts.has(pk) && ports.heldBy(pk) === this.#heldPorts.get(pk)) ports.release(pk);
    }
  }

  /** Every link and wireguard-go tagged with our owner, now. */
  async #scan(): Promise<{ links: OrphanLink[]; processes: ScannedProcess[] }> {
    const [links, processes] = await Promise.all([this.#scanLinks(), this.#scanProcesses()]);
    return { links, processes };
  }

  async #scanLinks(): Promise<OrphanLink[]> {
    const { kernel } = this.#o;
    const namespaces = await kernel.listNetns();
    const out: OrphanLink[] = [];
    const one = async (netns: NetnsPath) => {
      let tagged: TaggedLink[];
      try {
        tagged = await listTaggedLinks(kernel, netns, this.owner);
      } catch (err) {
        // Gone since it was listed, or not ours to open.
        if (!isGone(err)) this.#log.debug({ netns, err: String(err) }, "cannot list the links of a namespace");
        return;
      } finally {
        if (netns) kernel.release(netns);
      }
      for (const t of tagged) {
        const link: OrphanLink = {
          connectionId: t.connectionId,
          side: t.side,
          netns,
          name: t.link.name,
          index: t.link.index,
          kind: t.link.kind,
        };
        if (t.link.vxlan) link.vni = t.link.vxlan.vni;
        out.push(link);
      }
    };
    let next = 0;
    const workers = Array.from({ length: Math.max(1, this.#o.concurrency ?? 8) }, async () => {
      while (next < namespaces.length) await one(namespaces[next++]);
    });
    await Promise.all(workers);
    return out;
  }

  async #scanProcesses(): Promise<ScannedProcess[]> {
    const list = this.#o.runner?.list;
    if (!list) return [];
    let found: FoundWireguard[];
    try {
      found = await list.call(this.#o.runner);
    } catch (err) {
      this.#log.warn({ err: String(err) }, "cannot list the wireguard-go processes");
      return [];
    }
    const out: ScannedProcess[] = [];
    for (const f of found) {
      const tag = parseXconnectTag(f.tag);
      if (tag?.owner !== this.owner) continue;
      out.push({
        connectionId: tag.connectionId,
        side: tag.side,
        name: f.device.name,
        pid: f.device.pid,
        listenPort: f.listenPort,
        device: f.device,
      });
    }
    return out;
  }

  #finish(report: ReconcileReport): void {
    this.#done = true;
    this.#claimed.clear();
    this.#resolveSwept(report);
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
    if (!this.#sweep) this.#finish(emptyReport(true));
  }
}

/** A reconciler for the forwarder `owner`; call `start()` before serving. See the module doc. */
export function createReconciler(options: Readonly<ReconcilerOptions>): Reconciler {
  return new Reconcile(options);
}
