// SPDX-License-Identifier: Apache-2.0
/**
 * excludedprefixes (server): adds the node's excluded prefixes to every request (upstream
 * `excludedprefixes.NewServer`, fed by cmd-exclude-prefixes-k8s).
 *
 * Purpose: endpoints must not hand out addresses the cluster already uses (pod and service CIDRs,
 * prefixes an operator lists in the `excluded-prefixes-config` ConfigMap). A sidecar writes them
 * to a YAML file (`prefixes: [a, b]`, default
 * `/var/lib/networkservicemesh/config/excluded_prefixes.yaml`); this element reads that file and
 * appends its prefixes (without duplicates) to `ip_context.excluded_prefixes`, where the
 * endpoints' IPAM skips them.
 * Chain placement: the nsmgr chain, after discoverforwarder/netsvcmonitor, before connect.
 * Per-connection state: none. The file is re-read when its size, mtime or inode changed (a stat
 * per Request, no watcher to leak); a missing file means no prefixes.
 * Options: {@link ExcludedPrefixesServerOptions}.
 * Failure behaviour: a file that does not parse, or holds an entry that is not a prefix, is logged
 * and the last good prefixes stay in force (as upstream keeps its last pool).
 */
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { ConnectionContextSchema, ConnectionSchema, clone, create, IPContextSchema } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { Logger } from "../../../core/logger.js";
import { requestConnection } from "../../../core/request.js";
import { PrefixSet } from "../../../tools/cidr.js";

/** Where upstream's exclude-prefixes sidecar writes the node's excluded prefixes. */
export const EXCLUDED_PREFIXES_FILE = "/var/lib/networkservicemesh/config/excluded_prefixes.yaml";

/** Options of {@link excludedPrefixesServer}. */
export interface ExcludedPrefixesServerOptions {
  /** The YAML file (`prefixes: [...]`). @default {@link EXCLUDED_PREFIXES_FILE} */
  readonly file?: string;
  /** Where a bad file is reported. */
  readonly log?: Logger;
}

/** The `yaml` package, loaded when a file is first read (~70 modules a role without the file does not need). */
let yaml: typeof import("yaml") | undefined;

/** The prefixes of an excluded-prefixes YAML document; throws a one-line Error when it is not one. */
export function parseExcludedPrefixes(text: string): string[] {
  yaml ??= createRequire(import.meta.url)("yaml") as typeof import("yaml");
  const doc: unknown = yaml.parse(text);
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error("expected a mapping with `prefixes`");
  const prefixes = (doc as { prefixes?: unknown }).prefixes ?? [];
  if (!Array.isArray(prefixes) || prefixes.some((p) => typeof p !== "string"))
    throw new Error("`prefixes` must be a list of CIDR strings");
  new PrefixSet(prefixes as string[]); // validates every entry
  return prefixes as string[];
}

/** Reads `file` again only when it changed; keeps the last good content on a bad one. */
function fileSource(file: string, log: Logger | undefined): () => readonly string[] {
  let stamp = "";
  let prefixes: readonly string[] = [];
  return () => {
    let now: string;
    try {
      const st = statSync(file);
      now = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      now = "absent";
    }
    if (now === stamp) return prefixes;
    stamp = now;
    if (now === "absent") {
      prefixes = [];
      return prefixes;
    }
    try {
      prefixes = parseExcludedPrefixes(readFileSync(file, "utf8"));
      log?.info({ file, prefixes }, "excluded prefixes loaded");
    } catch (err) {
      log?.error({ file, err: (err as Error).message }, "bad excluded prefixes file, keeping the last good prefixes");
    }
    return prefixes;
  };
}

/** Adds the prefixes of the node's excluded-prefixes file to every request (see the module doc). */
export function excludedPrefixesServer(options: ExcludedPrefixesServerOptions = {}): NetworkServiceElement {
  const current = fileSource(options.file ?? EXCLUDED_PREFIXES_FILE, options.log);
  return {
    name: "excludedprefixes",
    async request(req, ctx, next) {
      const prefixes = current();
      const requested = requestConnection(req);
      const have = requested.context?.ipContext?.excludedPrefixes ?? [];
      const missing = prefixes.filter((p) => !have.includes(p));
      if (missing.length === 0) return next.request(req, ctx);
      const connection = clone(ConnectionSchema, requested);
      connection.context ??= create(ConnectionContextSchema);
      connection.context.ipContext ??= create(IPContextSchema);
      connection.context.ipContext.excludedPrefixes.push(...missing);
      return next.request({ ...req, connection }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
