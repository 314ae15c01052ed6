// SPDX-License-Identifier: Apache-2.0
/**
 * The vL3 endpoint's DNS server (UDP, port 53 of its netns; upstream vl3dns serves on the
 * endpoint's vL3 address with a fan-out to the other endpoints). A/AAAA questions for names of
 * its own clients are answered from {@link Vl3DnsRecords}; others are asked of every peer
 * endpoint (their vL3 addresses, port 53) and the first answer with addresses is relayed. A
 * question that comes from a peer is answered from the records only, so questions never loop.
 * Anything else (other types, nothing found, a malformed packet) is NXDOMAIN or dropped.
 * Packets are encoded with the dns-packet library.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import * as packet from "dns-packet";
import type { Logger } from "../../../core/logger.js";
import type { Vl3DnsRecords } from "./records.js";

/** Options of {@link serveVl3Dns}. */
export interface Vl3DnsOptions {
  readonly records: Vl3DnsRecords;
  /** The peers' vL3 addresses, asked for names this endpoint does not know. */
  readonly peers: () => readonly string[];
  /** @default 53 */
  readonly port?: number;
  /** @default "0.0.0.0" */
  readonly host?: string;
  /** How long a peer may take to answer. @default 500 */
  readonly peerTimeoutMs?: number;
  readonly log: Logger;
}

/** A running DNS server. */
export interface Vl3Dns {
  readonly port: number;
  close(): Promise<void>;
}

type Answer = packet.Answer & { data: string };

/** Asks one peer; resolves its answers (empty on timeout or error). */
function askPeer(peer: string, port: number, question: packet.Question, timeoutMs: number): Promise<Answer[]> {
  return new Promise((resolve) => {
    const sock = createSocket(peer.includes(":") ? "udp6" : "udp4");
    const done = (answers: Answer[]) => {
      clearTimeout(timer);
      sock.close();
      resolve(answers);
    };
    const timer = setTimeout(() => done([]), timeoutMs);
    sock.on("error", () => done([]));
    sock.on("message", (msg) => {
      try {
        done((packet.decode(msg).answers ?? []) as Answer[]);
      } catch {
        done([]);
      }
    });
    const query = packet.encode({ type: "query", id: 1, flags: packet.RECURSION_DESIRED, questions: [question] });
    sock.send(query, port, peer);
  });
}

/** The answers for one question: local records, else (unless asked by a peer) the peers'. */
async function answersFor(o: Vl3DnsOptions, q: packet.Question, fromPeer: boolean): Promise<Answer[]> {
  if (q.type !== "A" && q.type !== "AAAA") return [];
  const local = o.records.lookup(q.name, q.type === "A" ? "ipv4" : "ipv6");
  if (local.length > 0) return local.map((data) => ({ name: q.name, type: q.type, ttl: 10, data }) as Answer);
  if (fromPeer) return [];
  const port = o.port ?? 53;
  const all = await Promise.all(o.peers().map((p) => askPeer(p, port, q, o.peerTimeoutMs ?? 500)));
  return all.find((a) => a.length > 0) ?? [];
}

async function handle(o: Vl3DnsOptions, sock: Socket, msg: Buffer, from: RemoteInfo): Promise<void> {
  let query: packet.DecodedPacket;
  try {
    query = packet.decode(msg);
  } catch {
    return;
  }
  const fromPeer = o.peers().includes(from.address);
  const answers = (await Promise.all((query.questions ?? []).map((q) => answersFor(o, q, fromPeer)))).flat();
  const response = packet.encode({
    type: "response",
    id: query.id,
    flags: packet.AUTHORITATIVE_ANSWER | (answers.length === 0 ? 3 : 0),
    questions: query.questions,
    answers,
  });
  sock.send(response, from.port, from.address);
  o.log.debug({ from: from.address, questions: query.questions?.map((q) => q.name), answers: answers.length }, "DNS");
}

/** Starts the server; resolves once it listens. */
export function serveVl3Dns(o: Vl3DnsOptions): Promise<Vl3Dns> {
  const sock = createSocket("udp4");
  sock.on("message", (msg, from) => {
    handle(o, sock, msg, from).catch((err) => o.log.warn({ err: String(err) }, "DNS answer failed"));
  });
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(o.port ?? 53, o.host ?? "0.0.0.0", () => {
      sock.off("error", reject);
      sock.on("error", (err) => o.log.warn({ err: String(err) }, "DNS socket error"));
      resolve({
        port: sock.address().port,
        close: () => new Promise<void>((r) => sock.close(() => r())),
      });
    });
  });
}
