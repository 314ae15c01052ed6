// SPDX-License-Identifier: Apache-2.0
/**
 * Awareness groups (`NSM_AWARENESS_GROUPS` on the client, upstream `tools/awarenessgroups`): lists
 * of NSURLs, `[kernel://ns-1/nsm-1,kernel://ns-2/nsm-2],[kernel://ns-3/nsm-3]`, whose endpoints
 * know of each other (upstream example mutually-aware-nses: two endpoints handing out the same
 * 172.16.1.100/31, their traffic kept apart by policy routes).
 *
 * What a group changes, as upstream's excludedprefixes client does it: a client normally excludes
 * the prefixes of all its other connections from each new Request, so no two connections
 * overlap; the connections of one group exclude the prefixes of the connections outside the
 * group, not each other's, so they may overlap. This module is the parsing and the matching of a
 * connection to its group; the excluded-prefixes client element applies the rule.
 */
import type { NetworkServiceRequest } from "../../../../api/index.js";
import { invalidArgument } from "../../../core/errors.js";
import { parseNsUrl } from "../../../tools/nsurl.js";

/** One NSURL of a group, as compared: mechanism type, service, interface, labels. */
export interface AwarenessKey {
  readonly mechanismType: string;
  readonly networkService: string;
  readonly interfaceName: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The groups as parsed; each is a list of NSURL keys. */
export type AwarenessGroups = readonly (readonly AwarenessKey[])[];

/** Checks the bracket structure upstream's decoder accepts: `[…]` lists joined by `,`. */
function checkBrackets(value: string): void {
  if (!/^\[[^[\]]*\](,\[[^[\]]*\])*$/.test(value)) {
    throw invalidArgument(`awareness groups ${JSON.stringify(value)}: expected [nsurl,…],[nsurl,…]`);
  }
}

/** Parses `NSM_AWARENESS_GROUPS` (spaces ignored); "" is no groups. InvalidArgument naming the bad part. */
export function parseAwarenessGroups(text: string): AwarenessGroups {
  const value = text.replace(/\s+/g, "");
  if (value === "") return [];
  checkBrackets(value);
  return value
    .slice(1, -1)
    .split("],[")
    .map((list) =>
      list.split(",").map((item) => {
        if (item === "") throw invalidArgument(`awareness groups ${JSON.stringify(text)}: empty NSURL`);
        const u = parseNsUrl(item);
        return {
          mechanismType: u.mechanismType,
          networkService: u.networkService,
          interfaceName: u.interfaceName ?? "",
          labels: u.labels,
        };
      }),
    );
}

const sameLabels = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

const sameKey = (a: AwarenessKey, b: AwarenessKey) =>
  a.mechanismType === b.mechanismType &&
  a.networkService === b.networkService &&
  a.interfaceName === b.interfaceName &&
  sameLabels(a.labels, b.labels);

/** The NSURL a request stands for (upstream getNSURL): mechanism, service, interface, labels. */
export function requestAwarenessKey(req: NetworkServiceRequest): AwarenessKey {
  const conn = req.connection;
  const mechanism = conn?.mechanism ?? req.mechanismPreferences[0];
  return {
    mechanismType: (mechanism?.type ?? "").toUpperCase(),
    networkService: conn?.networkService ?? "",
    interfaceName: mechanism?.parameters.name ?? "",
    labels: { ...(conn?.labels ?? {}) },
  };
}

/** The index of the group the request's NSURL is in, or -1. */
export function awarenessGroupOf(req: NetworkServiceRequest, groups: AwarenessGroups): number {
  const key = requestAwarenessKey(req);
  return groups.findIndex((g) => g.some((k) => sameKey(k, key)));
}
