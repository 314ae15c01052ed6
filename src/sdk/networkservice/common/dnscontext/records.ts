// SPDX-License-Identifier: Apache-2.0
/**
 * A tiny authoritative DNS server answering A and AAAA queries from a fixed table (what an
 * endpoint's DNS sidecar does in upstream's dns example, where CoreDNS serves
 * `my.coredns.service`). Names are matched case-insensitively, with or without the trailing dot;
 * a known name without a record of the asked type gets NOERROR without answers, an unknown name
 * NXDOMAIN.
 */
import type { Socket } from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import dnsPacket from "dns-packet";
import { bindUdp, decodeDns, emptyReply, RCODE } from "./udp.js";

/** name → addresses (IPv4 and/or IPv6). */
export type DnsRecords = Readonly<Record<string, readonly string[]>>;

/** `name=ip[;ip],name2=ip` (as `NSM_DNS_RECORDS` holds them); throws a one-line Error on a bad entry. */
export function parseDnsRecords(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of text
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [name, ips] = entry.split("=");
    const addrs = (ips ?? "").split(";").filter(Boolean);
    if (!name || addrs.length === 0) throw new Error(`"${entry}" is not name=ip`);
    for (const ip of addrs)
      if (!isIPv4(ip) && !isIPv6(ip)) throw new Error(`"${ip}" in "${entry}" is not an IP address`);
    out[canonical(name)] = addrs;
  }
  return out;
}

function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** The reply to one query from `records` (undefined: not a query). */
export function answerFromRecords(records: DnsRecords, msg: Buffer): Buffer | undefined {
  const query = decodeDns(msg);
  if (query?.type !== "query") return undefined;
  const question = query.questions?.[0];
  const known = question && records[canonical(question.name)];
  if (!question || !known) return emptyReply(query, RCODE.NXDOMAIN);
  const wanted = question.type === "A" ? isIPv4 : question.type === "AAAA" ? isIPv6 : () => false;
  const answers = known.filter(wanted).map((data) => ({
    type: question.type as "A" | "AAAA",
    name: question.name,
    ttl: 5,
    data,
  }));
  return dnsPacket.encode({
    type: "response",
    id: query.id ?? 0,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED),
    questions: [question],
    answers,
  });
}

/** Serves `records` on UDP `address:port` until the returned socket is closed. */
export async function serveDnsRecords(records: DnsRecords, address: string, port: number): Promise<Socket> {
  const socket = await bindUdp(address, port);
  socket.on("message", (msg, rinfo) => {
    const reply = answerFromRecords(records, msg);
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  return socket;
}
