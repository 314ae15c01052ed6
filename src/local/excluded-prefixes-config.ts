// SPDX-License-Identifier: Apache-2.0
/**
 * The ConfigMap `excluded-prefixes-config` (namespace `default`, key
 * `excluded_prefixes_input.yaml`), which upstream's exclude-prefixes sidecar of every nsmgr
 * (cmd-exclude-prefixes-k8s) reads and writes to the node's excluded-prefixes file. The local
 * runtime has no sidecar: applying the ConfigMap writes its prefixes to every node's file
 * (./pod-files.ts), deleting it writes none. A ConfigMap whose key is not a list of CIDRs is
 * refused when the apply is planned, before anything changes.
 */
import { parseExcludedPrefixes } from "../sdk/networkservice/common/excludedprefixes/index.js";
import { LocalError } from "./errors.js";

/** The ConfigMap upstream's exclude-prefixes sidecar reads. */
export const EXCLUDED_PREFIXES_CONFIG = {
  namespace: "default",
  name: "excluded-prefixes-config",
  key: "excluded_prefixes_input.yaml",
} as const;

/** True for the ConfigMap `default/excluded-prefixes-config`. */
export function isExcludedPrefixesConfig(kind: string, namespace: string, name: string): boolean {
  return (
    kind === "ConfigMap" && namespace === EXCLUDED_PREFIXES_CONFIG.namespace && name === EXCLUDED_PREFIXES_CONFIG.name
  );
}

/** The prefixes of the ConfigMap's body (none without the key); a LocalError naming the field when bad. */
export function excludedPrefixesOf(body: Readonly<Record<string, unknown>>, at: string): string[] {
  const data = body.data as Record<string, unknown> | undefined;
  const text = data?.[EXCLUDED_PREFIXES_CONFIG.key];
  if (text === undefined || text === null) return [];
  try {
    return parseExcludedPrefixes(String(text));
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0];
    throw new LocalError(`${at}: data.${EXCLUDED_PREFIXES_CONFIG.key}: ${msg}`);
  }
}
