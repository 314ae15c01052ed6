// SPDX-License-Identifier: Apache-2.0
/**
 * NSURL: how a client names the network service it wants (upstream `sdk:pkg/tools/nsurl`).
 *
 * `<mechanism>://<network-service>[@<domain>]/<interface>?k1=v1&k2=v2`, e.g.
 * `kernel://icmp-responder/nsm-1`, `kernel://floating-vl3@my.cluster3/nsm-1?app=web`.
 * - mechanism type: the scheme in upper case, class LOCAL;
 * - network service: the host, or `service@domain` for interdomain;
 * - interface name: the last path segment (the mechanism's `name` parameter);
 * - labels: the query parameters, several values of one key joined with `,`.
 */
import type { Mechanism } from "../../api/gen/connection_pb.js";
import { Cls, LINUX_IF_MAX_LENGTH, MechanismType, newMechanism, Param } from "../../api/mechanisms.js";
import { invalidArgument } from "../core/errors.js";

export interface NsUrl {
  /** Upper-case mechanism type, e.g. `KERNEL`. */
  readonly mechanismType: string;
  /** Always LOCAL: an NSURL describes the client's own end. */
  readonly cls: typeof Cls.LOCAL;
  /** `service` or `service@domain`. */
  readonly networkService: string;
  /** The last path segment, if any. */
  readonly interfaceName: string | undefined;
  /** Query parameters; repeated keys joined with `,`. */
  readonly labels: Readonly<Record<string, string>>;
}

const bad = (text: string, why: string) =>
  invalidArgument(
    `bad network service URL "${text}": ${why} (expected <mechanism>://<service>[@domain]/<interface>?k=v)`,
    {
      reason: "bad-nsurl",
    },
  );

function decode(text: string, part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw bad(text, `cannot decode "${part}"`);
  }
}

/** Parses an NSURL. Anything malformed is InvalidArgument saying what is wrong. */
export function parseNsUrl(text: string): NsUrl {
  const s = text.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s);
  if (!m) throw bad(text, "missing <mechanism>:// scheme");
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw bad(text, "not a URL");
  }
  if (!url.hostname) throw bad(text, "no network service name");
  const user = url.username ? decode(text, url.username) : "";
  const host = decode(text, url.hostname);
  const segments = url.pathname.split("/");
  const last = segments.length > 1 ? decode(text, segments.at(-1)!) : "";
  const mechanismType = m[1]!.toUpperCase();
  if (mechanismType === MechanismType.KERNEL && last.length > LINUX_IF_MAX_LENGTH) {
    throw bad(text, `interface name "${last}" is longer than ${LINUX_IF_MAX_LENGTH} characters`);
  }
  const labels: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) labels[key] = url.searchParams.getAll(key).join(",");
  return {
    mechanismType,
    cls: Cls.LOCAL,
    networkService: user ? `${user}@${host}` : host,
    interfaceName: last || undefined,
    labels,
  };
}

/** The mechanism preference an NSURL asks for (with `name` when the URL has an interface). */
export function nsUrlMechanism(u: NsUrl): Mechanism {
  return newMechanism(u.cls, u.mechanismType, u.interfaceName ? { [Param.NAME]: u.interfaceName } : {});
}
