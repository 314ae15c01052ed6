// SPDX-License-Identifier: Apache-2.0
/**
 * Endpoint selection by labels (upstream `sdk:pkg/tools/matchutils`, spec §7.2 step 3).
 */
import type { NetworkService, NetworkServiceEndpoint } from "../../../../api/gen/registry_pb.js";

type Labels = Readonly<Record<string, string>>;

/** What Go's text/template prints for a missing map key. */
const NO_VALUE = "<no value>";

const action = /\{\{(.*?)\}\}/g;
const fieldRef = /^\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*$/;

/**
 * Evaluates a selector value as a Go template with the request labels as data. Only the
 * `{{.key}}` form is supported; a value with any other action, or with unbalanced braces, is
 * used literally (as upstream does when a template fails to parse or run). A key missing from
 * the labels prints `<no value>`, as in Go.
 */
export function processLabelTemplate(value: string, values: Labels): string {
  if (!value.includes("{{")) return value;
  let ok = true;
  const out = value.replace(action, (_whole, inner: string) => {
    const m = fieldRef.exec(inner);
    if (!m) {
      ok = false;
      return "";
    }
    const key = m[1]!;
    return Object.hasOwn(values, key) ? values[key]! : NO_VALUE;
  });
  if (!ok || out.includes("{{") || out.includes("}}")) return value;
  return out;
}

const get = (labels: Labels, key: string) => (Object.hasOwn(labels, key) ? labels[key]! : "");

/**
 * True if every `key: value` of `selector` is in `labels`; a selector value is compared as is
 * first, then as a template evaluated with `values` (upstream `matchutils.IsSubset`).
 */
export function isSubset(labels: Labels, selector: Labels, values: Labels): boolean {
  const keys = Object.keys(selector);
  if (Object.keys(labels).length < keys.length) return false;
  return keys.every((k) => {
    const have = get(labels, k);
    const want = selector[k]!;
    return have === want || have === processLabelTemplate(want, values);
  });
}

/** For each route of `match` in order, the endpoints whose labels for service `nsName` contain its destination selector. */
function routeCandidates(
  labels: Labels,
  nsName: string,
  match: NetworkService["matches"][number],
  nses: readonly NetworkServiceEndpoint[],
): NetworkServiceEndpoint[] {
  const candidates: NetworkServiceEndpoint[] = [];
  for (const route of match.routes) {
    for (const nse of nses) {
      const nseLabels = nse.networkServiceLabels[nsName]?.labels ?? {};
      if (isSubset(nseLabels, route.destinationSelector, labels)) candidates.push(nse);
    }
  }
  return candidates;
}

/**
 * The endpoints of `nses` that `ns.matches` select for a request with `labels`
 * (upstream `matchutils.MatchEndpoint`):
 * - no matches: every endpoint;
 * - otherwise the first match whose `source_selector` ⊆ labels decides: the endpoints whose
 *   labels for this service contain a route's `destination_selector` (for each route, in
 *   order), unless the match is `fallthrough` and found none (then the next match decides),
 *   or it has `metadata`, no routes and found none (then every endpoint);
 * - no match applies: none.
 */
export function matchEndpoint(
  labels: Labels,
  ns: NetworkService,
  nses: readonly NetworkServiceEndpoint[],
): NetworkServiceEndpoint[] {
  if (ns.matches.length === 0) return [...nses];
  for (const match of ns.matches) {
    if (!isSubset(labels, match.sourceSelector, labels)) continue;
    const candidates = routeCandidates(labels, ns.name, match, nses);
    if (match.fallthrough && candidates.length === 0) continue;
    if (match.metadata && match.routes.length === 0 && candidates.length === 0) return [...nses];
    return candidates;
  }
  return [];
}
