// SPDX-License-Identifier: Apache-2.0
/**
 * One vL3 endpoint's share of the vL3 network (upstream sdk `vl3.IPAM`): the block the central
 * IPAM handed it (e.g. 172.16.1.0/24), its own address (the block's first, 172.16.1.0/32), the
 * free client addresses (the rest of the block) and the whole vL3 network the clients get a
 * route to. As upstream, the whole network is the block's address with half the address bits
 * as prefix (/16 for IPv4, /64 for IPv6) unless `networkPrefixLength` says otherwise.
 * The block is unset until {@link Vl3Network.reset} is called (the IPAM's first answer); a new
 * block replaces the pool (addresses of the old block are no longer handed out) and tells the
 * subscribers.
 */
import { Code, invalidArgument, NsmError } from "../../../core/errors.js";
import {
  type Cidr,
  cidrContains,
  formatIp,
  IP_BITS,
  type IpAddress,
  IpPool,
  PrefixSet,
  parseCidr,
} from "../../../tools/cidr.js";

/** The endpoint's block, its address and the whole network, as text. */
export interface Vl3Share {
  /** The block, e.g. `172.16.1.0/24`. */
  readonly prefix: string;
  /** The endpoint's address, e.g. `172.16.1.0/32`. */
  readonly self: string;
  /** The endpoint's address without length, e.g. `172.16.1.0` (next hop of the routes it gives). */
  readonly selfIp: string;
  /** The whole vL3 network, e.g. `172.16.0.0/16`. */
  readonly network: string;
}

interface Current {
  readonly share: Vl3Share;
  readonly block: Cidr;
  readonly net: Cidr;
  readonly pool: IpPool;
}

/** The endpoint's share of the vL3 network (see the module doc). */
export class Vl3Network {
  #current: Current | undefined;
  readonly #listeners = new Set<(share: Vl3Share) => void>();
  /** Addresses of the vL3 endpoints that connected here as peers, by connection id. */
  readonly #peers = new Map<string, string>();

  constructor(private readonly networkPrefixLength?: number) {}

  /** The current share; Unavailable until the IPAM answered. */
  get share(): Vl3Share {
    if (!this.#current) throw new NsmError("the vL3 prefix is not assigned yet", Code.Unavailable);
    return this.#current.share;
  }

  get ready(): boolean {
    return this.#current !== undefined;
  }

  /** Takes a new block (a malformed one, or one with no room for a client, is InvalidArgument). */
  reset(prefix: string): void {
    const block = parseCidr(prefix);
    const bits = IP_BITS[block.family];
    if (block.prefixLength >= bits - 1) throw invalidArgument(`vL3 prefix ${prefix} leaves no address for clients`);
    const netLength = Math.min(this.networkPrefixLength ?? bits / 2, block.prefixLength);
    const net = parseCidr(`${formatIp({ family: block.family, value: block.first })}/${netLength}`);
    const selfIp = formatIp({ family: block.family, value: block.first });
    const pool = new IpPool([block.text]);
    pool.pull({ family: block.family, value: block.first });
    const share = { prefix: block.text, self: `${selfIp}/${bits}`, selfIp, network: net.text };
    this.#current = { share, block, net, pool };
    for (const l of this.#listeners) l(share);
  }

  /** Calls `listener` on every new block; returns the unsubscribe function. */
  subscribe(listener: (share: Vl3Share) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Notes the address of a peer that connected here (connection `id`); `undefined` forgets it. */
  setPeer(id: string, address: string | undefined): void {
    if (address === undefined) this.#peers.delete(id);
    else this.#peers.set(id, address);
  }

  /** The addresses of the peers that connected here. */
  get peerAddresses(): string[] {
    return [...new Set(this.#peers.values())];
  }

  /** True if `ip` is inside the whole vL3 network. */
  inNetwork(ip: IpAddress): boolean {
    return this.#current !== undefined && cidrContains(this.#current.net, ip);
  }

  /** True if `ip` is inside this endpoint's block. */
  inBlock(ip: IpAddress): boolean {
    return this.#current !== undefined && cidrContains(this.#current.block, ip);
  }

  /** Takes `wanted` when it is a free client address of the block, else the lowest free one (ResourceExhausted when none). */
  allocate(wanted: readonly IpAddress[], excluded: readonly string[]): IpAddress {
    if (!this.#current) throw new NsmError("the vL3 prefix is not assigned yet", Code.Unavailable);
    const { pool } = this.#current;
    const exclude = new PrefixSet(excluded);
    for (const ip of wanted) if (pool.tryPull(ip, exclude)) return ip;
    return pool.allocate(exclude);
  }

  /** Gives a client address back (ignored when it is not of the current block). */
  release(ip: IpAddress): void {
    this.#current?.pool.release(ip);
  }
}
