// SPDX-License-Identifier: Apache-2.0
/**
 * How a cross-connect's links are marked, so that a restarted forwarder can find them.
 *
 * Tag scheme (the link alias, `IFLA_IFALIAS`): `nsm:<side>:<owner>:<connection id>`
 * - `side` is `client` for the end in the NSC's netns and `endpoint` for the end in the NSE's;
 * - `owner` is the name of the forwarder that made the link (`NSM_NAME`, stable across restarts),
 *   with `%` and `:` percent-encoded. Several forwarders may share one kernel (the local
 *   multi-node runtime): a forwarder re-adopts and sweeps only the links it owns;
 * - `connection id` is the id of the connection at this forwarder (its own path segment id,
 *   `conn.id` inside the forwarder's server chain). updatepath keeps that id stable across
 *   refreshes, heals and a forwarder restart (a re-Request reuses the forwarder's segment), so
 *   the links of connection X made by forwarder F are exactly `nsm:client:F:X` and
 *   `nsm:endpoint:F:X`.
 *
 * The id is everything after the third `:` (it may itself contain `:`); an alias is at most 255
 * bytes. `ip -d link` shows the alias as `alias nsm:client:…`. Aliases of the earlier form
 * `nsm:<side>:<id>` (no owner) are not tags: nobody adopts or sweeps them.
 */
import { invalidArgument } from "../../../sdk/core/errors.js";
import type { KernelApi, LinkInfo, NetnsPath } from "../../api.js";

/** Which end of a local cross-connect: in the client's (NSC) or the endpoint's (NSE) netns. */
export type XconnectSide = "client" | "endpoint";

/** The first characters of every cross-connect tag. */
export const XCONNECT_TAG_PREFIX = "nsm:";

/** The owner of links tagged by elements built without one (`NSM_NAME`'s default). */
export const DEFAULT_TAG_OWNER = "forwarder";

/** Linux `IFALIASZ - 1`. */
const MAX_ALIAS_BYTES = 255;

const encodeOwner = (owner: string) => owner.replaceAll("%", "%25").replaceAll(":", "%3A");
const decodeOwner = (text: string) => text.replaceAll(/%(25|3A)/gi, (_, code: string) => (code === "25" ? "%" : ":"));

/** Throws InvalidArgument unless `owner` can be part of a tag (non-empty). */
export function checkTagOwner(owner: string): void {
  if (typeof owner !== "string" || owner === "") throw invalidArgument("the tag owner (forwarder name) is empty");
}

/**
 * The alias that marks `side` of connection `connectionId` made by `owner`:
 * `nsm:client:<owner>:<id>` / `nsm:endpoint:<owner>:<id>`.
 */
export function xconnectTag(side: XconnectSide, connectionId: string, owner: string = DEFAULT_TAG_OWNER): string {
  if (!connectionId) throw invalidArgument("the connection has no id: cannot tag its interfaces");
  checkTagOwner(owner);
  const tag = `${XCONNECT_TAG_PREFIX}${side}:${encodeOwner(owner)}:${connectionId}`;
  if (Buffer.byteLength(tag) > MAX_ALIAS_BYTES) {
    throw invalidArgument(
      `connection id and forwarder name are too long to tag an interface with them (${Buffer.byteLength(tag)} > 255)`,
    );
  }
  return tag;
}

/** A parsed tag. */
export interface XconnectTag {
  side: XconnectSide;
  /** The forwarder that made the link. */
  owner: string;
  connectionId: string;
}

/** The side, owner and connection id of a tag, or undefined if `alias` is not a tag. */
export function parseXconnectTag(alias: string | undefined): XconnectTag | undefined {
  const m = alias === undefined ? null : /^nsm:(client|endpoint):([^:]+):(.+)$/s.exec(alias);
  return m ? { side: m[1] as XconnectSide, owner: decodeOwner(m[2]!), connectionId: m[3]! } : undefined;
}

/** A link carrying a cross-connect tag. */
export interface TaggedLink extends XconnectTag {
  link: LinkInfo;
}

/**
 * Every link of `netns` whose alias is a cross-connect tag (of `owner` only, when given), with
 * the parsed tag (for reconciliation after a restart: adopt the live ones, delete the orphans).
 * Throws `NotFound` when the netns is gone.
 */
export async function listTaggedLinks(kernel: KernelApi, netns: NetnsPath, owner?: string): Promise<TaggedLink[]> {
  const out: TaggedLink[] = [];
  for (const link of await kernel.listLinks(netns)) {
    const tag = parseXconnectTag(link.alias);
    if (tag && (owner === undefined || tag.owner === owner)) out.push({ link, ...tag });
  }
  return out;
}
