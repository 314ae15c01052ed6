// SPDX-License-Identifier: Apache-2.0
/**
 * DNS configs as they travel in `DNSContext`: parsing upstream's `NSM_DNS_CONFIGS` (a JSON array
 * of DNSConfig, field names as in the proto or in lowerCamel), comparing them, and the store that
 * a client's connections fill and its DNS proxy reads.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { clone, create, type DNSConfig, DNSConfigSchema } from "../../../../api/index.js";
import { parseIp } from "../../../tools/cidr.js";

/**
 * `NSM_DNS_CONFIGS`: `[{"dns_server_ips": ["172.16.1.100"], "search_domains": ["my.coredns.service"]}]`.
 * Throws a one-line Error naming the problem (bad JSON, not an array, an unknown field, a server
 * that is not an address).
 */
export function parseDnsConfigs(text: string): DNSConfig[] {
  if (text.trim() === "") return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(json)) throw new Error("expected a JSON array of DNS configs");
  return json.map((item, i) => {
    let config: DNSConfig;
    try {
      config = fromJson(DNSConfigSchema, item as JsonValue);
    } catch (err) {
      throw new Error(`config ${i}: ${(err as Error).message}`);
    }
    for (const server of config.dnsServerIps) {
      try {
        parseServer(server);
      } catch {
        throw new Error(`config ${i}: dns server "${server}" is not an IP address (or IP:port)`);
      }
    }
    return config;
  });
}

/** A DNS server: `1.2.3.4`, `1.2.3.4:5353`, `fd00::1` or `[fd00::1]:5353`; the port defaults to 53. */
export interface DnsServer {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Parses a `dns_server_ips` entry; throws on anything else. */
export function parseServer(text: string): DnsServer {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4port = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text);
  const [address, port] = bracketed
    ? [bracketed[1]!, bracketed[2]]
    : v4port
      ? [v4port[1]!, v4port[2]]
      : [text, undefined];
  const ip = parseIp(address);
  const p = port === undefined ? 53 : Number(port);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port in "${text}"`);
  return { address, port: p, family: ip.family === "ipv4" ? 4 : 6 };
}

/** True if both configs list the same servers and search domains. */
export function sameDnsConfig(a: DNSConfig, b: DNSConfig): boolean {
  const same = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return same(a.dnsServerIps, b.dnsServerIps) && same(a.searchDomains, b.searchDomains);
}

/** A client's DNS configs per connection id; `onChange` listeners hear every change. */
export class DnsConfigStore {
  readonly #byConnection = new Map<string, DNSConfig[]>();
  readonly #listeners = new Set<() => void>();

  set(connectionId: string, configs: readonly DNSConfig[]): void {
    const previous = this.#byConnection.get(connectionId) ?? [];
    const unchanged = previous.length === configs.length && previous.every((c, i) => sameDnsConfig(c, configs[i]!));
    if (unchanged && this.#byConnection.has(connectionId)) return;
    this.#byConnection.set(
      connectionId,
      configs.map((c) => clone(DNSConfigSchema, c)),
    );
    this.#changed();
  }

  delete(connectionId: string): void {
    if (this.#byConnection.delete(connectionId)) this.#changed();
  }

  /** Every config of every connection, duplicates removed, in connection order. */
  all(): DNSConfig[] {
    const out: DNSConfig[] = [];
    for (const configs of this.#byConnection.values())
      for (const c of configs) if (!out.some((o) => sameDnsConfig(o, c))) out.push(c);
    return out;
  }

  /** The servers of every config, each once. */
  servers(): DnsServer[] {
    const seen = new Set<string>();
    const out: DnsServer[] = [];
    for (const c of this.all())
      for (const s of c.dnsServerIps) {
        if (seen.has(s)) continue;
        seen.add(s);
        out.push(parseServer(s));
      }
    return out;
  }

  /** The search domains of every config, each once. */
  searchDomains(): string[] {
    return [...new Set(this.all().flatMap((c) => c.searchDomains))];
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const l of this.#listeners) l();
  }
}

/** A fresh DNSConfig (for tests and callers building configs by hand). */
export function dnsConfig(servers: readonly string[], searchDomains: readonly string[] = []): DNSConfig {
  return create(DNSConfigSchema, { dnsServerIps: [...servers], searchDomains: [...searchDomains] });
}
