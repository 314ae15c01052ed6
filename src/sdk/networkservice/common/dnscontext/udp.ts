// SPDX-License-Identifier: Apache-2.0
/**
 * UDP plumbing shared by the DNS proxy and the records server: binding a socket and one
 * query/answer exchange with a server. DNS messages are encoded and decoded by the `dns-packet`
 * library; nothing here reads the wire format by hand.
 */
import { createSocket, type Socket } from "node:dgram";
import { createServer, isIPv6, type Socket as NetSocket } from "node:net";
import dnsPacket from "dns-packet";
import type { DnsServer } from "./configs.js";

/** Binds a UDP socket on `address:port` (port 0: any) and resolves once it listens. */
export function bindUdp(address: string, port: number): Promise<Socket> {
  const socket = createSocket({ type: isIPv6(address) ? "udp6" : "udp4", reuseAddr: false });
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, address, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** Sends `query` to `server` from a fresh socket; resolves to the first reply, undefined on timeout or error. */
export function exchange(server: DnsServer, query: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  const socket = createSocket(server.family === 6 ? "udp6" : "udp4");
  return new Promise((resolve) => {
    const done = (reply: Buffer | undefined) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on("error", () => done(undefined));
    socket.on("message", (msg) => done(msg));
    socket.send(query, server.port, server.address, (err) => {
      if (err) done(undefined);
    });
  });
}

/** The decoded message, or undefined when `buf` is not a DNS message. */
export function decodeDns(buf: Buffer): dnsPacket.Packet | undefined {
  try {
    return dnsPacket.decode(buf);
  } catch {
    return undefined;
  }
}

/** Response codes (RFC 1035 §4.1.1) as `dns-packet` puts them in the low bits of `flags`. */
export const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

/** An answer-less response to `query` with response code `rcode`. */
export function emptyReply(query: dnsPacket.Packet, rcode: number): Buffer {
  return dnsPacket.encode({
    type: "response",
    id: query.id ?? 0,
    flags: ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | rcode,
    questions: query.questions ?? [],
    answers: [],
  });
}

/** A listening TCP DNS server. */
export interface TcpDnsServer {
  /** Stops listening and drops open connections. */
  stop(): Promise<void>;
}

/** Feeds `answer` every length-prefixed message on `socket` and writes back its replies. */
function serveConnection(socket: NetSocket, answer: (msg: Buffer) => Promise<Buffer | undefined>): void {
  let pending = Buffer.alloc(0);
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on("error", () => socket.destroy());
  socket.on("data", (data) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
      pending = pending.subarray(2 + msg.length);
      void answer(msg).then((reply) => {
        if (!reply || socket.destroyed) return;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([length, reply]));
      });
    }
  });
}

/**
 * Serves DNS over TCP on `address:port` (RFC 1035 §4.2.2: each message preceded by its 2-byte
 * length), answering each message with `answer`; resolves once it listens.
 */
export function serveTcp(
  address: string,
  port: number,
  answer: (msg: Buffer) => Promise<Buffer | undefined>,
): Promise<TcpDnsServer> {
  const open = new Set<NetSocket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    serveConnection(socket, answer);
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of open) s.destroy();
    });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => {
      server.off("error", reject);
      resolve({ stop });
    });
  });
}
