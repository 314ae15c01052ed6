// SPDX-License-Identifier: Apache-2.0
/**
 * Label maps in the `NSM_LABELS` syntax: `k:v,k2:v2` (upstream decodes it with envconfig's map
 * decoder: pairs split on `,`, key and value on `:`). Surrounding spaces are trimmed; an empty
 * string is an empty map.
 */
import { invalidArgument } from "../core/errors.js";

/** Parses `k:v,k2:v2`. A pair without exactly one `:` or with an empty key is InvalidArgument. */
export function parseLabels(value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (value.trim() === "") return labels;
  for (const pair of value.split(",")) {
    const kv = pair.split(":");
    if (kv.length !== 2) {
      throw invalidArgument(`bad label "${pair}" in "${value}": expected key:value`, { reason: "bad-labels" });
    }
    const key = kv[0]!.trim();
    if (key === "") throw invalidArgument(`bad label "${pair}" in "${value}": empty key`, { reason: "bad-labels" });
    labels[key] = kv[1]!.trim();
  }
  return labels;
}

/** The inverse of {@link parseLabels}, keys sorted. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}:${labels[k]}`)
    .join(",");
}
