// SPDX-License-Identifier: Apache-2.0
/**
 * The client's local DNS proxy (upstream cmd-nsc's local DNS server: fanout, then the original
 * resolver).
 *
 * Listens on UDP (default `127.0.0.1:53` in the pod's network namespace). Each query goes at once
 * to every DNS server the client's connections brought (a {@link DnsConfigStore}); the first
 * positive answer (NOERROR with at least one record) is returned. When none answers positively in
 * time, the query goes to the original resolver's servers, one after the other, and the first
 * reply is returned as it is. With no reply at all, the client gets a negative answer from an
 * endpoint server if there was one, else SERVFAIL. Clients reach it over UDP and TCP on the same
 * port; it asks the servers over UDP (a truncated answer is passed on as it is).
 */
import type { Socket } from "node:dgram";
import type { Logger } from "../../../core/logger.js";
import type { DnsConfigStore, DnsServer } from "./configs.js";
import { bindUdp, decodeDns, emptyReply, exchange, RCODE, serveTcp, type TcpDnsServer } from "./udp.js";

/** Options of {@link DnsProxy}. */
export interface DnsProxyOptions {
  /** The endpoints' DNS configs. */
  readonly store: DnsConfigStore;
  /** The original resolver's servers (from the pod's resolv.conf before it was pointed at us). */
  readonly fallback: readonly DnsServer[];
  /** @default "127.0.0.1" */
  readonly address?: string;
  /** 0 picks a free port (tests). @default 53 */
  readonly port?: number;
  /** How long to wait for each server. @default 2000 */
  readonly timeoutMs?: number;
  readonly log: Logger;
}

function positive(reply: Buffer | undefined): boolean {
  const p = reply && decodeDns(reply);
  return !!p && ((p.flags ?? 0) & 15) === RCODE.NOERROR && (p.answers?.length ?? 0) > 0;
}

/** The first positive reply of all `servers`, asked at once; or the first other reply; or undefined. */
async function fanOut(servers: readonly DnsServer[], query: Buffer, timeoutMs: number) {
  let negative: Buffer | undefined;
  const found = await new Promise<Buffer | undefined>((resolve) => {
    let pending = servers.length;
    if (pending === 0) resolve(undefined);
    for (const server of servers) {
      void exchange(server, query, timeoutMs).then((reply) => {
        if (positive(reply)) resolve(reply);
        else negative ??= reply;
        if (--pending === 0) resolve(undefined);
      });
    }
  });
  return { found, negative };
}

/** A UDP DNS proxy: endpoints' servers first, then the original resolver (see the module doc). */
export class DnsProxy {
  readonly #options: DnsProxyOptions;
  #socket: Socket | undefined;
  #tcp: TcpDnsServer | undefined;

  constructor(options: DnsProxyOptions) {
    this.#options = options;
  }

  /** Binds the socket; resolves to the address and port it listens on. */
  async start(): Promise<{ address: string; port: number }> {
    const { address = "127.0.0.1", port = 53 } = this.#options;
    const socket = await bindUdp(address, port);
    socket.on("message", (msg, rinfo) => {
      void this.answer(msg).then((reply) => {
        if (reply) socket.send(reply, rinfo.port, rinfo.address);
      });
    });
    socket.on("error", (err) => this.#options.log.warn({ err: err.message }, "DNS proxy socket error"));
    this.#socket = socket;
    const bound = socket.address();
    try {
      this.#tcp = await serveTcp(bound.address, bound.port, (msg) => this.answer(msg));
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#options.log.info({ address: bound.address, port: bound.port }, "DNS proxy listening");
    return { address: bound.address, port: bound.port };
  }

  /** The reply to one query message (undefined: not a query, dropped). */
  async answer(msg: Buffer): Promise<Buffer | undefined> {
    const query = decodeDns(msg);
    if (query?.type !== "query") return undefined;
    const { store, fallback, timeoutMs = 2000, log } = this.#options;
    const name = query.questions?.[0]?.name;
    const { found, negative } = await fanOut(store.servers(), msg, timeoutMs);
    if (found) {
      log.debug({ name }, "answered by an endpoint's DNS server");
      return found;
    }
    for (const server of fallback) {
      const reply = await exchange(server, msg, timeoutMs);
      if (reply) {
        log.debug({ name, server: server.address }, "answered by the original resolver");
        return reply;
      }
    }
    return negative ?? emptyReply(query, RCODE.SERVFAIL);
  }

  /** Stops listening. */
  async close(): Promise<void> {
    const socket = this.#socket;
    const tcp = this.#tcp;
    this.#socket = undefined;
    this.#tcp = undefined;
    await tcp?.stop();
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
