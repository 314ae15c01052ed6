// SPDX-License-Identifier: Apache-2.0
/**
 * The names a vL3 endpoint answers for: its clients' names (from the DNS templates) and their
 * addresses, kept per connection so a Close removes exactly what that connection added.
 */
import { addressOf } from "../../../tools/cidr.js";

/** One name and the address it stands for. */
export interface DnsRecord {
  readonly name: string;
  readonly address: string;
}

/** Names → addresses, per connection. */
export class Vl3DnsRecords {
  readonly #byConnection = new Map<string, DnsRecord[]>();

  /** Replaces the records of connection `id`. Names are matched without case; addresses without length. */
  set(id: string, records: readonly DnsRecord[]): void {
    const clean = records.map((r) => ({
      name: r.name.toLowerCase(),
      address: r.address.split("/")[0]!,
    }));
    if (clean.length === 0) this.#byConnection.delete(id);
    else this.#byConnection.set(id, clean);
  }

  delete(id: string): void {
    this.#byConnection.delete(id);
  }

  /** The addresses of `name` (fully qualified, any case) of one family. */
  lookup(name: string, family: "ipv4" | "ipv6"): string[] {
    const n = name.toLowerCase().endsWith(".") ? name.toLowerCase() : `${name.toLowerCase()}.`;
    const out = new Set<string>();
    for (const records of this.#byConnection.values())
      for (const r of records) if (r.name === n && addressOf(r.address)?.family === family) out.add(r.address);
    return [...out];
  }

  /** Every record (for logs and tests). */
  get all(): DnsRecord[] {
    return [...this.#byConnection.values()].flat();
  }
}
