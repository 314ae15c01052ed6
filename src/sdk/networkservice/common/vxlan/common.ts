// SPDX-License-Identifier: Apache-2.0
/** VNI rules: the upstream parity rule and a registry of the VNIs in use on one forwarder. */
import { randomInt } from "node:crypto";
import { type Mechanism, Param } from "../../../../api/index.js";
import { Code, NsmError } from "../../../core/errors.js";
import { compareIpBytes } from "../../../tools/tunnel.js";

/** Largest VNI (24 bits). */
export const MAX_VNI = 0xffffff;

/** Random draws before falling back to a scan of the VNI space. */
const RANDOM_TRIES = 64;

/**
 * Whether the VNI of this VXLAN mechanism must be odd (upstream parity rule): even when
 * `orig_src_ip || src_ip` ≤ `orig_dst_ip || dst_ip` bytewise (16-byte form), odd otherwise. The
 * two directions between a pair of nodes thus never draw the same VNI.
 */
export function vniMustBeOdd(m: Mechanism): boolean {
  const p = m.parameters;
  const src = p[Param.ORIG_SRC_IP] || p[Param.SRC_IP] || "";
  const dst = p[Param.ORIG_DST_IP] || p[Param.DST_IP] || "";
  return compareIpBytes(src, dst) > 0;
}

/** `(2·r) & 0xFFFFFF` (even) or `(2·r + 1) & 0xFFFFFF` (odd), as upstream derives a VNI from a random number. */
export function vniFromRandom(r: number, odd: boolean): number {
  return (2 * r + (odd ? 1 : 0)) & MAX_VNI;
}

/** A decimal VNI parameter: 0 when absent; InvalidArgument when not an integer in 0 … 2^24−1. */
export function parseVni(text: string | undefined): number {
  if (text === undefined || text === "") return 0;
  const v = /^\d{1,8}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(v) || v > MAX_VNI) {
    throw new NsmError(`VXLAN vni ${JSON.stringify(text)} is not an integer in 0..16777215`, Code.InvalidArgument);
  }
  return v;
}

/**
 * The VNIs in use on one forwarder, each held by one owner (a connection of the client or the
 * server element). The Linux kernel demultiplexes VXLAN on the VNI alone for a UDP port in a
 * netns, so a VNI must be unique among all of a node's tunnels, not only per node pair
 * (upstream's rule): share one registry between the VXLAN client and server of a forwarder.
 */
export interface VniRegistry {
  /** Who holds `vni`, if anyone. */
  holder(vni: number): string | undefined;
  /** The VNI `owner` holds, if any. */
  heldBy(owner: string): number | undefined;
  /** Makes `owner` hold `vni` (dropping what it held before). False, changing nothing, if another owner holds it. */
  claim(owner: string, vni: number): boolean;
  /** A new VNI of the given parity, not 0 and held by nobody, now held by `owner`. */
  allocate(owner: string, odd: boolean, random?: () => number): number;
  /** Drops what `owner` holds (nothing if it holds nothing). */
  release(owner: string): void;
  /** How many VNIs are held. */
  readonly size: number;
}

const defaultRandom = () => randomInt(0, 1 << 23);

class Registry implements VniRegistry {
  readonly #byVni = new Map<number, string>();
  readonly #byOwner = new Map<string, number>();

  get size(): number {
    return this.#byVni.size;
  }

  holder(vni: number): string | undefined {
    return this.#byVni.get(vni);
  }

  heldBy(owner: string): number | undefined {
    return this.#byOwner.get(owner);
  }

  claim(owner: string, vni: number): boolean {
    const h = this.#byVni.get(vni);
    if (h !== undefined && h !== owner) return false;
    this.release(owner);
    this.#byVni.set(vni, owner);
    this.#byOwner.set(owner, vni);
    return true;
  }

  allocate(owner: string, odd: boolean, random: () => number = defaultRandom): number {
    this.release(owner);
    const free = (v: number) => v !== 0 && !this.#byVni.has(v);
    let vni = vniFromRandom(random(), odd);
    for (let i = 1; i < RANDOM_TRIES && !free(vni); i++) vni = vniFromRandom(random(), odd);
    // Next to impossible with 2^23 values per parity, unless the random source is poor: scan.
    for (let i = 0; i <= MAX_VNI >> 1 && !free(vni); i++) vni = (vni + 2) & MAX_VNI;
    if (!free(vni)) {
      throw new NsmError(`no free ${odd ? "odd" : "even"} VXLAN VNI left`, Code.ResourceExhausted);
    }
    this.#byVni.set(vni, owner);
    this.#byOwner.set(owner, vni);
    return vni;
  }

  release(owner: string): void {
    const vni = this.#byOwner.get(owner);
    if (vni === undefined) return;
    this.#byOwner.delete(owner);
    this.#byVni.delete(vni);
  }
}

/** An empty {@link VniRegistry}. */
export function createVniRegistry(): VniRegistry {
  return new Registry();
}
