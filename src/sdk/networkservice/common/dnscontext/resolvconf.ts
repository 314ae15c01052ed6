// SPDX-License-Identifier: Apache-2.0
/**
 * The pod's resolv.conf while the client's DNS proxy serves it (upstream dnscontext client's
 * resolv.conf handling, in our own format).
 *
 * The file becomes: a marker line, `nameserver <proxy>`, `search` with the endpoints' search
 * domains before the original ones, the original `options`, then the original file with every line
 * prefixed by `#| `. The original is thus kept in the file itself: a restarted client (or `restore`)
 * finds it there, and never mistakes its own proxy for the original resolver.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const MARKER = "# nsm: the network service client's DNS proxy serves this pod; the original file follows, prefixed #|";
const KEPT = "#| ";

/** What the resolver reads from a resolv.conf. */
export interface ResolvConf {
  readonly nameservers: string[];
  readonly search: string[];
  readonly options: string[];
}

/** Parses resolv.conf text (`nameserver`, `search`/`domain`, `options`; the last search line wins). */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [key, ...values] = line.split(/\s+/);
    if (key === "nameserver" && values[0]) out.nameservers.push(values[0]);
    else if (key === "search" || key === "domain") out.search.splice(0, out.search.length, ...values);
    else if (key === "options") out.options.push(...values);
  }
  return out;
}

/** The original file inside one we wrote (or `text` itself when we did not write it). */
export function originalResolvConf(text: string): string {
  const lines = text.split("\n");
  if (lines[0] !== MARKER) return text;
  return lines
    .filter((l) => l.startsWith(KEPT))
    .map((l) => l.slice(KEPT.length))
    .join("\n");
}

/** The resolv.conf pointing at the proxy `nameserver`, with `searchDomains` first, keeping `original`. */
export function proxiedResolvConf(original: string, nameserver: string, searchDomains: readonly string[]): string {
  const parsed = parseResolvConf(original);
  const search = [...new Set([...searchDomains, ...parsed.search])];
  const lines = [MARKER, `nameserver ${nameserver}`];
  if (search.length > 0) lines.push(`search ${search.join(" ")}`);
  if (parsed.options.length > 0) lines.push(`options ${parsed.options.join(" ")}`);
  return `${[...lines, ...original.split("\n").map((l) => KEPT + l)].join("\n")}\n`;
}

/** Rewrites one resolv.conf file: `point()` at the proxy, `restore()` the original. */
export class ResolvConfFile {
  readonly path: string;
  /** The original content (read once, from the file or from what we kept in it). */
  readonly original: string;

  /** `seed`: the original when the file does not exist yet (e.g. the host's /etc/resolv.conf). */
  constructor(path: string, seed = "") {
    this.path = path;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      text = seed;
    }
    this.original = originalResolvConf(text);
  }

  /** The original resolver's settings. */
  parsed(): ResolvConf {
    return parseResolvConf(this.original);
  }

  point(nameserver: string, searchDomains: readonly string[]): void {
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(this.path, proxiedResolvConf(this.original, nameserver, searchDomains));
  }

  restore(): void {
    writeFileSync(this.path, this.original);
  }
}
