// SPDX-License-Identifier: Apache-2.0
/**
 * The forwarder's pool of WireGuard UDP ports (the sdk's `PortPool` contract), plus what a
 * restarted forwarder needs: `reserve()` gives a connection of an earlier life back the very port
 * its still-running wireguard-go listens on. Without it, the lowest free port would go to the
 * first connection refreshed after the restart, although another connection's wireguard-go may
 * still hold it (the bind fails, EADDRINUSE).
 */
import { Code, NsmError } from "../../sdk/core/errors.js";
import type { PortPool } from "../../sdk/networkservice/common/wireguard/index.js";

/** A {@link PortPool} that can also hand a chosen port to an owner. */
export interface ReservablePortPool extends PortPool {
  /**
   * Makes `owner` hold `port` (dropping what it held). False, changing nothing, when the port is
   * outside the range or another owner holds it.
   */
  reserve(owner: string, port: number): boolean;
}

class Pool implements ReservablePortPool {
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

/** A pool of `count` ports from `first`; InvalidArgument unless the range lies within 1 … 65535. */
export function createReservablePortPool(first: number, count: number): ReservablePortPool {
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 1 || count < 1 || first + count - 1 > 0xffff) {
    throw new NsmError(`invalid port range: ${count} ports from ${first}`, Code.InvalidArgument);
  }
  return new Pool(first, count);
}
