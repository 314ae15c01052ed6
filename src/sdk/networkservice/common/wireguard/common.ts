// SPDX-License-Identifier: Apache-2.0
/** WireGuard parameter rules: key format and a pool of per-connection UDP ports. */
import { type Mechanism, Param } from "../../../../api/index.js";
import { Code, invalidArgument, NsmError } from "../../../core/errors.js";
import { tryParseIp } from "../../../tools/cidr.js";

/** Length of a raw Curve25519 key. */
export const WIREGUARD_KEY_BYTES = 32;

/** True for the base64 form of a 32-byte key (what `wg` prints and the mechanism parameters carry). */
export function isWireguardKey(text: string | undefined): text is string {
  if (typeof text !== "string" || text.length !== 44) return false;
  const raw = Buffer.from(text, "base64");
  return raw.length === WIREGUARD_KEY_BYTES && raw.toString("base64") === text;
}

/**
 * UDP ports handed out one per connection: every WireGuard tunnel of the userspace data plane
 * is its own process with its own socket, so two tunnels on a node cannot share a port.
 */
export interface PortPool {
  /** The port `owner` holds, taking the lowest free one first if it holds none. */
  acquire(owner: string): number;
  /** The port `owner` holds, if any. */
  heldBy(owner: string): number | undefined;
  /** Frees what `owner` holds. */
  release(owner: string): void;
  /**
   * Makes `owner` hold `port` (dropping what it held): a forwarder restarted after a crash gives
   * each connection of its earlier life back the port its still-running wireguard-go listens on.
   * False, changing nothing, when the port is outside the range or another owner holds it.
   */
  reserve(owner: string, port: number): boolean;
  /** The first port and how many there are. */
  readonly first: number;
  readonly count: number;
  /** How many are held. */
  readonly size: number;
}

class Pool implements PortPool {
  readonly #byOwner = new Map<string, number>();
  readonly #byPort = new Map<number, string>();

  constructor(
    readonly first: number,
    readonly count: number,
  ) {}

  get size(): number {
    return this.#byPort.size;
  }

  acquire(owner: string): number {
    const mine = this.#byOwner.get(owner);
    if (mine !== undefined) return mine;
    for (let port = this.first; port < this.first + this.count; port++) {
      if (this.#byPort.has(port)) continue;
      this.#hold(owner, port);
      return port;
    }
    throw new NsmError(`all ${this.count} WireGuard ports from ${this.first} are in use`, Code.ResourceExhausted, {
      reason: "no-port",
    });
  }

  reserve(owner: string, port: number): boolean {
    if (!Number.isInteger(port) || port < this.first || port >= this.first + this.count) return false;
    const holder = this.#byPort.get(port);
    if (holder !== undefined) return holder === owner;
    this.release(owner);
    this.#hold(owner, port);
    return true;
  }

  heldBy(owner: string): number | undefined {
    return this.#byOwner.get(owner);
  }

  release(owner: string): void {
    const port = this.#byOwner.get(owner);
    if (port === undefined) return;
    this.#byOwner.delete(owner);
    this.#byPort.delete(port);
  }

  #hold(owner: string, port: number): void {
    this.#byOwner.set(owner, port);
    this.#byPort.set(port, owner);
  }
}

/** A pool of `count` ports from `first` (both checked: the range must lie within 1 … 65535). */
export function createPortPool(first: number, count: number): PortPool {
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 1 || count < 1 || first + count - 1 > 0xffff) {
    throw new NsmError(`invalid port range: ${count} ports from ${first}`, Code.InvalidArgument);
  }
  return new Pool(first, count);
}

/** What is wrong with the peer's half of a WIREGUARD answer, if anything. */
export function checkPeerHalf(m: Mechanism, side: "src" | "dst"): NsmError | undefined {
  const p = m.parameters;
  const ip = side === "src" ? Param.SRC_IP : Param.DST_IP;
  const port = side === "src" ? Param.SRC_PORT : Param.DST_PORT;
  const key = side === "src" ? Param.SRC_PUBLIC_KEY : Param.DST_PUBLIC_KEY;
  if (!tryParseIp(p[ip] ?? ""))
    return invalidArgument(`WIREGUARD mechanism: ${ip} ${JSON.stringify(p[ip])} is not an IP address`);
  const n = Number(p[port]);
  if (!/^\d{1,5}$/.test(p[port] ?? "") || n < 1 || n > 0xffff) {
    return invalidArgument(`WIREGUARD mechanism: ${port} ${JSON.stringify(p[port])} is not a UDP port`);
  }
  if (!isWireguardKey(p[key])) return invalidArgument(`WIREGUARD mechanism: ${key} is not a base64 32-byte key`);
  return undefined;
}
