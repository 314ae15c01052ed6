// SPDX-License-Identifier: Apache-2.0
/**
 * The vL3 IPAM service (`ipam.IPAM/ManagePrefixes`, upstream sdk `vl3ipam` served by
 * cmd-ipam-vl3): each vL3 endpoint keeps one bidirectional stream open; on ALLOCATE it gets a
 * block of the pool (its previous one when it names it and the block is free), on DELETE it
 * gives one back, and when the stream ends every block it holds returns to the pool.
 *
 * Replies echo the request's `exclude_prefixes` (as upstream). Errors end the stream with a
 * status: an UNDEFINED request type or a malformed prefix is InvalidArgument, an exhausted pool
 * ResourceExhausted.
 */
import * as grpc from "@grpc/grpc-js";
import { IPAM, type PrefixRequest, PrefixResponseSchema, Type } from "../../../api/gen/ipam_pb.js";
import { create } from "../../../api/index.js";
import { invalidArgument, NsmError } from "../../core/errors.js";
import { type Logger, silentLogger } from "../../core/logger.js";
import { boundedDetails, grpcDefinition } from "../../grpc/service.js";
import { PrefixPool } from "./pool.js";

/** Options of {@link serveVl3Ipam}. */
export interface Vl3IpamOptions {
  /** The whole vL3 network (NSM_PREFIX). */
  readonly prefix: string;
  /** The length of each endpoint's block (NSM_CLIENT_PREFIX_LEN). */
  readonly clientPrefixLength: number;
  readonly log?: Logger;
}

/** One stream's view of the pool: what it holds, what a request does. */
export class PrefixLeases {
  readonly #held = new Set<string>();
  constructor(private readonly pool: PrefixPool) {}

  /** Answers one request: a response to send, or undefined (DELETE). Errors are NsmErrors. */
  handle(req: PrefixRequest) {
    switch (req.type) {
      case Type.ALLOCATE: {
        if (req.prefix && this.#held.has(req.prefix))
          return create(PrefixResponseSchema, { prefix: req.prefix, excludePrefixes: req.excludePrefixes });
        const prefix = this.pool.allocate(req.prefix, req.excludePrefixes);
        this.#held.add(prefix);
        return create(PrefixResponseSchema, { prefix, excludePrefixes: req.excludePrefixes });
      }
      case Type.DELETE:
        if (this.#held.delete(req.prefix)) this.pool.release(req.prefix);
        return undefined;
      default:
        throw invalidArgument("prefix request type is undefined");
    }
  }

  /** Returns every held block to the pool (the stream ended). */
  releaseAll(): string[] {
    const held = [...this.#held];
    for (const p of held) this.pool.release(p);
    this.#held.clear();
    return held;
  }
}

function statusOf(err: unknown): grpc.StatusObject {
  const e = NsmError.from(err);
  return {
    code: e.code as number as grpc.status,
    details: boundedDetails(e.rawMessage),
    metadata: new grpc.Metadata(),
  };
}

/** Registers the IPAM service on `server`; returns the pool (for inspection). Bad options are InvalidArgument. */
export function serveVl3Ipam(server: grpc.Server, options: Vl3IpamOptions): PrefixPool {
  const pool = new PrefixPool(options.prefix, options.clientPrefixLength);
  const log = options.log ?? silentLogger;
  const managePrefixes = (call: grpc.ServerDuplexStream<PrefixRequest, unknown>) => {
    const leases = new PrefixLeases(pool);
    const peer = call.getPeer();
    let done = false;
    const finish = (status?: grpc.StatusObject) => {
      if (done) return;
      done = true;
      const released = leases.releaseAll();
      log.info({ peer, released, code: status?.code }, "prefix stream ended");
      if (status) call.emit("error", status);
      else call.end();
    };
    call.on("data", (req: PrefixRequest) => {
      if (done) return;
      try {
        const res = leases.handle(req);
        if (res) {
          log.info({ peer, prefix: res.prefix }, "prefix allocated");
          call.write(res);
        }
      } catch (err) {
        log.warn({ peer, err: String(err) }, "prefix request refused");
        finish(statusOf(err));
      }
    });
    call.on("end", () => finish());
    call.on("cancelled", () => finish());
    call.on("error", () => finish());
  };
  server.addService(grpcDefinition(IPAM), { managePrefixes });
  return pool;
}
