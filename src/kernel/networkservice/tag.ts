// SPDX-License-Identifier: Apache-2.0
/**
 * How a cross-connect's links are marked, so that a restarted forwarder can find them.
 *
 * Tag scheme (the link alias, `IFLA_IFALIAS`): `nsm:<side>:<connection id>`
 * - `side` is `client` for the end in the NSC's netns and `endpoint` for the end in the NSE's;
 * - `connection id` is the id of the connection at this forwarder (its own path segment id,
 *   `conn.id` inside the forwarder's server chain). updatepath keeps that id stable across
 *   refreshes, heals and a forwarder restart (a re-Request reuses the forwarder's segment), so
 *   the links of connection X are exactly `nsm:client:X` and `nsm:endpoint:X`.
 *
 * The id is everything after the second `:` (it may itself contain `:`); an alias is at most
 * 255 bytes, so ids up to 242 bytes fit. `ip -d link` shows the alias as `alias nsm:client:…`.
 */
import { invalidArgument } from "../../sdk/core/errors.js";
import type { KernelApi, LinkInfo, NetnsPath } from "../api.js";

/** Which end of a local cross-connect: in the client's (NSC) or the endpoint's (NSE) netns. */
export type XconnectSide = "client" | "endpoint";

/** The first characters of every cross-connect tag. */
export const XCONNECT_TAG_PREFIX = "nsm:";

/** Linux `IFALIASZ - 1`. */
const MAX_ALIAS_BYTES = 255;

/** The alias that marks `side` of connection `connectionId`: `nsm:client:<id>` / `nsm:endpoint:<id>`. */
export function xconnectTag(side: XconnectSide, connectionId: string): string {
  if (!connectionId) throw invalidArgument("the connection has no id: cannot tag its interfaces");
  const tag = `${XCONNECT_TAG_PREFIX}${side}:${connectionId}`;
  if (Buffer.byteLength(tag) > MAX_ALIAS_BYTES) {
    throw invalidArgument(`connection id is too long to tag an interface with it (${Buffer.byteLength(tag)} > 255)`);
  }
  return tag;
}

/** A parsed tag. */
export interface XconnectTag {
  side: XconnectSide;
  connectionId: string;
}

/** The side and connection id of a tag, or undefined if `alias` is not one of ours. */
export function parseXconnectTag(alias: string | undefined): XconnectTag | undefined {
  const m = alias === undefined ? null : /^nsm:(client|endpoint):(.+)$/s.exec(alias);
  return m ? { side: m[1] as XconnectSide, connectionId: m[2]! } : undefined;
}

/** A link carrying a cross-connect tag. */
export interface TaggedLink extends XconnectTag {
  link: LinkInfo;
}

/**
 * Every link of `netns` whose alias is a cross-connect tag, with the parsed side and connection
 * id (for reconciliation after a restart: adopt the live ones, delete the orphans).
 * Throws `NotFound` when the netns is gone.
 */
export async function listTaggedLinks(kernel: KernelApi, netns: NetnsPath): Promise<TaggedLink[]> {
  const out: TaggedLink[] = [];
  for (const link of await kernel.listLinks(netns)) {
    const tag = parseXconnectTag(link.alias);
    if (tag) out.push({ link, ...tag });
  }
  return out;
}
