// SPDX-License-Identifier: Apache-2.0
/**
 * The vL3 IPAM's pool of prefixes: one network (upstream cmd-ipam-vl3's NSM_PREFIX, e.g.
 * 172.16.0.0/16) cut into blocks of one length (NSM_CLIENT_PREFIX_LEN, e.g. /24), handed out
 * lowest first. A block overlapping a taken block or one of the caller's excluded prefixes is
 * skipped; a caller that names a block (its previous one, after a reconnect) gets it back when
 * it is inside the network and free. An exhausted pool is ResourceExhausted.
 *
 * Written by hand: the address pool of ../../tools/cidr.ts hands out addresses, not aligned blocks.
 */
import { Code, invalidArgument, NsmError } from "../../core/errors.js";
import { type Cidr, formatIp, IP_BITS, parseCidr, parsePrefixOrIp } from "../../tools/cidr.js";

/** A block of the network: first and last address. */
interface Block {
  readonly first: bigint;
  readonly last: bigint;
}

const overlaps = (a: Block, b: Block) => a.first <= b.last && b.first <= a.last;

/** Prefixes of one network, handed out as aligned blocks of one length. */
export class PrefixPool {
  readonly network: Cidr;
  readonly blockLength: number;
  readonly #taken = new Map<string, Block>();

  /** A bad network or a block length outside (network length, host bits] is InvalidArgument. */
  constructor(network: string, blockLength: number) {
    this.network = parseCidr(network);
    const bits = IP_BITS[this.network.family];
    if (!Number.isInteger(blockLength) || blockLength < this.network.prefixLength || blockLength > bits)
      throw invalidArgument(
        `prefix length ${blockLength} does not fit in ${this.network.text} (expected ${this.network.prefixLength}-${bits})`,
      );
    this.blockLength = blockLength;
  }

  /** The blocks handed out, as CIDR text. */
  get taken(): string[] {
    return [...this.#taken.keys()];
  }

  #size(): bigint {
    return 1n << BigInt(IP_BITS[this.network.family] - this.blockLength);
  }

  #text(first: bigint): string {
    return `${formatIp({ family: this.network.family, value: first })}/${this.blockLength}`;
  }

  /** The block `prefix` names, when it is one of this pool's (inside the network, of the block length). */
  #blockOf(prefix: string): Block | undefined {
    const c = parsePrefixOrIp(prefix);
    if (c.family !== this.network.family || c.prefixLength !== this.blockLength) return undefined;
    if (c.first < this.network.first || c.last > this.network.last) return undefined;
    return { first: c.first, last: c.last };
  }

  /**
   * Takes `wanted` when it is a free block of this pool, else the lowest free block outside
   * `exclude`. Returns the block as CIDR text. Bad prefixes are InvalidArgument.
   */
  allocate(wanted = "", exclude: readonly string[] = []): string {
    const excluded = exclude.map((p) => parsePrefixOrIp(p)).filter((c) => c.family === this.network.family);
    const busy: Block[] = [...this.#taken.values(), ...excluded];
    const own = wanted ? this.#blockOf(wanted) : undefined;
    if (own && !busy.some((b) => overlaps(b, own))) return this.#take(own);
    const block = this.#lowestFree(busy);
    if (!block)
      throw new NsmError(`no free /${this.blockLength} left in ${this.network.text}`, Code.ResourceExhausted, {
        reason: "pool-exhausted",
      });
    return this.#take(block);
  }

  /** The lowest aligned block not overlapping `busy`: jumps past each overlapping range. */
  #lowestFree(busy: readonly Block[]): Block | undefined {
    const size = this.#size();
    let first = this.network.first;
    while (first + size - 1n <= this.network.last) {
      const block = { first, last: first + size - 1n };
      const hit = busy
        .filter((b) => overlaps(b, block))
        .reduce<bigint | undefined>((end, b) => (end === undefined || b.last > end ? b.last : end), undefined);
      if (hit === undefined) return block;
      // The next aligned block after the end of what is in the way.
      first = ((hit + 1n + size - 1n) / size) * size;
    }
    return undefined;
  }

  #take(block: Block): string {
    const text = this.#text(block.first);
    this.#taken.set(text, block);
    return text;
  }

  /** Gives a block back; returns whether it was taken. */
  release(prefix: string): boolean {
    return this.#taken.delete(prefix);
  }
}
